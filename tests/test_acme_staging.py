"""Let's Encrypt's staging CA as a setting (issue 23, item 6): the dev stack uses it, and
the system tenant's collector, the one client the instance runs, trusts its roots."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509

from components import alerting
from opstrace import alloy_config, certificates, charts
from opstrace.config import platform
from tests.conftest import dev_config
from tools.offline import ProgramRun, Registration, run_program

ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"


def issuer(run: ProgramRun) -> Registration:
    (found,) = [r for r in run.resources if r.type == ISSUER]
    return found


def collector_config(run: ProgramRun) -> str:
    (alloy,) = [
        r
        for r in run.resources
        if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["chart"] == charts.ALLOY.name
    ]
    return str(alloy.inputs["values"]["alloy"]["configMap"]["content"])


def test_the_staging_roots_are_self_signed_certificate_authorities() -> None:
    roots = x509.load_pem_x509_certificates(certificates.STAGING_ROOTS.encode())
    assert len(roots) == 3
    for root in roots:
        root.verify_directly_issued_by(root)
        constraints = root.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert constraints.ca
        assert "(STAGING)" in root.subject.rfc4514_string()
        assert root.not_valid_after_utc > datetime.datetime(2040, 1, 1, tzinfo=datetime.UTC)


def test_the_dev_stack_gets_its_certificates_from_the_staging_ca(dev_run: ProgramRun) -> None:
    spec = issuer(dev_run).inputs["spec"]["acme"]
    assert spec["server"] == "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert issuer(dev_run).inputs["metadata"]["name"] == platform.OWN_STAGING_ISSUER
    for certificate in [
        r for r in dev_run.resources if r.type == "kubernetes:cert-manager.io/v1:Certificate"
    ]:
        assert certificate.inputs["spec"]["issuerRef"]["name"] == platform.OWN_STAGING_ISSUER


def test_with_staging_the_collector_trusts_exactly_the_staging_roots(dev_run: ProgramRun) -> None:
    config = collector_config(dev_run)
    block = f"tls_config {{\n      ca_pem = `{certificates.STAGING_ROOTS}`\n    }}"
    assert config.count(block) == 2  # metrics and logs


@pytest.fixture(scope="module")
def production_ca_run() -> ProgramRun:
    return run_program(dev_config(acmeStaging=False), stack="dev")


def test_without_staging_the_issuer_is_lets_encrypt_and_the_collector_trusts_the_system(
    production_ca_run: ProgramRun,
) -> None:
    found = issuer(production_ca_run)
    assert found.inputs["spec"]["acme"]["server"] == platform.LETS_ENCRYPT
    assert found.inputs["metadata"]["name"] == platform.OWN_ISSUER
    assert "tls_config" not in collector_config(production_ca_run).split("prometheus.scrape")[0]
    assert "ca_pem" not in collector_config(production_ca_run)


def test_the_collector_config_names_its_roots_only_when_given() -> None:
    assert "ca_pem" not in alloy_config.alloy_config("acme", "example.org")


def test_with_staging_the_rule_uploads_trust_the_staging_roots_too() -> None:
    tenant = {
        "name": "prod",
        "rules": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]},
    }
    staged = run_program(dev_config(tenants=[tenant]), stack="dev")
    trusted = run_program(dev_config(tenants=[tenant], acmeStaging=False), stack="dev")
    rules = "pulumi-python:dynamic/opstrace:TenantRules"
    (upload,) = [r for r in staged.resources if r.type == rules]
    (plain,) = [r for r in trusted.resources if r.type == rules]
    assert upload.inputs[alerting.TRUSTED_ROOTS] == certificates.STAGING_ROOTS
    assert alerting.TRUSTED_ROOTS not in plain.inputs


def test_a_change_of_the_trusted_roots_is_an_update_and_stays_in_the_state() -> None:
    olds = {"endpoint": "https://cortex.prod.acme.example.org", "tenant": "prod"}
    news = {**olds, alerting.TRUSTED_ROOTS: certificates.STAGING_ROOTS}
    assert alerting._changes(olds, news, ("endpoint", "tenant"))
    assert alerting._plain(news, ("endpoint", "tenant")) == news
