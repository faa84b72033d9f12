"""Stack configuration, parsed and validated once into immutable typed objects.

The program reads `pulumi.Config` here and nowhere else. Every rule lives in
`parse_config`, a pure function over the raw values, so that a bad stack file fails
before any resource is registered, with a message naming the field, the value and
the rule. Defaults are applied here too: the Pulumi CLI applies `Pulumi.yaml`
defaults, but the offline plan and the unit-test mocks do not.

Expected YAML (namespace `opstrace`, see `stacks/Pulumi.dev.yaml`)::

    config:
      opstrace:instanceName: acme            # required; cannot change later
      opstrace:domain: example.com           # default opstrace.io
      opstrace:parentZoneId: Z0123456789     # optional: delegate <instance>.<domain>
      opstrace:tenants:                      # required: at least one user tenant
        - prod
        - name: ci
          tokens: [default, deploy]          # one credential (key + token) each
          rotation: "2026-11"                # change to replace this tenant's tokens
          exportKeysTo: ./keys               # write private keys there (0600)
          signingKeyFile: ./keys/old.pem     # or: sign with an existing keypair
      opstrace:tokenLifetime: 10y            # <n>s|m|h|d|y, default 10y
      opstrace:keyBits: 2048                 # 2048, 3072 or 4096
      opstrace:trustedKeys: [./keys/ops.pub] # extra public keys (PEM text or file)
      opstrace:kubeconfig: ~/.kube/config    # optional; default: ambient kubeconfig
      opstrace:kubeContext: prod-cluster     # optional
      opstrace:cortexUrl: http://cortex.cortex.svc.cluster.local:80
      opstrace:lokiUrl: http://loki.loki.svc.cluster.local:3100
      opstrace:gatewayReplicas: 2
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from components.rules import keys, names
from components.rules.gateway_config import replicas_problem, upstream_problem

PROJECT: Final = "opstrace"

DEFAULTS: Final[Mapping[str, Any]] = {
    "domain": "opstrace.io",
    "parentZoneId": "",
    "tokenLifetime": "10y",
    "keyBits": 2048,
    "trustedKeys": [],
    "kubeconfig": "",
    "kubeContext": "",
    "cortexUrl": "http://cortex.cortex.svc.cluster.local:80",
    "lokiUrl": "http://loki.loki.svc.cluster.local:3100",
    "gatewayReplicas": 2,
}
"""Every optional setting's default; `Pulumi.yaml` declares the same (a test checks)."""

REQUIRED: Final = ("instanceName", "tenants")
SETTINGS: Final = (*REQUIRED, *DEFAULTS)
_STRUCTURED: Final = ("tenants", "trustedKeys")

_TENANT_OPTIONS: Final = ("name", "tokens", "rotation", "exportKeysTo", "signingKeyFile")
_DURATION_RE: Final = re.compile(r"^([1-9][0-9]*)([smhdy])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}


class ConfigError(ValueError):
    """Raised when the stack configuration breaks a rule; the message names the field."""


@dataclass(frozen=True)
class TokenSpec:
    """One credential of a tenant: its own keypair and token."""

    name: str
    rotation: str
    export_keys_to: str
    """As written in config: relative to the project directory, `~` allowed."""
    signing_key_file: str
    """As written in config: relative to the project directory, `~` allowed."""


@dataclass(frozen=True)
class TenantSpec:
    """A tenant and its credentials."""

    name: str
    tokens: tuple[TokenSpec, ...]


@dataclass(frozen=True)
class InstanceConfig:
    """The whole validated configuration of one instance."""

    instance_name: str
    domain: str
    parent_zone_id: str
    tenants: tuple[TenantSpec, ...]
    """The system tenant first, then the user tenants in config order."""
    token_lifetime_seconds: int
    key_bits: int
    trusted_keys: tuple[str, ...]
    """Extra public keys (normalized SPKI PEM) for tokens minted outside Pulumi."""
    kubeconfig: str
    kube_context: str
    cortex_url: str
    loki_url: str
    gateway_replicas: int

    @property
    def user_tenants(self) -> tuple[TenantSpec, ...]:
        return tuple(t for t in self.tenants if t.name != names.SYSTEM_TENANT)


def parse_config(raw: Mapping[str, Any], *, base_dir: Path = Path()) -> InstanceConfig:
    """Validate raw config values (as YAML gives them) into an `InstanceConfig`.

    `base_dir` resolves relative key file paths (the project directory).
    """
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: unknown setting; known settings are {', '.join(SETTINGS)}"
        )
    for key in REQUIRED:
        if key not in raw or raw[key] is None:
            raise ConfigError(f"{key}: required; set it with `pulumi config set {key} ...`")
    values = {**DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}

    instance = _string(values, "instanceName")
    if problem := names.instance_name_problem(instance):
        raise ConfigError(f"instanceName: {problem}")
    domain = _string(values, "domain")
    if problem := names.domain_problem(domain):
        raise ConfigError(f"domain: {problem}")
    key_bits = _integer(values, "keyBits")
    if key_bits not in keys.ALLOWED_KEY_BITS:
        raise ConfigError(
            f"keyBits: {key_bits} is not allowed: use 2048, 3072 or 4096 "
            f"(keys under {keys.MIN_KEY_BITS} bits are refused)"
        )
    replicas = _integer(values, "gatewayReplicas")
    if problem := replicas_problem(replicas):
        raise ConfigError(f"gatewayReplicas: {problem}")
    tenants = _tenants(values["tenants"], base_dir)
    for tenant in tenants:
        for service in names.ENDPOINT_SERVICES:
            host = names.endpoint_host(service, tenant.name, instance, domain)
            if problem := names.hostname_problem(host):
                raise ConfigError(
                    f"tenants: tenant {tenant.name!r} gives a bad endpoint: {problem}"
                )
    return InstanceConfig(
        instance_name=instance,
        domain=domain,
        parent_zone_id=_string(values, "parentZoneId"),
        tenants=tenants,
        token_lifetime_seconds=_duration(values, "tokenLifetime"),
        key_bits=key_bits,
        trusted_keys=_trusted_keys(values["trustedKeys"], base_dir),
        kubeconfig=_string(values, "kubeconfig"),
        kube_context=_string(values, "kubeContext"),
        cortex_url=_upstream(values, "cortexUrl"),
        loki_url=_upstream(values, "lokiUrl"),
        gateway_replicas=replicas,
    )


