"""Every setting of a stack, described once: its key, type, default and meaning.

The parser's defaults (`schema.DEFAULTS`), Pulumi.yaml's `config:` block and the settings
table in docs/settings.md are all made from `CATALOG`: `python -m devtools.settings_doc
--write` writes the two files, and a test fails when either differs from what this table
gives. Add a setting here (then read it in `parse`, `platform` or `tenant_config`); never
in one of the generated files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from opstrace import images
from opstrace.aws import eks_versions
from opstrace.gateway.settings import DEFAULT_IMAGE, DEFAULT_SYNC_IMAGE

DECLARED_TYPES: Final = ("string", "integer", "boolean")
"""The types Pulumi.yaml declares: the CLI checks them before the program starts. Lists
and objects are not declared, since the CLI's array declarations need one item type and
these lists may hold objects; `parse` checks them."""


@dataclass(frozen=True)
class Setting:
    """One stack setting (under the `opstrace:` namespace)."""

    key: str
    type: str
    """`string`, `integer`, `boolean`, `list` or `object`."""
    description: str
    """What it means and which values it takes: Pulumi.yaml's description and the docs'."""
    default: Any = None
    required: bool = False
    shown_default: str = ""
    """How the docs show the default when the value alone says too little ("the sizing's")."""

    @property
    def declared(self) -> bool:
        """Whether Pulumi.yaml declares it (and so the CLI checks its type)."""
        return self.type in DECLARED_TYPES

    @property
    def structured(self) -> bool:
        """A list or an object: the CLI hands it to the program as JSON text."""
        return not self.declared

    def default_in_docs(self) -> str:
        if self.required:
            return "required"
        if self.shown_default:
            return self.shown_default
        if self.default == "":
            return "empty"
        if isinstance(self.default, bool):
            return f"`{str(self.default).lower()}`"
        if self.default in ([], {}):
            return f"`{self.default}`"
        return f"`{self.default}`"


CATALOG: Final = (
    Setting(
        "instanceName",
        "string",
        "Instance name: 1-23 lowercase letters, digits and inner hyphens. Part of every "
        "endpoint and token; cannot be changed once created.",
        required=True,
    ),
    Setting(
        "domain",
        "string",
        "A domain you own; the instance's zone is `<instanceName>.<domain>`. Reserved names "
        "(`example.com`, `.test`, ...) are refused with `dns: route53`.",
        required=True,
    ),
    Setting(
        "tenants",
        "list",
        "The user tenants (the `system` tenant is always added): each a name, or `{name, "
        "tokens, rotation, exportKeysTo, signingKeyFile, limits, metricsRetention, "
        "logsRetention, rules, logRules, alertmanagerConfig, dataApiAllowedCidrs, grafana}` "
        "(docs/tenants.md); each token a name or `{name, scopes, rateLimit}`. Or the same "
        "list in `tenantsFile`.",
        [],
        shown_default="required, unless `tenantsFile`",
    ),
    Setting(
        "tenantsFile",
        "string",
        "A YAML file holding the `tenants` list instead (relative to the project directory, "
        "like the paths its entries name): for an instance whose stack configuration would "
        "pass 128 KiB, which the CLI cannot hand a Python program (about 2,000 tenants of "
        'four credentials; docs/operations.md, "Large instances"). Not both.',
        "",
    ),
    Setting(
        "dns",
        "string",
        "`route53`: the program manages the instance zone and the endpoint records; `none`: "
        "DNS is managed elsewhere, no AWS resource is made for it, and the records to create "
        "are the `dns_records` stack output.",
        "route53",
    ),
    Setting(
        "parentZoneId",
        "string",
        "The Route53 zone of `domain`: the instance zone is delegated from it with an NS "
        "record. Empty: from the domain's (or a parent domain's) public zone in this account, "
        "if any; else add the NS records preview names at your DNS provider (`up` waits for "
        "them before requesting certificates).",
        "",
    ),
    Setting(
        "cluster",
        "string",
        "`eks`: the program makes an EKS cluster (VPC, nodes, OIDC, add-ons); `existing`: "
        "the instance goes into the cluster of `kubeconfig`/`kubeContext`.",
        "eks",
    ),
    Setting(
        "kubernetesVersion",
        "string",
        "The EKS cluster's Kubernetes version (`cluster: eks`): one EKS still creates "
        "clusters on (its calendar, with sources: `opstrace/aws/eks_versions.py`); preview "
        "warns 60 days before its standard support ends. Upgrade one minor version at a time.",
        eks_versions.DEFAULT_VERSION,
    ),
    Setting(
        "upgradePolicy",
        "string",
        "`cluster: eks`, when its version leaves EKS standard support: `standard`: EKS "
        "upgrades the cluster to the next version; `extended`: it stays, in extended support "
        "at $0.60 instead of $0.10 an hour (+$365 a month).",
        "standard",
    ),
    Setting(
        "sizing",
        "string",
        "`small` (a trial, no replication) or `production` (3 zones, replicated); "
        "docs/architecture.md says what each is sized for and costs.",
        "small",
    ),
    Setting(
        "nodeInstanceType",
        "string",
        "The EC2 instance type of the nodes (`cluster: eks`); empty: the sizing's.",
        "",
        shown_default="the sizing's",
    ),
    Setting(
        "nodeCount",
        "integer",
        "Nodes (`cluster: eks`), 2 to 100; 0: the sizing's.",
        0,
        shown_default="the sizing's",
    ),
    Setting(
        "availabilityZones",
        "string",
        "Availability zones the cluster spans (`cluster: eks`): 2 or 3 (`production` needs "
        "3), the region's first that EKS accepts (no Local Zones or opt-in zones, not "
        "`use1-az3`, `usw1-az2`, `cac1-az3`); or 2-3 zone names, comma-separated (e.g. "
        "`eu-central-1a,eu-central-1b,eu-central-1c`).",
        "3",
    ),
    Setting(
        "vpcCidr",
        "string",
        "The VPC's private IPv4 network (`cluster: eks`): within RFC 1918's 10/8, 172.16/12 "
        "or 192.168/16, a /16 to /20.",
        "10.40.0.0/16",
    ),
    Setting(
        "loadBalancer",
        "string",
        "`aws`: the gateway's NLB comes from the AWS Load Balancer Controller (installed with "
        "`cluster: eks`, checked with `existing`); `generic`: the cluster's own LoadBalancer "
        "implementation (`existing` only).",
        "aws",
    ),
    Setting(
        "eksClusterName",
        "string",
        "With `cluster: existing` and the instance's own backends: the EKS cluster whose OIDC "
        "provider their bucket roles trust.",
        "",
    ),
    Setting(
        "certificateIssuer",
        "string",
        "The cert-manager ClusterIssuer of the tenant certificates (required with `existing` "
        "or `dns: none`); empty with `cluster: eks` and `dns: route53`: the program's own "
        "Let's Encrypt issuer.",
        "",
        shown_default="the program's",
    ),
    Setting("acmeEmail", "string", "The Let's Encrypt account's contact address.", ""),
    Setting(
        "acmeStaging",
        "boolean",
        "The program's own issuer uses Let's Encrypt's staging CA: no weekly limit of 5 "
        "certificates for the same names, but only the program's own clients trust its "
        "certificates (the system tenant's collector, the rule uploads of `up`), no other "
        "client.",
        False,
    ),
    Setting(
        "metricsRetention",
        "string",
        "How long metrics are kept: `<n>d`, 1d to 3650d.",
        "30d",
    ),
    Setting(
        "logsRetention",
        "string",
        "How long logs are kept: `<n>d`, 1d to 3650d.",
        "30d",
    ),
    Setting(
        "limits",
        "object",
        "Every tenant's limits, `{metrics: {...}, logs: {...}}` (docs/tenants.md).",
        {},
    ),
    Setting(
        "keepDataOnDestroy",
        "boolean",
        "`true`: `pulumi destroy` keeps the buckets and their data (and says so); `false`: it "
        "deletes them.",
        True,
    ),
    Setting(
        "telemetry",
        "boolean",
        "Ship the cluster's own metrics and pod logs to the `system` tenant (Grafana Alloy).",
        True,
    ),
    Setting(
        "grafana",
        "boolean",
        "Each tenant's own Grafana at `https://grafana.<tenant>.<instanceName>.<domain>`, "
        "its data sources the tenant through the gateway with a read-only token "
        "(docs/tenants.md); a tenant's `grafana: false` leaves it out; `false`: no tenant has "
        "one.",
        True,
    ),
    Setting(
        "grafanaSso",
        "object",
        "Single sign-on for the tenants' Grafanas through an OpenID Connect provider: "
        "`{name, authUrl, tokenUrl, apiUrl, clientId, scopes, groupsAttributePath}` (the "
        "endpoints from its `/.well-known/openid-configuration`); who gets which role is each "
        "tenant's `grafana.roles`. Empty: only each Grafana's own admin logs in.",
        {},
    ),
    Setting(
        "grafanaClientSecret",
        "string",
        "The single sign-on client's secret, required with `grafanaSso`: set it with "
        "`pulumi config set --secret`.",
        "",
    ),
    Setting(
        "systemGrafanaRoles",
        "object",
        "Who may log in to the `system` tenant's Grafana (the instance's own dashboards) "
        "through single sign-on, as a tenant's `grafana.roles`: `{Admin|Editor|Viewer: "
        "{groups, emailDomains}}`.",
        {},
    ),
    Setting(
        "apiAllowedCidrs",
        "string",
        "`cluster: eks`: the networks that may reach the API server's public endpoint, "
        "comma-separated (`curl -s https://checkip.amazonaws.com` prints your address; add "
        "`/32`); nodes use the private endpoint. Required with `production`; empty with "
        "`small`: every address (IAM still authenticates).",
        "",
    ),
    Setting(
        "clusterAdmins",
        "string",
        "`cluster: eks`: IAM roles or users (ARNs, comma-separated) made cluster "
        "administrators through EKS access entries: teammates, a CI role "
        "(docs/operations.md).",
        "",
    ),
    Setting(
        "controlPlaneLogRetention",
        "string",
        "`cluster: eks`: how long CloudWatch keeps the control plane's logs (api, audit, "
        "authenticator): `<n>d`, one of CloudWatch's periods (1d, 3d, 5d, 7d, 14d, 30d, 60d, "
        "90d, 120d, ...); `destroy` deletes them unless `keepDataOnDestroy`.",
        "90d",
    ),
    Setting(
        "imageMirrors",
        "object",
        "Image source (a registry, or a registry and path) -> where its images are pulled "
        "instead; replaces the default, which takes Docker's official images from ECR "
        "Public's copy (docs/operations.md, images).",
        dict(images.DEFAULT_MIRRORS),
        shown_default="Docker's official images from ECR Public",
    ),
    Setting(
        "secretsKeyArn",
        "string",
        "`cluster: eks`: the KMS key (ARN, the cluster's region) that encrypts Kubernetes "
        "Secrets; empty: the program makes one, rotated yearly.",
        "",
    ),
    Setting(
        "networkPolicyRiskAccepted",
        "boolean",
        "`cluster: existing`: go on although the cluster enforces no NetworkPolicy the "
        "program recognizes (then any pod can reach Mimir and Loki as any tenant); `false`: "
        "preview refuses such a cluster, saying how to turn enforcement on.",
        False,
    ),
    Setting(
        "tokenLifetime",
        "string",
        "Data API token lifetime: a positive number and one of s, m, h, d, y, at most 100y "
        "(Opstrace used 10y).",
        "10y",
    ),
    Setting(
        "systemTokenRotation",
        "string",
        "Rotation marker of the `system` tenant's token (it is not listed in `tenants`): any "
        "new value replaces its token and key.",
        "",
    ),
    Setting(
        "keyBits", "integer", "RSA key size of each token's keypair: 2048, 3072 or 4096.", 2048
    ),
    Setting(
        "trustedKeys",
        "list",
        "Public keys of tokens minted elsewhere: PEM text or a file path (trusted for every "
        "tenant), or `{key, tenant}` (that tenant only).",
        [],
    ),
    Setting(
        "kubeconfig",
        "string",
        "`cluster: existing`: the kubeconfig file (kept as written); empty: the ambient one, "
        "as kubectl finds it.",
        "",
        shown_default="ambient",
    ),
    Setting(
        "kubeContext",
        "string",
        "`cluster: existing`: the kubeconfig context; empty: the current one.",
        "",
        shown_default="current",
    ),
    Setting(
        "cortexUrl",
        "string",
        "An external metrics backend (Cortex or Mimir: pushes at /api/v1/push, queries under "
        "/prometheus) for `cortex.<tenant>` requests: `http://<host>[:<port>]`. Empty: the "
        "instance runs its own Grafana Mimir.",
        "",
    ),
    Setting(
        "lokiUrl",
        "string",
        "An external logs backend for `loki.<tenant>` requests: `http://<host>[:<port>]`. "
        "Empty: the instance runs its own Loki.",
        "",
    ),
    Setting(
        "gatewayReplicas",
        "integer",
        "Data API gateway pods (at least 2, so that one can be disrupted).",
        2,
    ),
    Setting(
        "dataApiAllowedCidrs",
        "string",
        "The networks that may reach the data API, comma-separated: the load balancer keeps "
        "every other address out, and the gateway refuses it with 403. A tenant's own "
        "`dataApiAllowedCidrs` narrows it for that tenant. With `loadBalancer: aws`: public "
        "IPv4 networks, at most 24; the instance's NAT gateways are let in for the system "
        "tenant's collector. Empty: every address.",
        "",
    ),
    Setting(
        "gatewayMinReadySeconds",
        "integer",
        "How long a new gateway pod must be ready before a rollout of the gateway goes on, 1 "
        "to 600 seconds: at least the time the load balancer takes to send to a new pod. 0: "
        "the load balancer's, 10 with `loadBalancer: aws` (whose readiness gate waits for the "
        "NLB) and 120 with `generic`.",
        0,
    ),
    Setting(
        "gatewayImage",
        "string",
        "The gateway's stock HAProxy image (2.6 or newer): `<repository>:<version>`, ideally "
        "followed by `@sha256:<digest>` (docs/gateway.md).",
        DEFAULT_IMAGE,
    ),
    Setting(
        "gatewaySyncImage",
        "string",
        "The stock Python image (3.11 or newer) of the gateway's sidecar, which loads keys "
        "and certificates without restarts: `<repository>:<version>`, ideally followed by "
        "`@sha256:<digest>`.",
        DEFAULT_SYNC_IMAGE,
    ),
)
"""Every setting, in the order the docs list them."""

BY_KEY: Final = {setting.key: setting for setting in CATALOG}
