"""Dashboards as code: a tenant's dashboard files, checked; the system tenant's
are built in `system_dashboards`.

Pure, no Pulumi. Each tenant's dashboards become one ConfigMap
(`grafana.DASHBOARDS_CONFIG_MAP`, `config_map_data`) that its Grafana provisions, so a
changed file shows in `pulumi preview` as a change of that ConfigMap, as rule files do.

A tenant's file is the dashboard's JSON model as Grafana shows it (Dashboard settings,
JSON Model) or exports it (Share, Export, Save to file). `load_dashboard` refuses, in one
line naming the setting, what Grafana would refuse or provision wrongly, then reads the
rest through the SDK's dashboard model (`grafana_foundation_sdk.models.dashboard`): its
decoder (`Dashboard.from_json`) must take the file, and every field the model types must
be of the kind its type says (`_shape_problem`: an object, an array, a number, ...), as
the decoder itself does not check. Data sources named by a string (Grafana's older
schema, `"$datasource"`), which Grafana migrates, are read as references for the check.
The SDK drops fields it does not know, so the file's own JSON is what is provisioned,
not the SDK's re-encoding of it.

What happens to what an export carries:
- `id`, the dashboard's number in the Grafana it came from, is dropped: Grafana gives a
  provisioned dashboard its own.
- `__inputs` ("Export for sharing externally"): each data source input of a type a
  tenant's Grafana has (`DATASOURCE_UIDS`) is resolved to that data source's uid
  (`${DS_PROMETHEUS}` -> `prometheus`) and `__inputs` removed; any other input (a
  constant, another plugin's data source) is refused: export without "Export for sharing
  externally" instead.
- `__requires` and `__elements` are kept; Grafana ignores them when it provisions.
"""

from __future__ import annotations

import copy
import enum
import functools
import hashlib
import json
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.models import dashboard as dashboard_model

from opstrace import config_maps
from opstrace.config.local_files import read_text
from opstrace.config.read import ConfigError
from opstrace.grafana import DASHBOARDS_CONFIG_MAP, DATASOURCE_UIDS

UID_MAX: Final = 40
"""Grafana refuses a dashboard uid longer than this (`util.MaxUIDLength`)."""
UID_RULE: Final = (
    f"use 1 to {UID_MAX} letters, digits, '-' and '_' (Grafana's rule ^[a-zA-Z0-9_-]+$)"
)
_UID_RE: Final = re.compile(rf"^[a-zA-Z0-9_-]{{1,{UID_MAX}}}$")

DASHBOARDS_HEADROOM_BYTES: Final = 64 * 1024
"""Room left in the ConfigMap for what grows without a dashboard file changing (keys,
a re-indented export)."""
DASHBOARDS_MAX_BYTES: Final = config_maps.CONFIGMAP_MAX_BYTES - DASHBOARDS_HEADROOM_BYTES
"""What one tenant's dashboards may take together (file names and JSON texts): the one
ConfigMap that holds them, less `DASHBOARDS_HEADROOM_BYTES`."""

FOLDER_SUFFIX: Final = ".json"
"""In a folder named as a tenant's dashboards, the files that are dashboards."""

SDK_VERSION: Final = f"grafana-foundation-sdk {metadata.version('grafana-foundation-sdk')}"
"""What builds and checks the dashboards (requirements.txt pins it): its version's epoch
is the SDK's build, the rest the Grafana version whose schema it has."""


@dataclass(frozen=True)
class Dashboard:
    """One dashboard as its tenant's Grafana provisions it."""

    file_name: str
    """Its key in `DASHBOARDS_CONFIG_MAP`: `<uid>.json`, unique because the uid is."""
    uid: str
    title: str
    json: str
    """The dashboard's JSON model: keys sorted, two-space indented, a final newline."""

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> Dashboard:
        """A checked dashboard document, its JSON with sorted keys (the same every run)."""
        uid, title = document["uid"], document["title"]
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        return cls(f"{uid}{FOLDER_SUFFIX}", uid, title, text)


