"""The platform under the tenants: cluster, storage, backends, certificates, telemetry.

Settings (namespace `opstrace`, all optional; see `Pulumi.yaml`)::

    opstrace:cluster: eks                  # eks (default): the program makes the cluster;
                                           # existing: kubeconfig/kubeContext name one
    opstrace:kubernetesVersion: "1.35"     # eks only (opstrace/aws/eks_versions.py)
    opstrace:upgradePolicy: standard       # eks: standard (EKS upgrades the cluster when
                                           # its version leaves standard support) or
                                           # extended (it stays, at $0.60/h, not $0.10/h)
    opstrace:sizing: small                 # small (a trial) or production (see SIZES)
    opstrace:nodeInstanceType: m7i.xlarge  # eks only; default from the sizing
    opstrace:nodeCount: 3                  # eks only; default from the sizing
    opstrace:availabilityZones: 3          # eks only: 2 or 3, or 2-3 zone names,
                                           # comma-separated (eu-central-1a,...)
    opstrace:vpcCidr: 10.40.0.0/16         # eks only: a private /16 to /20
    opstrace:loadBalancer: aws             # aws: AWS Load Balancer Controller NLB (eks
                                           # installs it, existing must have it);
                                           # generic: the cluster's own LoadBalancer
    opstrace:eksClusterName: ""            # existing: the EKS cluster whose OIDC provider
                                           # gives the own backends their bucket roles
    opstrace:certificateIssuer: ""         # cert-manager ClusterIssuer; eks: made here
    opstrace:acmeEmail: ""                 # eks: contact for the Let's Encrypt account
    opstrace:acmeStaging: false            # eks: Let's Encrypt's staging CA (untrusted
                                           # certificates, no weekly limit of 5 renewals)
    opstrace:metricsRetention: 30d         # how long metrics and logs are kept
    opstrace:logsRetention: 30d
    opstrace:keepDataOnDestroy: true       # false: `destroy` deletes the buckets too
    opstrace:telemetry: true               # ship the cluster's metrics and logs to `system`
    opstrace:apiAllowedCidrs: 203.0.113.7/32  # eks: who may reach the API's public endpoint
                                           # (comma-separated; required for production)
    opstrace:secretsKeyArn: ""             # eks: KMS key of the Secrets; "": one made here
    opstrace:clusterAdmins: ""             # eks: IAM roles/users made cluster admins
                                           # (EKS access entries), comma-separated
    opstrace:controlPlaneLogRetention: 90d # eks: how long CloudWatch keeps the API
                                           # server's, audit and authenticator logs
    opstrace:networkPolicyRiskAccepted: false  # existing: go on without a NetworkPolicy
                                           # enforcer in the cluster

Pure: parses and checks values, holds the presets and their reasons. No Pulumi.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from opstrace import images, names
from opstrace.aws import access_entries, eks_versions, zones
from opstrace.config import read
from opstrace.config.read import ConfigError
from opstrace.config.sizes import SIZES, Size

CLUSTER_MODES: Final = ("eks", "existing")
LOAD_BALANCERS: Final = ("aws", "generic")
KUBERNETES_VERSIONS: Final = eks_versions.offered(eks_versions.RECORDED)
"""The EKS versions a cluster could be created on when the version table was checked."""
OWN_ISSUER: Final = "opstrace-letsencrypt"
"""The ClusterIssuer the program makes in eks mode (Let's Encrypt, DNS-01 in Route53)."""
OWN_STAGING_ISSUER: Final = "opstrace-letsencrypt-staging"
"""The same with Let's Encrypt's staging CA (`acmeStaging`): another name, so that a
switch changes every certificate's issuer and cert-manager issues them anew."""
LETS_ENCRYPT: Final = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING: Final = "https://acme-staging-v02.api.letsencrypt.org/directory"
"""letsencrypt/website content/en/docs/staging-environment.md (@ 01e009e338ba): its
limits are far higher (30,000 duplicate certificates a week, not 5) and its roots, "(STAGING)
Pretend Pear X1" and "(STAGING) Bogus Broccoli X2", are in no client's trust store."""
LOG_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288,
)  # fmt: skip
"""The retention periods CloudWatch Logs accepts (PutRetentionPolicy's `retentionInDays`)
up to this program's limit of 3650 days (CloudWatch's next is 3653)."""

