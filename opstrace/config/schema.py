"""The typed objects a stack's settings become, and the key sets the parser works with.

Pure, no Pulumi. Every setting is described once, in `catalog` (key, type, default,
meaning); `parse` reads a stack into these objects and nothing else reads the settings.
Add a setting to `catalog`, give it a field here and read it in `parse`. The expected
YAML is in `parse`'s docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from opstrace import keys, names
from opstrace.chart_values import TenantPolicy
from opstrace.config import catalog, platform
from opstrace.config.platform import PlatformConfig
from opstrace.gateway import sources
from opstrace.gateway.files import KeyEntry
from opstrace.gateway.settings import GatewaySettings
from opstrace.gateway.upstreams import rulers_alertmanager
from opstrace.grafana import NO_GRAFANA, GrafanaSpec, SingleSignOn
from opstrace.policy import limits
from opstrace.policy.limits import NO_LIMITS, Limits
from opstrace.policy.rule_files import AlertmanagerConfig, RuleGroups
from opstrace.scopes import SCOPES

PROJECT: Final = "opstrace"

DEFAULTS: Final[Mapping[str, Any]] = {
    setting.key: setting.default for setting in catalog.CATALOG if not setting.required
}
"""Every optional setting's default (`catalog`; Pulumi.yaml declares the same)."""

REQUIRED: Final = tuple(setting.key for setting in catalog.CATALOG if setting.required)
SETTINGS: Final = tuple(setting.key for setting in catalog.CATALOG)
STRUCTURED: Final = tuple(setting.key for setting in catalog.CATALOG if setting.structured)
"""Settings whose values are lists or objects: the CLI hands them over as JSON text."""
TRUSTED_KEY_OPTIONS: Final = ("key", "tenant")

DNS_MODES: Final = ("route53", "none")
TENANT_OPTIONS: Final = (
    "name",
    "tokens",
    "rotation",
    "exportKeysTo",
    "signingKeyFile",
    "limits",
    "metricsRetention",
    "logsRetention",
    "rules",
    "logRules",
    "alertmanagerConfig",
    "dataApiAllowedCidrs",
    "grafana",
)


@dataclass(frozen=True)
class TokenSpec:
    """One credential of a tenant: its own keypair and token."""

    name: str
    rotation: str
    export_keys_to: str
    """Normalized (`keys`, `./keys` and `keys/` are one value), relative to the project
    directory unless absolute, `~` kept: the same on every checkout."""
    signing_key_file: str
    """Normalized like `export_keys_to`; read only when a token must be minted."""
    scopes: tuple[str, ...] = ()
    """What it may do (`opstrace.scopes`, in `SCOPES` order); empty: everything."""
    rate_limit: int = 0
    """Requests per second it may make at each gateway pod; 0: no limit."""


@dataclass(frozen=True)
class TenantSpec:
    """A tenant, its credentials and its policy."""

    name: str
    tokens: tuple[TokenSpec, ...]
    limits: Limits = field(default_factory=lambda: NO_LIMITS)
    """Its own limits (`opstrace.policy.limits`), over the instance's."""
    retention_days: Mapping[str, int] = field(default_factory=dict)
    """`metrics`/`logs` -> days, where the tenant keeps its data for its own time."""
    rules: RuleGroups | None = None
    """Its metrics rule groups (PromQL), uploaded to the metrics ruler by `up`."""
    log_rules: RuleGroups | None = None
    """Its logs rule groups (LogQL), uploaded to Loki's ruler by `up`."""
    alertmanager_config: AlertmanagerConfig | None = None
    """Its Alertmanager configuration; None: the instance's default (blackhole)."""
    allowed_networks: tuple[str, ...] = ()
    """The networks its endpoints take requests from, within the instance's; (): the
    instance's (`opstrace.gateway.sources`)."""
    grafana: GrafanaSpec = NO_GRAFANA
    """Its own Grafana (`opstrace.grafana`); the stack file gives every tenant one unless
    it says `grafana: false`."""


@dataclass(frozen=True)
class TrustedKey:
    """A public key trusted for tokens minted outside Pulumi."""

    pem: str
    """Normalized SPKI PEM."""
    tenant: str | None
    """The one tenant its tokens are accepted for; None: every tenant (Opstrace's way)."""


