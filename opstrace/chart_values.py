"""The values the instance gives each chart it installs (`charts` pins the charts).

Pure, no Pulumi: each `*_values` function builds the values of one chart from plain
settings, so tests check exactly what the release will be given, and `make charts`
renders the real charts with them.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from opstrace import grafana
from opstrace.charts import (
    CERT_MANAGER_SERVICE_ACCOUNT,
    IRSA_ANNOTATION,
    LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
    LOKI_SERVICE_ACCOUNT,
    MIMIR_SERVICE_ACCOUNT,
)
from opstrace.config.sizes import SINGLE_BINARY, Size
from opstrace.grafana import GrafanaRelease
from opstrace.mimir_sizing import SMALL_YAML
from opstrace.policy.limits import runtime_config
from opstrace.policy.rule_files import DEFAULT_ALERTMANAGER_CONFIG

Values = dict[str, Any]


@dataclass(frozen=True)
class TenantPolicy:
    """What a backend is told of its tenants beyond the instance's defaults."""

    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Tenant -> the backend's limit -> value (`limits.overrides`): its runtime
    configuration, which it reloads without a restart."""
    alertmanager_url: str = ""
    """Where its ruler sends alerts (the tenants' Alertmanager API); "" for Mimir, whose
    ruler the chart points at Mimir's own Alertmanager."""


def merged(base: Values, over: Values) -> Values:
    """`over` on `base`, maps merged key by key as Helm merges values files."""
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict) and value:
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


ValuesBuilder = Callable[[Size, str, str, str, int, str, TenantPolicy], Values]
"""(size, bucket, region, role ARN, retention days, storage class, tenant policy) -> a
backend's values."""


def _service_account(name: str, role_arn: str) -> Values:
    return {"create": True, "name": name, "annotations": {IRSA_ANNOTATION: role_arn}}


CLASSIC_ARCHITECTURE: Final[Values] = {
    # The chart's Kafka StatefulSet: not installed.
    "kafka": {"enabled": False},
    # mimir.structuredConfig: distributors write to the ingesters, not to Kafka.
    "ingest_storage": {"enabled": False},
    # The chart turns the ingesters' gRPC Push method off (they read from Kafka); the
    # classic file removes that setting, which leaves Mimir's default, on. Set on here
    # explicitly: with it off every remote_write fails while every pod is healthy.
    "ingester": {"push_grpc_method_enabled": True},
}
"""mimir-distributed 6.x's `classic-architecture.yaml`, key by key. `kafka` is a chart
value; the rest go under `mimir.structuredConfig`.

The file also sets four keys to null, which makes Helm drop the chart's own setting:
`ingest_storage.kafka.address`, `.topic` and `.auto_create_topic_default_partitions`
(the Kafka client, which Mimir does not use while `ingest_storage.enabled` is false) and
`distributor.remote_timeout` (the chart lengthens the distributors' wait for a write).
They are not passed: Pulumi drops null values from a release's values before Helm sees
them (a test keeps every value non-null), so the chart's Kafka client settings stay in
the rendered configuration, unused, and the distributors keep the chart's timeout."""


def runs_rollout_operator(size: Size) -> bool:
    """Whether Mimir's chart runs its rollout operator: for zone-aware ingesters and store
    gateways, whose StatefulSets it rolls one zone at a time."""
    return size.metrics.zone_aware


