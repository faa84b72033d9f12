"""Token scopes: which kinds of data API request a token may make.

Pure, no Pulumi. A scope is `<family>:<access>`, the names Grafana Enterprise's access
policies use: `metrics:read`, `metrics:write`, `logs:read`, `logs:write`, `rules:read`,
`rules:write`, `alerts:read`, `alerts:write`. Every route of the gateway needs exactly one
(`required_scope`): the family by its upstream (the metrics or logs push and query
APIs, a ruler, the Alertmanager), the access by what the request does (a query is a
read whatever its method; a push, and any method but GET on a ruler or the
Alertmanager, is a write).

The scopes travel in the token as the `scope` claim, one string of scope names
separated by single spaces (as OAuth 2.0 writes them, RFC 8693 section 4.2 and RFC
9068). A token without the claim may do everything: Opstrace's tokens, and tokens minted
here without scopes, work unchanged. A claim that is present must be well formed
(`token_scopes`), or the token is refused as a bad token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

FAMILIES: Final = ("metrics", "logs", "rules", "alerts")
ACCESSES: Final = ("read", "write")
SCOPES: Final = tuple(f"{family}:{access}" for family in FAMILIES for access in ACCESSES)
"""Every scope, in the order claims and plans list them."""

CLAIM: Final = "scope"
"""The claim that carries a token's scopes."""
CLAIM_PRESENT_RE: Final = rf'"{CLAIM}"[[:space:]]*:'
"""The claim's key in a token's payload as the gateway spots it (POSIX `[[:space:]]`,
which every regex engine HAProxy may be built with reads)."""
_CLAIM_PRESENT_PY: Final = CLAIM_PRESENT_RE.replace("[[:space:]]", "[ \\t\\n\\r\\v\\f]")
"""The same pattern for Python's `re` (the C locale's `[[:space:]]`)."""
CLAIM_RE: Final = f"^({'|'.join(SCOPES)})( ({'|'.join(SCOPES)}))*$"
"""A well-formed claim: scope names separated by single spaces."""

MISSING_SCOPE_PREFIX: Final = "token lacks scope "
"""The 403 body for a token whose scopes do not cover the route: followed by the scope."""
SCOPE_RULE: Final = (
    f"a non-empty list of distinct scopes of {', '.join(SCOPES)} "
    "(leave scopes out for a token that may do everything)"
)

_ACCESS_BY_UPSTREAM: Final = {"query": "read", "push": "write"}
"""The data upstreams, whose access is theirs whatever the method (a POST query reads)."""
_FAMILY_BY_UPSTREAM: Final = {"ruler": "rules", "alertmanager": "alerts"}
_FAMILY_BY_SERVICE: Final = {"cortex": "metrics", "loki": "logs"}


def required_scope(service: str, upstream: str, method: str) -> str:
    """The one scope a request to `upstream` of `service` with `method` needs."""
    if upstream in _ACCESS_BY_UPSTREAM:
        return f"{_FAMILY_BY_SERVICE[service]}:{_ACCESS_BY_UPSTREAM[upstream]}"
    access = "read" if method == "GET" else "write"
    return f"{_FAMILY_BY_UPSTREAM[upstream]}:{access}"


def scopes_problem(scopes: object) -> str | None:
    """Why `scopes` (a token's `scopes` in the stack file) is not a list of scopes, or None."""
    if not isinstance(scopes, list) or not scopes:
        return f"expected {SCOPE_RULE}, got {scopes!r}"
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        return f"unknown scope {unknown[0]!r}: expected {SCOPE_RULE}"
    if len(set(scopes)) != len(scopes):
        twice = next(s for s in scopes if scopes.count(s) > 1)
        return f"scope {twice!r} is listed twice: expected {SCOPE_RULE}"
    return None


def claim_value(scopes: Iterable[str]) -> str:
    """The `scope` claim for `scopes`, in `SCOPES` order: equal sets give equal claims."""
    chosen = set(scopes)
    return " ".join(scope for scope in SCOPES if scope in chosen)


CLAIM_RULE: Final = (
    f"scope names of {', '.join(SCOPES)}, each once, in that order, separated by single spaces"
)


def claim_is_canonical(claim: str) -> bool:
    """Whether `claim` is what `claim_value` makes: known scopes, each once, in order."""
    return claim_value(claim.split(" ")) == claim


def token_scopes(payload_json: str, claim: object) -> frozenset[str] | None:
    """The scopes a token holds, from its decoded payload (`payload_json`, the JSON text as
    signed) and its parsed `scope` claim; None when the claim is malformed.

    The claim counts as present when its key is spotted in the text (`CLAIM_PRESENT_RE`):
    that is what the gateway can do, so the reference does the same (a nested `"scope":`
    key counts too; no token minted here has one). Absent, the token holds every scope.
    """
    if not re.search(_CLAIM_PRESENT_PY, payload_json):
        return frozenset(SCOPES)
    if not isinstance(claim, str) or not re.fullmatch(CLAIM_RE, claim):
        return None
    return frozenset(claim.split(" "))
