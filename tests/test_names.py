"""Specification of the name rules and of the DNS names derived from them."""

from __future__ import annotations

import itertools
import random
import string

import pytest

from opstrace.names import (
    ENDPOINT_SERVICES,
    SYSTEM_TENANT,
    audience,
    domain_problem,
    endpoint_host,
    endpoint_hosts,
    endpoint_records,
    hostname_problem,
    instance_dns_name,
    instance_name_problem,
    subject,
    tenant_endpoints,
    tenant_hosts,
    tenant_name_problem,
    tenant_namespace,
    token_name_problem,
)

INSTANCE_RULE_TEXT = (
    "use 1 to 23 lowercase letters, digits and inner hyphens "
    "(rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$; Opstrace's '_' and outer '-' cannot "
    "appear in a DNS name)"
)
TENANT_RULE_TEXT = (
    "use lowercase letters, digits and inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$)"
)
DOMAIN_RULE_TEXT = (
    "use dot-separated labels of lowercase letters, digits and inner hyphens, "
    "at least two labels, no trailing dot"
)
LABEL_RULE_TEXT = "(1 to 63 letters, digits and inner hyphens)"

REALISTIC_DOMAIN = "observability.acme-corp.example.co.uk"


# --- instance names ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a", "7", "acme", "acme-prod", "a1-b2-c3", "9lives", "a--b", "a" * 23],
)
def test_instance_name_of_lowercase_digits_and_inner_hyphens_is_accepted(name: str) -> None:
    assert instance_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("", "'' is not a valid instance name: ", id="empty"),
        pytest.param("acme_prod", "'acme_prod' is not a valid instance name: ", id="underscore"),
        pytest.param("-acme", "'-acme' is not a valid instance name: ", id="leading-hyphen"),
        pytest.param("acme-", "'acme-' is not a valid instance name: ", id="trailing-hyphen"),
        pytest.param("Acme", "'Acme' is not a valid instance name: ", id="uppercase"),
        pytest.param(
            "a" * 24,
            "'aaaaaaaaaaaaaaaaaaaaaaaa' is not a valid instance name: ",
            id="24-characters",
        ),
        pytest.param("acme.prod", "'acme.prod' is not a valid instance name: ", id="dot"),
        pytest.param("acme prod", "'acme prod' is not a valid instance name: ", id="space"),
        pytest.param("acme\n", "'acme\\n' is not a valid instance name: ", id="trailing-newline"),
        pytest.param("äcme", "'äcme' is not a valid instance name: ", id="non-ascii"),
    ],
)
def test_instance_name_outside_the_rule_is_refused_with_the_rule(name: str, message: str) -> None:
    assert instance_name_problem(name) == message + INSTANCE_RULE_TEXT


# --- tenant names --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "0",
        "prod",
        "team42",
        "42",
        SYSTEM_TENANT,
        "a" * 56,
        "team-revenue",
        "team-fraud",
        "a--b",
    ],
)
def test_tenant_name_of_lowercase_letters_digits_and_inner_hyphens_is_accepted(name: str) -> None:
    assert tenant_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("", "'' is not a valid tenant name: ", id="empty"),
        pytest.param("Prod", "'Prod' is not a valid tenant name: ", id="uppercase"),
        pytest.param("-prod", "'-prod' is not a valid tenant name: ", id="leading-hyphen"),
        pytest.param("prod-", "'prod-' is not a valid tenant name: ", id="trailing-hyphen"),
        pytest.param("pro_d", "'pro_d' is not a valid tenant name: ", id="underscore"),
        pytest.param("pro.d", "'pro.d' is not a valid tenant name: ", id="dot"),
        pytest.param("prod ", "'prod ' is not a valid tenant name: ", id="trailing-space"),
        pytest.param("prod\n", "'prod\\n' is not a valid tenant name: ", id="trailing-newline"),
    ],
)
def test_tenant_name_outside_the_rule_is_refused_with_the_rule(name: str, message: str) -> None:
    assert tenant_name_problem(name) == message + TENANT_RULE_TEXT