def mimir_values(
    size: Size,
    bucket: str,
    region: str,
    role_arn: str,
    retention_days: int,
    storage_class: str,
    policy: TenantPolicy,
) -> Values:
    """Mimir on one S3 bucket (a prefix per store), multi-tenant, no gateway, in the
    classic architecture, with its ruler and Alertmanager (their state in the bucket's
    `ruler` and `alertmanager` prefixes) and the tenants' limits in its runtime
    configuration.

    mimir-distributed 6.x defaults to ingest storage: distributors write to Kafka,
    ingesters read from it, and the chart's config turns the ingesters' gRPC push method
    off. The keys of the chart's own `classic-architecture.yaml` are set here (see
    `CLASSIC_ARCHITECTURE`), so that distributors push straight to the ingesters."""
    metrics = size.metrics
    classic = copy.deepcopy(CLASSIC_ARCHITECTURE)
    zones = {
        "enabled": metrics.zone_aware,
        "topologyKey": "topology.kubernetes.io/zone",
    }
    # Disks go with the pods when the chart is uninstalled (the data is in S3; a disk
    # left behind after `destroy` would be billed forever).
    persistent: Values = {
        "enableRetentionPolicy": True,
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    if storage_class:
        persistent["storageClass"] = storage_class
    ingester_resources = (
        {} if metrics.sizing_file else {"requests": {"cpu": "1", "memory": metrics.ingester_memory}}
    )
    values: Values = {
        "minio": {"enabled": False},
        "kafka": classic["kafka"],
        "rollout_operator": {"enabled": runs_rollout_operator(size)},
        "alertmanager": {
            "enabled": True,
            "replicas": metrics.alertmanagers,
            # One Service the gateway reaches every tenant's Alertmanager through; the
            # replicas share each tenant's state by their own ring.
            "zoneAwareReplication": {"enabled": False},
            # Every tenant's configuration until it uploads its own.
            "fallbackConfig": DEFAULT_ALERTMANAGER_CONFIG,
            "persistentVolume": {"size": "1Gi", **persistent},
        },
        "ruler": {"enabled": True, "replicas": metrics.rulers},
        # Reloaded by every component every few seconds: a change restarts nothing.
        "runtimeConfig": runtime_config(policy.overrides),
        # Its nginx gateway: 6.x's key (`enabledNonEnterprise` was 5.x's, which 6.x ignores,
        # rendering the gateway, as `make charts` showed).
        "gateway": {"enabled": False},
        "serviceAccount": _service_account(MIMIR_SERVICE_ACCOUNT, role_arn),
        "mimir": {
            "structuredConfig": {
                "multitenancy_enabled": True,
                "ingest_storage": classic["ingest_storage"],
                "common": {
                    "storage": {
                        "backend": "s3",
                        "s3": {
                            "bucket_name": bucket,
                            "endpoint": f"s3.{region}.amazonaws.com",
                            "region": region,
                        },
                    }
                },
                "blocks_storage": {"storage_prefix": "blocks"},
                "ruler_storage": {"storage_prefix": "ruler"},
                "alertmanager_storage": {"storage_prefix": "alertmanager"},
                "limits": {"compactor_blocks_retention_period": f"{retention_days}d"},
                "ingester": {
                    **classic["ingester"],
                    "ring": {
                        "replication_factor": metrics.replication_factor,
                        "zone_awareness_enabled": metrics.zone_aware,
                    },
                },
            }
        },
        "ingester": {
            "replicas": metrics.ingesters,
            "zoneAwareReplication": zones,
            **({"resources": ingester_resources} if ingester_resources else {}),
            "persistentVolume": {"size": "50Gi", **persistent},
        },
        "distributor": {"replicas": metrics.distributors},
        "querier": {"replicas": metrics.queriers},
        "query_frontend": {"replicas": metrics.query_frontends},
        "store_gateway": {
            "replicas": metrics.store_gateways,
            "zoneAwareReplication": zones,
            "persistentVolume": {"size": "20Gi", **persistent},
        },
        "compactor": {"replicas": 1, "persistentVolume": {"size": "20Gi", **persistent}},
    }
    # Mimir's sizing file first, the instance's settings over it.
    return merged(SMALL_YAML, values) if metrics.sizing_file else values


def loki_values(
    size: Size,
    bucket: str,
    region: str,
    role_arn: str,
    retention_days: int,
    storage_class: str,
    policy: TenantPolicy,
) -> Values:
    """Loki on one S3 bucket, multi-tenant (`auth_enabled`), no gateway, canary or tests;
    its ruler (rules in the bucket, alerts to the tenants' Alertmanager) with its API,
    and the tenants' limits in its runtime configuration."""
    logs = size.logs
    single = logs.mode == SINGLE_BINARY
    # Disks go with the pods when the chart is uninstalled (the data is in S3).
    volume: Values = {"enableStatefulSetAutoDeletePVC": True, "whenDeleted": "Delete"}
    if storage_class:
        volume["storageClass"] = storage_class
    persistence = {"persistence": volume}
    targets = {
        name: {"replicas": 0 if single else logs.replicas, **persistence}
        for name in ("write", "read", "backend")
    }
    return {
        "deploymentMode": logs.mode,
        "loki": {
            "auth_enabled": True,
            "commonConfig": {"replication_factor": logs.replication_factor},
            "schemaConfig": {
                "configs": [
                    {
                        "from": "2026-01-01",
                        "store": "tsdb",
                        "object_store": "s3",
                        "schema": "v13",
                        "index": {"prefix": "index_", "period": "24h"},
                    }
                ]
            },
            "storage": {
                "type": "s3",
                "bucketNames": {"chunks": bucket, "ruler": bucket, "admin": bucket},
                "s3": {"region": region},
            },
            # OTLP logs (/otlp/v1/logs) keep their resource and log attributes as
            # structured metadata (tsdb, schema v13); Loki 3's default, said here.
            "limits_config": {
                "retention_period": f"{retention_days * 24}h",
                "allow_structured_metadata": True,
            },
            "compactor": {"retention_enabled": True, "delete_request_store": "s3"},
            # The chart adds the storage (the bucket's ruler prefix) to these.
            "rulerConfig": {"enable_api": True, "alertmanager_url": policy.alertmanager_url},
            # Reloaded every few seconds: a change restarts nothing.
            "runtimeConfig": runtime_config(policy.overrides),
        },
        "serviceAccount": _service_account(LOKI_SERVICE_ACCOUNT, role_arn),
        "gateway": {"enabled": False},
        "lokiCanary": {"enabled": False},
        # The sidecar loads rules from ConfigMaps; the tenants' rules are in the bucket.
        "sidecar": {"rules": {"enabled": False}},
        "test": {"enabled": False},
        "minio": {"enabled": False},
        "chunksCache": {"enabled": not single},
        "resultsCache": {"enabled": not single},
        "singleBinary": {"replicas": logs.replicas if single else 0, **persistence},
        **targets,
    }


def load_balancer_controller_values(
    cluster_name: str, region: str, vpc_id: str, role_arn: str
) -> Values:
    """The controller, for Services only: it does not take over other LoadBalancers."""
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "replicaCount": 2,
        "enableServiceMutatorWebhook": False,
        "serviceAccount": _service_account(LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT, role_arn),
    }


