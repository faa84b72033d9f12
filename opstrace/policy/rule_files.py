"""Tenants' alert rules and Alertmanager configurations, as documents.

Pure, no Pulumi: what a stack file's `rules` and `alertmanagerConfig` may hold (checked
before anything registers, one line per mistake), their canonical text (what state holds
and what `preview` compares), what the ruler and the Alertmanager are sent and answer,
and the configuration every tenant has until it sets its own (Opstrace's: a receiver
that notifies nobody). The ruler and the Alertmanager check the rest (PromQL, receiver
settings) when `up` uploads, and their answer ends `up` with their message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

from opstrace.config.read import ConfigError
from opstrace.gateway import routes

RULES_NAMESPACE: Final = "opstrace"
"""The ruler namespace holding a tenant's rule groups from the stack file. `up` writes
and deletes only there: the tenant's other namespaces (Grafana's, mimirtool's) are its."""

DEFAULT_RECEIVER: Final = "blackhole"

_NAME_RE: Final = re.compile(routes.NAME_RE)


def canonical(document: Any) -> str:
    """One text per meaning: keys sorted, block style (what state holds and compares)."""
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False, allow_unicode=True)


DEFAULT_ALERTMANAGER_CONFIG: Final = canonical(
    {"route": {"receiver": DEFAULT_RECEIVER}, "receivers": [{"name": DEFAULT_RECEIVER}]}
)
"""Every tenant's Alertmanager configuration until it sets its own, as Opstrace's was:
alerts are accepted and grouped, and notify nobody."""


@dataclass(frozen=True)
class RuleGroups:
    """A tenant's rule groups (Prometheus rule file format, `groups:`)."""

    source: str
    """The file as the stack names it, or `inline`."""
    groups: tuple[str, ...]
    """Each group's canonical YAML, in the file's order (the ruler's upload body)."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(str(yaml.safe_load(group)["name"]) for group in self.groups)


@dataclass(frozen=True)
class AlertmanagerConfig:
    """A tenant's Alertmanager configuration (Alertmanager's own format)."""

    source: str
    text: str
    """Canonical YAML."""


def rule_groups(field: str, document: Any, source: str, owner: str = "") -> RuleGroups:
    """The groups of a Prometheus rule file, checked: named (the gateway's name rule,
    since a group's name is a path segment of the ruler's API), each name once, each
    rule an `alert` or a `record` with an `expr`, labels and annotations as text."""

    def refuse(where: str, problem: str) -> ConfigError:
        return ConfigError(f"{field}{owner}: {source}: {where}{problem}")

    if not isinstance(document, dict) or set(document) != {"groups"}:
        raise refuse("", "expected a rule file: a mapping with only `groups:`, a list of groups")
    groups = document["groups"]
    if not isinstance(groups, list) or not groups:
        raise refuse("groups: ", f"expected a non-empty list of rule groups, got {groups!r}")
    seen: set[str] = set()
    for index, group in enumerate(groups):
        where = f"groups[{index}]"
        if not isinstance(group, dict):
            raise refuse(f"{where}: ", f"expected a rule group mapping, got {group!r}")
        name = group.get("name")
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise refuse(
                f"{where}.name: ",
                f"{name!r} is not a group name: use letters, digits, '_', '-' and '.', "
                "not starting with '.' (the ruler's API has it in its paths)",
            )
        if name in seen:
            raise refuse(f"{where}.name: ", f"group {name!r} is listed twice")
        seen.add(name)
        _check_rules(f"{where}.rules", group.get("rules"), refuse)
    return RuleGroups(source, tuple(canonical(group) for group in groups))


def _check_rules(where: str, rules: Any, refuse: Any) -> None:
    if not isinstance(rules, list) or not rules:
        raise refuse(f"{where}: ", f"expected a non-empty list of rules, got {rules!r}")
    for index, rule in enumerate(rules):
        at = f"{where}[{index}]"
        if not isinstance(rule, dict):
            raise refuse(f"{at}: ", f"expected a rule mapping, got {rule!r}")
        kinds = [kind for kind in ("alert", "record") if kind in rule]
        if len(kinds) != 1 or not isinstance(rule[kinds[0]], str):
            raise refuse(f"{at}: ", "a rule has exactly one of `alert:` or `record:`, a name")
        if not isinstance(rule.get("expr"), str) or not rule["expr"].strip():
            raise refuse(f"{at}.expr: ", "expected the rule's PromQL expression as text")
        for part in ("labels", "annotations"):
            values = rule.get(part, {})
            if not isinstance(values, dict):
                raise refuse(f"{at}.{part}: ", f"expected a mapping, got {values!r}")
            for key, value in values.items():
                if not isinstance(value, str):
                    raise refuse(f"{at}.{part}.{key}: ", f"expected text, got {value!r}: quote it")


def alertmanager_config(
    field: str, document: Any, source: str, owner: str = ""
) -> AlertmanagerConfig:
    """An Alertmanager configuration, checked as far as routing goes: a `route` whose
    receiver is one of `receivers`, each named once."""

    def refuse(problem: str) -> ConfigError:
        return ConfigError(f"{field}{owner}: {source}: {problem}")

    if not isinstance(document, dict):
        raise refuse(f"expected an Alertmanager configuration mapping, got {document!r}")
    receivers = document.get("receivers")
    if not isinstance(receivers, list) or not receivers:
        raise refuse("receivers: expected a non-empty list of receivers")
    names = [r.get("name") if isinstance(r, dict) else None for r in receivers]
    if not all(isinstance(name, str) and name for name in names):
        raise refuse("receivers: every receiver needs a `name:`")
    if len(set(names)) != len(names):
        raise refuse("receivers: a receiver name is listed twice")
    route = document.get("route")
    receiver = route.get("receiver") if isinstance(route, dict) else None
    if receiver not in names:
        listed = ", ".join(map(str, names))
        raise refuse(f"route.receiver: {receiver!r} is not one of the receivers ({listed})")
    return AlertmanagerConfig(source, canonical(document))


def groups_in_answer(answer: str, namespace: str = RULES_NAMESPACE) -> tuple[str, ...]:
    """The canonical groups of `namespace` in the ruler's answer to a namespace listing
    (`namespace: [groups]`, YAML), in the ruler's order."""
    document = yaml.safe_load(answer) or {}
    groups: Sequence[Mapping[str, Any]] = (
        document.get(namespace, []) if isinstance(document, dict) else []
    )
    return tuple(canonical(dict(group)) for group in groups)


def alertmanager_upload(text: str) -> str:
    """The Alertmanager configuration API's body (Cortex's and Mimir's): the
    configuration as text, no templates."""
    return yaml.safe_dump(
        {"alertmanager_config": text, "template_files": {}}, sort_keys=True, allow_unicode=True
    )


def alertmanager_in_answer(answer: str) -> str:
    """The canonical configuration in the Alertmanager configuration API's answer."""
    document = yaml.safe_load(answer) or {}
    return canonical(yaml.safe_load(document.get("alertmanager_config") or "") or {})