def test_tenant_name_of_56_characters_has_a_namespace_of_exactly_63() -> None:
    name = "t" * 56

    assert tenant_name_problem(name) is None
    assert len(tenant_namespace(name)) == 63


def test_tenant_name_of_57_characters_is_refused_because_of_its_namespace() -> None:
    name = "t" * 57

    assert tenant_name_problem(name) == (
        f"'{name}' is not a valid tenant name: at most 56 characters, so that its "
        f"namespace '{name}-tenant' is a valid Kubernetes name (63 characters)"
    )


# --- domains -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "domain",
    [
        "example.com",
        "opstrace.io",
        "a.b",
        REALISTIC_DOMAIN,
        "xn--bcher-kva.example",
        "1password.example",
        ("d" * 63) + ".example",
        ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61]),  # 253 characters
    ],
)
def test_domain_of_two_or_more_dns_labels_is_accepted(domain: str) -> None:
    assert domain_problem(domain) is None


@pytest.mark.parametrize(
    "domain",
    [
        pytest.param("", id="empty"),
        pytest.param("com", id="one-label"),
        pytest.param("example.com.", id="trailing-dot"),
        pytest.param(".example.com", id="leading-dot"),
        pytest.param("example..com", id="empty-label"),
        pytest.param("Example.com", id="uppercase"),
        pytest.param("exa_mple.com", id="underscore"),
        pytest.param("-example.com", id="leading-hyphen"),
        pytest.param("example-.com", id="trailing-hyphen"),
        pytest.param("https://example.com", id="url"),
        pytest.param("example.com\n", id="trailing-newline"),
        pytest.param(("d" * 64) + ".example", id="64-character-label"),
    ],
)
def test_domain_outside_the_rule_is_refused_with_the_rule(domain: str) -> None:
    assert domain_problem(domain) == f"{domain!r} is not a valid domain: {DOMAIN_RULE_TEXT}"


def test_domain_longer_than_253_characters_is_refused() -> None:
    domain = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 62])  # 254 characters

    assert domain_problem(domain) == (
        f"{domain!r} is not a valid domain: longer than 253 characters"
    )


# --- hostnames -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostname",
    [
        "cortex.prod.acme.example.com",
        "localhost",
        "x" * 63,
        ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61]),  # 253 characters
    ],
)
def test_hostname_of_short_enough_dns_labels_is_accepted(hostname: str) -> None:
    assert hostname_problem(hostname) is None


def test_hostname_with_a_64_character_label_is_refused_naming_the_label() -> None:
    label = "x" * 64
    hostname = f"cortex.{label}.example.com"

    assert hostname_problem(hostname) == (
        f"'{hostname}' has the label '{label}', which is not a valid DNS label {LABEL_RULE_TEXT}"
    )


def test_hostname_longer_than_253_characters_is_refused() -> None:
    hostname = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 62])  # 254 characters

    assert hostname_problem(hostname) == f"'{hostname}' is longer than 253 characters"


@pytest.mark.parametrize(
    ("hostname", "label"),
    [
        pytest.param("cortex..example.com", "", id="empty-label"),
        pytest.param("cortex.example.com.", "", id="trailing-dot"),
        pytest.param("Cortex.example.com", "Cortex", id="uppercase"),
        pytest.param("cortex.pro_d.example.com", "pro_d", id="underscore"),
        pytest.param("cortex.-prod.example.com", "-prod", id="leading-hyphen"),
        pytest.param("cortex.prod\n.example.com", "prod\n", id="newline"),
    ],
)
def test_hostname_with_an_invalid_label_is_refused_naming_the_label(
    hostname: str, label: str
) -> None:
    assert hostname_problem(hostname) == (
        f"{hostname!r} has the label {label!r}, which is not a valid DNS label {LABEL_RULE_TEXT}"
    )


# --- derived names -------------------------------------------------------------------


def test_instance_dns_name_is_instance_dot_domain() -> None:
    assert instance_dns_name("acme", "example.com") == "acme.example.com"