def cert_manager_values(role_arn: str) -> Values:
    """cert-manager with its CRDs, allowed to answer DNS-01 in Route53 through IRSA."""
    return {
        "crds": {"enabled": True, "keep": False},
        "serviceAccount": _service_account(CERT_MANAGER_SERVICE_ACCOUNT, role_arn),
        # The projected IRSA token must be readable by cert-manager's non-root user.
        "securityContext": {"fsGroup": 1001, "runAsNonRoot": True},
    }


def alloy_values(config: str, token_secret: str, token_dir: str) -> Values:
    """Alloy on every node with `config` (see `alloy_config`), the token mounted read-only."""
    return {
        "controller": {
            "type": "daemonset",
            "volumes": {"extra": [{"name": "token", "secret": {"secretName": token_secret}}]},
        },
        "alloy": {
            "configMap": {"create": True, "content": config},
            "mounts": {"extra": [{"name": "token", "mountPath": token_dir, "readOnly": True}]},
            "enableReporting": False,
        },
        "crds": {"create": False},
    }


GRAFANA_MEMORY_LIMIT: Final = "1Gi"
"""A tenant's Grafana's memory limit; the chart sets Go's GOMEMLIMIT to it, so that
Grafana collects garbage before the kernel kills it."""
GRAFANA_DASHBOARDS_PROVIDER: Final = "opstrace"
"""The dashboard provider that reads `grafana.DASHBOARDS_CONFIG_MAP`: the chart mounts
that ConfigMap at /var/lib/grafana/dashboards/<provider>."""
GRAFANA_SECRET_VERSION_ANNOTATION: Final = "opstrace.io/secret-version"
"""The pod annotation carrying `GrafanaRelease.secret_version`."""


