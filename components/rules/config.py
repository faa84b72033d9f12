"""Stack configuration, parsed and validated once into the typed objects of `schema`.

Pure, no Pulumi, no renderer: `stack_settings` takes the stack's whole config as the CLI
hands it to the program (namespaced keys, string values) and refuses unknown `opstrace:`
keys; `parse_config` applies every rule to the values. So a bad stack file fails before
any resource is registered, with one line naming the field, the value and the rule.
Defaults are applied here too: the Pulumi CLI applies `Pulumi.yaml` defaults, but the
offline plan and the test mocks do not. What needs the rendered documents (the
ConfigMaps' capacity) is checked after parsing, by `stack`.

Expected YAML (namespace `opstrace`, see `stacks/Pulumi.dev.yaml`)::

    config:
      opstrace:instanceName: acme            # required; cannot change later
      opstrace:domain: observability.example.org  # required: a domain you own
      opstrace:dns: route53                  # route53 (default) or none
      opstrace:parentZoneId: Z0123456789     # optional: delegate <instance>.<domain>
      opstrace:tenants:                      # required: at least one user tenant
        - prod
        - name: team-ci
          tokens: [default, deploy]          # one credential (key + token) each
          rotation: "2026-11"                # change to replace this tenant's tokens
          exportKeysTo: keys                 # write private keys there (0600)
          signingKeyFile: keys/old.pem       # or: sign with an existing keypair
      opstrace:tokenLifetime: 10y            # <n>s|m|h|d|y, default 10y
      opstrace:systemTokenRotation: "2026-11" # change to replace the system tenant's token
      opstrace:keyBits: 2048                 # 2048, 3072 or 4096
      opstrace:trustedKeys: [keys/ops.pub]   # extra public keys (PEM text or file)
      opstrace:kubeconfig: ~/.kube/config    # optional; default: ambient kubeconfig
      opstrace:kubeContext: prod-cluster     # optional
      opstrace:cortexUrl: http://cortex.cortex.svc.cluster.local:80
      opstrace:lokiUrl: http://loki.loki.svc.cluster.local:3100
      opstrace:gatewayReplicas: 2
      opstrace:gatewayImage: haproxy:3.4.7@sha256:<digest>  # default haproxy:3.4.7
      opstrace:gatewaySyncImage: python:3.13.9-slim-trixie  # the gateway's sidecar
      opstrace:limits:                       # every tenant's (runtime overrides)
        metrics: {maxGlobalSeriesPerUser: 300000}
        logs: {ingestionRateMb: 8}
      opstrace:tenants:                      # a tenant's own policy
        - name: prod
          limits: {metrics: {maxGlobalSeriesPerUser: 1000000}}  # wins over limits
          metricsRetention: 90d              # default: the instance's
          logsRetention: 14d
          rules: rules/prod.yaml             # a Prometheus rule file (or inline YAML)
          logRules: rules/prod-logs.yaml     # the same format, LogQL, for Loki's ruler
          alertmanagerConfig: alertmanager/prod.yaml  # default: notify nobody
"""

from __future__ import annotations

import difflib
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from components.gateway import upstreams as gateway_upstreams
from components.gateway.settings import image_problem, replicas_problem, upstream_problem
from components.rules import alerting, keys, limits, names, platform, settings
from components.rules.schema import (
    DEFAULTS,
    DNS_MODES,
    PROJECT,
    REQUIRED,
    SETTINGS,
    STRUCTURED,
    TENANT_OPTIONS,
    TRUSTED_KEY_OPTIONS,
    InstanceConfig,
    TenantSpec,
    TokenSpec,
    TrustedKey,
)
from components.rules.settings import ConfigError

_Document = TypeVar("_Document")