@pytest.mark.parametrize(
    ("service", "host"),
    [
        ("cortex", "cortex.prod.acme.example.com"),
        ("loki", "loki.prod.acme.example.com"),
    ],
)
def test_endpoint_host_is_service_tenant_instance_domain(service: str, host: str) -> None:
    assert endpoint_host(service, "prod", "acme", "example.com") == host


def test_tenant_endpoints_are_the_https_urls_of_cortex_then_loki() -> None:
    endpoints = tenant_endpoints("prod", "acme", "example.com")

    assert endpoints == {
        "cortex": "https://cortex.prod.acme.example.com",
        "loki": "https://loki.prod.acme.example.com",
    }
    assert list(endpoints) == ["cortex", "loki"]


def test_endpoint_hosts_are_the_cortex_then_loki_hosts_of_the_tenant() -> None:
    assert endpoint_hosts("prod", "acme", "example.com") == (
        "cortex.prod.acme.example.com",
        "loki.prod.acme.example.com",
    )


def test_endpoint_services_are_cortex_and_loki() -> None:
    assert ENDPOINT_SERVICES == ("cortex", "loki")


def test_a_tenant_with_a_grafana_has_its_host_after_the_data_api_hosts() -> None:
    assert tenant_hosts("prod", "acme", "example.com", grafana=True) == (
        "cortex.prod.acme.example.com",
        "loki.prod.acme.example.com",
        "grafana.prod.acme.example.com",
    )


def test_a_tenant_without_a_grafana_has_the_data_api_hosts_alone() -> None:
    assert tenant_hosts("prod", "acme", "example.com", grafana=False) == endpoint_hosts(
        "prod", "acme", "example.com"
    )


def test_the_endpoints_of_a_tenant_with_a_grafana_give_its_url() -> None:
    endpoints = tenant_endpoints("prod", "acme", "example.com", grafana=True)

    assert endpoints["grafana"] == "https://grafana.prod.acme.example.com"
    assert list(endpoints) == ["cortex", "loki", "grafana"]


def test_endpoint_records_point_every_host_of_each_tenant_at_the_target() -> None:
    records = endpoint_records({"prod": True, "ci": False}, "acme", "example.com", "lb.aws")

    assert [(r["name"], r["type"], r["value"]) for r in records] == [
        ("cortex.prod.acme.example.com", "CNAME", "lb.aws"),
        ("loki.prod.acme.example.com", "CNAME", "lb.aws"),
        ("grafana.prod.acme.example.com", "CNAME", "lb.aws"),
        ("cortex.ci.acme.example.com", "CNAME", "lb.aws"),
        ("loki.ci.acme.example.com", "CNAME", "lb.aws"),
    ]


@pytest.mark.parametrize(
    ("tenant", "namespace"),
    [("prod", "prod-tenant"), ("system", "system-tenant"), ("42", "42-tenant")],
)
def test_tenant_namespace_is_tenant_dash_tenant(tenant: str, namespace: str) -> None:
    assert tenant_namespace(tenant) == namespace


def test_system_tenant_is_named_system() -> None:
    assert SYSTEM_TENANT == "system"


def test_audience_is_opstrace_cluster_instance() -> None:
    assert audience("acme") == "opstrace-cluster-acme"


def test_subject_is_tenant_dash_tenant() -> None:
    assert subject("prod") == "tenant-prod"


# --- property: accepted names always make valid hostnames ------------------------------


def _exhaustive_names(alphabet: str, max_length: int) -> list[str]:
    return [
        "".join(letters)
        for length in range(max_length + 1)
        for letters in itertools.product(alphabet, repeat=length)
    ]


def _random_names(seed: int, alphabet: str, max_length: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(alphabet, k=rng.randint(0, max_length))) for _ in range(count)]


_CANDIDATE_ALPHABET = string.ascii_lowercase + string.digits + "-_.A \n"


