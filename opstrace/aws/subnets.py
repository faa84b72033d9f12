"""The instance VPC's address plan: one private and one public subnet per zone.

Pure arithmetic, no Pulumi. The private subnets hold the nodes and, with the VPC CNI,
every pod's address, so they get three quarters of the VPC; the public subnets hold
only load balancers and NAT gateways, and share what is left.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

MAX_ZONES: Final = 3

PUBLIC_SUBNET_TAGS: Final = {"kubernetes.io/role/elb": "1"}
"""Where the AWS Load Balancer Controller puts internet-facing load balancers."""
PRIVATE_SUBNET_TAGS: Final = {"kubernetes.io/role/internal-elb": "1"}


@dataclass(frozen=True)
class SubnetPlan:
    """The CIDR blocks of one zone's subnets."""

    zone_index: int
    private: str
    public: str


def subnet_plan(vpc_cidr: str, zones: int) -> list[SubnetPlan]:
    """Private: the VPC split in four, one quarter per zone. Public: the last quarter
    split in four again, one part per zone. At most 3 zones; blocks never overlap."""
    if not 1 <= zones <= MAX_ZONES:
        raise ValueError(f"zones: {zones} is not allowed: use 1 to {MAX_ZONES}")
    quarters = list(ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=2))
    public_parts = list(quarters[3].subnets(prefixlen_diff=2))
    return [
        SubnetPlan(index, str(quarters[index]), str(public_parts[index])) for index in range(zones)
    ]
