"""Route53: the instance's hosted zone, its delegation, and one record per tenant endpoint.

The zone comes first (cert-manager answers the certificates' DNS-01 challenges in it),
the records last (they point at the gateway's load balancer): `Dns` makes the zone when
constructed and the records in `point_endpoints_at`, once the gateway exists.

The zone is delegated from `parentZoneId`, else from the domain's own public zone (or
the nearest parent domain's) if this account has one in Route53; otherwise the operator
adds the NS records at their DNS provider, and every preview names them until `up` has
seen them. Either way `up` requests no certificate before the delegation is visible
(`DelegationCheck`): without it cert-manager would wait until the certificates time out.

The zone is not `force_destroy`: `pulumi destroy` deletes the records the program made,
then the zone, and stops with Route53's refusal (HostedZoneNotEmpty) if the zone still
holds a record someone else made (one added by hand, a validation record cert-manager
left behind), so that nothing the program did not make is deleted without a word. List
them with `aws route53 list-resource-record-sets --hosted-zone-id <zone>`, delete or
move what you want to keep, and run `destroy` again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from components.delegation_check import DelegationCheck, DelegationCheckArgs
from opstrace import delegation, names

RECORD_TTL: Final = 60
"""Short, so that a replaced load balancer is picked up within a minute."""


@dataclass(frozen=True)
class DnsArgs:
    """The zone `<instance>.<domain>` and the endpoints to publish in it."""

    instance: str
    domain: str
    tenants: Mapping[str, bool]
    """Tenant -> whether it has a Grafana (whose host gets a record too)."""
    parent_zone_id: str = ""
    """If set, delegate the instance zone from this zone with an NS record; else from the
    domain's public zone in this account, if there is one."""


class Dns(pulumi.ComponentResource):
    """The instance's hosted zone, its optional delegation, and the tenant endpoints."""

    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[Sequence[str]]
    """Delegate the instance zone to these when its parent is not in this account."""
    delegated: DelegationCheck
    """Done once the delegation is visible: what certificates wait for."""

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
        parent = args.parent_zone_id or _zone_in_account(args.domain, self)
        made: list[pulumi.Resource] = []
        if parent:
            made.append(
                aws.route53.Record(
                    f"{name}-delegation",
                    zone_id=parent,
                    name=zone_name,
                    type="NS",
                    ttl=delegation.DELEGATION_TTL,
                    records=zone.name_servers,
                    # A zone found in the account may hold the records already (made by
                    # hand before the program looked for it): take them over.
                    allow_overwrite=None if args.parent_zone_id else True,
                    opts=child,
                )
            )
        self.delegated = DelegationCheck(
            f"{name}-delegation-check",
            DelegationCheckArgs(zone=zone_name, name_servers=zone.name_servers),
            pulumi.ResourceOptions(parent=self, depends_on=made),
        )
        if not parent:
            _report_delegation(args.domain, zone_name, zone.name_servers, self.delegated)
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
        for tenant, grafana in args.tenants.items():
            for service in names.tenant_services(grafana):
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


def _zone_in_account(domain: str, parent: pulumi.Resource) -> str:
    """The ID of the public Route53 zone of `domain` or of its nearest parent domain in
    this account, or "" (the data source fails when there is none: that is the answer)."""
    for candidate in delegation.parent_candidates(domain):
        try:
            found = aws.route53.get_zone(
                name=candidate, private_zone=False, opts=pulumi.InvokeOptions(parent=parent)
            )
        except Exception:  # noqa: S112 (the data source's only answer for "no such zone")
            continue
        return str(found.zone_id)
    return ""


def _report_delegation(
    domain: str, zone: str, name_servers: pulumi.Output[Sequence[str]], check: DelegationCheck
) -> None:
    """Preview warns with the NS records the operator must add elsewhere until an `up`
    has seen them; `up` says them as soon as the zone exists, while it waits for them."""
    if pulumi.runtime.is_dry_run():

        def warn(values: list[object]) -> None:
            servers, seen = values
            known = isinstance(servers, list) and not pulumi.output.contains_unknowns(servers)
            notice = delegation.preview_notice(
                domain,
                zone,
                [str(s) for s in servers] if known and isinstance(servers, list) else None,
                [str(s) for s in seen] if isinstance(seen, list) else None,
            )
            if notice:
                pulumi.log.warn(notice, resource=check)

        pulumi.Output.all(name_servers, check.delegated_to).apply(warn, run_with_unknowns=True)
        return
    name_servers.apply(
        lambda servers: pulumi.log.info(
            f"dns: {zone} must be delegated at your DNS provider: "
            f"{delegation.records_to_add(zone, servers)} (checked before any certificate)",
            resource=check,
        )
    )
