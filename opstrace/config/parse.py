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
                                             # (or opstrace:tenantsFile: tenants.yaml)
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
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from opstrace import images, keys, names
from opstrace.config import grafana_config, networks, platform, read, tenant_config
from opstrace.config.local_files import path_setting, read_text, resolve
from opstrace.config.read import ConfigError
from opstrace.config.schema import (
    DEFAULTS,
    DNS_MODES,
    PROJECT,
    REQUIRED,
    SETTINGS,
    STRUCTURED,
    TRUSTED_KEY_OPTIONS,
    InstanceConfig,
    TenantSpec,
    TrustedKey,
)
from opstrace.gateway import manifests
from opstrace.gateway import upstreams as gateway_upstreams
from opstrace.gateway.settings import image_problem, replicas_problem, upstream_problem
from opstrace.policy import limits

_DURATION_RE: Final = re.compile(r"^([1-9][0-9]*)([smhdy])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
TOKEN_LIFETIME_YEARS_MAX: Final = 100
"""Ten times Opstrace's lifetime; far longer and the expiry leaves the calendar tools
handle (ISO 8601 and Python stop at the year 9999)."""
_SET_HINT: Final = {
    "instanceName": "in the stack file (`opstrace:instanceName: acme`) or with "
    "`pulumi config set instanceName acme`",
    "domain": "in the stack file (`opstrace:domain: observability.example.org`) or with "
    "`pulumi config set domain observability.example.org`",
    "tenants": tenant_config.SET_HINT,
}
"""How to set a required setting: the stack file first, since the offline plan and `make
up`'s checks print these before a Pulumi CLI may exist; the CLI's command for a preview."""


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
    raw: Mapping[str, Any],
    *,
    base_dir: Path = Path(),
    aws_region: str = "",
    aws_profile: str = "",
) -> InstanceConfig:
    """Validate settings (keys without namespace, values as YAML or the CLI gives them).

    `base_dir` resolves relative paths (the project directory, where the program and
    the token provider run); `aws_region` and `aws_profile` are the stack's `aws:region`
    and `aws:profile` ("" if unset).
    """
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        raise ConfigError(_unknown_setting_message(unknown[0]))
    for key in REQUIRED:
        if raw.get(key) is None:
            raise ConfigError(f"{PROJECT}:{key}: required; set it {_SET_HINT[key]}")
    if raw.get("tenants") is None and not raw.get(tenant_config.FILE_KEY):
        raise ConfigError(f"{PROJECT}:tenants: required; set it {_SET_HINT['tenants']}")
    values = {**DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}

    instance = read.string(values, "instanceName")
    if problem := names.instance_name_problem(instance):
        raise ConfigError(f"instanceName: {problem}")
    dns = read.choice(values, "dns", DNS_MODES)
    domain = read.string(values, "domain")
    if problem := names.domain_problem(domain):
        raise ConfigError(f"domain: {problem}")
    key_bits = read.integer(values, "keyBits")
    if problem := keys.key_bits_problem(key_bits):
        raise ConfigError(f"keyBits: {problem}")
    replicas = read.integer(values, "gatewayReplicas")
    if problem := replicas_problem(replicas):
        raise ConfigError(f"gatewayReplicas: {problem}")
    min_ready = read.integer(values, "gatewayMinReadySeconds")
    if problem := manifests.min_ready_seconds_problem(min_ready):
        raise ConfigError(f"gatewayMinReadySeconds: {problem}")
    image = read.string(values, "gatewayImage")
    if problem := image_problem(image):
        raise ConfigError(f"gatewayImage: {problem}")
    sync_image = read.string(values, "gatewaySyncImage")
    if problem := image_problem(sync_image):
        raise ConfigError(f"gatewaySyncImage: {problem}")
    grafana_enabled = read.boolean(values, "grafana")
    tenants = tenant_config.parse_tenants(
        tenant_config.listed_tenants(values, base_dir),
        read.string(values, "systemTokenRotation"),
        base_dir,
        grafana_config.system_grafana(grafana_enabled, values[grafana_config.SYSTEM_ROLES_KEY]),
    )
    client_secret = grafana_config.parse_client_secret(values)
    sso = grafana_config.parse_sso(values[grafana_config.SSO_KEY], client_secret)
    if sso and not grafana_enabled:
        raise ConfigError(
            f"{grafana_config.SSO_KEY}: is set, but grafana is false: no tenant has a Grafana "
            "to sign in to; remove it or set opstrace:grafana to true"
        )
    # The user tenants first, so that a long one is named; then the system tenant, whose
    # endpoints are the longest when every user tenant's name is shorter than `system`.
    for index, tenant in enumerate(tenants[1:]):
        if problem := _endpoint_problem(tenant, instance, domain):
            raise ConfigError(
                f"tenants[{index}]: tenant {tenant.name!r} gives a bad endpoint: {problem}: "
                "use a shorter tenant, instance or domain name"
            )
    if problem := _endpoint_problem(tenants[0], instance, domain):
        raise ConfigError(
            f"domain: the {names.SYSTEM_TENANT!r} tenant (always there) gives a bad endpoint: "
            f"{problem}: use a shorter instance or domain name"
        )
    parent_zone_id = read.string(values, "parentZoneId")
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
        aws_profile=aws_profile,
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
        kubeconfig=path_setting(values["kubeconfig"], "kubeconfig"),
        kube_context=read.string(values, "kubeContext"),
        cortex_url=cortex_url,
        loki_url=loki_url,
        gateway_replicas=replicas,
        gateway_min_ready_seconds=(
            min_ready or manifests.MIN_READY_SECONDS[platform_config.load_balancer]
        ),
        gateway_image=str(images.mirrored(images.parse(image), platform_config.image_mirrors)),
        gateway_sync_image=str(
            images.mirrored(images.parse(sync_image), platform_config.image_mirrors)
        ),
        gateway=gateway_upstreams.gateway_settings(
            instance,
            domain,
            [tenant.name for tenant in tenants],
            gateway_upstreams.upstreams(platform_config.size, cortex_url, loki_url),
            *_allowlists(values, tenants, platform_config.load_balancer),
            grafana_tenants=[tenant.name for tenant in tenants if tenant.grafana.enabled],
        ),
        platform=platform_config,
        limits=limits.parse_limits("limits", values["limits"]),
        grafana_sso=sso,
        grafana_client_secret=client_secret,
    )
    served = {tenant.name for tenant in tenants}
    for index, trusted in enumerate(config.trusted_keys):
        if trusted.tenant is not None and trusted.tenant not in served:
            raise ConfigError(
                f"trustedKeys[{index}].tenant: {trusted.tenant!r} is not a tenant of this "
                f"instance: use one of {', '.join(sorted(served))}"
            )
    return config


