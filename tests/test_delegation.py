"""DNS that cannot stall `up`: the delegation check against a real authoritative server,
and what the program registers and says about the delegation (issue 23, item 1).

The server is Knot DNS (Debian's `knot`, which .ci/run installs) on 127.0.0.1, serving
the operator's zone `acme-observability.dev`; the operator adds the delegation as at a DNS provider,
with a dynamic update (RFC 2136) while the check waits. The check resolves through it as
through any resolver (`OPSTRACE_DNS_SERVER`), then asks the parent zone's name server
(the same Knot) without recursion.
"""

from __future__ import annotations

import threading

import pytest

from components.delegation_check import DelegationCheckProvider
from opstrace import delegation
from tests.conftest import OPERATOR_DOMAIN, dev_config
from tests.dns_server import ZONE, Knot, knot
from tests.provider_host import ProviderHost, ProviderHostError
from tests.test_platform import of_type
from tools import offline
from tools.offline import ProgramRun, run_program

__all__ = ["knot"]  # the fixture
ROUTE53 = ["ns-1.awsdns-01.org", "ns-2.awsdns-02.net", "ns-3.awsdns-03.com", "ns-4.awsdns-04.co.uk"]

# Against the real server ---------------------------------------------------------------


def test_an_undelegated_zone_ends_the_wait_naming_the_records_to_add(knot: Knot) -> None:
    with pytest.raises(delegation.DelegationMissing) as missing:
        delegation.wait_for_delegation(ZONE, ROUTE53, knot.servers, timeout=0.3, interval=0.1)
    assert str(missing.value) == (
        f"dns: {ZONE} is not delegated to its Route53 zone after 0 seconds of waiting, so no "
        "certificate can be issued: add these NS records at your DNS provider: "
        f"{ZONE}. 3600 IN NS ns-1.awsdns-01.org. ns-2.awsdns-02.net. ns-3.awsdns-03.com. "
        "ns-4.awsdns-04.co.uk.; then run up again"
    )


def test_the_wait_ends_when_the_operator_adds_the_records(knot: Knot) -> None:
    result: list[delegation.Check] = []
    waiting = threading.Thread(
        target=lambda: result.append(
            delegation.wait_for_delegation(ZONE, ROUTE53, knot.servers, timeout=60, interval=0.1)
        )
    )
    waiting.start()
    assert not delegation.check(ZONE, ROUTE53, knot.servers).done
    knot.delegate(ZONE, ROUTE53)
    waiting.join(timeout=60)
    assert not waiting.is_alive()
    (check,) = result
    assert check.seen == frozenset(ROUTE53)


def test_a_delegation_to_other_servers_is_named_for_removal(knot: Knot) -> None:
    knot.delegate(ZONE, [*ROUTE53[:2], "ns.old-provider.example"])
    check = delegation.check(ZONE, ROUTE53, knot.servers)
    assert not check.done
    assert check.problem(1200) == (
        f"dns: {ZONE} is not delegated to its Route53 zone after 20 minutes of waiting, so no "
        "certificate can be issued: add these NS records at your DNS provider: "
        f"{ZONE}. 3600 IN NS ns-3.awsdns-03.com. ns-4.awsdns-04.co.uk. and remove the NS "
        "records to ns.old-provider.example; then run up again"
    )