_DURATION_RE: Final = re.compile(r"^([1-9][0-9]*)([smhdy])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
TOKEN_LIFETIME_YEARS_MAX: Final = 100
"""Ten times Opstrace's lifetime; far longer and the expiry leaves the calendar tools
handle (ISO 8601 and Python stop at the year 9999)."""
_SET_HINT: Final = {
    "instanceName": "pulumi config set instanceName acme",
    "domain": "pulumi config set domain observability.example.org",
    "tenants": "pulumi config set --path 'opstrace:tenants[0]' prod",
}


def stack_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """This project's settings out of a stack's whole config, keys without namespace.

    `config` is what the CLI hands the program: `namespace:key` -> value, lists as
    JSON text. Keys of other namespaces (`aws:`, `kubernetes:`, `pulumi:`) are left
    to their owners; an unknown `opstrace:` key is refused with the closest known
    name. A key without namespace is the project's, as the CLI reads it.
    """
    settings: dict[str, Any] = {}
    for key, value in sorted(config.items()):
        namespace, _, name = project_key(key).partition(":")
        if namespace != PROJECT:
            continue
        if name not in SETTINGS:
            raise ConfigError(_unknown_setting_message(name))
        settings[name] = _decode(name, value)
    return settings


def parse_config(
    raw: Mapping[str, Any], *, base_dir: Path = Path(), aws_region: str = ""
) -> InstanceConfig:
    """Validate settings (keys without namespace, values as YAML or the CLI gives them).

    `base_dir` resolves relative paths (the project directory, where the program and
    the token provider run); `aws_region` is the stack's `aws:region` ("" if unset).
    """
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        raise ConfigError(_unknown_setting_message(unknown[0]))
    for key in REQUIRED:
        if raw.get(key) is None:
            raise ConfigError(f"{PROJECT}:{key}: required; set it with `{_SET_HINT[key]}`")
    values = {**DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}

    instance = settings.string(values, "instanceName")
    if problem := names.instance_name_problem(instance):
        raise ConfigError(f"instanceName: {problem}")
    dns = settings.choice(values, "dns", DNS_MODES)
    domain = settings.string(values, "domain")
    if problem := names.domain_problem(domain):
        raise ConfigError(f"domain: {problem}")
    if dns == "route53" and (problem := names.reserved_domain_problem(domain)):
        raise ConfigError(f"domain: {problem}")
    key_bits = settings.integer(values, "keyBits")
    if problem := keys.key_bits_problem(key_bits):
        raise ConfigError(f"keyBits: {problem}")
    replicas = settings.integer(values, "gatewayReplicas")
    if problem := replicas_problem(replicas):
        raise ConfigError(f"gatewayReplicas: {problem}")
    image = settings.string(values, "gatewayImage")
    if problem := image_problem(image):
        raise ConfigError(f"gatewayImage: {problem}")
    sync_image = settings.string(values, "gatewaySyncImage")
    if problem := image_problem(sync_image):
        raise ConfigError(f"gatewaySyncImage: {problem}")
    tenants = _tenants(values["tenants"], settings.string(values, "systemTokenRotation"), base_dir)
    # The user tenants first, so that a long one is named; then the system tenant, whose
    # endpoints are the longest when every user tenant's name is shorter than `system`.
    for index, tenant in enumerate(tenants[1:]):
        if problem := _endpoint_problem(tenant.name, instance, domain):
            raise ConfigError(
                f"tenants[{index}]: tenant {tenant.name!r} gives a bad endpoint: {problem}: "
                "use a shorter tenant, instance or domain name"
            )
    if problem := _endpoint_problem(names.SYSTEM_TENANT, instance, domain):
        raise ConfigError(
            f"domain: the {names.SYSTEM_TENANT!r} tenant (always there) gives a bad endpoint: "
            f"{problem}: use a shorter instance or domain name"
        )
    parent_zone_id = settings.string(values, "parentZoneId")
    if dns == "none" and parent_zone_id:
        raise ConfigError(
            "parentZoneId: is set, but dns is 'none': with DNS managed elsewhere there is "
            "no zone to delegate; remove parentZoneId or set dns to route53"
        )
    cortex_url = _upstream(values, "cortexUrl")
    loki_url = _upstream(values, "lokiUrl")
    platform_config = platform.parse_platform(
        values,
        aws_region=aws_region,
        route53=dns == "route53",
        external_backends=bool(cortex_url and loki_url),
    )
    config = InstanceConfig(
        instance_name=instance,
        domain=domain,
        dns=dns,
        parent_zone_id=parent_zone_id,
        tenants=tenants,
        token_lifetime_seconds=_token_lifetime(values),
        key_bits=key_bits,
        trusted_keys=_trusted_keys(values["trustedKeys"], base_dir),
        kubeconfig=_path(values["kubeconfig"], "kubeconfig"),
        kube_context=settings.string(values, "kubeContext"),
        cortex_url=cortex_url,
        loki_url=loki_url,
        gateway_replicas=replicas,
        gateway_image=image,
        gateway_sync_image=sync_image,
        gateway=gateway_upstreams.gateway_settings(
            instance,
            domain,
            [tenant.name for tenant in tenants],
            gateway_upstreams.upstreams(platform_config.size, cortex_url, loki_url),
        ),
        platform=platform_config,
        limits=limits.parse_limits("limits", values["limits"]),
    )
    served = {tenant.name for tenant in tenants}
    for index, trusted in enumerate(config.trusted_keys):
        if trusted.tenant is not None and trusted.tenant not in served:
            raise ConfigError(
                f"trustedKeys[{index}].tenant: {trusted.tenant!r} is not a tenant of this "
                f"instance: use one of {', '.join(sorted(served))}"
            )
    return config


def _endpoint_problem(tenant: str, instance: str, domain: str) -> str | None:
    """Why one of the tenant's endpoint hosts is no valid hostname, or None."""
    for host in names.endpoint_hosts(tenant, instance, domain):
        if problem := names.hostname_problem(host):
            return problem
    return None


def closest_setting(name: str) -> str | None:
    """The known setting `name` most likely meant (case and small typos forgiven)."""
    lowered = {setting.lower(): setting for setting in SETTINGS}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[match[0]] if match else None


def _unknown_setting_message(name: str) -> str:
    message = f"unknown setting '{PROJECT}:{name}'"
    if (closest := closest_setting(name)) is not None:
        return f"{message}; did you mean '{PROJECT}:{closest}'?"
    return f"{message}: not one of this project's settings (see `config:` in Pulumi.yaml)"


def project_key(key: str) -> str:
    """A stack file key as the CLI reads it: one written without a namespace belongs to
    the project (`keyBits` is `opstrace:keyBits`; the real CLI does this, see
    tests/engine/test_smoke.py)."""
    return key if ":" in key else f"{PROJECT}:{key}"


def _decode(name: str, value: Any) -> Any:
    """Lists arrive as JSON text; anything else (a plain string) is kept for the rules."""
    if name in STRUCTURED and isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{name}: {value!r} is not valid JSON ({error.msg} at character {error.pos}): "
                "write a YAML list in the stack file"
            ) from None
    return value


