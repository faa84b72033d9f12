"""Data API tokens: the claims, signing, and the reference authenticator's decision.

Pure functions, no Pulumi. `sign_token` makes exactly the JWT Opstrace's
`ta-create-token` made (RS256, `kid` header, aud/iss/sub/iat/exp), with one claim added
only to a token limited to some scopes (`scope`, opstrace/scopes.py).
`authenticate` is the reference authenticator's decision in Python: the gateway
tests compare HAProxy against it, and it documents every response text.

Key bindings: a key may be bound to one tenant (`bindings`: key ID -> tenant). At any
other tenant's endpoint a bound key is treated exactly as a key that is not trusted
(`bad authentication token`, whatever the token says). A key without a binding is
instance-wide, as every key was in Opstrace.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TypeGuard

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from opstrace import scopes
from opstrace.names import SYSTEM_TENANT, audience, subject

ISSUER: Final = "opstrace-cli"
ALGORITHM: Final = "RS256"
TEN_YEARS_SECONDS: Final = 10 * 365 * 24 * 3600
"""Opstrace's token lifetime."""

EXPIRY_WARNING_SECONDS: Final = 30 * 86400
"""Tokens expiring sooner than this are reported by every preview and update."""

MISSING: Final = "Authorization header missing or invalid"
BAD_FORMAT: Final = "Authorization header format invalid. Expecting 'Bearer <AUTHTOKEN>'"
BAD_TOKEN: Final = "bad authentication token"
UNEXPECTED_TENANT_PREFIX: Final = "bad authentication token: unexpected tenant: "

NO_BINDINGS: Final[Mapping[str, str]] = MappingProxyType({})
"""Every key instance-wide (Opstrace's behaviour)."""


def token_claims(
    instance: str, tenant: str, issued_at: int, lifetime_seconds: int, scope: str = ""
) -> dict[str, Any]:
    """The claim set of a tenant's data API token: Opstrace's, and the `scope` claim
    (`scopes.claim_value`) only for a token limited to some scopes."""
    claims: dict[str, Any] = {
        "aud": audience(instance),
        "iss": ISSUER,
        "sub": subject(tenant),
        "iat": issued_at,
        "exp": issued_at + lifetime_seconds,
    }
    if scope:
        claims[scopes.CLAIM] = scope
    return claims


def sign_token(private_key: rsa.RSAPrivateKey, kid: str, claims: Mapping[str, Any]) -> str:
    """Sign `claims` with RS256; the header carries `typ: JWT` and the key ID."""
    return jwt.encode(
        dict(claims),
        private_key,
        algorithm=ALGORITHM,
        headers={"kid": kid, "typ": "JWT"},
    )


def timestamp(seconds: int) -> str:
    """A NumericDate as an ISO 8601 UTC time, e.g. `2036-11-22T13:05:00Z`."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ExpiryNotice:
    """What an operator must be told about a token's expiry."""

    expired: bool
    """True: every request with the token is already refused (an error, not a warning)."""
    message: str


def expiry_notice(tenant: str, token_name: str, expires_at: int, now: int) -> ExpiryNotice | None:
    """The notice for a token that has expired or expires within 30 days, or None."""
    what = f"token {token_name!r} of tenant {tenant!r}"
    marker = "`systemTokenRotation`" if tenant == SYSTEM_TENANT else "the tenant's `rotation`"
    rotate = f"rotate it (change {marker}) and hand out the new token"
    if expires_at <= now:
        return ExpiryNotice(
            True,
            f"{what} expired at {timestamp(expires_at)}: every request with it gets 401; {rotate}",
        )
    if expires_at - now <= EXPIRY_WARNING_SECONDS:
        days = round((expires_at - now) / 86400)
        return ExpiryNotice(
            False, f"{what} expires at {timestamp(expires_at)} (in {days} days): {rotate}"
        )
    return None


