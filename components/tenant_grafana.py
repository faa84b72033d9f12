"""A tenant's own Grafana: its Secret, its dashboards and its Helm release, in the
tenant's namespace (what it is given: `opstrace.grafana`, `chart_values.grafana_values`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.helm import helm_release
from components.passwords import GeneratedPassword
from opstrace import chart_values, charts, dashboards, grafana, names
from opstrace.grafana import GrafanaRelease, GrafanaSpec, SingleSignOn


@dataclass(frozen=True)
class TenantGrafanaArgs:
    """One tenant's Grafana and what it reads with."""

    tenant: str
    instance: str
    domain: str
    spec: GrafanaSpec
    namespace: pulumi.Input[str]
    token: pulumi.Output[str]
    """The tenant's read-only Grafana token (a secret)."""
    token_key_id: pulumi.Output[str]
    """Its key ID: a new token restarts Grafana."""
    sso: SingleSignOn | None
    client_secret: str
    gateway_address: pulumi.Input[str]
    """The gateway's in-cluster address (its internal Service's ClusterIP)."""
    storage_class: str
    ca_certificates: str
    """The roots its data sources trust beyond the system's ("": none)."""
    mirrors: Mapping[str, str]
    depends_on: Sequence[pulumi.Resource] = ()


class TenantGrafana(pulumi.ComponentResource):
    """A tenant's Grafana at `https://grafana.<tenant>.<instance>.<domain>`."""

    url: str
    admin_password: pulumi.Output[str]
    """Its admin's password (user `admin`) as Grafana first started with it; a secret."""

    def __init__(
        self, name: str, args: TenantGrafanaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Grafana", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        password = GeneratedPassword(f"{name}-admin-password", child)
        self.admin_password = pulumi.Output.secret(password.password)
        secret_data: dict[str, pulumi.Input[str]] = {
            grafana.TOKEN_KEY: args.token,
            grafana.ADMIN_USER_KEY: grafana.ADMIN_USER,
            grafana.ADMIN_PASSWORD_KEY: self.admin_password,
        }
        if args.sso is not None:
            secret_data[grafana.CLIENT_SECRET_KEY] = pulumi.Output.secret(args.client_secret)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=grafana.SECRET, namespace=args.namespace, labels=_labels(args.tenant)
            ),
            # Each value that must not show is a secret of its own (the token already is).
            string_data=secret_data,
            opts=child,
        )
        board_files: tuple[str, ...] = ()
        depends_on: list[pulumi.Resource] = [secret, *args.depends_on]
        if args.spec.dashboards:
            data = dashboards.config_map_data(args.spec.dashboards)
            board_files = tuple(sorted(data))
            depends_on.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-dashboards",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=grafana.DASHBOARDS_CONFIG_MAP,
                        namespace=args.namespace,
                        labels=_labels(args.tenant),
                    ),
                    data=data,
                    opts=child,
                )
            )
        self.url = names.tenant_endpoints(args.tenant, args.instance, args.domain, grafana=True)[
            names.GRAFANA_SERVICE
        ]
        values = pulumi.Output.all(
            gateway=args.gateway_address,
            version=pulumi.Output.all(args.token_key_id, password.id).apply(":".join),
        ).apply(
            lambda known: chart_values.grafana_values(
                GrafanaRelease(
                    tenant=args.tenant,
                    root_url=self.url,
                    datasources=grafana.datasources(
                        args.tenant, args.instance, args.domain, args.ca_certificates
                    ),
                    sso=args.sso,
                    roles=args.spec.roles,
                    storage_class=args.storage_class,
                    storage_gib=args.spec.storage_gib,
                    gateway_address=known["gateway"],
                    data_api_hosts=names.endpoint_hosts(args.tenant, args.instance, args.domain),
                    dashboard_files=board_files,
                    secret_version=known["version"],
                )
            )
        )
        helm_release(
            f"{name}-release",
            charts.GRAFANA,
            values,
            pulumi.ResourceOptions(parent=self, depends_on=depends_on),
            args.mirrors,
            namespace=args.namespace,
        )
        self.register_outputs({"url": self.url, "admin_password": self.admin_password})


def _labels(tenant: str) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "opstrace", "opstrace.io/tenant": tenant}
