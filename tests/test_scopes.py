"""Which scope each kind of request needs, and how a token's scopes are written and read."""

from __future__ import annotations

import pytest

from opstrace import scopes
from opstrace.gateway import routes


@pytest.mark.parametrize(
    ("service", "upstream", "method", "needed"),
    [
        ("cortex", "push", "POST", "metrics:write"),
        ("cortex", "query", "GET", "metrics:read"),
        ("cortex", "query", "POST", "metrics:read"),
        ("loki", "push", "POST", "logs:write"),
        ("loki", "query", "POST", "logs:read"),
        ("cortex", "ruler", "GET", "rules:read"),
        ("loki", "ruler", "DELETE", "rules:write"),
        ("cortex", "alertmanager", "GET", "alerts:read"),
        ("cortex", "alertmanager", "POST", "alerts:write"),
        ("cortex", "alertmanager", "DELETE", "alerts:write"),
    ],
)
def test_each_request_needs_its_familys_read_or_write(
    service: str, upstream: str, method: str, needed: str
) -> None:
    assert scopes.required_scope(service, upstream, method) == needed


def test_every_route_and_method_needs_a_known_scope() -> None:
    for rule in routes.ROUTES:
        for method in rule.methods:
            assert scopes.required_scope(rule.service, rule.upstream, method) in scopes.SCOPES


def test_a_claim_lists_scopes_once_in_one_order_whatever_order_they_came_in() -> None:
    assert scopes.claim_value(["logs:write", "metrics:write", "logs:write"]) == (
        "metrics:write logs:write"
    )
    assert scopes.claim_is_canonical("metrics:write logs:write")
    assert not scopes.claim_is_canonical("logs:write metrics:write")


def test_a_payload_without_the_claims_key_holds_every_scope() -> None:
    assert scopes.token_scopes('{"sub":"tenant-prod"}', None) == frozenset(scopes.SCOPES)


def test_a_present_claim_holds_exactly_its_scopes() -> None:
    held = scopes.token_scopes('{"scope": "alerts:read rules:read"}', "alerts:read rules:read")
    assert held == frozenset({"alerts:read", "rules:read"})


@pytest.mark.parametrize("claim", ["", "alerts:read,rules:read", "Alerts:read", None, 3, ["x"]])
def test_a_present_but_malformed_claim_holds_nothing(claim: object) -> None:
    assert scopes.token_scopes('{"scope":0}', claim) is None


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ([], "expected a non-empty list"),
        ("metrics:read", "expected a non-empty list"),
        (["metrics:read", "metrics:admin"], "unknown scope 'metrics:admin'"),
        (["logs:read", "logs:read"], "scope 'logs:read' is listed twice"),
    ],
)
def test_a_stack_files_scopes_are_refused_naming_the_rule(entry: object, problem: str) -> None:
    found = scopes.scopes_problem(entry)
    assert found is not None
    assert found.startswith(problem)
    assert scopes.SCOPE_RULE in found
