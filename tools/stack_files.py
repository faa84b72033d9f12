"""A stack file as the Pulumi CLI reads it, and its config as the CLI hands it over.

The offline plan, the preflight and the tests run the program without the CLI, so they
do here what the CLI does before a program starts; tests/engine/test_cli_copies.py
checks each step against the real CLI:
- the YAML is read as the CLI's parser (gopkg.in/yaml.v3, YAML 1.2) reads it: `yes`,
  `on` and `1:30` are text, `1e3` is a number, `010` is octal, a date is a time;
- a key written without a namespace is the project's;
- Pulumi.yaml's declarations are enforced with the CLI's own messages: a setting without
  a default is required, a declared type is checked against the value's text;
- every declared default is filled in, and every value is handed to the program as
  text: strings as written, numbers as Go prints them, lists and objects as JSON as Go
  writes it (keys sorted, no spaces, `<`, `>` and `&` escaped).
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from opstrace.config.parse import project_key
from opstrace.config.read import ConfigError

PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
PROJECT: Final = "opstrace"

# --- YAML as yaml.v3 resolves plain scalars ---------------------------------------------------

_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS: Final = {"true": True, "True": True, "TRUE": True} | dict.fromkeys(
    ("false", "False", "FALSE"), False
)
_SPECIAL_FLOATS: Final = {
    **dict.fromkeys((".nan", ".NaN", ".NAN"), float("nan")),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), float("inf")),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), float("-inf")),
}
_INT: Final = re.compile(r"[-+]?(0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
"""What Go's strconv.ParseInt(s, 0, 64) reads (a leading 0 is octal), underscores removed."""
_FLOAT: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_TIMESTAMP: Final = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]*)?"
    r"([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)?"
)
_TAG: Final = "tag:yaml.org,2002:"


def _plain_scalar_tag(text: str) -> str:
    """The tag yaml.v3 resolves an untagged plain scalar to (its `resolve`)."""
    if text in _NULLS:
        return f"{_TAG}null"
    if text in _BOOLS:
        return f"{_TAG}bool"
    if text in _SPECIAL_FLOATS or (text.startswith(".") and _FLOAT.fullmatch(text)):
        return f"{_TAG}float"
    if text[:1] in "+-0123456789":
        if _TIMESTAMP.fullmatch(text):
            return f"{_TAG}timestamp"
        plain = text.replace("_", "")
        if _INT.fullmatch(plain):
            return f"{_TAG}int"
        if _FLOAT.fullmatch(plain):
            return f"{_TAG}float"
    return f"{_TAG}str"


class CliLoader(yaml.SafeLoader):
    """PyYAML's safe loader with yaml.v3's scalar resolution instead of YAML 1.1's."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _plain_scalar_tag(value)
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
    if digits[:2].lower() in ("0x", "0o", "0b"):
        return sign * int(digits, 0)
    return sign * int(digits, 8 if digits.startswith("0") and len(digits) > 1 else 10)


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    return _SPECIAL_FLOATS.get(text) or float(text.replace("_", ""))


def _construct_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return _BOOLS[str(loader.construct_scalar(node))]  # type: ignore[arg-type]


CliLoader.add_constructor(f"{_TAG}int", _construct_int)
CliLoader.add_constructor(f"{_TAG}float", _construct_float)
CliLoader.add_constructor(f"{_TAG}bool", _construct_bool)


def load_yaml(text: str) -> Any:
    """A YAML document's values as the Pulumi CLI reads them."""
    return yaml.load(text, Loader=CliLoader)  # noqa: S506 (a safe loader: SafeLoader's)


# --- values as text, as the CLI hands them over --------------------------------------------