def _accepted_instances() -> list[str]:
    candidates = [
        *_exhaustive_names("a0-_.", 4),
        *_random_names(1, _CANDIDATE_ALPHABET, 26, 3000),
        *_random_names(2, "a9-", 26, 3000),
        "a" * 23,
        "z-" * 11 + "z",
    ]
    return sorted({name for name in candidates if instance_name_problem(name) is None})


def _accepted_tenants() -> list[str]:
    candidates = [
        *_exhaustive_names("a0-_.", 4),
        *_random_names(3, _CANDIDATE_ALPHABET, 60, 3000),
        *_random_names(4, "a9", 60, 3000),
        *_random_names(5, "a9-", 60, 3000),
        "t" * 56,
    ]
    return sorted({name for name in candidates if tenant_name_problem(name) is None})


def test_property_generators_reach_the_longest_accepted_names() -> None:
    instances, tenants = _accepted_instances(), _accepted_tenants()

    assert len(instances) > 1000
    assert len(tenants) > 1000
    assert max(map(len, instances)) == 23
    assert max(map(len, tenants)) == 56


def test_every_accepted_instance_and_tenant_make_valid_endpoint_hosts() -> None:
    instances, tenants = _accepted_instances(), _accepted_tenants()
    # Pair every instance with a tenant (cycling), and the longest with the longest.
    pairs = [
        *zip(instances, itertools.cycle(tenants), strict=False),
        *zip(itertools.cycle(instances), tenants, strict=False),
        (max(instances, key=len), max(tenants, key=len)),
    ]

    problems = [
        problem
        for instance, tenant in pairs
        for service in ENDPOINT_SERVICES
        if (problem := hostname_problem(endpoint_host(service, tenant, instance, REALISTIC_DOMAIN)))
    ]

    assert problems == []


def test_every_accepted_instance_makes_a_valid_instance_dns_name() -> None:
    problems = [
        problem
        for instance in _accepted_instances()
        if (problem := hostname_problem(instance_dns_name(instance, REALISTIC_DOMAIN)))
    ]

    assert problems == []


def test_every_accepted_tenant_has_a_namespace_that_is_a_dns_label() -> None:
    problems = [
        problem
        for tenant in _accepted_tenants()
        if (problem := hostname_problem(tenant_namespace(tenant)))
    ]

    assert problems == []


# --- property: hyphens keep every name unambiguous -------------------------------------


def _tenant_logical_names(tenant: str, tokens: list[str]) -> dict[str, tuple[str, str]]:
    """What the program names after a tenant (see components/tenant.py and dns.py)."""
    named = {f"acme-tenant-{tenant}-token-{token}": (tenant, token) for token in tokens}
    named |= {f"acme-dns-{tenant}-{service}": (tenant, service) for service in ENDPOINT_SERVICES}
    return named


def test_hyphenated_tenants_never_share_a_logical_name_namespace_or_endpoint() -> None:
    # Tenants made of the pieces the program itself adds ("token", "cortex", ...), and
    # token names that would collide with them if token names could hold hyphens.
    pieces = ["a", "token", "b", "cortex", "loki", "tenant", "dns"]
    tenants = sorted(
        {"-".join(parts) for n in (1, 2, 3) for parts in itertools.product(pieces, repeat=n)}
    )
    tokens = [
        name for name in ("a", "b", "token", "default", "a-token-b") if not token_name_problem(name)
    ]
    seen: dict[str, tuple[str, str]] = {}
    for tenant in tenants:
        assert tenant_name_problem(tenant) is None
        for name, owner in _tenant_logical_names(tenant, tokens).items():
            assert seen.setdefault(name, owner) == owner, name
    assert len({tenant_namespace(t) for t in tenants}) == len(tenants)
    assert len({endpoint_host("cortex", t, "acme", REALISTIC_DOMAIN) for t in tenants}) == len(
        tenants
    )


def test_token_names_take_no_hyphen_so_that_tenant_and_token_stay_apart() -> None:
    assert token_name_problem("a-token-b") == (
        "'a-token-b' is not a valid token name: use 1 to 63 lowercase letters and digits "
        "(rule ^[a-z0-9]+$)"
    )