def test_the_provider_waits_through_the_servers_the_environment_names(
    knot: Knot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `up` runs it: the provider reads OPSTRACE_DNS_SERVER, the parent's answer decides.
    monkeypatch.setenv(delegation.SERVER_VARIABLE, f"127.0.0.1:{knot.port}")
    knot.delegate(ZONE, ROUTE53)
    props = {"zone": ZONE, "name_servers": ROUTE53, "timeout_seconds": 5, "interval_seconds": 1}
    created = DelegationCheckProvider().create(props)
    assert created.outs is not None
    assert created.outs["delegated_to"] == sorted(ROUTE53)


def test_the_provider_waits_again_only_when_the_name_servers_change() -> None:
    olds = {"zone": ZONE, "name_servers": ROUTE53, "delegated_to": ROUTE53, "timeout_seconds": 1}
    provider = DelegationCheckProvider()
    assert not provider.diff(ZONE, olds, {**olds, "timeout_seconds": 9}).changes
    assert provider.diff(ZONE, olds, {**olds, "name_servers": ROUTE53[1:]}).changes


def test_the_instance_zone_is_delegated_from_the_domain_or_a_parent_domain() -> None:
    assert delegation.parent_candidates("Observability.Acme.dev.") == [
        "observability.acme.dev",
        "acme.dev",
    ]


# What the program registers --------------------------------------------------------------


CHECK = "pulumi-python:dynamic/opstrace:DelegationCheck"
RECORD = "aws:route53/record:Record"


def test_every_certificate_waits_for_the_delegation(dev_run: ProgramRun) -> None:
    (check,) = of_type(dev_run, CHECK)
    (zone,) = of_type(dev_run, "aws:route53/zone:Zone")
    certificates = of_type(dev_run, "kubernetes:cert-manager.io/v1:Certificate")
    assert check.inputs["zone"] == f"dev-acme.{OPERATOR_DOMAIN}"
    assert check.property_dependencies["name_servers"] == (zone.urn,)
    assert check.inputs["timeout_seconds"] == delegation.WAIT_SECONDS
    assert len(certificates) == 3
    for certificate in certificates:
        assert check.urn in certificate.dependencies


def test_without_a_zone_in_the_account_up_names_the_records_as_the_zone_exists(
    dev_run: ProgramRun,
) -> None:
    looked_up = [a["name"] for t, a in dev_run.calls if t == "aws:route53/getZone:getZone"]
    assert looked_up == [OPERATOR_DOMAIN, "acme.dev"]
    assert [r for r in of_type(dev_run, RECORD) if r.inputs["type"] == "NS"] == []
    notes = [text for level, text in dev_run.messages if text.startswith("dns:")]
    assert notes == [
        f"dns: dev-acme.{OPERATOR_DOMAIN} must be delegated at your DNS provider: "
        f"dev-acme.{OPERATOR_DOMAIN}. 3600 IN NS ns-0.awsdns-0.org. ns-1.awsdns-1.org. "
        "ns-2.awsdns-2.org. ns-3.awsdns-3.org. (checked before any certificate)"
    ]


def test_a_preview_names_the_records_until_an_up_has_seen_them() -> None:
    servers = ["ns-2.awsdns-2.org", "NS-1.awsdns-1.org."]
    notice = delegation.preview_notice("acme.dev", "dev.acme.dev", servers, None)
    assert notice == (
        "dns: add these NS records at your DNS provider (this account has no Route53 zone of "
        "acme.dev): dev.acme.dev. 3600 IN NS ns-1.awsdns-1.org. ns-2.awsdns-2.org.; `up` waits "
        "up to 20 minutes for them before it requests any certificate"
    )
    seen = ["ns-1.awsdns-1.org", "ns-2.awsdns-2.org"]
    assert delegation.preview_notice("acme.dev", "dev.acme.dev", servers, seen) is None
    assert delegation.preview_notice("acme.dev", "dev.acme.dev", servers, seen[:1]) == notice


def test_a_new_stacks_preview_says_the_records_come_once_the_zone_exists() -> None:
    run = run_program(dev_config(), stack="dev", tokens="unknown")
    warnings = [text for level, text in run.messages if level == "warning"]
    assert (
        f"dns: this account has no Route53 zone of {OPERATOR_DOMAIN} to delegate "
        f"dev-acme.{OPERATOR_DOMAIN} from: add NS records for dev-acme.{OPERATOR_DOMAIN} at "
        "your DNS provider; `up` makes the zone, names the records here, and waits up to 20 "
        "minutes for them before it requests any certificate"
    ) in warnings


def test_the_domains_zone_in_the_account_delegates_the_instance_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The operator's zone is the parent domain's (acme.dev), not the domain's own.
    monkeypatch.setitem(offline.HOSTED_ZONES, "acme.dev", "Z0PARENT")
    run = run_program(dev_config(), stack="dev")
    (record,) = [r for r in of_type(run, RECORD) if r.inputs["type"] == "NS"]
    (zone,) = of_type(run, "aws:route53/zone:Zone")
    (check,) = of_type(run, CHECK)
    assert (record.inputs["zoneId"], record.inputs["name"]) == (
        "Z0PARENT",
        f"dev-acme.{OPERATOR_DOMAIN}",
    )
    assert record.inputs["records"] == zone.state["nameServers"]
    assert record.inputs["allowOverwrite"] is True
    assert record.urn in check.dependencies
    assert not [text for level, text in run.messages if text.startswith("dns:")]


def test_a_parent_zone_id_is_used_without_looking_for_one() -> None:
    run = run_program(dev_config(parentZoneId="Z0GIVEN"), stack="dev")
    (record,) = [r for r in of_type(run, RECORD) if r.inputs["type"] == "NS"]
    assert record.inputs["zoneId"] == "Z0GIVEN"
    assert "allowOverwrite" not in record.inputs
    assert not [t for t, _ in run.calls if t == "aws:route53/getZone:getZone"]


def test_through_the_provider_host_a_missing_delegation_ends_up_in_one_line(
    provider_host: ProviderHost,
) -> None:
    # As the engine runs it: a fresh process unpickles the provider; the error it reports
    # is what `up` shows. The zone cannot be delegated (.invalid, RFC 6761).
    host = provider_host.serving(DelegationCheckProvider())
    zone = "dev.opstrace.invalid"
    props = {"zone": zone, "name_servers": ROUTE53, "timeout_seconds": 0, "interval_seconds": 1}
    with pytest.raises(ProviderHostError) as failed:
        host.create(props)
    (line,) = failed.value.details.strip().splitlines()
    assert line.startswith(
        f"opstrace.delegation.DelegationMissing: dns: {zone} is not delegated to its Route53 "
        "zone after "
    )
    assert line.endswith(
        f"add these NS records at your DNS provider: {delegation.records_to_add(zone, ROUTE53)}"
        "; then run up again"
    )
