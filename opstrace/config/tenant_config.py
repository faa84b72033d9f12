"""A tenant's entry in the stack file (`opstrace:tenants[i]`), parsed into a `TenantSpec`.

Pure, no Pulumi: the name and token rules, the key options, the tenant's limits,
retention, rule files and Alertmanager configuration, each refused in one line naming
the entry and the rule. The system tenant comes first, always, never configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from opstrace import grafana, keys, names, scopes
from opstrace.config import grafana_config, networks, platform
from opstrace.config.local_files import path_setting, read_text, resolve
from opstrace.config.read import ConfigError
from opstrace.config.schema import TENANT_OPTIONS, TenantSpec, TokenSpec
from opstrace.grafana import NO_GRAFANA, GrafanaSpec
from opstrace.policy import limits, rule_files

_Document = TypeVar("_Document")

SET_HINT: Final = (
    "in the stack file (`opstrace:tenants: [prod]`) or with "
    "`pulumi config set --path 'opstrace:tenants[0]' prod`"
)
"""How to add a first tenant (`config._SET_HINT` says why the stack file comes first)."""


FILE_KEY: Final = "tenantsFile"


def listed_tenants(values: Mapping[str, Any], base_dir: Path) -> Any:
    """The `tenants` list as the stack gives it: in the stack file, or in the YAML file
    `tenantsFile` names (relative to `base_dir`), which holds the same list for an
    instance too large for the stack's configuration (catalog: `tenantsFile`). Not both."""
    path = path_setting(values[FILE_KEY], FILE_KEY)
    if not path:
        return values["tenants"]
    if values["tenants"]:
        raise ConfigError(
            f"{FILE_KEY}: is set, and so is tenants: list the tenants in one place (the "
            "file, once the stack's configuration would pass 128 KiB)"
        )
    listed = _parsed_yaml(FILE_KEY, read_text(FILE_KEY, resolve(path, base_dir)), path)
    if not isinstance(listed, list) or not listed:
        raise ConfigError(
            f"{FILE_KEY}: {path} holds {type(listed).__name__}: expected a YAML list with at "
            "least one user tenant, as `tenants` takes (e.g. `- prod`)"
        )
    return listed


def parse_tenants(
    raw: Any, system_rotation: str, base_dir: Path, system_grafana: GrafanaSpec = NO_GRAFANA
) -> tuple[TenantSpec, ...]:
    """The system tenant, then the user tenants in the stack file's order; `base_dir`
    resolves the files they name. A tenant gets a Grafana unless it says `grafana: false`
    or the system tenant has none (the instance's `grafana: false`)."""
    if isinstance(raw, str):
        first = raw.split(",")[0].strip() or "prod"
        raise ConfigError(
            f"tenants: got the single value {raw!r}, but tenants is a list: set each entry "
            f"with `pulumi config set --path 'opstrace:tenants[0]' {first}` (then [1], [2], "
            "...) or write a YAML list in the stack file"
        )
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            f"tenants: expected a list with at least one user tenant, got {raw!r}: add one "
            f"{SET_HINT}"
        )
    seen: set[str] = set()
    system_token = TokenSpec(names.DEFAULT_TOKEN_NAME, system_rotation, "", "")
    system = TenantSpec(
        names.SYSTEM_TENANT,
        _with_grafana_token((system_token,), system_grafana, system_rotation),
        grafana=system_grafana,
    )
    specs = [system]
    for index, entry in enumerate(raw):
        field = f"tenants[{index}]"
        spec = _tenant(field, entry, base_dir, system_grafana.enabled)
        if spec.name == names.SYSTEM_TENANT:
            raise ConfigError(
                f"{field}: 'system' is the instance's own tenant; it always exists and "
                "cannot be configured: choose another name"
            )
        if spec.name in seen:
            raise ConfigError(f"{field}: tenant {spec.name!r} is listed twice")
        seen.add(spec.name)
        specs.append(spec)
    return tuple(specs)