def load_dashboard(path: Path, field: str) -> Dashboard:
    """The dashboard in the JSON file at `path`, which the setting `field` names, or a
    `ConfigError` naming `field` and the rule broken.

    A file without a uid gets one derived from its file name, so the same file keeps the
    same uid on every run: the name without `.json`, each character Grafana refuses in a
    uid replaced by '-', and, if longer than `UID_MAX`, cut and ended with a hash of the
    whole name. `id` is dropped and `__inputs` resolved (the module's docstring)."""
    where = f"{field}: {path}"
    text = read_text(field, path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{where}: not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            f"{where}: expected a dashboard (a JSON object), got a JSON {_kind(document)}"
        )
    title = document.get("title")
    if not isinstance(title, str) or not title.strip():
        hint = (
            ": this is Grafana's HTTP API answer; save its `dashboard` object instead"
            if isinstance(document.get("dashboard"), dict)
            else ""
        )
        raise ConfigError(f"{where}: title: expected a non-empty string, got {title!r}{hint}")
    uid = document.get("uid")
    if uid is None:
        uid = derived_uid(path)
    if not isinstance(uid, str) or not _UID_RE.fullmatch(uid):
        raise ConfigError(f"{where}: uid: {uid!r} is not a uid Grafana accepts: {UID_RULE}")
    panels = document.get("panels", [])
    if not isinstance(panels, list):
        raise ConfigError(f"{where}: panels: expected a list, got a JSON {_kind(panels)}")
    for index, panel in enumerate(panels):
        if not isinstance(panel, dict) or not isinstance(panel.get("type"), str):
            raise ConfigError(
                f"{where}: panels[{index}]: expected a panel (an object with a string type), "
                f"got {_short(panel)}"
            )
    document = _inputs_resolved(where, document)
    document.pop("id", None)
    document["uid"] = uid
    _check_model(where, document)
    return Dashboard.of(document)


def derived_uid(path: Path) -> str:
    """The uid of a dashboard file without one: stable, from the file's name alone."""
    stem = path.name.removesuffix(FOLDER_SUFFIX)
    uid = re.sub("[^a-zA-Z0-9_-]", "-", stem) or "dashboard"
    if len(uid) <= UID_MAX:
        return uid
    digest = hashlib.sha256(stem.encode("utf-8")).hexdigest()[:8]
    return f"{uid[: UID_MAX - len(digest) - 1]}-{digest}"


def tenant_dashboards(paths: Iterable[Path], field: str) -> tuple[Dashboard, ...]:
    """A tenant's dashboards from `paths` (files, or folders whose `*.json` files are
    taken in name order), or a `ConfigError` naming `field[i]`: each dashboard checked by
    `load_dashboard`, no two with one uid or one title (Grafana refuses both in one
    folder), together at most `DASHBOARDS_MAX_BYTES`."""
    loaded: list[tuple[str, Path, Dashboard]] = []
    for index, path in enumerate(paths):
        entry = f"{field}[{index}]"
        files = sorted(path.glob(f"*{FOLDER_SUFFIX}")) if path.is_dir() else [path]
        if not files:
            raise ConfigError(f"{entry}: {path}: a folder without dashboards (*{FOLDER_SUFFIX})")
        loaded += [(entry, file, load_dashboard(file, entry)) for file in files]
    by_uid: dict[str, Path] = {}
    by_title: dict[str, Path] = {}
    for entry, file, dashboard in loaded:
        if dashboard.uid in by_uid:
            raise ConfigError(
                f"{entry}: {file}: uid {dashboard.uid!r} is also {by_uid[dashboard.uid]}'s: "
                "give each dashboard its own uid (a file without one takes its file name)"
            )
        if dashboard.title in by_title:
            raise ConfigError(
                f"{entry}: {file}: title {dashboard.title!r} is also "
                f"{by_title[dashboard.title]}'s: give each dashboard its own title"
            )
        by_uid[dashboard.uid] = file
        by_title[dashboard.title] = file
    dashboards = tuple(dashboard for _, _, dashboard in loaded)
    size = config_maps.data_size(config_map_data(dashboards))
    if size > DASHBOARDS_MAX_BYTES:
        raise ConfigError(
            f"{field}: the dashboards take {size} bytes together, more than the "
            f"{DASHBOARDS_CONFIG_MAP} ConfigMap holds ({DASHBOARDS_MAX_BYTES}: Kubernetes' "
            f"{config_maps.CONFIGMAP_MAX_BYTES} less {DASHBOARDS_HEADROOM_BYTES} of "
            "headroom): provision fewer or smaller dashboards"
        )
    return dashboards


