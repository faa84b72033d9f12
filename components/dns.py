"""Route53: the instance's hosted zone and one record per tenant endpoint.

The zone comes first (cert-manager answers the certificates' DNS-01 challenges in it),
the records last (they point at the gateway's load balancer): `Dns` makes the zone when
constructed and the records in `point_endpoints_at`, once the gateway exists.

The zone is not `force_destroy`: `pulumi destroy` deletes the records the program made,
then the zone, and stops with Route53's refusal (HostedZoneNotEmpty) if the zone still
holds a record someone else made (one added by hand, a validation record cert-manager
left behind), so that nothing the program did not make is deleted without a word. List
them with `aws route53 list-resource-record-sets --hosted-zone-id <zone>`, delete or
move what you want to keep, and run `destroy` again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from components.rules import names

RECORD_TTL: Final = 60
"""Short, so that a replaced load balancer is picked up within a minute."""
DELEGATION_TTL: Final = 3600
"""An hour, not the usual two days: a delegation that is still being set up (or fixed)
reaches resolvers quickly. Raise it once the instance is settled, if you like."""


@dataclass(frozen=True)
class DnsArgs:
    """The zone `<instance>.<domain>` and the endpoints to publish in it."""

    instance: str
    domain: str
    tenants: Sequence[str]
    parent_zone_id: str = ""
    """If set, delegate the instance zone from this zone with an NS record."""


class Dns(pulumi.ComponentResource):
    """The instance's hosted zone, its optional delegation, and the tenant endpoints."""

    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[Sequence[str]]
    """Delegate the instance zone to these when its parent is not in this account."""

    def __init__(
        self, name: str, args: DnsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Dns", name, None, opts)
        self._name = name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        zone_name = names.instance_dns_name(args.instance, args.domain)
        zone = aws.route53.Zone(
            f"{name}-zone",
            name=zone_name,
            comment=f"Opstrace instance {args.instance}: tenant data API endpoints",
            force_destroy=False,
            opts=child,
        )
        if args.parent_zone_id:
            aws.route53.Record(
                f"{name}-delegation",
                zone_id=args.parent_zone_id,
                name=zone_name,
                type="NS",
                ttl=DELEGATION_TTL,
                records=zone.name_servers,
                opts=child,
            )
        self.zone_id = zone.zone_id
        self.name_servers = zone.name_servers

    def point_endpoints_at(
        self, target: pulumi.Input[str], *, network_load_balancer: bool
    ) -> dict[str, list[aws.route53.Record]]:
        """Every tenant endpoint points at `target`, the gateway's load balancer hostname:
        an alias A record for an AWS NLB (no extra lookup, health-aware), else a CNAME.
        Call once, last. Returns each tenant's records."""
        # A record of one type cannot be created next to one of another for the same name:
        # a changed type (a CNAME made before aliases were used) is deleted first.
        child = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        args = self._args
        nlb_zone = (
            aws.lb.get_load_balancer_output(
                name=pulumi.Output.from_input(target).apply(names.load_balancer_name),
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).zone_id
            if network_load_balancer
            else None
        )
        records: dict[str, list[aws.route53.Record]] = {}
        for tenant in args.tenants:
            for service in names.ENDPOINT_SERVICES:
                host = names.endpoint_host(service, tenant, args.instance, args.domain)
                record = f"{self._name}-{tenant}-{service}"
                if nlb_zone is None:
                    records.setdefault(tenant, []).append(
                        aws.route53.Record(
                            record,
                            zone_id=self.zone_id,
                            name=host,
                            type="CNAME",
                            ttl=RECORD_TTL,
                            records=[target],
                            opts=child,
                        )
                    )
                    continue
                records.setdefault(tenant, []).append(
                    aws.route53.Record(
                        record,
                        zone_id=self.zone_id,
                        name=host,
                        type="A",
                        aliases=[
                            aws.route53.RecordAliasArgs(
                                name=target, zone_id=nlb_zone, evaluate_target_health=True
                            )
                        ],
                        opts=child,
                    )
                )
        self.register_outputs({"zone_id": self.zone_id, "name_servers": self.name_servers})
        return records