@dataclass(frozen=True)
class Decision:
    """What the authenticator answers: 200 with the tenant, or 401 or 403 with a body."""

    status: int
    body: str = ""
    tenant: str | None = None


def bearer_token(authorization: str | None) -> str | Decision:
    """The token from an `Authorization` header value, or the refusal.

    `Bearer <token>`, or HTTP basic auth with the token as password (username ignored).
    """
    if not authorization:
        return Decision(401, MISSING)
    scheme, _, credentials = authorization.partition(" ")
    if scheme == "Bearer" and credentials:
        return credentials
    if scheme == "Basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return Decision(401, BAD_FORMAT)
        _, colon, password = decoded.partition(":")
        if colon and password:
            return password
    return Decision(401, BAD_FORMAT)


def authenticate(
    authorization: str | None,
    endpoint_tenant: str,
    keys: Mapping[str, str],
    instance: str,
    now: int,
    bindings: Mapping[str, str] = NO_BINDINGS,
    scope: str | None = None,
) -> Decision:
    """Decide a request to `endpoint_tenant`'s endpoint as the gateway must.

    `scope` is the scope the request's route needs (`scopes.required_scope`); a token
    whose `scope` claim lacks it gets 403 naming it. None: the route is not checked
    (the token's claim must still be well formed).

    `bindings` maps a key ID to the only tenant whose endpoints accept its tokens; at
    other endpoints the key counts as untrusted (checked with the `kid` lookup, before
    the signature and the claims). Keys not in `bindings` are instance-wide.

    Deliberately stricter than Opstrace's authenticator, which tokens minted here
    never notice, in these ways:
    - `aud` must be present and name this instance (Opstrace did not check it);
    - `exp` must be present (Opstrace checked it only when present);
    - `kid` must be present and in the key set (no legacy single-key fallback);
    - `sub` must start with `tenant-` (an anchored prefix, not a substring);
    - `exp`, `nbf` and `iat` must be JSON integers (no floats, no booleans);
    - basic auth must decode strictly (base64, UTF-8) and carry a `user:password`
      pair with a non-empty password;
    - a `scope` claim (which Opstrace's tokens never had) must be well formed.
    """
    token = bearer_token(authorization)
    if isinstance(token, Decision):
        return token
    try:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or kid not in keys:
            return Decision(401, BAD_TOKEN)
        if bindings.get(kid, endpoint_tenant) != endpoint_tenant:
            return Decision(401, BAD_TOKEN)
        claims = jwt.decode(
            token,
            keys[kid],
            algorithms=[ALGORITHM],
            audience=audience(instance),
            # Times are checked below against `now`, so that tests can pin the clock.
            options={
                "require": ["exp", "sub", "aud"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError:
        return Decision(401, BAD_TOKEN)
    held = scopes.token_scopes(_payload_json(token), claims.get(scopes.CLAIM))
    if not _times_valid(claims, now) or held is None:
        return Decision(401, BAD_TOKEN)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith("tenant-"):
        return Decision(401, BAD_TOKEN)
    tenant = sub.removeprefix("tenant-")
    if tenant != endpoint_tenant:
        return Decision(401, UNEXPECTED_TENANT_PREFIX + tenant)
    if scope is not None and scope not in held:
        return Decision(403, scopes.MISSING_SCOPE_PREFIX + scope)
    return Decision(200, tenant=tenant)


def _payload_json(token: str) -> str:
    """The payload of a token whose signature verified, as the JSON text it signs."""
    payload = token.split(".")[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")


def _times_valid(claims: Mapping[str, Any], now: int) -> bool:
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if not _is_time(exp) or exp <= now:
        return False
    if nbf is not None and (not _is_time(nbf) or nbf > now):
        return False
    return iat is None or (_is_time(iat) and iat <= now)


def _is_time(value: Any) -> TypeGuard[int]:
    """A NumericDate as Opstrace's tokens carry it: an integer, and JSON booleans are not."""
    return isinstance(value, int) and not isinstance(value, bool)
