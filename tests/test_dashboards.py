"""Dashboards as code (`opstrace.dashboards`): a tenant's dashboard files, each refused in
one line naming the setting, and the system tenant's dashboards of the instance, whose
queries read only what the collector ships."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from opstrace import alloy_config, dashboards, grafana, names, scopes, system_dashboards
from opstrace.config.read import ConfigError
from opstrace.gateway.haproxy import ACCESS_LOG_FIELDS
from sidecar import usage

FIELD = "tenants[0].grafana.dashboards[0]"
EXPORTED = {
    "id": 17,
    "uid": "latency",
    "title": "Latency",
    "schemaVersion": 41,
    "time": {"from": "now-6h", "to": "now"},
    "panels": [
        {
            "id": 1,
            "type": "timeseries",
            "title": "p99",
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "targets": [{"refId": "A", "expr": "histogram_quantile(0.99, rate(x_bucket[5m]))"}],
            "gridPos": {"h": 8, "w": 12, "x": 0, "y": 0},
        }
    ],
}


def written(tmp_path: Path, document: Any, name: str = "latency.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def refusal(tmp_path: Path, document: Any, name: str = "latency.json") -> str:
    path = written(tmp_path, document, name)
    with pytest.raises(ConfigError) as error:
        dashboards.load_dashboard(path, FIELD)
    return str(error.value)


def loaded(tmp_path: Path, document: Any, name: str = "latency.json") -> dict[str, Any]:
    dashboard = dashboards.load_dashboard(written(tmp_path, document, name), FIELD)
    parsed = json.loads(dashboard.json)
    assert isinstance(parsed, dict)
    return parsed


# A tenant's files.


def test_a_dashboard_file_is_provisioned_under_its_uid_with_its_own_json(tmp_path: Path) -> None:
    dashboard = dashboards.load_dashboard(written(tmp_path, EXPORTED), FIELD)
    assert (dashboard.file_name, dashboard.uid, dashboard.title) == (
        "latency.json",
        "latency",
        "Latency",
    )
    assert json.loads(dashboard.json) == {k: v for k, v in EXPORTED.items() if k != "id"}


def test_the_exported_id_is_dropped(tmp_path: Path) -> None:
    assert "id" not in loaded(tmp_path, EXPORTED)


def test_fields_the_sdk_does_not_know_are_kept(tmp_path: Path) -> None:
    document = {**EXPORTED, "x-team": {"owner": "sre"}}
    assert loaded(tmp_path, document)["x-team"] == {"owner": "sre"}


def test_a_dashboard_without_a_uid_takes_its_file_name(tmp_path: Path) -> None:
    document = {k: v for k, v in EXPORTED.items() if k != "uid"}
    assert loaded(tmp_path, document, "api latency.json")["uid"] == "api-latency"


def test_a_derived_uid_too_long_for_grafana_is_cut_and_ends_with_a_hash() -> None:
    uid = dashboards.derived_uid(Path("x" * 50 + ".json"))
    assert len(uid) == dashboards.UID_MAX
    assert uid.startswith("x" * 31 + "-")
    assert uid == dashboards.derived_uid(Path("elsewhere") / ("x" * 50 + ".json"))


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, "{title: x}") == (
        f"{FIELD}: {tmp_path / 'latency.json'}: not valid JSON: Expecting property name "
        "enclosed in double quotes (line 1, column 2)"
    )


def test_a_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ConfigError) as error:
        dashboards.load_dashboard(missing, FIELD)
    assert str(error.value) == f"{FIELD}: cannot read {missing}: No such file or directory"


def test_json_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, [EXPORTED]) == (
        f"{FIELD}: {tmp_path / 'latency.json'}: expected a dashboard (a JSON object), "
        "got a JSON array"
    )


@pytest.mark.parametrize("title", [None, "", "  ", 3])
def test_a_dashboard_without_a_non_empty_string_title_is_refused(
    tmp_path: Path, title: object
) -> None:
    document = {**EXPORTED, "title": title}
    assert refusal(tmp_path, document) == (
        f"{FIELD}: {tmp_path / 'latency.json'}: title: expected a non-empty string, got {title!r}"
    )


def test_grafanas_http_api_answer_is_refused_with_where_the_dashboard_is(tmp_path: Path) -> None:
    message = refusal(tmp_path, {"dashboard": EXPORTED, "meta": {}})
    assert message.endswith(
        "title: expected a non-empty string, got None: this is Grafana's HTTP API answer; "
        "save its `dashboard` object instead"
    )


@pytest.mark.parametrize("uid", ["", "a" * 41, "team/latency", "läuft", 7])
def test_a_uid_grafana_refuses_is_refused(tmp_path: Path, uid: object) -> None:
    assert refusal(tmp_path, {**EXPORTED, "uid": uid}) == (
        f"{FIELD}: {tmp_path / 'latency.json'}: uid: {uid!r} is not a uid Grafana accepts: "
        "use 1 to 40 letters, digits, '-' and '_' (Grafana's rule ^[a-zA-Z0-9_-]+$)"
    )


def test_a_uid_of_forty_letters_digits_dashes_and_underscores_is_accepted(tmp_path: Path) -> None:
    uid = "A-z_9" * 8
    assert loaded(tmp_path, {**EXPORTED, "uid": uid})["uid"] == uid


def test_panels_that_are_not_a_list_are_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, {**EXPORTED, "panels": {"a": 1}}) == (
        f"{FIELD}: {tmp_path / 'latency.json'}: panels: expected a list, got a JSON object"
    )


def test_a_panel_without_a_type_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, {**EXPORTED, "panels": [{"title": "p99"}]}) == (
        f"{FIELD}: {tmp_path / 'latency.json'}: panels[0]: expected a panel (an object with "
        'a string type), got {"title": "p99"}'
    )


def test_a_dashboard_the_sdk_model_cannot_decode_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, {**EXPORTED, "time": 5}) == (
        f"{FIELD}: {tmp_path / 'latency.json'}: not a dashboard Grafana's schema reads "
        f"({dashboards.SDK_VERSION}): TypeError: argument of type 'int' is not iterable"
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"time": "now-6h"}, 'time: expected an object, got "now-6h"'),
        ({"tags": "team"}, 'tags: expected an array, got "team"'),
        ({"editable": "yes"}, 'editable: expected true or false, got "yes"'),
        ({"graphTooltip": 7}, "graphTooltip: expected one of [0, 1, 2], got 7"),
        (
            {"panels": [{"type": "stat", "gridPos": {"h": "8", "w": 6, "x": 0, "y": 0}}]},
            'panels[0].gridPos.h: expected a number, got "8"',
        ),
        (
            {"panels": [{"type": "row", "id": 1, "panels": [{"type": "stat", "gridPos": "top"}]}]},
            'panels[0].panels[0].gridPos: expected an object, got "top"',
        ),
    ],
)
def test_a_field_of_the_wrong_kind_for_the_sdks_model_is_refused(
    tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    assert refusal(tmp_path, {**EXPORTED, **change}) == (
        f"{FIELD}: {tmp_path / 'latency.json'}: {problem} (Grafana's schema, "
        f"{dashboards.SDK_VERSION})"
    )


def test_what_grafana_migrates_or_adds_in_newer_versions_is_accepted(tmp_path: Path) -> None:
    document = {
        **EXPORTED,
        "gnetId": 1860,
        "refresh": False,
        "templating": {"list": [{"type": "a-newer-type", "name": "v", "datasource": "$ds"}]},
        "panels": [
            {
                "type": "timeseries",
                "datasource": "$ds",
                "targets": [{"refId": "A", "expr": "up"}],
            }
        ],
    }
    assert loaded(tmp_path, document)["panels"] == document["panels"]


SHARED = {
    **EXPORTED,
    "__inputs": [
        {"name": "DS_PROM", "type": "datasource", "pluginId": "prometheus"},
        {"name": "DS_LOGS", "type": "datasource", "pluginId": "loki"},
    ],
    "__requires": [{"type": "grafana", "id": "grafana", "version": "11.6.0"}],
    "panels": [
        {
            "type": "timeseries",
            "datasource": {"type": "prometheus", "uid": "${DS_PROM}"},
            "targets": [{"refId": "A", "datasource": {"uid": "${DS_LOGS}"}, "expr": "x"}],
        }
    ],
}


def test_shared_data_source_inputs_become_the_tenants_data_source_uids(tmp_path: Path) -> None:
    document = loaded(tmp_path, SHARED)
    (panel,) = document["panels"]
    assert panel["datasource"]["uid"] == "prometheus"
    assert panel["targets"][0]["datasource"]["uid"] == "loki"
    assert "__inputs" not in document
    assert document["__requires"] == SHARED["__requires"]


def test_an_input_that_is_no_known_data_source_is_refused(tmp_path: Path) -> None:
    constant = {"name": "VAR_ENV", "type": "constant", "value": "prod"}
    assert refusal(tmp_path, {**EXPORTED, "__inputs": [constant]}) == (
        f"{FIELD}: {tmp_path / 'latency.json'}: __inputs[0]: "
        '{"name": "VAR_ENV", "type": "constant", "value": "prod"} cannot be resolved: '
        "only data source inputs of type prometheus, loki, alertmanager can; export the "
        'dashboard without "Export for sharing externally"'
    )


def test_the_data_source_uids_are_those_of_the_tenants_grafana() -> None:
    provisioned = grafana.datasources("prod", "acme", "example.org")
    assert {str(s["type"]): str(s["uid"]) for s in provisioned} == grafana.DATASOURCE_UIDS


# A tenant's list.


def test_a_folder_gives_its_json_files_in_name_order(tmp_path: Path) -> None:
    for name in ("b", "a"):
        written(tmp_path, {"title": name.upper()}, f"{name}.json")
    written(tmp_path, "not a dashboard", "notes.txt")
    found = dashboards.tenant_dashboards([tmp_path], "tenants[0].grafana.dashboards")
    assert [d.uid for d in found] == ["a", "b"]


def test_a_folder_without_json_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        dashboards.tenant_dashboards([tmp_path], "dashboards")
    assert str(error.value) == f"dashboards[0]: {tmp_path}: a folder without dashboards (*.json)"


def test_two_dashboards_with_one_uid_are_refused(tmp_path: Path) -> None:
    first = written(tmp_path, EXPORTED, "one.json")
    second = written(tmp_path, {**EXPORTED, "title": "Other"}, "two.json")
    with pytest.raises(ConfigError) as error:
        dashboards.tenant_dashboards([first, second], "dashboards")
    assert str(error.value) == (
        f"dashboards[1]: {second}: uid 'latency' is also {first}'s: give each dashboard its "
        "own uid (a file without one takes its file name)"
    )


def test_two_dashboards_with_one_title_are_refused(tmp_path: Path) -> None:
    first = written(tmp_path, EXPORTED, "one.json")
    second = written(tmp_path, {**EXPORTED, "uid": "other"}, "two.json")
    with pytest.raises(ConfigError) as error:
        dashboards.tenant_dashboards([first, second], "dashboards")
    assert str(error.value) == (
        f"dashboards[1]: {second}: title 'Latency' is also {first}'s: give each dashboard "
        "its own title"
    )


def test_dashboards_larger_than_one_config_map_are_refused(tmp_path: Path) -> None:
    big = "x" * (dashboards.DASHBOARDS_MAX_BYTES // 2)
    paths = [written(tmp_path, {"title": n, "description": big}, f"{n}.json") for n in "ab"]
    with pytest.raises(ConfigError) as error:
        dashboards.tenant_dashboards(paths, "dashboards")
    assert re.fullmatch(
        r"dashboards: the dashboards take \d+ bytes together, more than the "
        r"grafana-dashboards ConfigMap holds \(983040: Kubernetes' 1048576 less 65536 of "
        r"headroom\): provision fewer or smaller dashboards",
        str(error.value),
    ), error.value


def test_the_sdk_named_in_refusals_is_the_one_installed() -> None:
    assert dashboards.SDK_VERSION.startswith("grafana-foundation-sdk ")
    requirements = (Path(__file__).parent.parent / "requirements.txt").read_text()
    pin = dashboards.SDK_VERSION.replace(" ", "==")
    assert pin in requirements.split()


def test_the_config_map_maps_each_file_name_to_its_json(tmp_path: Path) -> None:
    found = dashboards.tenant_dashboards([written(tmp_path, EXPORTED)], "dashboards")
    assert dashboards.config_map_data(found) == {"latency.json": found[0].json}


# The system tenant's dashboards.


def system_documents() -> list[dict[str, Any]]:
    return [json.loads(d.json) for d in system_dashboards.system_dashboards()]


def queries(datasource: str) -> list[str]:
    return [
        target["expr"]
        for document in system_documents()
        for panel in document["panels"]
        if panel.get("datasource", {}).get("type") == datasource
        for target in panel["targets"]
    ]


PROMQL_WORDS = {"sum", "by", "rate", "increase"}
"""The functions and keywords the system dashboards' PromQL uses."""


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: its words outside label matchers,
    groupings and ranges, less the functions and keywords."""
    bare = re.sub(r"\{[^}]*\}|\([a-z_, ]*\)|\[[^\]]*\]", " ", expr)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    unknown = {w for w in words - PROMQL_WORDS if not w.startswith(("opstrace_", "container_"))}
    assert not unknown, f"add these functions or keywords to PROMQL_WORDS: {unknown}"
    return words - PROMQL_WORDS


def test_the_system_dashboards_are_the_same_bytes_on_every_call() -> None:
    assert system_dashboards.system_dashboards() == system_dashboards.system_dashboards()
    assert dashboards.config_map_data(system_dashboards.system_dashboards()) == (
        dashboards.config_map_data(system_dashboards.system_dashboards())
    )


def test_the_system_dashboards_json_has_sorted_keys() -> None:
    for dashboard in system_dashboards.system_dashboards():
        document = json.loads(dashboard.json)
        assert dashboard.json == json.dumps(document, indent=2, sort_keys=True) + "\n"


def test_the_system_dashboards_are_gateway_usage_and_mimir_and_loki() -> None:
    assert [(d.uid, d.title) for d in system_dashboards.system_dashboards()] == [
        (system_dashboards.GATEWAY_USAGE_UID, "Gateway usage"),
        (system_dashboards.BACKENDS_UID, "Mimir and Loki"),
    ]


def test_a_system_dashboard_is_read_back_as_a_tenants_file_would_be(tmp_path: Path) -> None:
    for dashboard in system_dashboards.system_dashboards():
        path = written(tmp_path, dashboard.json, dashboard.file_name)
        assert dashboards.load_dashboard(path, FIELD) == dashboard


def test_gateway_usage_reads_every_usage_counter() -> None:
    (gateway, _) = system_documents()
    read = {
        name
        for panel in gateway["panels"]
        for target in panel.get("targets", [])
        for name in metric_names(target["expr"])
    }
    assert read == {name for name, _ in usage.METRICS}


def test_every_promql_query_reads_only_metrics_the_collector_ships() -> None:
    shipped_config = alloy_config.alloy_config("acme", "example.org")
    usage_counters = {name for name, _ in usage.METRICS}
    assert f'replacement  = "{system_dashboards.CADVISOR_JOB}"' in shipped_config
    assert 'replacement  = "/metrics/cadvisor"' in shipped_config
    for expr in queries("prometheus"):
        for name in metric_names(expr):
            from_cadvisor = name.startswith("container_") and (
                f'job="{system_dashboards.CADVISOR_JOB}"' in expr
            )
            assert name in usage_counters or from_cadvisor, expr


def test_every_promql_query_groups_by_labels_the_series_have() -> None:
    usage_labels = {*usage.LABELS, "code"}
    pod_labels = {"namespace", "container"}
    for expr in queries("prometheus"):
        for grouping in re.findall(r"by \(([a-z_, ]*)\)", expr):
            labels = {label.strip() for label in grouping.split(",")}
            assert labels <= (usage_labels if "opstrace_" in expr else pod_labels), expr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs Prometheus' promtool")
def test_every_promql_query_parses_as_prometheus_reads_it(tmp_path: Path) -> None:
    grafana_ranges = {"$__rate_interval": "5m", "$__range": "1h"}
    rules = []
    for index, expr in enumerate(queries("prometheus")):
        for variable, value in grafana_ranges.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"query:{index}", "expr": expr})
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_logql_query_selects_streams_by_labels_the_collector_sets() -> None:
    shipped_config = alloy_config.alloy_config("acme", "example.org")
    pods = shipped_config.split('discovery.relabel "pods"')[1].split("loki.source")[0]
    stream_labels = set(re.findall(r'target_label  = "([a-z_]+)"', pods))
    for expr in queries("loki"):
        selector = re.search(r"\{([^}]*)\}", expr)
        assert selector, expr
        used = set(re.findall(r"([a-z_]+)\s*=~?", selector.group(1)))
        assert used, expr
        assert used <= stream_labels, expr


def test_the_ingestion_panels_read_fields_of_the_gateways_access_log() -> None:
    logged = {name for name, _ in ACCESS_LOG_FIELDS}
    assert set(system_dashboards.PUSH_SCOPES) <= set(scopes.SCOPES)
    namespace = names.tenant_namespace(names.SYSTEM_TENANT)
    access_log = [e for e in queries("loki") if "| logfmt" in e]
    assert access_log
    for expr in access_log:
        assert f'namespace="{namespace}"' in expr
        extracted = set(re.findall(r"\| ([a-z_]+) (?:=~|>=)", expr))
        extracted |= set(re.findall(r"unwrap ([a-z_]+)", expr))
        extracted |= set(re.findall(r"by \(([a-z_, ]*)\)", expr)[0].replace(" ", "").split(","))
        assert extracted <= logged, expr


def test_every_panel_reads_the_tenants_data_sources_by_uid() -> None:
    for document in system_documents():
        for panel in document["panels"]:
            if panel["type"] == "row":
                continue
            source = panel["datasource"]
            assert source["uid"] == grafana.DATASOURCE_UIDS[source["type"]]
            assert all(target["datasource"] == source for target in panel["targets"])
