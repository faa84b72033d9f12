"""The instance's VPC: a public and a private subnet per zone, NAT for the private ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import pulumi
import pulumi_aws as aws

from components.bail import reported
from opstrace.aws import subnets, zones


@dataclass(frozen=True)
class NetworkArgs:
    """The address plan's inputs (see `opstrace.aws.subnets`)."""

    cluster_name: str
    """Tagged on the subnets so that the load balancer controller finds them."""
    cidr: str
    zones: int | Sequence[str]
    """How many of the region's usable zones (the first ones), or which (their names)."""
    nat_per_zone: bool
    """A NAT gateway in each zone, or one for all (cheaper, one zone's outage cuts egress)."""
    region: str


class Network(pulumi.ComponentResource):
    """Nodes and pods in private subnets; load balancers and NAT in public ones."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    egress_addresses: pulumi.Output[list[str]]
    """The NAT gateways' public addresses (`/32`): where the nodes' and pods' outbound
    traffic comes from, the instance's collector's pushes included."""
    routing: list[pulumi.Resource]
    """Each subnet's route table association, and through it its routes, the NAT gateways
    and the internet gateway: what anything running in the subnets needs (nodes join
    through NAT; an internet-facing load balancer needs the internet gateway, whose
    detach fails while the load balancer's public addresses are mapped)."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": name},
            opts=child,
        )
        # Only zones EKS accepts (opstrace.aws.zones): no Local or Wavelength Zone, none
        # that needs opting in, none of the zone IDs EKS refuses for a cluster's subnets.
        usable = aws.get_availability_zones_output(
            state="available",
            filters=[
                aws.GetAvailabilityZonesFilterArgs(name=name, values=list(values))
                for name, values in zones.ZONE_FILTERS
            ],
            exclude_zone_ids=list(zones.EKS_UNSUPPORTED_ZONE_IDS),
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        chosen = usable.names.apply(reported(partial(zones.choose, args.zones)))
        count = args.zones if isinstance(args.zones, int) else len(args.zones)
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            opts=child,
        )
        self.routing = []
        public: list[pulumi.Output[str]] = []
        private: list[pulumi.Output[str]] = []
        private_route_tables: list[pulumi.Output[str]] = []
        nats: list[aws.ec2.NatGateway] = []
        self._nat_addresses: list[aws.ec2.Eip] = []
        for plan in subnets.subnet_plan(args.cidr, count):
            public_id, private_id, route_table_id = self._zone(
                name, args, plan, chosen[plan.zone_index], vpc, gateway, public_routes, nats
            )
            public.append(public_id)
            private.append(private_id)
            private_route_tables.append(route_table_id)
        # The backends' S3 traffic stays inside AWS: not through NAT, not billed per GB.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=private_route_tables,
            opts=child,
        )
        self.vpc_id = vpc.id
        self.private_subnet_ids = private
        self.public_subnet_ids = public
        self.egress_addresses = pulumi.Output.all(
            *(address.public_ip for address in self._nat_addresses)
        ).apply(lambda ips: [f"{ip}/32" for ip in ips])
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
                "egress_addresses": self.egress_addresses,
            }
        )

    def _zone(
        self,
        name: str,
        args: NetworkArgs,
        plan: subnets.SubnetPlan,
        zone: pulumi.Input[str],
        vpc: aws.ec2.Vpc,
        gateway: aws.ec2.InternetGateway,
        public_routes: aws.ec2.RouteTable,
        nats: list[aws.ec2.NatGateway],
    ) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
        """One zone's public and private subnet, their routes, and its NAT gateway (or the
        first zone's, with one NAT); (public subnet, private subnet, private route table)."""
        child = pulumi.ResourceOptions(parent=self)
        shared = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}
        suffix = f"z{plan.zone_index}"
        public_subnet = aws.ec2.Subnet(
            f"{name}-public-{suffix}",
            vpc_id=vpc.id,
            cidr_block=plan.public,
            availability_zone=zone,
            map_public_ip_on_launch=False,
            tags={**shared, **subnets.PUBLIC_SUBNET_TAGS, "Name": f"{name}-public-{suffix}"},
            opts=child,
        )
        self.routing.append(
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{suffix}",
                subnet_id=public_subnet.id,
                route_table_id=public_routes.id,
                opts=child,
            )
        )
        if args.nat_per_zone or not nats:
            address = aws.ec2.Eip(f"{name}-nat-{suffix}", domain="vpc", opts=child)
            self._nat_addresses.append(address)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{suffix}",
                    allocation_id=address.id,
                    subnet_id=public_subnet.id,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
                )
            )
        private_subnet = aws.ec2.Subnet(
            f"{name}-private-{suffix}",
            vpc_id=vpc.id,
            cidr_block=plan.private,
            availability_zone=zone,
            tags={**shared, **subnets.PRIVATE_SUBNET_TAGS, "Name": f"{name}-private-{suffix}"},
            opts=child,
        )
        private_routes = aws.ec2.RouteTable(
            f"{name}-private-{suffix}",
            vpc_id=vpc.id,
            routes=[
                aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nats[-1].id)
            ],
            opts=child,
        )
        self.routing.append(
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{suffix}",
                subnet_id=private_subnet.id,
                route_table_id=private_routes.id,
                opts=child,
            )
        )
        return public_subnet.id, private_subnet.id, private_routes.id