def _go_time(moment: datetime.date) -> str:
    """A time as Go's time.Time.String() prints it (a date is its midnight in UTC)."""
    if not isinstance(moment, datetime.datetime):
        moment = datetime.datetime(moment.year, moment.month, moment.day, tzinfo=datetime.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    offset = moment.strftime("%z")
    zone = "UTC" if offset == "+0000" else offset
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return f"{moment:%Y-%m-%d %H:%M:%S}{fraction} {offset} {zone}"


def _go_number(number: float) -> str:
    """A number as Go prints a float64 (the CLI holds every number as one)."""
    value = float(number)
    if value == 0:
        return "0"
    if 1e-6 <= abs(value) < 1e21:
        return format(decimal.Decimal(repr(value)).normalize(), "f")
    mantissa, exponent = repr(value).split("e")
    return f"{mantissa}e{exponent[0]}{int(exponent[1:])}"


_GO_STRING_ESCAPES: Final = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it: keys sorted, no spaces, HTML characters
    escaped, other characters as they are."""
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_go_json(k)}:{_go_json(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_go_json(item) for item in value) + "]"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return "".join(_GO_STRING_ESCAPES.get(c, c) for c in text)
    if isinstance(value, datetime.date):
        return _go_json(_go_time(value))
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return _go_number(value)


def cli_text(value: Any) -> str:
    """One stack file value as the text a program gets for it; an encrypted one
    (`secure: ...`), which only the CLI can decrypt, as `OFFLINE_SECRET`."""
    if isinstance(value, str):
        return value
    if _encrypted(value):
        return OFFLINE_SECRET
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date):
        return _go_time(value)
    if isinstance(value, (int, float)):
        return _go_number(value)
    return _go_json(value)


OFFLINE_SECRET: Final = "secret-not-decrypted-offline"
"""What an encrypted stack setting is offline: set, and never shown."""


def _encrypted(value: Any) -> bool:
    """Whether a stack file value is one the CLI encrypted (`pulumi config set --secret`)."""
    return isinstance(value, dict) and set(value) == {"secure"}


def declarations(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The `config:` declarations of the project's Pulumi.yaml."""
    project = load_yaml((project_dir / "Pulumi.yaml").read_text(encoding="utf-8"))
    return dict(project.get("config") or {})


def cli_config(config: Mapping[str, Any], project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """A stack's config as the CLI hands it to the program: each declared default where
    the stack sets nothing, then every value as text (`cli_text`)."""
    defaults = {
        f"{PROJECT}:{key}": declaration["default"]
        for key, declaration in declarations(project_dir).items()
        if "default" in declaration
    }
    return {key: cli_text(value) for key, value in {**defaults, **config}.items()}


# --- the stack file and Pulumi.yaml's declarations ------------------------------------------


def stack_file(stack: str, project_dir: Path = PROJECT_DIR, stacks_dir: Path | None = None) -> Path:
    """Where the stack file of `stack` is: `Pulumi.<stack>.yaml` in `stacks_dir` (the
    project's `stacks/`, Pulumi.yaml's `stackConfigDir`)."""
    return (stacks_dir or project_dir / "stacks") / f"Pulumi.{stack}.yaml"


def shown_path(path: Path, project_dir: Path = PROJECT_DIR) -> Path:
    """`path` as messages show it: relative to the project when it is inside it."""
    return path.relative_to(project_dir) if path.is_relative_to(project_dir) else path


def stack_config(
    stack: str, project_dir: Path = PROJECT_DIR, stacks_dir: Path | None = None
) -> dict[str, Any]:
    """The `config:` block of `Pulumi.<stack>.yaml` in `stacks_dir` (the project's
    `stacks/`), keys namespaced; ConfigError naming the file (and the line) when it cannot
    be read as the CLI reads it, or with the CLI's message when it breaks a declaration."""
    path = stack_file(stack, project_dir, stacks_dir)
    shown = shown_path(path, project_dir)
    if not path.is_file():
        available = sorted(p.name.split(".")[1] for p in path.parent.glob("Pulumi.*.yaml"))
        raise ConfigError(f"no stack file {shown}; stacks here: {', '.join(available)}")
    try:
        document = load_yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else str(shown)
        raise ConfigError(f"{where}: not valid YAML: {error.problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{shown}: not valid YAML: {error}") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"{shown}: expected a mapping with a `config:` mapping of settings")
    settings = {project_key(str(key)): value for key, value in config.items()}
    if problem := cli_config_problem(stack, settings, project_dir):
        raise ConfigError(problem)
    return settings


def cli_config_problem(stack: str, config: Mapping[str, Any], project_dir: Path) -> str | None:
    """What the Pulumi CLI says of a stack's config before the program starts, or None.

    A declared setting without a default is required, and a declared type is checked
    against the value's text (a list or object: its JSON value). The messages are the
    CLI's own (it prefixes them with "validating stack config: ")."""
    declared = declarations(project_dir)
    missing = sorted(
        key
        for key, d in declared.items()
        if "default" not in d and f"{PROJECT}:{key}" not in config
    )
    if missing:
        quoted = [f"'{key}'" for key in missing]
        listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
        values = "value" if len(missing) == 1 else "values"
        return f"Stack '{stack}' is missing configuration {values} {listed}"
    for key in sorted(declared):
        if (value := config.get(f"{PROJECT}:{key}")) is None:
            continue
        declaration = declared[key]
        structured = isinstance(value, (list, dict)) and not _encrypted(value)
        stored = json.loads(_go_json(value)) if structured else cli_text(value)
        if not _cli_type_matches(declaration, stored):
            items = declaration.get("items", {}).get("type")
            type_name = f"array<{items}>" if items else declaration["type"]
            return f"Stack '{stack}' with configuration key '{key}' must be of type '{type_name}'"
    return None


def _cli_type_matches(declaration: Mapping[str, Any], value: Any) -> bool:
    """Whether a value as the CLI stores it (text; for a list, its JSON items) has the
    declared type."""
    kind = declaration["type"]
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value).is_integer()
        return isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value) is not None
    if kind == "boolean":
        return value in ("true", "false") or isinstance(value, bool)
    if kind == "array":
        items = declaration.get("items")
        return isinstance(value, list) and (
            items is None or all(_cli_type_matches(items, item) for item in value)
        )
    return True
