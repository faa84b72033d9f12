"""Route53: the instance's hosted zone and one record per tenant endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from components.rules import names

RECORD_TTL: Final = 60
"""Short, so that a replaced load balancer is picked up within a minute."""


@dataclass(frozen=True)
class DnsArgs:
    """The zone `<instance>.<domain>` and the endpoints to publish in it."""

    instance: str
    domain: str
    tenants: Sequence[str]
    target: pulumi.Input[str]
    """Hostname the endpoints point at: the data API gateway's load balancer."""
    parent_zone_id: str = ""
    """If set, delegate the instance zone from this zone with an NS record."""


class Dns(pulumi.ComponentResource):
    """The instance's hosted zone, its optional delegation, and the tenant endpoints."""

    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[Sequence[str]]

    def __init__(
        self, name: str, args: DnsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Dns", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zone_name = names.instance_dns_name(args.instance, args.domain)
        zone = aws.route53.Zone(
            f"{name}-zone",
            name=zone_name,
            comment=f"Opstrace instance {args.instance}: tenant data API endpoints",
            opts=child,
        )
        if args.parent_zone_id:
            aws.route53.Record(
                f"{name}-delegation",
                zone_id=args.parent_zone_id,
                name=zone_name,
                type="NS",
                ttl=172800,
                records=zone.name_servers,
                opts=child,
            )
        for tenant in args.tenants:
            for service in names.ENDPOINT_SERVICES:
                aws.route53.Record(
                    f"{name}-{tenant}-{service}",
                    zone_id=zone.zone_id,
                    name=names.endpoint_host(service, tenant, args.instance, args.domain),
                    type="CNAME",
                    ttl=RECORD_TTL,
                    records=[args.target],
                    opts=child,
                )
        self.zone_id = zone.zone_id
        self.name_servers = zone.name_servers
        self.register_outputs({"zone_id": self.zone_id, "name_servers": self.name_servers})
