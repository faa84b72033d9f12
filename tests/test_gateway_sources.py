"""The network allowlists as the gateway renders them (`opstrace.gateway.sources`) and as
the stack file sets them (`opstrace.config.networks`); a real HAProxy enforces them in
tests/e2e/test_gateway_sources.py."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from opstrace import names
from opstrace.config.read import ConfigError
from opstrace.gateway import manifests, sources
from tests.test_config import parse

SYSTEM = names.SYSTEM_TENANT


def test_a_tenants_list_is_its_own_networks_within_the_instances() -> None:
    assert sources.within(["203.0.113.0/25", "198.51.100.0/24"], ["203.0.113.0/24"]) == (
        "203.0.113.0/25",
    )
    assert sources.within(["203.0.113.0/24"], ["203.0.113.8/29", "203.0.113.64/26"]) == (
        "203.0.113.8/29",
        "203.0.113.64/26",
    )


def test_without_an_instance_list_a_tenant_keeps_its_own_and_without_its_own_takes_it() -> None:
    assert sources.within(["203.0.113.0/24"], []) == ("203.0.113.0/24",)
    assert sources.within([], ["203.0.113.0/24"]) == ("203.0.113.0/24",)
    assert sources.within([], []) == ()


def test_the_system_tenant_takes_the_instances_egress_only_when_the_instance_has_a_list() -> None:
    tenants = (SYSTEM, "prod")
    egress = ["198.51.100.7/32"]
    listed = sources.allowlists(tenants, ["203.0.113.0/24"], {}, egress)
    assert listed == {
        SYSTEM: ("198.51.100.7/32", "203.0.113.0/24"),
        "prod": ("203.0.113.0/24",),
    }
    assert sources.allowlists(tenants, [], {"prod": ("203.0.113.0/24",)}, egress) == {
        "prod": ("203.0.113.0/24",)
    }


def test_with_no_list_anywhere_no_tenant_is_listed_and_the_maps_are_empty() -> None:
    lists = sources.allowlists((SYSTEM, "prod"), [], {}, ["198.51.100.7/32"])
    assert lists == {}
    assert sources.networks_map(lists) == sources.allowed_networks_map(lists) == ""


def allowed(lists: dict[str, tuple[str, ...]], tenant: str, address: str) -> bool:
    """What HAProxy decides from the two maps: the longest listed network holding the
    address (`map_ip`), then `<tenant>@<network>` (`map_str`)."""
    entries = dict(line.split(" ") for line in sources.allowed_networks_map(lists).splitlines())
    if tenant not in entries:
        return True
    client = ipaddress.ip_address(address)
    holding = [
        ipaddress.ip_network(line.split(" ")[0])
        for line in sources.networks_map(lists).splitlines()
        if client in ipaddress.ip_network(line.split(" ")[0])
    ]
    if not holding:
        return False
    longest = max(holding, key=lambda n: n.prefixlen)
    return f"{tenant}{sources.ALLOWLIST_SEPARATOR}{longest}" in entries


NESTED = {
    "prod": ("203.0.113.0/24",),
    "staging": ("203.0.113.0/28",),
    "ci": ("203.0.113.5/32", "2001:db8::/32"),
}


@pytest.mark.parametrize("tenant", sorted(NESTED))
@pytest.mark.parametrize(
    "address",
    ["203.0.113.5", "203.0.113.6", "203.0.113.200", "203.0.114.1", "2001:db8::1", "2001:db9::1"],
)
def test_the_two_maps_accept_an_address_exactly_when_one_of_the_tenants_networks_holds_it(
    tenant: str, address: str
) -> None:
    expected = any(ipaddress.ip_address(address) in ipaddress.ip_network(n) for n in NESTED[tenant])

    assert allowed(dict(NESTED), tenant, address) == expected


def test_an_unlisted_tenant_takes_every_address() -> None:
    assert allowed(dict(NESTED), "dev", "192.0.2.1")


def test_the_load_balancer_keeps_out_what_the_instance_does_not_list() -> None:
    service = manifests.service("ns", "acme", "aws", ("203.0.113.0/24",), ("198.51.100.7/32",))
    assert service["spec"]["loadBalancerSourceRanges"] == ["198.51.100.7/32", "203.0.113.0/24"]
    assert "loadBalancerSourceRanges" not in manifests.service("ns", "acme", "aws")["spec"]


def test_the_nlb_preserves_each_clients_address_for_the_gateway() -> None:
    annotations = manifests.service("ns", "acme", "aws")["metadata"]["annotations"]
    attributes = annotations["service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"]
    assert "preserve_client_ip.enabled=true" in attributes.split(",")


def test_the_stack_file_sets_the_instances_list_and_each_tenants() -> None:
    config = parse(
        dataApiAllowedCidrs="203.0.113.0/24, 198.51.100.0/24",
        tenants=["dev", {"name": "prod", "dataApiAllowedCidrs": ["203.0.113.0/26"]}],
    )
    assert config.gateway.instance_networks == ("198.51.100.0/24", "203.0.113.0/24")
    assert dict(config.gateway.tenant_networks) == {"prod": ("203.0.113.0/26",)}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"dataApiAllowedCidrs": "203.0.113.0/24,nowhere"},
            "dataApiAllowedCidrs: 'nowhere' is not a network",
        ),
        (
            {"dataApiAllowedCidrs": "2001:db8::/32"},
            "dataApiAllowedCidrs: '2001:db8::/32' is IPv6, but the NLB serves IPv4 only",
        ),
        (
            {"dataApiAllowedCidrs": ",".join(f"203.0.113.{i}/32" for i in range(25))},
            "dataApiAllowedCidrs: 25 networks, but the NLB's security group takes at most 24",
        ),
        (
            {"tenants": [{"name": "ci", "dataApiAllowedCidrs": ["192.168.1.0/24"]}]},
            "tenants[0].dataApiAllowedCidrs (tenant 'ci'): '192.168.1.0/24' is a private network",
        ),
        (
            {"tenants": [{"name": "ci", "dataApiAllowedCidrs": {"a": 1}}]},
            "tenants[0].dataApiAllowedCidrs (tenant 'ci'): expected networks",
        ),
    ],
)
def test_a_list_the_gateway_or_load_balancer_cannot_keep_is_refused_naming_the_field(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse(**settings)

    assert str(refused.value).startswith(message)


def test_private_networks_are_fine_where_no_nlb_stands_between() -> None:
    config = parse(
        loadBalancer="generic",
        cluster="existing",
        certificateIssuer="issuer",
        eksClusterName="c",
        dataApiAllowedCidrs="10.0.0.0/8",
    )
    assert config.gateway.instance_networks == ("10.0.0.0/8",)