def grafana_values(release: GrafanaRelease) -> Values:
    """One tenant's Grafana (the grafana chart, `charts.GRAFANA`), secure by default: its
    secrets read from `grafana.SECRET` (never in the values), no anonymous access, no
    sign-up but by single sign-on with a mapped role, its data sources and dashboards
    provisioned read-only, its state on a volume of its own, nothing of the chart's that
    talks to the Kubernetes API.

    Raises ValueError when `release.gateway_address` is set and is not an IP address
    (a pod's `hostAliases` take addresses only)."""
    if release.gateway_address:
        try:
            ipaddress.ip_address(release.gateway_address)
        except ValueError:
            raise ValueError(
                f"{release.tenant}: Grafana's gateway address {release.gateway_address!r} is "
                "not an IP address: give the gateway Service's cluster IP, or '' to resolve "
                "the data API hosts through DNS"
            ) from None
    host = urlsplit(release.root_url).hostname or ""
    secret = grafana.SECRET

    def from_secret(key: str) -> Values:
        return {"secretKeyRef": {"name": secret, "key": key}}

    env_from_secret = {grafana.TOKEN_ENV: from_secret(grafana.TOKEN_KEY)}
    ini: Values = {
        "server": {"root_url": release.root_url, "domain": host},
        "security": {
            # Browsers send the session cookie over HTTPS only (the gateway serves
            # Grafana's host over TLS alone), not with cross-site POSTs.
            "cookie_secure": True,
            "cookie_samesite": "lax",
            # Gravatar would tell a third party who looks at which Grafana.
            "disable_gravatar": True,
            "strict_transport_security": True,
            # No framing of the tenant's dashboards by other sites (clickjacking).
            "allow_embedding": False,
            # Grafana's own Content-Security-Policy template (scripts by nonce).
            "content_security_policy": True,
        },
        "auth.anonymous": {"enabled": False},
        # Accounts come from single sign-on only (its own allow_sign_up below); nobody
        # may create one from the login page, nor an organization of their own.
        "users": {"allow_sign_up": False, "allow_org_create": False},
        # A tenant's Grafana calls nobody but its data sources and its SSO provider.
        "analytics": {
            "reporting_enabled": False,
            "check_for_updates": False,
            "check_for_plugin_updates": False,
        },
        "news": {"news_feed_enabled": False},
    }
    sso = release.sso
    if sso is not None:
        # The client secret reaches Grafana as GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET,
        # which overrides the (absent) `client_secret` key: never in the values.
        env_from_secret["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"] = from_secret(
            grafana.CLIENT_SECRET_KEY
        )
        ini["auth.generic_oauth"] = {
            "enabled": True,
            "name": sso.name,
            "client_id": sso.client_id,
            "scopes": " ".join(sso.scopes),
            "auth_url": sso.auth_url,
            "token_url": sso.token_url,
            "api_url": sso.api_url,
            "use_pkce": True,
            # The highest role a grant gives, else '' which, strict, refuses the login:
            # with no grants nobody signs in through SSO, only the admin.
            "role_attribute_path": grafana.role_attribute_path(
                release.roles, sso.groups_attribute_path
            ),
            "role_attribute_strict": True,
            # The server admin is the Secret's admin alone; no SSO user becomes one.
            "allow_assign_grafana_admin": False,
            # A user with a mapped role gets an account at their first login, and their
            # role is synchronized from the provider at every login.
            "allow_sign_up": True,
            "skip_org_role_sync": False,
            "groups_attribute_path": sso.groups_attribute_path,
        }
    persistence: Values = {
        "enabled": True,
        "type": "pvc",
        "accessModes": ["ReadWriteOnce"],
        "size": f"{release.storage_gib}Gi",
    }
    if release.storage_class:
        persistence["storageClassName"] = release.storage_class
    values: Values = {
        # The admin's name and password from the tenant's Secret: the chart makes no
        # Secret of its own and writes no password into the values.
        "admin": {
            "existingSecret": secret,
            "userKey": grafana.ADMIN_USER_KEY,
            "passwordKey": grafana.ADMIN_PASSWORD_KEY,
        },
        "envValueFrom": env_from_secret,
        "grafana.ini": ini,
        "datasources": {
            "datasources.yaml": {"apiVersion": 1, "datasources": list(release.datasources)}
        },
        # Its database (users, their preferences and stars, dashboards and alert rules
        # made in the UI, service accounts) on a disk that outlives the pod; data
        # sources and the tenant's dashboards are provisioned again at every start.
        "persistence": persistence,
        # One ReadWriteOnce disk: the old pod lets go of it before the new one starts.
        "deploymentStrategy": {"type": "Recreate"},
        # The volume is new and the pod's fsGroup (the chart's 472) owns it: no root
        # init container to chown it.
        "initChownData": {"enabled": False},
        # A new token or password restarts Grafana, which reads its environment once.
        "podAnnotations": {GRAFANA_SECRET_VERSION_ANNOTATION: release.secret_version},
        # The gateway's one way in: a cluster-internal Service.
        "service": {
            "enabled": True,
            "type": "ClusterIP",
            "port": grafana.SERVICE_PORT,
            "targetPort": grafana.CONTAINER_PORT,
        },
        "ingress": {"enabled": False},
        # Grafana does not talk to the Kubernetes API: no Role, no token in the pod.
        "rbac": {"create": False},
        "serviceAccount": {"create": True, "automountServiceAccountToken": False},
        "automountServiceAccountToken": False,
        # No Kubernetes Service variables of the tenant's namespace in its environment.
        "enableServiceLinks": False,
        # The program makes the tenant namespace's NetworkPolicies.
        "networkPolicy": {"enabled": False},
        # The chart's test pod is not installed (and its image not pulled).
        "testFramework": {"enabled": False},
        # The sidecars watch ConfigMaps through the Kubernetes API; the dashboards come
        # from one ConfigMap mounted as files instead.
        "sidecar": {
            kind: {"enabled": False}
            for kind in ("alerts", "dashboards", "datasources", "plugins", "notifiers")
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": GRAFANA_MEMORY_LIMIT},
        },
    }
    if release.dashboard_files:
        # Dashboards as code: read-only in the UI (a change made there would differ
        # from the code and be lost when the file changes); users save their own copy.
        values["dashboardProviders"] = {
            "dashboardproviders.yaml": {
                "apiVersion": 1,
                "providers": [
                    {
                        "name": GRAFANA_DASHBOARDS_PROVIDER,
                        "orgId": 1,
                        "folder": "",
                        "type": "file",
                        "disableDeletion": True,
                        "allowUiUpdates": False,
                        "options": {
                            "path": f"/var/lib/grafana/dashboards/{GRAFANA_DASHBOARDS_PROVIDER}"
                        },
                    }
                ],
            }
        }
        values["dashboardsConfigMaps"] = {
            GRAFANA_DASHBOARDS_PROVIDER: grafana.DASHBOARDS_CONFIG_MAP
        }
    if release.gateway_address:
        # The tenant's data API hosts resolve to the gateway inside the cluster: the
        # data sources' queries never leave it, with the certificate's names unchanged.
        values["hostAliases"] = [
            {"ip": release.gateway_address, "hostnames": list(release.data_api_hosts)}
        ]
    return values