def _tenant(field: str, entry: Any, base_dir: Path, grafana_enabled: bool) -> TenantSpec:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        raise ConfigError(f"{field}: expected a tenant name or an object, got {entry!r}")
    unknown = sorted(set(entry) - set(TENANT_OPTIONS))
    if unknown:
        raise ConfigError(
            f"{field}.{unknown[0]}: unknown tenant option; use {', '.join(TENANT_OPTIONS)}"
        )
    name = entry.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"{field}.name: expected a tenant name, got {name!r}")
    if problem := names.tenant_name_problem(name):
        raise ConfigError(f"{field}: {problem}")
    token_entries = entry.get("tokens", [names.DEFAULT_TOKEN_NAME])
    if not isinstance(token_entries, list) or not token_entries:
        raise ConfigError(
            f"{field}.tokens: expected a non-empty list of token names or "
            f"{{name, scopes}} objects, got {token_entries!r}"
        )
    rotation, export_to, signing_file = _token_options(field, entry, base_dir)
    tokens: list[TokenSpec] = []
    for position, token_entry in enumerate(token_entries):
        token_field = f"{field}.tokens[{position}]"
        token_name, token_scopes, rate_limit = _token_entry(token_field, token_entry)
        if token_name in {t.name for t in tokens}:
            raise ConfigError(f"{token_field}: token {token_name!r} is listed twice")
        tokens.append(
            TokenSpec(token_name, rotation, export_to, signing_file, token_scopes, rate_limit)
        )
    owner = f" (tenant {name!r})"
    grafana_spec = grafana_config.parse_tenant_grafana(
        f"{field}.grafana", entry.get("grafana"), grafana_enabled, base_dir, owner
    )
    if grafana_spec.enabled and grafana.TOKEN_NAME in {t.name for t in tokens}:
        position = [t.name for t in tokens].index(grafana.TOKEN_NAME)
        raise ConfigError(
            f"{field}.tokens[{position}]: {grafana.TOKEN_NAME!r} names the tenant's Grafana "
            "credential (read-only, made by the program): choose another name, or set "
            "grafana: false"
        )
    return TenantSpec(
        name,
        _with_grafana_token(tuple(tokens), grafana_spec, rotation),
        limits=limits.parse_limits(f"{field}.limits", entry.get("limits", {}), owner),
        retention_days={
            group: platform.retention_days(f"{field}.{key}", entry[key], owner)
            for group, key in (
                (limits.METRICS, "metricsRetention"),
                (limits.LOGS, "logsRetention"),
            )
            if key in entry
        },
        rules=_optional_document(
            f"{field}.rules", entry.get("rules"), base_dir, owner, rule_files.rule_groups
        ),
        log_rules=_optional_document(
            f"{field}.logRules", entry.get("logRules"), base_dir, owner, rule_files.rule_groups
        ),
        alertmanager_config=_optional_document(
            f"{field}.alertmanagerConfig",
            entry.get("alertmanagerConfig"),
            base_dir,
            owner,
            rule_files.alertmanager_config,
        ),
        allowed_networks=(
            networks.parse_networks(f"{field}.{networks.KEY}", entry[networks.KEY], owner)
            if networks.KEY in entry
            else ()
        ),
        grafana=grafana_spec,
    )


def _with_grafana_token(
    tokens: tuple[TokenSpec, ...], grafana_spec: GrafanaSpec, rotation: str
) -> tuple[TokenSpec, ...]:
    """The tenant's tokens and, if it has a Grafana, its Grafana's: read scopes only, its
    own key (never exported, never the tenant's signing key file), rotated with the
    tenant's other tokens."""
    if not grafana_spec.enabled:
        return tokens
    read_only = tuple(s for s in scopes.SCOPES if s in grafana.TOKEN_SCOPES)
    return (*tokens, TokenSpec(grafana.TOKEN_NAME, rotation, "", "", read_only))