def _duration(values: Mapping[str, Any], key: str) -> int:
    value = settings.string(values, key)
    match = _DURATION_RE.fullmatch(value)
    if not match:
        raise ConfigError(
            f"{key}: {value!r} is not a duration: use a positive number and one unit "
            "of s, m, h, d or y (e.g. 90d, 10y)"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _token_lifetime(values: Mapping[str, Any]) -> int:
    seconds = _duration(values, "tokenLifetime")
    if seconds > TOKEN_LIFETIME_YEARS_MAX * _UNIT_SECONDS["y"]:
        raise ConfigError(
            f"tokenLifetime: {values['tokenLifetime']!r} is too long: use at most "
            f"{TOKEN_LIFETIME_YEARS_MAX}y (Opstrace used 10y)"
        )
    return seconds


def _upstream(values: Mapping[str, Any], key: str) -> str:
    value = settings.string(values, key)
    if value and (problem := upstream_problem(value)):
        raise ConfigError(f"{key}: {problem}")
    return value.rstrip("/")


def _path(value: Any, field: str) -> str:
    """A local path as written, normalized: `keys`, `./keys` and `keys/` are one value."""
    if not isinstance(value, str):
        raise ConfigError(f"{field}: expected a path, got {value!r}")
    if not value:
        return ""
    if "\n" in value or "\x00" in value:
        raise ConfigError(f"{field}: {value!r} is not a usable path")
    return posixpath.normpath(value)


def _tenants(raw: Any, system_rotation: str, base_dir: Path) -> tuple[TenantSpec, ...]:
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
            f"with `{_SET_HINT['tenants']}`"
        )
    seen: set[str] = set()
    system_token = TokenSpec(names.DEFAULT_TOKEN_NAME, system_rotation, "", "")
    system = TenantSpec(names.SYSTEM_TENANT, (system_token,))
    specs = [system]
    for index, entry in enumerate(raw):
        field = f"tenants[{index}]"
        spec = _tenant(field, entry, base_dir)
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


