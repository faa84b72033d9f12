"""The rules and Alertmanager providers' decisions that need no backend, in the real
provider host (`python -m pulumi.dynamic`, as the engine starts it): what `check` refuses
and what `preview` plans. Their calls are tested end to end (tests/e2e)."""

from __future__ import annotations

from typing import Any

import pytest

from components.alerting import AlertmanagerConfigProvider, RulesProvider
from opstrace.gateway import routes
from opstrace.policy import rule_files
from tests.provider_host import DiffChanges, ProviderHost

RULES = {
    "endpoint": "https://cortex.prod.acme.example.com",
    "api": routes.RULER_CONFIG_PATH,
    "tenant": "prod",
    "token": "t0k3n",
    "namespace": rule_files.RULES_NAMESPACE,
    "groups": ["name: a\nrules:\n- alert: Down\n  expr: up == 0\n"],
}
ALERTMANAGER = {**{k: RULES[k] for k in ("endpoint", "tenant", "token")}, "config": "x: 1\n"}


@pytest.fixture
def rules(provider_host: ProviderHost) -> ProviderHost:
    return provider_host.serving(RulesProvider())


@pytest.fixture
def alertmanager(provider_host: ProviderHost) -> ProviderHost:
    return provider_host.serving(AlertmanagerConfigProvider())


def test_check_refuses_an_endpoint_that_is_not_https(rules: ProviderHost) -> None:
    checked = rules.check({**RULES, "endpoint": "http://cortex.prod.acme.example.com"})
    assert checked.failures == (
        ("endpoint", "'http://cortex.prod.acme.example.com' is not an https:// endpoint"),
    )


def test_check_refuses_groups_that_are_not_texts(rules: ProviderHost) -> None:
    checked = rules.check({**RULES, "groups": [{"name": "a"}]})
    assert checked.failures == (("groups", "groups must be a list of texts, got [{'name': 'a'}]"),)


def test_check_refuses_an_api_that_is_no_rulers(rules: ProviderHost) -> None:
    checked = rules.check({**RULES, "api": "/api/v1/push"})
    assert checked.failures == (
        (
            "api",
            "'/api/v1/push' is not a ruler's configuration API: use one of "
            "/prometheus/config/v1/rules, /loki/api/v1/rules",
        ),
    )


def test_check_passes_the_inputs_on_unchanged(rules: ProviderHost) -> None:
    checked = rules.check(RULES)
    assert (checked.inputs, checked.failures) == (RULES, ())


@pytest.mark.parametrize(
    ("change", "changes", "replaces"),
    [
        ({}, DiffChanges.NONE, ()),
        ({"groups": ["name: b\nrules: []\n"]}, DiffChanges.SOME, ()),
        # A rotated token is stored, so that a later delete uses a valid one.
        ({"token": "n3w"}, DiffChanges.SOME, ()),
        # The endpoint is only the way in: the groups stay where they are.
        ({"endpoint": "https://cortex.prod.acme.example.org"}, DiffChanges.SOME, ()),
        ({"namespace": "other"}, DiffChanges.SOME, ("namespace",)),
        # Another ruler holds other groups.
        ({"api": routes.LOKI_RULER_CONFIG_PATH}, DiffChanges.SOME, ("api",)),
    ],
    ids=["nothing", "groups", "token", "endpoint", "namespace", "ruler"],
)
def test_preview_plans_an_update_unless_the_namespace_or_the_ruler_changes(
    rules: ProviderHost, change: dict[str, Any], changes: DiffChanges, replaces: tuple[str, ...]
) -> None:
    planned = rules.diff("prod/opstrace", RULES, {**RULES, **change})
    assert (planned.changes, planned.replaces) == (changes, replaces)


def test_preview_plans_an_update_of_a_changed_alertmanager_configuration(
    alertmanager: ProviderHost,
) -> None:
    same = alertmanager.diff("prod", ALERTMANAGER, ALERTMANAGER)
    changed = alertmanager.diff("prod", ALERTMANAGER, {**ALERTMANAGER, "config": "x: 2\n"})
    assert (same.changes, changed.changes, changed.replaces) == (
        DiffChanges.NONE,
        DiffChanges.SOME,
        (),
    )