def _allowlists(
    values: Mapping[str, Any], tenants: Sequence[TenantSpec], load_balancer: str
) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The instance's `dataApiAllowedCidrs`, then each tenant's, checked against the load
    balancer and against each other."""
    instance = networks.instance_networks(read.string(values, networks.KEY), load_balancer)
    own: dict[str, tuple[str, ...]] = {}
    for index, tenant in enumerate(tenants[1:]):
        if not tenant.allowed_networks:
            continue
        field = f"tenants[{index}].{networks.KEY}"
        problem = networks.load_balancer_problem(
            tenant.allowed_networks, load_balancer
        ) or networks.tenant_networks_problem(tenant.allowed_networks, instance)
        if problem:
            raise ConfigError(f"{field} (tenant {tenant.name!r}): {problem}")
        own[tenant.name] = tenant.allowed_networks
    return instance, own


def _endpoint_problem(tenant: TenantSpec, instance: str, domain: str) -> str | None:
    """Why one of the tenant's hosts (its Grafana's too) is no valid hostname, or None."""
    for service in names.tenant_services(tenant.grafana.enabled):
        host = names.endpoint_host(service, tenant.name, instance, domain)
        if problem := names.hostname_problem(host):
            if service == names.GRAFANA_SERVICE:
                return f"{problem} (its Grafana's host; `grafana: false` leaves it out)"
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
    value = read.string(values, key)
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
    value = read.string(values, key)
    if value and (problem := upstream_problem(value)):
        raise ConfigError(f"{key}: {problem}")
    return value.rstrip("/")


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
        pem = entry if "-----BEGIN" in entry else read_text(field, resolve(entry, base_dir))
        try:
            result.append(TrustedKey(keys.validate_public_key_pem(pem, source=field), tenant))
        except keys.KeyMaterialError as error:
            raise ConfigError(str(error)) from None
    return tuple(result)


__all__ = ["ConfigError", "InstanceConfig", "parse_config", "stack_settings"]