def _tenant(field: str, entry: Any, base_dir: Path) -> TenantSpec:
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
    token_names = entry.get("tokens", [names.DEFAULT_TOKEN_NAME])
    if not isinstance(token_names, list) or not token_names:
        raise ConfigError(
            f"{field}.tokens: expected a non-empty list of token names, got {token_names!r}"
        )
    rotation, export_to, signing_file = _token_options(field, entry, base_dir)
    tokens: list[TokenSpec] = []
    for position, token_name in enumerate(token_names):
        token_field = f"{field}.tokens[{position}]"
        if not isinstance(token_name, str) or names.token_name_problem(token_name):
            raise ConfigError(
                f"{token_field}: {token_name!r} is not a valid token name: {names.TOKEN_RULE}"
            )
        if token_name in {t.name for t in tokens}:
            raise ConfigError(f"{token_field}: token {token_name!r} is listed twice")
        tokens.append(TokenSpec(token_name, rotation, export_to, signing_file))
    owner = f" (tenant {name!r})"
    return TenantSpec(
        name,
        tuple(tokens),
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
            f"{field}.rules", entry.get("rules"), base_dir, owner, alerting.rule_groups
        ),
        log_rules=_optional_document(
            f"{field}.logRules", entry.get("logRules"), base_dir, owner, alerting.rule_groups
        ),
        alertmanager_config=_optional_document(
            f"{field}.alertmanagerConfig",
            entry.get("alertmanagerConfig"),
            base_dir,
            owner,
            alerting.alertmanager_config,
        ),
    )


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
    source = "inline" if "\n" in raw else _path(raw, field)
    text = raw if source == "inline" else _read_text(f"{field}{owner}", resolve(source, base_dir))
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{field}{owner}: {where}: not valid YAML: {problem}") from None
    return check(field, document, source, owner)


def _token_options(field: str, entry: Mapping[str, Any], base_dir: Path) -> tuple[str, str, str]:
    """rotation, exportKeysTo, signingKeyFile of a tenant entry, checked."""
    rotation = entry.get("rotation", "")
    if isinstance(rotation, int) and not isinstance(rotation, bool):
        rotation = str(rotation)  # YAML reads `rotation: 2026` as a number
    if not isinstance(rotation, str):
        raise ConfigError(f"{field}.rotation: expected a string, got {rotation!r}")
    export_to = _path(entry.get("exportKeysTo", ""), f"{field}.exportKeysTo")
    signing_file = _path(entry.get("signingKeyFile", ""), f"{field}.signingKeyFile")
    if export_to and signing_file:
        raise ConfigError(f"{field}: {keys.EXPORT_EXCLUDES_SIGNING_FILE}")
    if export_to and (
        problem := keys.export_directory_problem(export_to, resolve(export_to, base_dir))
    ):
        raise ConfigError(f"{field}.exportKeysTo: {problem}")
    return rotation, export_to, signing_file


def _trusted_keys(raw: Any, base_dir: Path) -> tuple[TrustedKey, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"trustedKeys: expected a list of PEM texts or file paths, got {raw!r}")
    result = []
    for index, entry in enumerate(raw):
        field = f"trustedKeys[{index}]"
        tenant: str | None = None
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - set(TRUSTED_KEY_OPTIONS))
            if unknown:
                raise ConfigError(
                    f"{field}.{unknown[0]}: unknown option; use {', '.join(TRUSTED_KEY_OPTIONS)}"
                )
            tenant = entry.get("tenant")
            if not isinstance(tenant, str) or names.tenant_name_problem(tenant):
                raise ConfigError(f"{field}.tenant: expected a tenant name, got {tenant!r}")
            entry = entry.get("key")
        if not isinstance(entry, str) or not entry.strip():
            raise ConfigError(f"{field}: expected PEM text or a file path, got {entry!r}")
        pem = entry if "-----BEGIN" in entry else _read_text(field, resolve(entry, base_dir))
        try:
            result.append(TrustedKey(keys.validate_public_key_pem(pem, source=field), tenant))
        except keys.KeyMaterialError as error:
            raise ConfigError(str(error)) from None
    return tuple(result)


def _read_text(field: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{field}: cannot read {path}: {reason}") from None


def resolve(path: str, base_dir: Path) -> Path:
    """A configured path on this machine: `~` expanded, relative to `base_dir`."""
    expanded = Path(path).expanduser()
    return expanded if expanded.is_absolute() else base_dir / expanded


__all__ = [
    "ConfigError",
    "InstanceConfig",
    "TenantSpec",
    "TokenSpec",
    "parse_config",
    "stack_settings",
]
