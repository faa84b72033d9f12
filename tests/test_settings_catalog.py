"""Every setting is described once (opstrace/config/catalog.py); Pulumi.yaml's declarations
and docs/settings.md's table are generated from it and must not drift."""

from __future__ import annotations

from typing import Any

import yaml

from devtools import settings_doc
from opstrace.config import catalog, schema


def test_pulumi_yaml_is_what_the_catalog_gives() -> None:
    current = settings_doc.PULUMI_YAML.read_text(encoding="utf-8")
    assert current == settings_doc.pulumi_yaml(current)


def test_the_settings_table_is_what_the_catalog_gives() -> None:
    current = settings_doc.SETTINGS_DOC.read_text(encoding="utf-8")
    assert current == settings_doc.settings_doc(current)


def declarations() -> dict[str, Any]:
    document = yaml.safe_load(settings_doc.PULUMI_YAML.read_text(encoding="utf-8"))
    return dict(document["config"])


def test_pulumi_yaml_declares_every_setting_but_the_lists_and_objects() -> None:
    assert set(declarations()) == set(schema.SETTINGS) - set(schema.STRUCTURED)


def test_pulumi_yaml_defaults_are_the_parsers_defaults() -> None:
    declared = {k: v["default"] for k, v in declarations().items() if "default" in v}
    assert declared == {k: v for k, v in schema.DEFAULTS.items() if k not in schema.STRUCTURED}


def test_pulumi_yaml_declares_the_required_settings_without_default() -> None:
    # So that the CLI itself refuses a stack that lacks one.
    required = {k for k, v in declarations().items() if "default" not in v}
    assert required == set(schema.REQUIRED) - set(schema.STRUCTURED)


def test_pulumi_yaml_declares_only_types_the_cli_accepts() -> None:
    for key, declared in declarations().items():
        assert declared["type"] in catalog.DECLARED_TYPES, key
        assert declared["description"], key


def test_each_setting_is_in_the_catalog_once_with_a_default_of_its_type() -> None:
    keys = [setting.key for setting in catalog.CATALOG]
    assert len(keys) == len(set(keys))
    types = {"string": str, "integer": int, "boolean": bool, "list": list, "object": dict}
    for setting in catalog.CATALOG:
        assert setting.required or type(setting.default) is types[setting.type], setting.key
