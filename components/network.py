"""The instance's VPC: a public and a private subnet per zone, NAT for the private ones."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.rules import network


@dataclass(frozen=True)
class NetworkArgs:
    """The address plan's inputs (see `rules.network`)."""

    cluster_name: str
    """Tagged on the subnets so that the load balancer controller finds them."""
    cidr: str
    zones: int
    nat_per_zone: bool
    """A NAT gateway in each zone, or one for all (cheaper, one zone's outage cuts egress)."""
    region: str


class Network(pulumi.ComponentResource):
    """Nodes and pods in private subnets; load balancers and NAT in public ones."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
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
        shared = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": name},
            opts=child,
        )
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        )
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
        for plan in network.subnet_plan(args.cidr, args.zones):
            zone = zones.names[plan.zone_index]
            suffix = f"z{plan.zone_index}"
            public_subnet = aws.ec2.Subnet(
                f"{name}-public-{suffix}",
                vpc_id=vpc.id,
                cidr_block=plan.public,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**shared, **network.PUBLIC_SUBNET_TAGS, "Name": f"{name}-public-{suffix}"},
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
                tags={**shared, **network.PRIVATE_SUBNET_TAGS, "Name": f"{name}-private-{suffix}"},
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
            public.append(public_subnet.id)
            private.append(private_subnet.id)
            private_route_tables.append(private_routes.id)
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
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
            }
        )