def config_map_data(dashboards: Iterable[Dashboard]) -> dict[str, str]:
    """`DASHBOARDS_CONFIG_MAP`'s data: file name -> dashboard JSON, in the given order."""
    data: dict[str, str] = {}
    for dashboard in dashboards:
        if dashboard.file_name in data:
            raise ValueError(f"two dashboards with the file name {dashboard.file_name!r}")
        data[dashboard.file_name] = dashboard.json
    return data


def _kind(value: object) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


def _short(value: object, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _inputs_resolved(where: str, document: dict[str, Any]) -> dict[str, Any]:
    """`document` without `__inputs`, each `${NAME}` of a data source input replaced by
    the uid of the tenant's data source of that type."""
    if "__inputs" not in document:
        return document
    inputs = document["__inputs"]
    if not isinstance(inputs, list):
        raise ConfigError(f"{where}: __inputs: expected a list, got a JSON {_kind(inputs)}")
    placeholders: dict[str, str] = {}
    for index, item in enumerate(inputs):
        fields = item if isinstance(item, dict) else {}
        name, plugin = fields.get("name"), fields.get("pluginId")
        if (
            fields.get("type") != "datasource"
            or not isinstance(name, str)
            or plugin not in DATASOURCE_UIDS
        ):
            raise ConfigError(
                f"{where}: __inputs[{index}]: {_short(item)} cannot be resolved: only data "
                f"source inputs of type {', '.join(DATASOURCE_UIDS)} can; export the "
                'dashboard without "Export for sharing externally"'
            )
        placeholders[f"${{{name}}}"] = DATASOURCE_UIDS[plugin]
    resolved = _replaced(document, placeholders)
    assert isinstance(resolved, dict)
    del resolved["__inputs"]
    return resolved


def _replaced(value: Any, placeholders: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for placeholder, uid in placeholders.items():
            value = value.replace(placeholder, uid)
        return value
    if isinstance(value, list):
        return [_replaced(item, placeholders) for item in value]
    if isinstance(value, dict):
        return {key: _replaced(item, placeholders) for key, item in value.items()}
    return value


@functools.cache
def _sdk_plugins_registered() -> bool:
    """The SDK decodes panel options and queries by plugin only once they are registered."""
    plugins.register_default_plugins()
    return True


def _check_model(where: str, document: Mapping[str, Any]) -> None:
    """Refuse a dashboard the SDK's dashboard model cannot decode, or whose fields are
    not of the kinds the model's types say (`_shape_problem`)."""
    _sdk_plugins_registered()
    current = _datasource_names_as_refs(copy.deepcopy(dict(document)))
    try:
        dashboard_model.Dashboard.from_json(current)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
        raise ConfigError(
            f"{where}: not a dashboard Grafana's schema reads ({SDK_VERSION}): "
            f"{type(error).__name__}: {error}"
        ) from None
    if problem := _shape_problem(current, dashboard_model.Dashboard, ""):
        raise ConfigError(f"{where}: {problem} (Grafana's schema, {SDK_VERSION})")


def _datasource_names_as_refs(value: Any) -> Any:
    """`value` with each data source named by a string (Grafana's schema before version
    33, and `"$datasource"` in many published dashboards; Grafana migrates both when it
    loads the dashboard) as the reference object the SDK's model reads."""
    if isinstance(value, list):
        return [_datasource_names_as_refs(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: {"uid": item}
        if key == "datasource" and isinstance(item, str)
        else _datasource_names_as_refs(item)
        for key, item in value.items()
    }


def _shape_problem(value: Any, hint: Any, path: str) -> str | None:
    """Why the JSON `value` is not of the kind the SDK's type `hint` says, or None.

    The SDK's decoder takes any value where its types want one kind (a string where an
    object belongs decodes to an empty object), so the file's JSON is held to the types of
    the SDK's dashboard model (`grafana_foundation_sdk.models.dashboard`): kinds, not exact
    types, and only those that stay put across Grafana versions: an object, an array, a
    number, a boolean, one of a fixed set of numbers (an `IntEnum`). A string field takes
    any scalar (exports carry `"gnetId": 1860` and `"refresh": false`), a string enum any
    string (Grafana adds variable and link types), and plugin options, queries and custom
    field settings (other modules' types) are not looked into.
    """
    if value is None or hint is Any or hint is object:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        kinds = _discriminated(value, [arg for arg in args if arg is not type(None)])
        problems = [_shape_problem(value, arg, path) for arg in kinds]
        return None if None in problems else problems[0]
    if origin is typing.Literal:
        return None if value in args else f"{path}: expected one of {list(args)}, got {value!r}"
    if origin is list:
        if not isinstance(value, list):
            return f"{path}: expected an array, got {_short(value)}"
        found = (_shape_problem(item, args[0], f"{path}[{i}]") for i, item in enumerate(value))
        return next((problem for problem in found if problem), None)
    if origin is dict:
        return (
            None if isinstance(value, dict) else f"{path}: expected an object, got {_short(value)}"
        )
    if not isinstance(hint, type):
        return None
    if issubclass(hint, enum.IntEnum):
        allowed = [member.value for member in hint]
        return None if value in allowed else f"{path}: expected one of {allowed}, got {value!r}"
    if hint is str or issubclass(hint, enum.Enum):
        scalar = not isinstance(value, list | dict)
        return None if scalar else f"{path}: expected a string, got {_short(value)}"
    if hint is bool:
        truth = isinstance(value, bool)
        return None if truth else f"{path}: expected true or false, got {_short(value)}"
    if hint in (int, float):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return None if number else f"{path}: expected a number, got {_short(value)}"
    if hint.__module__ != dashboard_model.__name__:
        return None
    if not isinstance(value, dict):
        return f"{path}: expected an object, got {_short(value)}"
    for name, field_hint in _hints(hint).items():
        key = _json_key(name)
        if key in value and (problem := _shape_problem(value[key], field_hint, f"{path}.{key}")):
            return problem.removeprefix(".")
    return None


def _discriminated(value: Any, kinds: list[Any]) -> list[Any]:
    """The arms of a union a JSON object's `type` names, as the SDK decodes it (a panel of
    type `row` is a `RowPanel`, any other a `Panel`)."""
    tags = {
        kind: typing.get_args(_hints(kind).get("type_val"))
        for kind in kinds
        if isinstance(kind, type) and kind.__module__ == dashboard_model.__name__
    }
    tagged = {kind: tag for kind, tag in tags.items() if tag}
    if not isinstance(value, dict) or not tagged:
        return kinds
    named = [kind for kind, tag in tagged.items() if value.get("type") in tag]
    return named or [kind for kind in kinds if kind not in tagged] or kinds


_HINTS: Final[dict[type, dict[str, Any]]] = {}
"""The SDK's model classes' resolved field types, as `_hints` found them."""


def _hints(model: type) -> dict[str, Any]:
    if model not in _HINTS:
        _HINTS[model] = typing.get_type_hints(model)
    return _HINTS[model]


def _json_key(attribute: str) -> str:
    """The SDK's attribute as its JSON key: `grid_pos` -> `gridPos`, `type_val` -> `type`."""
    first, *rest = attribute.removesuffix("_val").split("_")
    return first + "".join(word.capitalize() for word in rest)
