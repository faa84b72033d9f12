"""Which availability zones the instance's VPC and EKS cluster use.

Pure, no Pulumi. The zones come from EC2's `DescribeAvailabilityZones` (pulumi-aws
`get_availability_zones`) with `ZONE_FILTERS` and without `EKS_UNSUPPORTED_ZONE_IDS`:

- "When Local Zones are enabled in a region, by default the API and this data source
  include both Local Zones and Availability Zones. To return only Availability Zones, see
  the example section below." (pulumi-aws 7.51.1 `get_availability_zones`, whose example
  filters on `opt-in-status: opt-in-not-required`); `zone-type` is `availability-zone`,
  `local-zone` or `wavelength-zone` (EC2 DescribeAvailabilityZones filters).
- The EKS user guide, `latest/ug/networking/network-reqs.adoc` (awsdocs/amazon-eks-user-guide
  @ 101184ecc138f7f661b484f2cabac7022b726a6b), "Subnet requirements for clusters": "The
  subnets can't reside in the following Availability Zones": us-east-1 `use1-az3`,
  us-west-1 `usw1-az2`, ca-central-1 `cac1-az3`. A cluster with a subnet there fails with
  `UnsupportedAvailabilityZoneException`, after the VPC and NAT exist.

Zone names map to zone IDs differently in every account; IDs do not: the refused zones
are excluded by ID.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from opstrace.errors import OpstraceError

EKS_UNSUPPORTED_ZONE_IDS: Final = ("use1-az3", "usw1-az2", "cac1-az3")
ZONE_FILTERS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("opt-in-status", ("opt-in-not-required",)),
    ("zone-type", ("availability-zone",)),
)
"""EC2 filter name -> the values a zone must have."""
ZONE_NAME_RE: Final = re.compile(r"^(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9])[a-z]$")
"""An availability zone's name: its region and one letter (Local and Wavelength Zones
have longer names, e.g. us-east-1-bos-1a)."""


class ZoneError(OpstraceError):
    """Raised when the named zones are not zones the cluster can use in this account."""


def choose(wanted: int | Sequence[str], names: Sequence[str]) -> list[str]:
    """The zones to use: the first `wanted` of `names` (the region's usable zones, in
    EC2's order), or the named ones, each of which must be among `names`."""
    if isinstance(wanted, int):
        if len(names) < wanted:
            raise ZoneError(
                f"availabilityZones: {wanted} zones wanted, but the region has only "
                f"{len(names)} that EKS accepts ({', '.join(names) or 'none'}): use "
                f"{len(names)} or fewer"
            )
        return list(names[:wanted])
    refused = [zone for zone in wanted if zone not in names]
    if refused:
        raise ZoneError(
            f"availabilityZones: {refused[0]!r} is not a zone EKS accepts in this account "
            "(a Local or Wavelength Zone, one that needs opting in, or one EKS refuses: "
            f"{', '.join(EKS_UNSUPPORTED_ZONE_IDS)}): use some of {', '.join(names)}"
        )
    return list(wanted)