def load_config(base_dir: Path) -> InstanceConfig:
    """Read the current stack's `opstrace:*` settings through `pulumi.Config`."""
    import pulumi

    config = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    for key in SETTINGS:
        # Lists arrive as JSON text; everything else as the plain string the CLI stores.
        value = config.get_object(key) if key in _STRUCTURED else config.get(key)
        if value is not None:
            raw[key] = value
    return parse_config(raw, base_dir=base_dir)


def _string(values: Mapping[str, Any], key: str) -> str:
    value = values[key]
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _integer(values: Mapping[str, Any], key: str) -> int:
    value = values[key]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # `pulumi config set` stores plain strings
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    return value


def _duration(values: Mapping[str, Any], key: str) -> int:
    value = _string(values, key)
    match = _DURATION_RE.fullmatch(value)
    if not match:
        raise ConfigError(
            f"{key}: {value!r} is not a duration: use a positive number and one unit "
            "of s, m, h, d or y (e.g. 90d, 10y)"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _upstream(values: Mapping[str, Any], key: str) -> str:
    value = _string(values, key)
    if problem := upstream_problem(value):
        raise ConfigError(f"{key}: {problem}")
    return value.rstrip("/")


def _tenants(raw: Any, base_dir: Path) -> tuple[TenantSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"tenants: expected a list with at least one user tenant, got {raw!r}")
    seen: set[str] = set()
    specs = [TenantSpec(names.SYSTEM_TENANT, (_token(names.DEFAULT_TOKEN_NAME, {}, "", base_dir),))]
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
    unknown = sorted(set(entry) - set(_TENANT_OPTIONS))
    if unknown:
        raise ConfigError(
            f"{field}.{unknown[0]}: unknown tenant option; use {', '.join(_TENANT_OPTIONS)}"
        )
    name = entry.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"{field}.name: expected a tenant name, got {name!r}")
    if problem := names.tenant_name_problem(name):
        raise ConfigError(f"{field}: {problem}")
    token_names = entry.get("tokens", [names.DEFAULT_TOKEN_NAME])
    if not isinstance(token_names, list) or not token_names:
        raise ConfigError(f"{field}.tokens: expected a non-empty list of token names")
    tokens: list[TokenSpec] = []
    for position, token_name in enumerate(token_names):
        token_field = f"{field}.tokens[{position}]"
        if not isinstance(token_name, str) or names.tenant_name_problem(token_name):
            raise ConfigError(
                f"{token_field}: {token_name!r} is not a valid token name: {names.TENANT_RULE}"
            )
        if token_name in {t.name for t in tokens}:
            raise ConfigError(f"{token_field}: token {token_name!r} is listed twice")
        tokens.append(_token(token_name, entry, field, base_dir))
    return TenantSpec(name, tuple(tokens))


def _token(name: str, entry: Mapping[str, Any], field: str, base_dir: Path) -> TokenSpec:
    options = {}
    for option in ("rotation", "exportKeysTo", "signingKeyFile"):
        value = entry.get(option, "")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML reads `rotation: 2026` as a number
        if not isinstance(value, str):
            raise ConfigError(f"{field}.{option}: expected a string, got {value!r}")
        options[option] = value
    if options["exportKeysTo"] and options["signingKeyFile"]:
        raise ConfigError(
            f"{field}: exportKeysTo and signingKeyFile exclude each other: a signing key "
            "file is already a keypair file"
        )
    if options["signingKeyFile"]:
        try:
            keys.load_private_key_file(_resolve(options["signingKeyFile"], base_dir))
        except keys.KeyMaterialError as error:
            raise ConfigError(f"{field}.signingKeyFile: {error}") from None
    # Paths stay as written: they are token inputs in state, and an absolute path would
    # make every other checkout of the project look like a change (and a rotation).
    return TokenSpec(name, options["rotation"], options["exportKeysTo"], options["signingKeyFile"])


def _trusted_keys(raw: Any, base_dir: Path) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"trustedKeys: expected a list of PEM texts or file paths, got {raw!r}")
    result = []
    for index, entry in enumerate(raw):
        field = f"trustedKeys[{index}]"
        if not isinstance(entry, str) or not entry.strip():
            raise ConfigError(f"{field}: expected PEM text or a file path, got {entry!r}")
        pem = entry if "-----BEGIN" in entry else _read_text(field, _resolve(entry, base_dir))
        try:
            result.append(keys.validate_public_key_pem(pem, source=field))
        except keys.KeyMaterialError as error:
            raise ConfigError(str(error)) from None
    return tuple(result)


def _read_text(field: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{field}: cannot read {path}: {reason}") from None


def _resolve(path: str, base_dir: Path) -> Path:
    expanded = Path(path).expanduser()
    return expanded if expanded.is_absolute() else base_dir / expanded


__all__ = [
    "ConfigError",
    "InstanceConfig",
    "TenantSpec",
    "TokenSpec",
    "load_config",
    "parse_config",
]