# Family and size, each letters and digits with inner hyphens: m7i-flex.large,
# u-6tb1.112xlarge, m7i.metal-24xl.
_INSTANCE_TYPE_RE: Final = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*\.[a-z0-9]+(-[a-z0-9]+)*$")
_RETENTION_RE: Final = re.compile(r"^([1-9][0-9]*)d$")
RETENTION_DAYS_MAX: Final = 3650
_ISSUER_RE: Final = re.compile(
    rf"^(?=.{{1,253}}$){names.DNS_LABEL_PATTERN}(\.{names.DNS_LABEL_PATTERN})*$"
)
"""A Kubernetes object name (a DNS subdomain, RFC 1123): what the API server accepts."""
_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_EKS_CLUSTER_RE: Final = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
"""EKS's rule for cluster names: 1 to 100 letters, digits, hyphens and underscores,
starting with a letter or digit."""
EVERY_ADDRESS: Final = "0.0.0.0/0"
"""The API endpoint's public access without `apiAllowedCidrs` (EKS's own default), for
`small` sizing only: every request still needs IAM credentials the cluster accepts."""
ADDRESS_HINT: Final = "`curl -s https://checkip.amazonaws.com` prints yours"
_KMS_KEY_ARN_RE: Final = re.compile(
    r"^arn:aws(?:-[a-z]+)*:kms:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]):[0-9]{12}:"
    r"(?:key/[A-Za-z0-9-]{1,128}|alias/[A-Za-z0-9/_-]{1,250})$"
)
"""A KMS key (or alias) ARN, as EKS's encryption configuration takes it."""
PRIVATE_NETWORKS: Final = tuple(
    ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
"""RFC 1918's private address space, which a VPC is meant to use (Python's `is_private`
also counts loopback, link-local and reserved blocks, which no VPC can have)."""


@dataclass(frozen=True)
class PlatformConfig:
    """The validated platform settings."""

    cluster: str
    kubernetes_version: str
    upgrade_policy: str
    """`standard` or `extended` (`eks_versions.UPGRADE_POLICIES`: EKS's `supportType`)."""
    size: Size
    node_instance_type: str
    node_count: int
    availability_zones: int
    zone_names: tuple[str, ...]
    """The zones named in `availabilityZones`; empty: the region's first usable ones."""
    vpc_cidr: str
    load_balancer: str
    eks_cluster_name: str
    """existing mode: the EKS cluster whose OIDC provider the backends' roles trust."""
    certificate_issuer: str
    """The ClusterIssuer every tenant certificate comes from."""
    acme_email: str
    acme_server: str
    """The ACME directory of the program's own issuer (Let's Encrypt or its staging CA)."""
    acme_staging: bool
    metrics_retention_days: int
    logs_retention_days: int
    keep_data_on_destroy: bool
    telemetry: bool
    api_allowed_cidrs: tuple[str, ...]
    """eks: the networks that may reach the API server's public endpoint (the private
    endpoint serves the VPC)."""
    secrets_key_arn: str
    """eks: the KMS key that encrypts Kubernetes Secrets; "": the program makes one."""
    cluster_admins: tuple[str, ...]
    """eks: IAM principals given cluster admin through EKS access entries."""
    control_plane_log_retention_days: int
    network_policy_risk_accepted: bool
    """existing: go on when the cluster enforces no NetworkPolicy this program knows."""
    aws_region: str
    """`aws:region`; required whenever the program makes AWS resources."""
    image_mirrors: Mapping[str, str] = field(default_factory=lambda: dict(images.DEFAULT_MIRRORS))
    """Image source -> where its images are pulled from instead (`opstrace.images`)."""
    aws_profile: str = ""
    """`aws:profile`: the AWS CLI profile the kubeconfig's token command uses ("": ambient)."""

    @property
    def makes_cluster(self) -> bool:
        return self.cluster == "eks"


def needs_aws(cluster: str, *, route53: bool, external_backends: bool) -> bool:
    """Whether the program makes AWS resources: the cluster, the zone, or the buckets of
    its own backends (and so needs `aws:region` and AWS credentials)."""
    return cluster == "eks" or route53 or not external_backends


def parse_platform(
    values: Mapping[str, Any],
    *,
    aws_region: str,
    route53: bool,
    external_backends: bool,
    aws_profile: str = "",
    today: datetime.date | None = None,
) -> PlatformConfig:
    """Check the platform settings (`values` holds every setting, defaults applied).

    `route53`: whether the program manages the instance zone (dns: route53);
    `external_backends`: whether both backends are outside (cortexUrl and lokiUrl set),
    in which case no bucket is made; `today`: the UTC day EKS's calendar is read on.
    """
    cluster = read.choice(values, "cluster", CLUSTER_MODES)
    policy = read.choice(values, "upgradePolicy", tuple(eks_versions.UPGRADE_POLICIES))
    version = read.string(values, "kubernetesVersion")
    on = today or eks_versions.today()
    if cluster == "eks" and (problem := eks_versions.version_problem(version, policy, on)):
        raise ConfigError(f"kubernetesVersion: {problem}")
    size = SIZES[read.choice(values, "sizing", tuple(SIZES))]
    instance_type = read.string(values, "nodeInstanceType") or size.node_instance_type
    if not _INSTANCE_TYPE_RE.fullmatch(instance_type):
        raise ConfigError(
            f"nodeInstanceType: {instance_type!r} is not an EC2 instance type: use "
            "FAMILY.SIZE, e.g. m7i.xlarge"
        )
    node_count = read.integer(values, "nodeCount") or size.node_count
    if not 2 <= node_count <= 100:
        raise ConfigError(
            f"nodeCount: {node_count} is not allowed: use 2 to 100 nodes (0 takes the "
            f"sizing's {size.node_count})"
        )
    zone_names = _zone_names(values, aws_region)
    zones = len(zone_names) or read.integer(values, "availabilityZones")
    if zones not in (2, 3):
        raise ConfigError(f"availabilityZones: {zones} is not allowed: use 2 or 3")
    if size.metrics.zone_aware and zones != 3:
        raise ConfigError(
            f"availabilityZones: {zones} is too few for sizing 'production', which "
            "replicates metrics over 3 zones: use 3"
        )
    load_balancer = read.choice(values, "loadBalancer", LOAD_BALANCERS)
    if cluster == "eks" and load_balancer != "aws":
        raise ConfigError(
            "loadBalancer: 'generic' is for existing clusters; with cluster eks the "
            "program installs the AWS Load Balancer Controller: use aws"
        )
    own_issuer = cluster == "eks" and route53
    staging = read.boolean(values, "acmeStaging")
    if staging and not own_issuer:
        raise ConfigError(
            "acmeStaging: is for the program's own Let's Encrypt issuer (cluster eks, dns "
            "route53); with certificateIssuer the issuer is yours: remove acmeStaging"
        )
    default_issuer = OWN_STAGING_ISSUER if staging else OWN_ISSUER
    issuer = read.string(values, "certificateIssuer") or (default_issuer if own_issuer else "")
    if not issuer:
        where = "cluster existing" if cluster == "existing" else "dns none"
        raise ConfigError(
            f"certificateIssuer: required with {where}: name the cert-manager "
            "ClusterIssuer that issues the tenant certificates (DNS-01 for "
            "<tenant>.<instance>.<domain> names)"
        )
    if not _ISSUER_RE.fullmatch(issuer):
        raise ConfigError(f"certificateIssuer: {issuer!r} is not a Kubernetes object name")
    email = read.string(values, "acmeEmail")
    if email and not _EMAIL_RE.fullmatch(email):
        raise ConfigError(f"acmeEmail: {email!r} is not an email address")
    eks_cluster_name = read.string(values, "eksClusterName")
    if eks_cluster_name and not _EKS_CLUSTER_RE.fullmatch(eks_cluster_name):
        raise ConfigError(
            f"eksClusterName: {eks_cluster_name!r} is not an EKS cluster name: use 1 to 100 "
            "letters, digits, hyphens and underscores, starting with a letter or digit"
        )
    if cluster == "existing" and not external_backends and not eks_cluster_name:
        raise ConfigError(
            "eksClusterName: required with cluster existing when the instance runs its own "
            "Mimir or Loki (cortexUrl or lokiUrl unset): name the EKS cluster, whose OIDC "
            "provider lets them reach their S3 buckets; or set both URLs to external backends"
        )
    if needs_aws(cluster, route53=route53, external_backends=external_backends) and not aws_region:
        reason = "cluster eks" if cluster == "eks" else "AWS resources (DNS or buckets)"
        raise ConfigError(
            f"aws:region: required for {reason}: set it in the stack file "
            "(`aws:region: eu-central-1`) or with `pulumi config set aws:region eu-central-1`"
        )
    return PlatformConfig(
        cluster=cluster,
        kubernetes_version=version,
        upgrade_policy=policy,
        size=size,
        node_instance_type=instance_type,
        node_count=node_count,
        availability_zones=zones,
        zone_names=zone_names,
        vpc_cidr=_cidr(values),
        load_balancer=load_balancer,
        eks_cluster_name=eks_cluster_name,
        certificate_issuer=issuer,
        acme_email=email,
        acme_server=LETS_ENCRYPT_STAGING if staging else LETS_ENCRYPT,
        acme_staging=staging,
        metrics_retention_days=_retention(values, "metricsRetention"),
        logs_retention_days=_retention(values, "logsRetention"),
        keep_data_on_destroy=read.boolean(values, "keepDataOnDestroy"),
        telemetry=read.boolean(values, "telemetry"),
        api_allowed_cidrs=_api_allowed_cidrs(values, cluster, size),
        secrets_key_arn=_secrets_key_arn(values, cluster, aws_region),
        cluster_admins=_cluster_admins(values, cluster),
        control_plane_log_retention_days=_log_retention(values),
        network_policy_risk_accepted=_network_policy_risk_accepted(values, cluster),
        aws_region=aws_region,
        image_mirrors=_image_mirrors(values["imageMirrors"]),
        aws_profile=aws_profile,
    )


def _image_mirrors(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"imageMirrors: expected a map of image sources to mirrors, got {raw!r}: write e.g. "
            "{docker.io: 123456789012.dkr.ecr.eu-central-1.amazonaws.com/docker-hub}"
        )
    for source, target in raw.items():
        if not isinstance(target, str) or (problem := images.mirror_problem(source, target)):
            problem = problem if isinstance(target, str) else f"mirror {target!r} is not text"
            raise ConfigError(f"imageMirrors.{source}: {problem}")
    return {source.rstrip("/"): target.rstrip("/") for source, target in raw.items()}


def _zone_names(values: Mapping[str, Any], aws_region: str) -> tuple[str, ...]:
    """The zones `availabilityZones` names (comma-separated), or () for a number."""
    written = str(values["availabilityZones"]).strip()
    if not written or written.isdigit():
        return ()
    named = tuple(part.strip() for part in written.split(","))
    for zone in named:
        match = zones.ZONE_NAME_RE.fullmatch(zone)
        if not match:
            raise ConfigError(
                f"availabilityZones: {zone!r} is not an availability zone's name: write 2 "
                "or 3, or 2 or 3 names of the region's zones, e.g. eu-central-1a,eu-central-1b"
            )
        if aws_region and match["region"] != aws_region:
            raise ConfigError(
                f"availabilityZones: {zone!r} is not in {aws_region} (aws:region): name "
                "zones of the cluster's region"
            )
    if len(set(named)) != len(named):
        raise ConfigError(f"availabilityZones: {written!r} names a zone twice: name each once")
    return named


def _cluster_admins(values: Mapping[str, Any], cluster: str) -> tuple[str, ...]:
    written = read.string(values, "clusterAdmins").strip()
    if not written:
        return ()
    if cluster != "eks":
        raise ConfigError(
            "clusterAdmins: is set, but cluster is 'existing': the program does not manage "
            "that cluster's access; remove it and grant access where the cluster is managed"
        )
    admins = tuple(part.strip() for part in written.split(","))
    for arn in admins:
        if problem := access_entries.principal_problem(arn):
            raise ConfigError(f"clusterAdmins: {problem}")
    return tuple(sorted(set(admins)))


def _log_retention(values: Mapping[str, Any]) -> int:
    days = retention_days("controlPlaneLogRetention", values["controlPlaneLogRetention"])
    if days not in LOG_RETENTION_DAYS:
        raise ConfigError(
            f"controlPlaneLogRetention: {days}d is not a period CloudWatch Logs keeps logs "
            f"for: use one of {', '.join(f'{d}d' for d in LOG_RETENTION_DAYS)}"
        )
    return days


def _api_allowed_cidrs(values: Mapping[str, Any], cluster: str, size: Size) -> tuple[str, ...]:
    written = read.string(values, "apiAllowedCidrs")
    if cluster != "eks":
        if written:
            raise ConfigError(
                "apiAllowedCidrs: is set, but cluster is 'existing': the program does not "
                "manage that cluster's API endpoint; remove it and limit the endpoint where "
                "the cluster is managed"
            )
        return ()
    if not written.strip():
        if size.name != "small":
            raise ConfigError(
                f"apiAllowedCidrs: required with sizing {size.name!r}: list the networks that "
                "may reach the cluster's API endpoint, comma-separated, e.g. 203.0.113.7/32 "
                f"({ADDRESS_HINT}; {EVERY_ADDRESS} opens it to every address)"
            )
        return (EVERY_ADDRESS,)
    networks = []
    for entry in (part.strip() for part in written.split(",")):
        try:
            network = ipaddress.IPv4Network(entry)
        except ValueError:
            raise ConfigError(
                f"apiAllowedCidrs: {entry!r} is not an IPv4 network: write ADDRESS/PREFIX with "
                f"the host bits zero, e.g. 203.0.113.7/32 ({ADDRESS_HINT})"
            ) from None
        if any(network.subnet_of(block) for block in PRIVATE_NETWORKS):
            raise ConfigError(
                f"apiAllowedCidrs: {entry!r} is a private network, which never reaches the "
                "public endpoint (the VPC uses the private one): list public networks"
            )
        networks.append(network)
    return tuple(str(network) for network in sorted(set(networks)))


def _secrets_key_arn(values: Mapping[str, Any], cluster: str, aws_region: str) -> str:
    arn = read.string(values, "secretsKeyArn")
    if not arn:
        return ""
    if cluster != "eks":
        raise ConfigError(
            "secretsKeyArn: is set, but cluster is 'existing': the program does not manage "
            "that cluster's encryption; remove it"
        )
    match = _KMS_KEY_ARN_RE.fullmatch(arn)
    if not match:
        raise ConfigError(
            f"secretsKeyArn: {arn!r} is not a KMS key ARN: use "
            "arn:aws:kms:<region>:<account>:key/<key id> (or :alias/<name>)"
        )
    if match["region"] != aws_region:
        raise ConfigError(
            f"secretsKeyArn: the key is in {match['region']}, the cluster in {aws_region} "
            "(aws:region): EKS needs a key in the cluster's region"
        )
    return arn


def _network_policy_risk_accepted(values: Mapping[str, Any], cluster: str) -> bool:
    accepted = read.boolean(values, "networkPolicyRiskAccepted")
    if accepted and cluster == "eks":
        raise ConfigError(
            "networkPolicyRiskAccepted: is for cluster existing; with cluster eks the program "
            "turns NetworkPolicy enforcement on itself (the vpc-cni add-on): remove it"
        )
    return accepted


def _retention(values: Mapping[str, Any], key: str) -> int:
    return retention_days(key, values[key])


def retention_days(field: str, value: Any, owner: str = "") -> int:
    """The days of a retention setting (`<n>d`, 1d to 3650d); `owner` names a tenant."""
    match = _RETENTION_RE.fullmatch(value) if isinstance(value, str) else None
    if not match or not 1 <= int(match.group(1)) <= RETENTION_DAYS_MAX:
        raise ConfigError(
            f"{field}{owner}: {value!r} is not a retention: use a number of days from 1d to "
            f"{RETENTION_DAYS_MAX}d (e.g. 30d)"
        )
    return int(match.group(1))


def _cidr(values: Mapping[str, Any]) -> str:
    value = read.string(values, "vpcCidr")
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError:
        network = None
    private = network is not None and any(network.subnet_of(b) for b in PRIVATE_NETWORKS)
    if network is None or not private or not 16 <= network.prefixlen <= 20:
        raise ConfigError(
            f"vpcCidr: {value!r} is not usable: use a private IPv4 network from /16 to /20 "
            "(e.g. 10.40.0.0/16)"
        )
    return str(network)