@dataclass(frozen=True)
class InstanceConfig:
    """The whole validated configuration of one instance."""

    instance_name: str
    domain: str
    dns: str
    """`route53`: the program manages the instance zone; `none`: DNS is managed
    elsewhere and the records to create are a stack output."""
    parent_zone_id: str
    tenants: tuple[TenantSpec, ...]
    """The system tenant first, then the user tenants in config order."""
    token_lifetime_seconds: int
    key_bits: int
    trusted_keys: tuple[TrustedKey, ...]
    """Extra public keys for tokens minted outside Pulumi."""
    kubeconfig: str
    """As written in config (`~` kept): the provider expands it, so state is portable."""
    kube_context: str
    cortex_url: str
    """An external metrics backend (Cortex layout), or "" for the instance's own Mimir."""
    loki_url: str
    """An external logs backend, or "" for the instance's own Loki."""
    gateway_replicas: int
    gateway_min_ready_seconds: int
    """How long a new gateway pod must be ready before a rollout goes on."""
    gateway_image: str
    gateway_sync_image: str
    """The stock Python image the gateway's sidecar runs in, by version."""
    """The stock HAProxy image (2.6 or newer) by version, ideally with its digest."""
    gateway: GatewaySettings
    """What the gateway pods render their files from: built once, from the tenants and
    the backends (`opstrace.gateway.upstreams.gateway_settings`)."""
    platform: PlatformConfig
    limits: Limits = field(default_factory=lambda: NO_LIMITS)
    """Every tenant's limits (`limits`); a tenant's own win key by key."""
    grafana_sso: SingleSignOn | None = None
    """The tenants' Grafanas' single sign-on provider; None: their admins only."""
    grafana_client_secret: str = field(default="", repr=False)
    """Its client's secret (a stack secret): made a Pulumi secret where it is used."""

    def overrides(self, group: str) -> dict[str, dict[str, Any]]:
        """The runtime overrides of the `metrics` or `logs` backend: every tenant's
        limits and retention, as that backend names them."""
        return limits.overrides(group, self.limits, self.tenants)

    def tenant_policy(self) -> dict[str, dict[str, Any]]:
        """Tenant -> what it sets for itself, for the plan and the stack outputs: its
        limits and retention as each backend reads them, its rule groups, and whose
        Alertmanager configuration it runs (no configuration text: receivers hold
        credentials), and the networks its endpoints take requests from ([]: every
        address; the system tenant's NAT addresses are added once they exist)."""
        by_backend = {group: self.overrides(group) for group in limits.GROUPS}
        return {
            spec.name: {
                **{group: by_backend[group].get(spec.name, {}) for group in limits.GROUPS},
                "rules": list(spec.rules.names) if spec.rules else [],
                "logRules": list(spec.log_rules.names) if spec.log_rules else [],
                "alertmanager": (
                    spec.alertmanager_config.source if spec.alertmanager_config else "default"
                ),
                "networks": list(
                    sources.within(spec.allowed_networks, self.gateway.instance_networks)
                ),
            }
            for spec in self.tenants
        }

    def key_entry(self, tenant: TenantSpec, token: TokenSpec) -> KeyEntry:
        """What the gateway knows of a token's key before it is minted: bound to its
        tenant, named, limited (`pem` empty: the key is filled in once known)."""
        name = names.credential_name(tenant.name, token.name)
        # A tenant that signs with one key file keeps its shared key in one shard.
        holder = tenant.name if token.signing_key_file else name
        return KeyEntry("", tenant.name, name, token.rate_limit, holder)

    def trusted_key_entries(self) -> list[KeyEntry]:
        """What the gateway knows of each `trustedKeys` entry (named by its place)."""
        return [
            KeyEntry(
                key.pem, key.tenant, names.trusted_key_name(position), holder=keys.key_id(key.pem)
            )
            for position, key in enumerate(self.trusted_keys)
        ]

    def token_scopes(self) -> dict[str, dict[str, list[str]]]:
        """Tenant -> token name -> what the token may do (every scope for a token listed
        without scopes), for the plan and the stack outputs."""
        return {
            spec.name: {token.name: list(token.scopes or SCOPES) for token in spec.tokens}
            for spec in self.tenants
        }

    def token_rate_limits(self) -> dict[str, dict[str, int]]:
        """Tenant -> token name -> requests per second at each gateway pod, for the tokens
        that have a limit (the plan and the stack outputs)."""
        limited = {
            spec.name: {token.name: token.rate_limit for token in spec.tokens if token.rate_limit}
            for spec in self.tenants
        }
        return {tenant: tokens for tenant, tokens in limited.items() if tokens}

    def backend_policies(self) -> dict[str, TenantPolicy]:
        """`metrics`/`logs` -> what the instance's own backend is told of its tenants:
        their overrides, and (Loki) where its ruler sends alerts."""
        alertmanager = rulers_alertmanager(self.gateway)
        return {
            limits.METRICS: TenantPolicy(self.overrides(limits.METRICS)),
            limits.LOGS: TenantPolicy(self.overrides(limits.LOGS), alertmanager),
        }

    @property
    def user_tenants(self) -> tuple[TenantSpec, ...]:
        return tuple(t for t in self.tenants if t.name != names.SYSTEM_TENANT)

    @property
    def needs_aws(self) -> bool:
        """Whether `pulumi up` makes AWS resources (and so needs AWS credentials)."""
        return platform.needs_aws(
            self.platform.cluster,
            route53=self.dns == "route53",
            external_backends=bool(self.cortex_url and self.loki_url),
        )
