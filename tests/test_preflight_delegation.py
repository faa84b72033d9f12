"""`make up`'s preflight says, before anything exists, which NS records the operator must
add at their DNS provider (tools.preflight.delegation_notice; issue 23, item 1).

The AWS CLI is a stand-in that answers as Route53 would; the delegation itself is asked
of a real authoritative server (tests/dns_server.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from opstrace.config.parse import parse_config
from opstrace.config.schema import InstanceConfig
from tests.dns_server import PARENT, ZONE, Knot, knot
from tools.preflight import Machine, delegation_notice

__all__ = ["knot"]  # the fixture
ROUTE53 = ["ns-7.awsdns-07.org", "ns-8.awsdns-08.net"]


def config(**settings: object) -> InstanceConfig:
    return parse_config(
        {"instanceName": "dev", "domain": PARENT, "tenants": ["prod"], **settings},
        aws_region="eu-central-1",
    )


def route53(zones: Mapping[str, str]) -> tuple[Machine, list[Sequence[str]]]:
    """An AWS CLI whose account has the public zones `zones` (name -> ID), each served by
    `ROUTE53`."""
    calls: list[Sequence[str]] = []

    def run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        args = list(command)
        if args[1:3] == ["route53", "list-hosted-zones-by-name"]:
            name = args[args.index("--dns-name") + 1]
            found = f"/hostedzone/{zones[name]}" if name in zones else "None"
            return subprocess.CompletedProcess(args, 0, f"{found}\n", "")
        if args[1:3] == ["route53", "get-hosted-zone"]:
            return subprocess.CompletedProcess(args, 0, "\t".join(ROUTE53) + "\n", "")
        raise AssertionError(f"unexpected command {args}")

    machine = Machine({}, lambda name: "/usr/bin/aws" if name == "aws" else None, run, bool)
    return machine, calls


def test_nothing_to_add_when_the_domains_zone_is_in_the_account() -> None:
    machine, calls = route53({PARENT: "Z0PARENT"})
    assert delegation_notice(config(), machine) is None
    assert [c[4] for c in calls] == [PARENT]


def test_nothing_to_add_when_the_parent_zone_is_named() -> None:
    machine, calls = route53({})
    assert delegation_notice(config(parentZoneId="Z0GIVEN"), machine) is None
    assert calls == []


def test_a_new_instance_is_told_to_add_the_records_once_up_made_the_zone() -> None:
    machine, _ = route53({})
    assert delegation_notice(config(), machine) == (
        f"dns: this account has no Route53 zone of {PARENT}: once `up` has made {ZONE}, add its "
        "NS records at your DNS provider (`up` waits up to 20 minutes for them, naming them, "
        "before it requests any certificate)"
    )


def test_an_existing_zone_not_yet_delegated_gets_its_records_named(knot: Knot) -> None:
    machine, _ = route53({ZONE: "Z0INSTANCE"})
    assert delegation_notice(config(), machine, knot.servers) == (
        f"dns: add these NS records at your DNS provider (this account has no Route53 zone of "
        f"{PARENT}): {ZONE}. 3600 IN NS ns-7.awsdns-07.org. ns-8.awsdns-08.net.; `up` waits up "
        "to 20 minutes for them before it requests any certificate"
    )
    knot.delegate(ZONE, ROUTE53)
    assert delegation_notice(config(), machine, knot.servers) is None
