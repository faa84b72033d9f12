"""EKS's Kubernetes versions: their support dates, what extended support costs, and the
add-on versions pinned for each.

Pure, no Pulumi. Each row says where its dates were read (`source`). The rules, from the
EKS user guide (awsdocs/amazon-eks-user-guide, `latest/ug/versioning/kubernetes-versions.adoc`
at 013856044148d6eeed4723027a45aa2180536bcb):

- "A minor version is under standard support in Amazon EKS for the first 14 months after
  it's released. Once a version is past the end of standard support date, it enters
  extended support for the next 12 months."
- "You can create new Amazon EKS clusters on any version offered in standard or extended
  support." / "On the end of extended support date, you can no longer create new Amazon
  EKS clusters with the unsupported version."
- "By default, for all new and existing clusters, the upgrade policy is set to EXTENDED":
  the program always sets it (`UPGRADE_POLICIES`). `view-upgrade-policy.adoc` (at
  36b2a08141701e1dc326714953758497505c244c): "`STANDARD` -- ... You will not incur
  extended support charges with this setting but your EKS cluster will automatically
  upgrade to the next supported Kubernetes version in standard support."
- "Billing for extended support starts at the beginning of the day that the version
  reaches end of standard support, in the UTC+0 timezone."

Bump `DEFAULT_VERSION` (and add rows) as EKS releases versions; a test holds the default
in standard support on `RECORDED`, the day the table was last checked.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

RECORDED: Final = datetime.date(2026, 12, 6)
"""The day the table was last checked against its sources."""
DAY_VARIABLE: Final = "OPSTRACE_EKS_CALENDAR_DAY"
"""Read the calendar as on this day (YYYY-MM-DD) instead of today: what a preview will say
then; the tests read it as on `RECORDED`, so that their messages do not age."""

STANDARD_PRICE_PER_HOUR: Final = 0.10
EXTENDED_PRICE_PER_HOUR: Final = 0.60
"""Per cluster and hour (AWS Containers blog, "Amazon EKS extended support for Kubernetes
versions pricing": "charged a total of $0.60 per cluster per hour ... Pricing for
clusters running Kubernetes versions in standard support is unchanged — you will
continue to pay $0.10 per cluster per hour")."""
HOURS_PER_MONTH: Final = 730
WARN_DAYS: Final = 60
"""Preview warns this many days before a version leaves standard support (EKS announces
the date "at least 60 days in advance")."""

CALENDAR_SOURCE: Final = (
    "awsdocs/amazon-eks-user-guide latest/ug/versioning/kubernetes-versions.adoc "
    "@ 013856044148d6eeed4723027a45aa2180536bcb"
)
ENDOFLIFE_SOURCE: Final = (
    "endoflife-date/endoflife.date products/amazon-eks.md @ a70eca337600 (scraped from the "
    "EKS calendar at docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html)"
)

UPGRADE_POLICIES: Final = {"standard": "STANDARD", "extended": "EXTENDED"}
"""The `upgradePolicy` setting -> EKS's `upgradePolicy.supportType`."""

COREDNS: Final = "coredns"
KUBE_PROXY: Final = "kube-proxy"
VPC_CNI: Final = "vpc-cni"
EBS_CSI: Final = "aws-ebs-csi-driver"


@dataclass(frozen=True)
class EksVersion:
    """One Kubernetes minor version as EKS offers it."""

    version: str
    eks_release: datetime.date
    end_of_standard: datetime.date
    end_of_extended: datetime.date
    source: str
    addons: Mapping[str, str]
    """Add-on name -> the version pinned for clusters of this version; an add-on missing
    here takes EKS's default for this version, read at preview (`ADDON_SOURCES`)."""

    def support(self, today: datetime.date) -> str:
        """`standard`, `extended` or `ended` on `today` (UTC)."""
        if today < self.end_of_standard:
            return "standard"
        return "extended" if today < self.end_of_extended else "ended"


def _day(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


VERSIONS: Final[Mapping[str, EksVersion]] = {
    row.version: row
    for row in (
        EksVersion("1.30", _day("2024-05-23"), _day("2025-07-23"), _day("2026-07-23"),
                   CALENDAR_SOURCE, {}),
        EksVersion("1.31", _day("2024-09-26"), _day("2025-11-26"), _day("2026-11-26"),
                   CALENDAR_SOURCE, {}),
        EksVersion("1.32", _day("2025-01-23"), _day("2026-03-23"), _day("2027-03-23"),
                   CALENDAR_SOURCE,
                   {COREDNS: "v1.11.4-eksbuild.33", KUBE_PROXY: "v1.32.13-eksbuild.5",
                    VPC_CNI: "v1.20.1-eksbuild.3"}),
        EksVersion("1.33", _day("2025-05-29"), _day("2026-07-29"), _day("2027-07-29"),
                   CALENDAR_SOURCE,
                   {COREDNS: "v1.13.2-eksbuild.4", KUBE_PROXY: "v1.33.10-eksbuild.2",
                    VPC_CNI: "v1.20.1-eksbuild.3"}),
        EksVersion("1.34", _day("2025-10-02"), _day("2026-12-02"), _day("2027-12-02"),
                   CALENDAR_SOURCE,
                   {COREDNS: "v1.13.2-eksbuild.7", KUBE_PROXY: "v1.34.6-eksbuild.2"}),
        EksVersion("1.35", _day("2026-01-27"), _day("2027-03-27"), _day("2028-03-27"),
                   ENDOFLIFE_SOURCE,
                   {COREDNS: "v1.14.2-eksbuild.4", KUBE_PROXY: "v1.35.3-eksbuild.2"}),
        EksVersion("1.36", _day("2026-06-02"), _day("2027-08-02"), _day("2028-08-02"),
                   ENDOFLIFE_SOURCE, {}),
    )
}  # fmt: skip
"""Every version EKS has offered since 1.30, oldest first. Dates: `source` of each row
(the 1.35 and 1.36 rows are not in any copy of the AWS file readable here; endoflife.date
scrapes them from the AWS calendar, and each end of standard support is the EKS release
plus 14 months, as the rule says)."""

ADDON_SOURCES: Final[Mapping[str, str]] = {
    COREDNS: "docs.amazonaws.cn eks/latest/userguide/managing-coredns.md (1.34, 1.35); the "
    "zh_cn copy of the same page (1.33: v1.13.2-eksbuild.4; 1.32: v1.11.4-eksbuild.33)",
    KUBE_PROXY: "docs.amazonaws.cn zh_cn/eks/latest/userguide/managing-kube-proxy.md",
    VPC_CNI: "awsdocs/amazon-eks-user-guide latest/ug/networking/managing-vpc-cni.adoc @ "
    "057948d9301426e6165db5fddb5617a971d08b6c (1.27 to 1.33; no row for 1.34 or later "
    "was found)",
    EBS_CSI: "none: the user guide has no table of EBS CSI versions by Kubernetes version",
}
"""Where each add-on's pinned versions were read: the "latest version of the Amazon EKS
add-on type for each Kubernetes version" tables. Where a version has no pin, the program
takes EKS's default add-on version for the cluster's version at preview
(`aws eks describe-addon-versions --kubernetes-version <v>`, `defaultVersion`)."""

DEFAULT_VERSION: Final = "1.35"
"""The newest version with add-on pins for CoreDNS and kube-proxy, in standard support
until 2027-03-27."""


def today() -> datetime.date:
    """The UTC day, as EKS bills and dates its calendar (the program's one clock read),
    or the day `DAY_VARIABLE` names."""
    named = os.environ.get(DAY_VARIABLE)
    if named:
        return datetime.date.fromisoformat(named)
    return datetime.datetime.now(datetime.UTC).date()


def offered(today: datetime.date) -> tuple[str, ...]:
    """The versions EKS creates clusters on, on `today`."""
    return tuple(v for v, row in VERSIONS.items() if row.support(today) != "ended")


def version_problem(version: str, policy: str, today: datetime.date) -> str | None:
    """Why `version` with upgrade policy `policy` (`standard`/`extended`) cannot be used
    on `today`, or None."""
    row = VERSIONS.get(version)
    choices = ", ".join(offered(today))
    if row is None:
        return f"{version!r} is not an EKS version this program knows: use one of {choices}"
    support = row.support(today)
    if support == "ended":
        return (
            f"{version!r} left EKS extended support on {row.end_of_extended}, after which EKS "
            f"creates no cluster on it: use one of {choices}, one minor version up at a time"
        )
    if support == "extended" and policy == "standard":
        return (
            f"{version!r} is in EKS extended support since {row.end_of_standard} "
            f"(${EXTENDED_PRICE_PER_HOUR:.2f} an hour instead of ${STANDARD_PRICE_PER_HOUR:.2f}), "
            "which upgradePolicy standard does not pay for: use a newer version, one minor "
            "version up at a time, or set upgradePolicy to extended"
        )
    return None


def extra_cost_per_month() -> int:
    """What extended support adds to a month (730 hours), in dollars."""
    return round((EXTENDED_PRICE_PER_HOUR - STANDARD_PRICE_PER_HOUR) * HOURS_PER_MONTH)


def support_notice(version: str, policy: str, today: datetime.date) -> str | None:
    """The warning for a version that leaves standard support within `WARN_DAYS`, or is in
    extended support; None otherwise (and for versions `version_problem` refuses)."""
    row = VERSIONS.get(version)
    if row is None or row.support(today) == "ended":
        return None
    cost = (
        f"extended support costs ${EXTENDED_PRICE_PER_HOUR:.2f} an hour instead of "
        f"${STANDARD_PRICE_PER_HOUR:.2f} (about ${extra_cost_per_month()} more a month)"
    )
    if row.support(today) == "extended":
        return (
            f"kubernetesVersion {version} is in EKS extended support since "
            f"{row.end_of_standard}: {cost}; upgrade one minor version at a time to leave it"
        )
    days = (row.end_of_standard - today).days
    if days > WARN_DAYS:
        return None
    if policy == "standard":
        after = (
            "EKS then upgrades the cluster to the next version by itself (upgradePolicy "
            "standard): raise kubernetesVersion one minor version before then, or set "
            f"upgradePolicy to extended to stay ({cost})"
        )
    else:
        after = f"the cluster then enters extended support (upgradePolicy extended): {cost}"
    return (
        f"kubernetesVersion {version} leaves EKS standard support on {row.end_of_standard} "
        f"(in {days} days): {after}"
    )


def pinned_addon(version: str, addon: str) -> str | None:
    """The pinned version of `addon` for clusters of `version`, or None (EKS's default)."""
    return VERSIONS[version].addons.get(addon)
