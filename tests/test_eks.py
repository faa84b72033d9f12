"""The EKS cluster as AWS would take it: versions and their support, zones, admins,
add-ons and the control plane's logs (issue 23).

Pure rules first (`opstrace.aws.eks_versions`, `zones`, `access_entries`), then what the
program registers under the mocks (`tools.offline`), which answer the data sources as
EC2 and EKS would (the zones left after the program's filters, EKS's default add-on
version).
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
import yaml
from pulumi.runtime import rpc

from opstrace import charts
from opstrace.aws import access_entries, eks_versions, zones
from opstrace.aws.eks_kubeconfig import eks_kubeconfig
from tests.conftest import dev_config
from tests.test_platform import ADDON, RELEASE, of_type
from tools import offline
from tools.offline import ProgramFailed, ProgramRun, Registration, run_program

CLUSTER = "aws:eks/cluster:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
CI_ROLE = "arn:aws:iam::123456789012:role/ci-deployer"
TEAMMATE = "arn:aws:iam::123456789012:user/jane"


def addons(run: ProgramRun) -> dict[str, Registration]:
    return {r.inputs["addonName"]: r for r in of_type(run, ADDON)}


def day(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


# The version calendar -----------------------------------------------------------------


def add_months(date: datetime.date, months: int) -> datetime.date:
    years, month = divmod(date.month - 1 + months, 12)
    return date.replace(year=date.year + years, month=month + 1)


@pytest.mark.parametrize("row", eks_versions.VERSIONS.values(), ids=lambda row: row.version)
def test_each_version_has_14_months_of_standard_and_12_of_extended_support(
    row: eks_versions.EksVersion,
) -> None:
    # The user guide's rule, which every dated row of its calendar follows.
    assert row.end_of_standard == add_months(row.eks_release, 14)
    assert row.end_of_extended == add_months(row.end_of_standard, 12)


def test_the_default_version_was_in_standard_support_beyond_the_warning_when_recorded() -> None:
    row = eks_versions.VERSIONS[eks_versions.DEFAULT_VERSION]
    assert row.support(eks_versions.RECORDED) == "standard"
    assert (row.end_of_standard - eks_versions.RECORDED).days > eks_versions.WARN_DAYS
    assert eks_versions.support_notice(row.version, "standard", eks_versions.RECORDED) is None


def test_versions_eks_no_longer_creates_are_not_offered() -> None:
    assert eks_versions.offered(day("2026-12-06")) == ("1.32", "1.33", "1.34", "1.35", "1.36")
    assert eks_versions.offered(day("2027-03-23")) == ("1.33", "1.34", "1.35", "1.36")


def test_a_version_in_extended_support_needs_the_extended_policy() -> None:
    on = day("2026-12-06")
    assert eks_versions.version_problem("1.34", "extended", on) is None
    assert "upgradePolicy standard does not pay" in str(
        eks_versions.version_problem("1.34", "standard", on)
    )
    # Billing starts at the beginning of the day (UTC) the version leaves standard support.
    assert eks_versions.version_problem("1.34", "standard", day("2026-12-01")) is None


def test_preview_warns_sixty_days_before_standard_support_ends_with_what_it_costs() -> None:
    end = eks_versions.VERSIONS["1.35"].end_of_standard
    assert eks_versions.support_notice("1.35", "standard", end - datetime.timedelta(61)) is None
    notice = eks_versions.support_notice("1.35", "standard", end - datetime.timedelta(60))
    assert notice == (
        "kubernetesVersion 1.35 leaves EKS standard support on 2027-03-27 (in 60 days): EKS "
        "then upgrades the cluster to the next version by itself (upgradePolicy standard): "
        "raise kubernetesVersion one minor version before then, or set upgradePolicy to "
        "extended to stay (extended support costs $0.60 an hour instead of $0.10 (about $365 "
        "more a month))"
    )
    extended = eks_versions.support_notice("1.35", "extended", end - datetime.timedelta(1))
    assert extended is not None
    assert "the cluster then enters extended support" in extended


def test_a_cluster_in_extended_support_is_warned_on_every_preview() -> None:
    notice = eks_versions.support_notice("1.34", "extended", day("2026-12-06"))
    assert notice is not None
    assert notice.startswith("kubernetesVersion 1.34 is in EKS extended support since 2026-12-02")


@pytest.mark.parametrize("version", eks_versions.offered(eks_versions.RECORDED))
def test_pinned_add_on_versions_are_for_their_cluster_version(version: str) -> None:
    # EKS refuses an add-on version not compatible with the cluster's; kube-proxy's
    # versions carry the Kubernetes version they are for.
    pins = eks_versions.VERSIONS[version].addons
    assert set(pins) <= set(eks_versions.ADDON_SOURCES)
    for addon, pinned in pins.items():
        assert re.fullmatch(r"v\d+\.\d+\.\d+-eksbuild\.\d+", pinned), (addon, pinned)
    if eks_versions.KUBE_PROXY in pins:
        assert pins[eks_versions.KUBE_PROXY].startswith(f"v{version}.")


# The cluster under the mocks ------------------------------------------------------------


def cluster_of(run: ProgramRun) -> Registration:
    (cluster,) = of_type(run, CLUSTER)
    return cluster


def test_the_default_cluster_runs_the_default_version_in_standard_support(
    dev_run: ProgramRun,
) -> None:
    cluster = cluster_of(dev_run).inputs
    assert cluster["version"] == eks_versions.DEFAULT_VERSION
    assert cluster["upgradePolicy"] == {"supportType": "STANDARD"}


def test_the_extended_policy_is_explicit_too() -> None:
    run = run_program(dev_config(upgradePolicy="extended", kubernetesVersion="1.34"), stack="dev")
    assert cluster_of(run).inputs["upgradePolicy"] == {"supportType": "EXTENDED"}
    warnings = [text for level, text in run.messages if level == "warning"]
    assert [w for w in warnings if w.startswith("kubernetesVersion 1.34 is in EKS extended")]


def test_preview_warns_when_standard_support_ends_within_sixty_days(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(eks_versions.DAY_VARIABLE, "2027-02-01")
    run = run_program(dev_config(), stack="dev")
    warnings = [text for level, text in run.messages if level == "warning"]
    assert [w for w in warnings if "leaves EKS standard support on 2027-03-27 (in 54 days)" in w]


def test_a_version_past_its_creation_date_is_refused_before_anything_is_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(eks_versions.DAY_VARIABLE, "2028-03-27")
    record = ProgramRun()
    with pytest.raises(ProgramFailed, match=r"^kubernetesVersion: '1\.35' left EKS extended"):
        run_program(dev_config(upgradePolicy="extended"), stack="dev", record=record)
    assert record.resources == []


# Zones -------------------------------------------------------------------------------


def zones_of(run: ProgramRun) -> list[str]:
    subnets = of_type(run, "aws:ec2/subnet:Subnet")
    return sorted({s.inputs["availabilityZone"] for s in subnets})


def test_zones_are_asked_for_without_local_zones_opt_ins_or_the_ids_eks_refuses(
    dev_run: ProgramRun,
) -> None:
    (args,) = [a for t, a in dev_run.calls if t.endswith("getAvailabilityZones")]
    assert args["state"] == "available"
    assert {f["name"]: f["values"] for f in args["filters"]} == {
        "opt-in-status": ["opt-in-not-required"],
        "zone-type": ["availability-zone"],
    }
    assert args["excludeZoneIds"] == ["use1-az3", "usw1-az2", "cac1-az3"]


def test_in_us_east_1_the_zone_eks_refuses_is_skipped() -> None:
    # The mocks' account has use1-az3 behind us-east-1c, as EC2 would leave it out.
    run = run_program({**dev_config(), "aws:region": "us-east-1"}, stack="dev")
    assert zones_of(run) == ["us-east-1a", "us-east-1b", "us-east-1d"]


def test_named_zones_are_used_as_named() -> None:
    run = run_program(dev_config(availabilityZones="eu-central-1b, eu-central-1d"), stack="dev")
    assert zones_of(run) == ["eu-central-1b", "eu-central-1d"]


def test_a_named_zone_eks_refuses_ends_the_preview_in_one_line() -> None:
    config = {
        **dev_config(availabilityZones="us-east-1a,us-east-1b,us-east-1c"),
        "aws:region": "us-east-1",
    }
    with pytest.raises(ProgramFailed) as failed:
        run_program(config, stack="dev", tokens="unknown")
    assert str(failed.value) == (
        "availabilityZones: 'us-east-1c' is not a zone EKS accepts in this account (a Local or "
        "Wavelength Zone, one that needs opting in, or one EKS refuses: use1-az3, usw1-az2, "
        "cac1-az3): use some of us-east-1a, us-east-1b, us-east-1d, us-east-1e, us-east-1f"
    )


def test_choosing_more_zones_than_the_region_has_is_refused() -> None:
    with pytest.raises(zones.ZoneError, match=r"3 zones wanted, but the region has only 2"):
        zones.choose(3, ["ca-central-1a", "ca-central-1b"])


# Admins ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admins_run() -> ProgramRun:
    return run_program(dev_config(clusterAdmins=f"{TEAMMATE}, {CI_ROLE}"), stack="dev")


def test_each_admin_gets_an_access_entry_with_the_cluster_admin_policy(
    admins_run: ProgramRun,
) -> None:
    entries = of_type(admins_run, "aws:eks/accessEntry:AccessEntry")
    policies = of_type(admins_run, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    cluster = cluster_of(admins_run)
    assert sorted(e.inputs["principalArn"] for e in entries) == [CI_ROLE, TEAMMATE]
    assert {e.inputs["type"] for e in entries} == {"STANDARD"}
    assert {e.inputs["clusterName"] for e in [*entries, *policies]} == {cluster.inputs["name"]}
    for policy in policies:
        (entry,) = [e for e in entries if e.inputs["principalArn"] == policy.inputs["principalArn"]]
        assert policy.inputs["policyArn"] == (
            "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        )
        assert policy.inputs["accessScope"] == {"type": "cluster"}
        assert entry.urn in policy.dependencies


def test_in_cluster_resources_wait_for_the_admins_access(admins_run: ProgramRun) -> None:
    # Whoever runs `up` may be a listed admin rather than the cluster's creator.
    policies = {
        r.urn
        for r in of_type(admins_run, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    mimir = next(
        r for r in of_type(admins_run, RELEASE) if r.inputs["chart"] == "mimir-distributed"
    )
    assert policies <= set(mimir.dependencies)


def test_the_admin_policy_is_in_the_principals_partition() -> None:
    arn = access_entries.admin_policy_arn("arn:aws-cn:iam::123456789012:role/ops")
    assert arn == "arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def test_the_kubeconfig_authenticates_with_the_stacks_profile() -> None:
    run = run_program({**dev_config(), "aws:profile": "acme-dev"}, stack="dev")
    kubeconfig = yaml.safe_load(rpc.unwrap_rpc_secret(run.stack_outputs["kubeconfig"]))
    plugin = kubeconfig["users"][0]["user"]["exec"]
    assert plugin["env"] == [{"name": "AWS_PROFILE", "value": "acme-dev"}]
    assert plugin["args"][-2:] == ["--region", "eu-central-1"]


def test_without_a_profile_the_kubeconfig_leaves_the_environment_alone() -> None:
    document = yaml.safe_load(eks_kubeconfig("c", "https://e", "Q0E=", "eu-west-1"))
    assert "env" not in document["users"][0]["user"]["exec"]


# Add-ons -----------------------------------------------------------------------------


def test_coredns_and_kube_proxy_are_eks_add_ons_at_their_pinned_versions(
    dev_run: ProgramRun,
) -> None:
    found = addons(dev_run)
    pins = eks_versions.VERSIONS[eks_versions.DEFAULT_VERSION].addons
    assert set(found) == {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"}
    assert found["coredns"].inputs["addonVersion"] == pins["coredns"]
    assert found["kube-proxy"].inputs["addonVersion"] == pins["kube-proxy"]
    for name in ("vpc-cni", "coredns", "kube-proxy"):
        # They take over the self-managed copies EKS installs with a new cluster.
        assert found[name].inputs["resolveConflictsOnCreate"] == "OVERWRITE", name
    # The EBS driver has none to take over (and its inputs stay as before this change).
    assert "resolveConflictsOnCreate" not in found["aws-ebs-csi-driver"].inputs
    for addon in found.values():
        assert addon.inputs["resolveConflictsOnUpdate"] == "OVERWRITE"


def test_add_ons_without_a_pin_take_eks_default_for_the_clusters_version(
    dev_run: ProgramRun,
) -> None:
    asked = {
        a["addonName"]: a
        for t, a in dev_run.calls
        if t == "aws:eks/getAddonVersion:getAddonVersion"
    }
    assert set(asked) == {"vpc-cni", "aws-ebs-csi-driver"}
    for name, args in asked.items():
        assert (args["kubernetesVersion"], args["mostRecent"]) == ("1.35", False)
        assert addons(dev_run)[name].inputs["addonVersion"] == "<EKS default for 1.35>"


def test_pods_of_the_add_ons_wait_for_nodes_and_in_cluster_resources_for_them(
    dev_run: ProgramRun,
) -> None:
    (nodes,) = of_type(dev_run, "aws:eks/nodeGroup:NodeGroup")
    found = addons(dev_run)
    loki = next(r for r in of_type(dev_run, RELEASE) if r.inputs["chart"] == charts.LOKI.name)
    for name in ("coredns", "kube-proxy", "aws-ebs-csi-driver"):
        assert nodes.urn in found[name].dependencies, name
        assert found[name].urn in loki.dependencies, name


# The control plane's logs --------------------------------------------------------------


def test_the_log_group_exists_before_the_cluster_with_a_retention(dev_run: ProgramRun) -> None:
    (group,) = of_type(dev_run, LOG_GROUP)
    cluster = cluster_of(dev_run)
    assert group.inputs["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster"
    assert group.inputs["retentionInDays"] == 90
    assert group.urn in cluster.dependencies
    assert cluster.inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    assert group.import_id == ""


def test_destroy_removes_the_log_group_unless_data_is_kept(dev_run: ProgramRun) -> None:
    kept = run_program(
        dev_config(keepDataOnDestroy=True, controlPlaneLogRetention="365d"), stack="dev"
    )
    (dev_group,) = of_type(dev_run, LOG_GROUP)
    (kept_group,) = of_type(kept, LOG_GROUP)
    assert (dev_group.retain_on_delete, kept_group.retain_on_delete) == (False, True)
    assert kept_group.inputs["retentionInDays"] == 365


def test_the_group_eks_made_for_an_older_cluster_is_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "/aws/eks/dev-acme-cluster/cluster"

    def existing(args: dict[str, Any], region: str) -> dict[str, Any]:
        assert args["logGroupNamePrefix"] == name
        return {"logGroupNames": [name, f"{name}-other"]}

    monkeypatch.setitem(offline.AWS_CALLS, "aws:cloudwatch/getLogGroups:getLogGroups", existing)
    run = run_program(dev_config(), stack="dev")
    (group,) = of_type(run, LOG_GROUP)
    assert group.import_id == name
    # Then updated to the retention, in the same `up` (the engine's import step).
    assert group.inputs["retentionInDays"] == 90
