"""Our IAM policies against the upstream ones they follow (tests/upstream_policies.py).

Each upstream grant (action, resource, conditions) must be covered by one of ours: the
same action, a resource pattern at least as wide, and no condition the upstream statement
does not impose too. What we leave out is listed upstream-side with the reason.
"""

from __future__ import annotations

from opstrace import charts
from opstrace.aws import iam
from tests import upstream_policies as upstream


def test_the_controller_policy_covers_the_official_one_of_the_pinned_release() -> None:
    assert upstream.LOAD_BALANCER_CONTROLLER.ref == charts.LOAD_BALANCER_CONTROLLER_VERSION
    assert (
        upstream.uncovered(iam.load_balancer_controller(), upstream.LOAD_BALANCER_CONTROLLER) == []
    )


def test_the_controller_policy_is_the_official_one_less_only_what_it_never_needs() -> None:
    # Not wider either: every grant is the official one's, resource and conditions alike.
    official = upstream.LOAD_BALANCER_CONTROLLER
    kept = {
        g
        for g in upstream.grants(official.document)
        if g.action not in official.not_needed_actions
        and g.resource not in official.not_needed_resources
    }
    assert set(upstream.grants(iam.load_balancer_controller())) == kept


def test_the_controller_may_open_the_node_security_group_it_did_not_tag() -> None:
    # target-type ip: the NLB's traffic reaches pods through the nodes' own group.
    untagged = upstream.Grant(
        "ec2:AuthorizeSecurityGroupIngress",
        "arn:aws:ec2:eu-west-1:1:security-group/sg-1",
        frozenset(),
    )
    assert any(
        upstream.covers(g, untagged) for g in upstream.grants(iam.load_balancer_controller())
    )


def test_the_controller_may_tag_a_listener_as_it_creates_it() -> None:
    # A new listener carries no resource tag yet: only the request's tags.
    creating = upstream.Grant(
        "elasticloadbalancing:AddTags",
        "arn:aws:elasticloadbalancing:eu-west-1:1:listener/net/lb/1/2",
        frozenset({("Null", "aws:RequestTag/elbv2.k8s.aws/cluster", ("false",))}),
    )
    assert any(
        upstream.covers(g, creating) for g in upstream.grants(iam.load_balancer_controller())
    )


def test_the_dns01_policy_is_cert_managers_limited_to_the_instance_zone() -> None:
    assert upstream.uncovered(iam.dns01_challenges("Z123"), upstream.CERT_MANAGER_ROUTE53) == []
    zones = {g.resource for g in upstream.grants(iam.dns01_challenges("Z123"))}
    assert zones == {"arn:aws:route53:::change/*", "arn:aws:route53:::hostedzone/Z123", "*"}


def test_the_ebs_driver_gets_the_managed_policy_of_the_example_policy() -> None:
    assert iam.MANAGED_EBS_CSI_POLICY == (
        "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    )


def test_the_attached_ebs_policy_covers_the_one_the_driver_names_now() -> None:
    v1 = upstream.EBS_CSI_DRIVER_V1.document
    assert upstream.uncovered(v1, upstream.EBS_CSI_DRIVER_V2) == []


def test_a_grant_limited_by_a_condition_does_not_cover_an_unconditional_one() -> None:
    tagged = upstream.Grant("ec2:DeleteVolume", "*", frozenset({("Null", "k", ("false",))}))
    anything = upstream.Grant("ec2:DeleteVolume", "arn:aws:ec2:*:*:volume/*", frozenset())
    assert not upstream.covers(tagged, anything)
    assert upstream.covers(
        anything, upstream.Grant("ec2:DeleteVolume", "arn:aws:ec2:r:1:volume/v", tagged.conditions)
    )


def test_a_narrower_resource_pattern_does_not_cover_a_wider_one() -> None:
    zone = upstream.Grant(
        "route53:ListResourceRecordSets", "arn:aws:route53:::hostedzone/Z1", frozenset()
    )
    every = upstream.Grant(
        "route53:ListResourceRecordSets", "arn:aws:route53:::hostedzone/*", frozenset()
    )
    assert (upstream.covers(zone, every), upstream.covers(every, zone)) == (False, True)


def test_a_reason_for_leaving_out_what_is_covered_is_reported_as_stale() -> None:
    stale = upstream.Upstream(
        "r",
        "t",
        "c",
        "d",
        "p",
        iam.dns01_challenges("Z1"),
        not_needed_actions={"route53:GetChange": "x"},
    )
    assert upstream.uncovered(iam.dns01_challenges("Z1"), stale) == [
        "not needed but covered or absent: route53:GetChange"
    ]
