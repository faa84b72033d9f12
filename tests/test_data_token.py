"""Specification of data API tokens and of the reference authenticator's decisions."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from opstrace.data_token import (
    TEN_YEARS_SECONDS,
    Decision,
    ExpiryNotice,
    authenticate,
    expiry_notice,
    sign_token,
    timestamp,
    token_claims,
)
from opstrace.keys import key_id, key_set, public_key_pem
from opstrace.scopes import SCOPES

INSTANCE = "acme"
TENANT = "prod"
NOW = 1_700_000_000
ISSUED_AT = NOW - 3600

MISSING = Decision(401, "Authorization header missing or invalid")
BAD_FORMAT = Decision(401, "Authorization header format invalid. Expecting 'Bearer <AUTHTOKEN>'")
BAD_TOKEN = Decision(401, "bad authentication token")
ACCEPTED = Decision(200, "", TENANT)


@dataclass(frozen=True)
class Signer:
    """A trusted signing key with its key ID, and a key set trusting it."""

    private_key: rsa.RSAPrivateKey
    public_pem: str
    kid: str

    def token(self, **changes: Any) -> str:
        """A token of TENANT at INSTANCE, with claims changed (None removes a claim)."""
        return sign_token(self.private_key, self.kid, _claims(**changes))


def _signer(private_key: rsa.RSAPrivateKey) -> Signer:
    pem = public_key_pem(private_key)
    return Signer(private_key, pem, key_id(pem))


def _claims(**changes: Any) -> dict[str, Any]:
    claims = token_claims(INSTANCE, TENANT, ISSUED_AT, TEN_YEARS_SECONDS)
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(document: dict[str, Any]) -> str:
    return _b64url(json.dumps(document, separators=(",", ":")).encode("utf-8"))


def _json_segment(segment: str) -> Any:
    return json.loads(_b64url_decode(segment))


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


@pytest.fixture(scope="module")
def signer() -> Signer:
    return _signer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def stranger() -> Signer:
    """A signer whose key is not in the trust store."""
    return _signer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def trusted(signer: Signer) -> dict[str, str]:
    return key_set([signer.public_pem])


def _authenticate(
    authorization: str | None, keys: dict[str, str], endpoint_tenant: str = TENANT
) -> Decision:
    return authenticate(authorization, endpoint_tenant, keys, INSTANCE, NOW)


# --- claims and signing --------------------------------------------------------------


def test_ten_years_is_3650_days() -> None:
    assert TEN_YEARS_SECONDS == 3650 * 24 * 3600


def test_claims_are_exactly_opstraces_five() -> None:
    assert token_claims("acme", "prod", NOW, TEN_YEARS_SECONDS) == {
        "aud": "opstrace-cluster-acme",
        "iss": "opstrace-cli",
        "sub": "tenant-prod",
        "iat": NOW,
        "exp": NOW + 315_360_000,
    }


def test_expiry_is_issue_time_plus_lifetime() -> None:
    assert token_claims("acme", "prod", NOW, 60)["exp"] == NOW + 60


def test_signed_token_is_three_unpadded_base64url_segments(signer: Signer) -> None:
    segments = signer.token().split(".")

    assert len(segments) == 3
    assert all(segment and "=" not in segment for segment in segments)


def test_signed_token_header_is_exactly_alg_typ_and_kid(signer: Signer) -> None:
    header = _json_segment(signer.token().split(".")[0])

    assert header == {"alg": "RS256", "typ": "JWT", "kid": signer.kid}


def test_signed_token_payload_is_exactly_the_claims(signer: Signer) -> None:
    payload = _json_segment(signer.token().split(".")[1])

    assert payload == token_claims(INSTANCE, TENANT, ISSUED_AT, TEN_YEARS_SECONDS)


def test_signed_token_signature_is_rsa_pkcs1v15_sha256_by_the_key(signer: Signer) -> None:
    header, payload, signature = signer.token().split(".")

    # Raises InvalidSignature if the token was not signed RS256 by this key.
    signer.private_key.public_key().verify(
        _b64url_decode(signature),
        f"{header}.{payload}".encode("ascii"),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


# --- the authenticator's decision table ----------------------------------------------

Header = Callable[[Signer, Signer], str | None]
"""Builds the Authorization header from the trusted signer and a stranger."""


def _forged_hs256_with_public_pem(signer: Signer, _: Signer) -> str:
    signing_input = _segment({"alg": "HS256", "typ": "JWT", "kid": signer.kid})
    signing_input += "." + _segment(_claims())
    mac = hmac.new(signer.public_pem.encode("ascii"), signing_input.encode("ascii"), "sha256")
    return f"Bearer {signing_input}.{_b64url(mac.digest())}"


def _unsigned_alg_none(signer: Signer, _: Signer) -> str:
    header = _segment({"alg": "none", "typ": "JWT", "kid": signer.kid})
    return f"Bearer {header}.{_segment(_claims())}."


def _tampered_tenant(signer: Signer, _: Signer) -> str:
    header, _payload, signature = signer.token(sub="tenant-dev").split(".")
    return f"Bearer {header}.{_segment(_claims())}.{signature}"


def _known_kid_signed_by_another_key(signer: Signer, stranger: Signer) -> str:
    return "Bearer " + sign_token(stranger.private_key, signer.kid, _claims())


def _without_kid(signer: Signer, _: Signer) -> str:
    signing_input = _segment({"alg": "RS256", "typ": "JWT"}) + "." + _segment(_claims())
    signature = signer.private_key.sign(
        signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"Bearer {signing_input}.{_b64url(signature)}"


DECISIONS: list[Any] = [
    pytest.param(lambda s, o: None, MISSING, id="no-header"),
    pytest.param(lambda s, o: "", MISSING, id="empty-header"),
    pytest.param(lambda s, o: "Token " + s.token(), BAD_FORMAT, id="token-scheme"),
    pytest.param(lambda s, o: "Token x", BAD_FORMAT, id="token-scheme-garbage"),
    pytest.param(lambda s, o: "Bearer", BAD_FORMAT, id="bearer-alone"),
    pytest.param(lambda s, o: "Bearer ", BAD_FORMAT, id="bearer-empty"),
    pytest.param(lambda s, o: s.token(), BAD_FORMAT, id="token-without-scheme"),
    pytest.param(lambda s, o: "Bearer " + s.token(), ACCEPTED, id="bearer-accepted"),
    pytest.param(lambda s, o: _basic("anyone", s.token()), ACCEPTED, id="basic-password"),
    pytest.param(lambda s, o: _basic("", s.token()), ACCEPTED, id="basic-empty-username"),
    pytest.param(lambda s, o: _basic("prometheus", ""), BAD_FORMAT, id="basic-empty-password"),
    pytest.param(
        lambda s, o: "Basic " + base64.b64encode(s.token().encode()).decode(),
        BAD_FORMAT,
        id="basic-without-colon",
    ),
    pytest.param(lambda s, o: "Basic !!!not-base64", BAD_FORMAT, id="basic-not-base64"),
    pytest.param(lambda s, o: "Basic", BAD_FORMAT, id="basic-alone"),
    pytest.param(lambda s, o: "Bearer not-a-jwt", BAD_TOKEN, id="garbage-token"),
    pytest.param(lambda s, o: "Bearer a.b.c", BAD_TOKEN, id="garbage-segments"),
    pytest.param(lambda s, o: _basic("x", "not-a-jwt"), BAD_TOKEN, id="basic-garbage-token"),
    pytest.param(lambda s, o: "Bearer " + o.token(), BAD_TOKEN, id="unknown-kid"),
    pytest.param(_known_kid_signed_by_another_key, BAD_TOKEN, id="bad-signature"),
    pytest.param(_without_kid, BAD_TOKEN, id="no-kid"),
    pytest.param(_unsigned_alg_none, BAD_TOKEN, id="alg-none"),
    pytest.param(_forged_hs256_with_public_pem, BAD_TOKEN, id="hs256-public-key-secret"),
    pytest.param(_tampered_tenant, BAD_TOKEN, id="tampered-payload"),
    pytest.param(lambda s, o: "Bearer " + s.token(exp=NOW - 1), BAD_TOKEN, id="expired"),
    pytest.param(lambda s, o: "Bearer " + s.token(exp=NOW), BAD_TOKEN, id="expires-now"),
    pytest.param(lambda s, o: "Bearer " + s.token(exp=NOW + 1), ACCEPTED, id="expires-next"),
    pytest.param(lambda s, o: "Bearer " + s.token(exp=None), BAD_TOKEN, id="no-exp"),
    pytest.param(lambda s, o: "Bearer " + s.token(nbf=NOW + 1), BAD_TOKEN, id="nbf-future"),
    pytest.param(lambda s, o: "Bearer " + s.token(nbf=NOW), ACCEPTED, id="nbf-now"),
    pytest.param(lambda s, o: "Bearer " + s.token(nbf=NOW - 1), ACCEPTED, id="nbf-past"),
    pytest.param(lambda s, o: "Bearer " + s.token(iat=NOW + 1), BAD_TOKEN, id="iat-future"),
    pytest.param(lambda s, o: "Bearer " + s.token(iat=NOW), ACCEPTED, id="iat-now"),
    pytest.param(lambda s, o: "Bearer " + s.token(iat=NOW - 1), ACCEPTED, id="iat-past"),
    pytest.param(lambda s, o: "Bearer " + s.token(iat=None), ACCEPTED, id="no-iat"),
    pytest.param(
        lambda s, o: "Bearer " + s.token(aud="opstrace-cluster-other"),
        BAD_TOKEN,
        id="other-instance-aud",
    ),
    pytest.param(lambda s, o: "Bearer " + s.token(aud=None), BAD_TOKEN, id="no-aud"),
    pytest.param(lambda s, o: "Bearer " + s.token(sub="prod"), BAD_TOKEN, id="sub-no-prefix"),
    pytest.param(lambda s, o: "Bearer " + s.token(sub="user-prod"), BAD_TOKEN, id="sub-user"),
    pytest.param(
        lambda s, o: "Bearer " + s.token(sub="xtenant-prod"), BAD_TOKEN, id="sub-prefix-inside"
    ),
    pytest.param(lambda s, o: "Bearer " + s.token(sub=None), BAD_TOKEN, id="no-sub"),
    pytest.param(
        lambda s, o: "Bearer " + s.token(sub="tenant-dev"),
        Decision(401, "bad authentication token: unexpected tenant: dev"),
        id="other-tenant",
    ),
    pytest.param(
        lambda s, o: _basic("x", s.token(sub="tenant-system")),
        Decision(401, "bad authentication token: unexpected tenant: system"),
        id="basic-other-tenant",
    ),
]


@pytest.mark.parametrize(("authorization", "decision"), DECISIONS)
def test_authenticator_decision(
    authorization: Header,
    decision: Decision,
    signer: Signer,
    stranger: Signer,
    trusted: dict[str, str],
) -> None:
    assert _authenticate(authorization(signer, stranger), trusted) == decision


# --- attacks and regressions, accepted path beside the refused one -------------------


def test_token_signed_with_public_key_as_hmac_secret_is_refused(
    signer: Signer, trusted: dict[str, str]
) -> None:
    forged = _forged_hs256_with_public_pem(signer, signer)
    header, payload, _ = forged.removeprefix("Bearer ").split(".")

    assert _json_segment(header) == {"alg": "HS256", "typ": "JWT", "kid": signer.kid}
    assert _json_segment(payload) == _claims()
    assert _authenticate("Bearer " + signer.token(), trusted) == ACCEPTED
    assert _authenticate(forged, trusted) == BAD_TOKEN


def test_tampered_payload_is_refused_while_the_original_is_accepted(
    signer: Signer, trusted: dict[str, str]
) -> None:
    original = "Bearer " + signer.token(sub="tenant-dev")

    assert _authenticate(original, trusted, endpoint_tenant="dev") == Decision(200, "", "dev")
    assert _authenticate(_tampered_tenant(signer, signer), trusted) == BAD_TOKEN


def test_token_of_a_removed_key_is_refused(
    signer: Signer, stranger: Signer, trusted: dict[str, str]
) -> None:
    both = key_set([signer.public_pem, stranger.public_pem])
    token = "Bearer " + stranger.token()

    assert _authenticate(token, both) == ACCEPTED
    assert _authenticate(token, trusted) == BAD_TOKEN


def test_each_key_of_a_key_set_is_trusted(signer: Signer, stranger: Signer) -> None:
    both = key_set([signer.public_pem, stranger.public_pem])

    assert _authenticate("Bearer " + signer.token(), both) == ACCEPTED
    assert _authenticate("Bearer " + stranger.token(), both) == ACCEPTED


def test_token_is_accepted_for_its_whole_ten_year_lifetime(
    signer: Signer, trusted: dict[str, str]
) -> None:
    token = "Bearer " + sign_token(
        signer.private_key, signer.kid, token_claims(INSTANCE, TENANT, NOW, TEN_YEARS_SECONDS)
    )

    def at(now: int) -> Decision:
        return authenticate(token, TENANT, trusted, INSTANCE, now)

    assert at(NOW) == ACCEPTED
    assert at(NOW + TEN_YEARS_SECONDS - 1) == ACCEPTED
    assert at(NOW + TEN_YEARS_SECONDS) == BAD_TOKEN
    assert at(NOW - 1) == BAD_TOKEN  # issued in the future


def test_system_tenant_token_is_accepted_at_the_system_endpoint(
    signer: Signer, trusted: dict[str, str]
) -> None:
    token = "Bearer " + signer.token(sub="tenant-system")

    assert _authenticate(token, trusted, endpoint_tenant="system") == Decision(200, "", "system")


# --- keys bound to tenants ------------------------------------------------------------

BINDING_CASES = [
    # (binding of the key, endpoint tenant, tenant in sub, decision)
    (None, "prod", "prod", Decision(200, "", "prod")),
    (None, "prod", "dev", Decision(401, "bad authentication token: unexpected tenant: dev")),
    (None, "dev", "dev", Decision(200, "", "dev")),
    (None, "dev", "prod", Decision(401, "bad authentication token: unexpected tenant: prod")),
    ("prod", "prod", "prod", Decision(200, "", "prod")),
    ("prod", "prod", "dev", Decision(401, "bad authentication token: unexpected tenant: dev")),
    ("prod", "dev", "dev", BAD_TOKEN),
    ("prod", "dev", "prod", BAD_TOKEN),
]


@pytest.mark.parametrize(
    ("bound_to", "endpoint", "sub", "decision"),
    BINDING_CASES,
    ids=[f"bound to {b}, {e} endpoint, sub {s}" for b, e, s, _ in BINDING_CASES],
)
def test_a_bound_key_counts_as_untrusted_at_other_tenants_endpoints(
    bound_to: str | None,
    endpoint: str,
    sub: str,
    decision: Decision,
    signer: Signer,
    trusted: dict[str, str],
) -> None:
    bindings = {} if bound_to is None else {signer.kid: bound_to}
    token = "Bearer " + signer.token(sub=f"tenant-{sub}")
    assert authenticate(token, endpoint, trusted, INSTANCE, NOW, bindings) == decision


def test_a_binding_of_another_key_changes_nothing(
    signer: Signer, stranger: Signer, trusted: dict[str, str]
) -> None:
    token = "Bearer " + signer.token(sub="tenant-prod")
    bindings = {stranger.kid: "dev"}
    assert authenticate(token, "prod", trusted, INSTANCE, NOW, bindings) == ACCEPTED


def test_a_bound_key_is_refused_elsewhere_before_its_claims_are_looked_at(
    signer: Signer, trusted: dict[str, str]
) -> None:
    # An expired token of a key bound elsewhere and an unexpired one get the same answer.
    bindings = {signer.kid: "dev"}
    expired = "Bearer " + signer.token(exp=NOW - 1)
    assert authenticate(expired, TENANT, trusted, INSTANCE, NOW, bindings) == BAD_TOKEN
    assert authenticate(expired, "dev", trusted, INSTANCE, NOW, bindings) == BAD_TOKEN


# --- expiry notices --------------------------------------------------------------------

DAY = 86400


def test_a_token_far_from_expiry_gets_no_notice() -> None:
    assert expiry_notice("prod", "default", NOW + 31 * DAY, NOW) is None


def test_a_token_expiring_within_30_days_gets_a_warning_with_the_date() -> None:
    notice = expiry_notice("prod", "ci", NOW + 12 * DAY, NOW)
    assert notice == ExpiryNotice(
        expired=False,
        message=f"token 'ci' of tenant 'prod' expires at {timestamp(NOW + 12 * DAY)} (in 12 "
        "days): rotate it (change the tenant's `rotation`) and hand out the new token",
    )


def test_an_expired_token_gets_an_error_saying_every_request_is_refused() -> None:
    notice = expiry_notice("prod", "default", NOW, NOW)
    assert notice == ExpiryNotice(
        expired=True,
        message=f"token 'default' of tenant 'prod' expired at {timestamp(NOW)}: every request "
        "with it gets 401; rotate it (change the tenant's `rotation`) and hand out the new token",
    )


def test_the_system_tenants_notice_names_its_own_rotation_setting() -> None:
    notice = expiry_notice("system", "default", NOW + DAY, NOW)
    assert notice is not None
    assert "rotate it (change `systemTokenRotation`)" in notice.message


def test_timestamp_is_iso_8601_utc() -> None:
    assert timestamp(0) == "1970-01-01T00:00:00Z"


# --- scopes ---------------------------------------------------------------------------


def _scoped(signer: Signer, trusted: dict[str, str], claim: Any, needed: str | None) -> Decision:
    token = signer.token(scope=claim)
    return authenticate(f"Bearer {token}", TENANT, trusted, INSTANCE, NOW, scope=needed)


def test_a_token_without_a_scope_claim_holds_every_scope(
    signer: Signer, trusted: dict[str, str]
) -> None:
    for needed in SCOPES:
        assert _scoped(signer, trusted, None, needed) == ACCEPTED


def test_a_scoped_token_passes_its_scopes_and_is_refused_others_naming_the_scope(
    signer: Signer, trusted: dict[str, str]
) -> None:
    claim = "metrics:write logs:write"
    assert _scoped(signer, trusted, claim, "logs:write") == ACCEPTED
    assert _scoped(signer, trusted, claim, "metrics:read") == Decision(
        403, "token lacks scope metrics:read"
    )


@pytest.mark.parametrize(
    "claim", ["", "metrics:read,logs:read", "metrics:read  logs:read", " metrics:read", "x", 7, []]
)
def test_a_malformed_scope_claim_is_a_bad_token_whatever_the_route(
    signer: Signer, trusted: dict[str, str], claim: Any
) -> None:
    assert _scoped(signer, trusted, claim, None) == BAD_TOKEN


def test_another_tenants_scoped_token_is_refused_for_its_tenant_before_its_scopes(
    signer: Signer, trusted: dict[str, str]
) -> None:
    token = signer.token(sub="tenant-dev", scope="logs:read")
    decision = authenticate(f"Bearer {token}", TENANT, trusted, INSTANCE, NOW, scope="metrics:read")
    assert decision == Decision(401, "bad authentication token: unexpected tenant: dev")


def test_a_scope_claim_is_added_only_to_a_token_limited_to_some_scopes() -> None:
    assert "scope" not in token_claims(INSTANCE, TENANT, ISSUED_AT, 60)
    assert token_claims(INSTANCE, TENANT, ISSUED_AT, 60, "logs:read")["scope"] == "logs:read"