def _optional_document(
    field: str,
    raw: Any,
    base_dir: Path,
    owner: str,
    check: Callable[[str, Any, str, str], _Document],
) -> _Document | None:
    """A tenant's YAML document, checked by `check`: a file path (relative to the project
    directory), YAML text (a value with a line break), or the mapping itself; None when
    absent. Files are read whenever the program runs: their content is what `up` applies."""
    if raw is None:
        return None
    if isinstance(raw, dict):
        return check(field, raw, "inline", owner)
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{field}{owner}: expected a file path or YAML, got {raw!r}")
    source = "inline" if "\n" in raw else path_setting(raw, field)
    text = raw if source == "inline" else read_text(f"{field}{owner}", resolve(source, base_dir))
    return check(field, _parsed_yaml(f"{field}{owner}", text, source), source, owner)


def _parsed_yaml(field: str, text: str, source: str) -> Any:
    """The YAML document of `text`, from `source` (a path, or "inline"); else refused
    naming `field`, the source's line and the parser's problem."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{field}: {where}: not valid YAML: {problem}") from None


TOKEN_OPTIONS: Final = ("name", "scopes", "rateLimit")
MAX_RATE_LIMIT: Final = 100_000
"""Requests per second: more than one gateway pod serves."""


def _token_entry(field: str, entry: Any) -> tuple[str, tuple[str, ...], int]:
    """A token's name, scopes and rate limit from `name` or `{name, scopes, rateLimit}`;
    no scopes: every scope; no rate limit: 0 (none)."""
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - set(TOKEN_OPTIONS))
        if unknown:
            raise ConfigError(
                f"{field}.{unknown[0]}: unknown token option; use {', '.join(TOKEN_OPTIONS)}"
            )
        token_name, token_scopes = entry.get("name"), entry.get("scopes")
        rate_limit = entry.get("rateLimit", 0)
        if "rateLimit" in entry and (
            isinstance(rate_limit, bool)
            or not isinstance(rate_limit, int)
            or not 1 <= rate_limit <= MAX_RATE_LIMIT
        ):
            raise ConfigError(
                f"{field}.rateLimit: expected requests per second, a whole number from 1 to "
                f"{MAX_RATE_LIMIT}, got {rate_limit!r}"
            )
    else:
        token_name, token_scopes, rate_limit = entry, None, 0
    if not isinstance(token_name, str) or names.token_name_problem(token_name):
        where = f"{field}.name" if isinstance(entry, dict) else field
        raise ConfigError(f"{where}: {token_name!r} is not a valid token name: {names.TOKEN_RULE}")
    if token_scopes is None:
        return token_name, (), rate_limit
    if problem := scopes.scopes_problem(token_scopes):
        raise ConfigError(f"{field}.scopes: {problem}")
    return token_name, tuple(s for s in scopes.SCOPES if s in token_scopes), rate_limit


def _token_options(field: str, entry: Mapping[str, Any], base_dir: Path) -> tuple[str, str, str]:
    """rotation, exportKeysTo, signingKeyFile of a tenant entry, checked."""
    rotation = entry.get("rotation", "")
    if isinstance(rotation, int) and not isinstance(rotation, bool):
        rotation = str(rotation)  # YAML reads `rotation: 2026` as a number
    if not isinstance(rotation, str):
        raise ConfigError(f"{field}.rotation: expected a string, got {rotation!r}")
    export_to = path_setting(entry.get("exportKeysTo", ""), f"{field}.exportKeysTo")
    signing_file = path_setting(entry.get("signingKeyFile", ""), f"{field}.signingKeyFile")
    if export_to and signing_file:
        raise ConfigError(f"{field}: {keys.EXPORT_EXCLUDES_SIGNING_FILE}")
    if export_to and (
        problem := keys.export_directory_problem(export_to, resolve(export_to, base_dir))
    ):
        raise ConfigError(f"{field}.exportKeysTo: {problem}")
    return rotation, export_to, signing_file
