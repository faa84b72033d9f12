"""Tenants' rule files and Alertmanager configurations as the stack file gives them, and
as the ruler and the Alertmanager take and answer them (`opstrace.policy.rule_files`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from opstrace.config.schema import TenantSpec
from opstrace.config.stack import config_of_stack
from opstrace.policy import rule_files
from tests.conftest import dev_config
from tools.stack_files import cli_config

RULE_FILE = """\
groups:
  - name: latency
    interval: 1m
    rules:
      - alert: SlowRequests
        expr: histogram_quantile(0.99, rate(request_seconds_bucket[5m])) > 1
        for: 10m
        labels: {severity: page}
  - name: node.rules
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
"""
ALERTMANAGER = """\
route: {receiver: team, group_by: [alertname]}
receivers:
  - name: team
    webhook_configs: [{url: "https://hooks.example.com/alerts"}]
"""


def tenant(project: Path, **policy: object) -> TenantSpec:
    config = config_of_stack(cli_config(dev_config(tenants=[{"name": "prod", **policy}])), project)
    (spec,) = config.user_tenants
    return spec


def rules_of(spec: TenantSpec) -> rule_files.RuleGroups:
    assert spec.rules is not None
    return spec.rules


def test_a_rule_file_is_read_relative_to_the_project_directory(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "prod.yaml").write_text(RULE_FILE)
    rules = rules_of(tenant(tmp_path, rules="./rules/prod.yaml"))
    assert rules.source == "rules/prod.yaml"
    assert rules.names == ("latency", "node.rules")
    assert [yaml.safe_load(g) for g in rules.groups] == yaml.safe_load(RULE_FILE)["groups"]


def test_inline_yaml_and_a_mapping_are_one_rule_file(tmp_path: Path) -> None:
    text = rules_of(tenant(tmp_path, rules=RULE_FILE))
    mapping = rules_of(tenant(tmp_path, rules=yaml.safe_load(RULE_FILE)))
    assert text == mapping
    assert text.source == "inline"


def test_each_group_is_held_in_one_text_whatever_its_keys_order() -> None:
    shuffled = {"groups": [{"rules": [{"expr": "up == 0", "alert": "Down"}], "name": "g"}]}
    ordered = {"groups": [{"name": "g", "rules": [{"alert": "Down", "expr": "up == 0"}]}]}
    assert rule_files.rule_groups("rules", shuffled, "inline") == rule_files.rule_groups(
        "rules", ordered, "inline"
    )


def test_an_alertmanager_configuration_is_held_as_canonical_text(tmp_path: Path) -> None:
    config = tenant(tmp_path, alertmanagerConfig=ALERTMANAGER).alertmanager_config
    assert config is not None
    assert yaml.safe_load(config.text) == yaml.safe_load(ALERTMANAGER)
    assert config.text == rule_files.canonical(yaml.safe_load(ALERTMANAGER))


def test_a_tenant_without_its_own_alertmanager_configuration_notifies_nobody(
    tmp_path: Path,
) -> None:
    assert tenant(tmp_path).alertmanager_config is None
    default = yaml.safe_load(rule_files.DEFAULT_ALERTMANAGER_CONFIG)
    assert default == {"route": {"receiver": "blackhole"}, "receivers": [{"name": "blackhole"}]}


def test_the_alertmanager_api_gets_the_configuration_as_text_and_answers_it_back() -> None:
    text = rule_files.canonical(yaml.safe_load(ALERTMANAGER))
    body = rule_files.alertmanager_upload(text)
    assert yaml.safe_load(body) == {"alertmanager_config": text, "template_files": {}}
    assert rule_files.alertmanager_in_answer(body) == text


def test_the_rulers_namespace_listing_gives_back_the_groups_in_their_order() -> None:
    groups = yaml.safe_load(RULE_FILE)["groups"]
    answer = yaml.safe_dump({rule_files.RULES_NAMESPACE: groups, "other": [groups[0]]})
    assert rule_files.groups_in_answer(answer) == tuple(rule_files.canonical(g) for g in groups)
    assert rule_files.groups_in_answer("") == ()
