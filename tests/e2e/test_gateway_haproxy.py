"""The gateway as a real HAProxy: every refusal, every acceptance, key bindings, the
verified-token cache, revocation on reload.

Each decision is also asked of `data_token.authenticate`, the reference authenticator:
HAProxy must answer what the reference decides, with the same status and body.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opstrace import data_token, keys
from opstrace.gateway.haproxy import NOT_FOUND_BODY, REFUSAL_CONTENT_TYPE
from opstrace.keys import stand_in_public_key
from tests.e2e import harness
from tests.e2e.conftest import METRICS_QUERY_PREFIX, Minted
from tests.e2e.harness import (
    HAPROXY,
    NEEDS_HAPROXY,
    STARTUP_SECONDS,
    Gateway,
    Recorder,
    Response,
    Signer,
    TLSConnection,
    b64url,
    basic,
    bearer,
    host,
    one_upstream,
    plain_request,
    raw_token,
    request,
    running_gateway,
    unique_path,
    wait_for_clock,
    wait_until,
)

pytestmark = [
    pytest.mark.e2e,
    NEEDS_HAPROXY,
]

PROD_CORTEX = host("cortex", "prod")
QUERY_PATH = "/api/v1/labels"
"""A query route (GET) that every authentication test uses."""


def query_upstream_path(path: str) -> str:
    """Where the shared gateway (a Mimir-style backend) sends a metrics query path."""
    return METRICS_QUERY_PREFIX + path


@dataclass(frozen=True)
class Tokens:
    """What a refusal case can build its request from."""

    signer: Signer
    bound_signer: Signer
    untrusted: Signer
    minted: dict[str, Minted]
    gateway: Gateway


@dataclass(frozen=True)
class Refusal:
    """A request (Authorization value, None for none) and the exact answer expected."""

    authorization: Callable[[Tokens], str | None]
    status: int
    body: str
    host: str = PROD_CORTEX


def _hs256_with_public_key_as_secret(t: Tokens) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": t.signer.kid}
    claims = t.signer.claims("prod")
    signing_input = ".".join(b64url(json.dumps(part).encode()) for part in (header, claims))
    mac = hmac.new(t.signer.public_pem.encode(), signing_input.encode(), hashlib.sha256)
    return f"Bearer {signing_input}.{b64url(mac.digest())}"


def _tampered_payload(t: Tokens) -> str:
    header, _, signature = t.signer.token("staging").split(".")
    forged = b64url(json.dumps(t.signer.claims("prod")).encode())
    return f"Bearer {header}.{forged}.{signature}"


def _alg_none(t: Tokens) -> str:
    return "Bearer " + raw_token(
        {"alg": "none", "typ": "JWT", "kid": t.signer.kid}, t.signer.claims("prod"), b""
    )


BAD_TOKEN = data_token.BAD_TOKEN
UNEXPECTED = data_token.UNEXPECTED_TENANT_PREFIX
REFUSALS: dict[str, Refusal] = {
    "no_authorization_header": Refusal(lambda t: None, 401, data_token.MISSING),
    "empty_authorization_header": Refusal(lambda t: "", 401, data_token.MISSING),
    "wrong_scheme": Refusal(lambda t: "Token abc", 401, data_token.BAD_FORMAT),
    "lowercase_bearer_scheme": Refusal(
        lambda t: "bearer " + t.minted["prod"].token, 401, data_token.BAD_FORMAT
    ),
    "bearer_without_token": Refusal(lambda t: "Bearer", 401, data_token.BAD_FORMAT),
    "basic_auth_with_empty_password": Refusal(
        lambda t: basic("prod", "")["Authorization"], 401, data_token.BAD_FORMAT
    ),
    "basic_auth_not_base64": Refusal(lambda t: "Basic !!!", 401, data_token.BAD_FORMAT),
    "garbage_token": Refusal(lambda t: "Bearer garbage", 401, BAD_TOKEN),
    "token_of_another_tenant_by_an_instance_wide_key": Refusal(
        lambda t: "Bearer " + t.signer.token("staging"), 401, UNEXPECTED + "staging"
    ),
    "token_of_another_tenant_by_its_own_bound_key": Refusal(
        lambda t: "Bearer " + t.minted["staging"].token, 401, BAD_TOKEN
    ),
    "system_token_at_a_user_tenant": Refusal(
        lambda t: "Bearer " + t.minted["system"].token, 401, BAD_TOKEN
    ),
    "system_subject_by_an_instance_wide_key": Refusal(
        lambda t: "Bearer " + t.signer.token("system"), 401, UNEXPECTED + "system"
    ),
    "unknown_kid": Refusal(lambda t: "Bearer " + t.untrusted.token("prod"), 401, BAD_TOKEN),
    "untrusted_key_claiming_a_trusted_kid": Refusal(
        lambda t: "Bearer " + t.untrusted.token("prod", kid=t.signer.kid), 401, BAD_TOKEN
    ),
    "expired": Refusal(
        lambda t: "Bearer " + t.signer.token("prod", exp=int(time.time()) - 10), 401, BAD_TOKEN
    ),
    "without_exp": Refusal(lambda t: "Bearer " + t.signer.token("prod", exp=None), 401, BAD_TOKEN),
    "not_yet_valid_nbf": Refusal(
        lambda t: "Bearer " + t.signer.token("prod", nbf=int(time.time()) + 3600), 401, BAD_TOKEN
    ),
    "issued_in_the_future": Refusal(
        lambda t: "Bearer " + t.signer.token("prod", iat=int(time.time()) + 3600), 401, BAD_TOKEN
    ),
    "alg_none": Refusal(_alg_none, 401, BAD_TOKEN),
    "hs256_signed_with_public_key_pem_as_hmac_secret": Refusal(
        _hs256_with_public_key_as_secret, 401, BAD_TOKEN
    ),
    "tampered_payload": Refusal(_tampered_payload, 401, BAD_TOKEN),
    "audience_of_another_instance": Refusal(
        lambda t: "Bearer " + t.signer.token("prod", aud="opstrace-cluster-other"), 401, BAD_TOKEN
    ),
    "sub_without_tenant_prefix": Refusal(
        lambda t: "Bearer " + t.signer.token("prod", sub="prod"), 401, BAD_TOKEN
    ),
    "sub_with_the_tenant_prefix_inside": Refusal(
        lambda t: "Bearer " + t.signer.token("prod", sub="xtenant-prod"), 401, BAD_TOKEN
    ),
    "kid_with_path_characters": Refusal(
        lambda t: "Bearer " + t.signer.token("prod", kid="../../etc/passwd"), 401, BAD_TOKEN
    ),
    "kid_naming_a_trusted_key_file_by_path": Refusal(
        lambda t: (
            "Bearer " + t.signer.token("prod", kid=f"{t.gateway.directory}/key-{t.signer.kid}.pem")
        ),
        401,
        BAD_TOKEN,
    ),
    "kid_naming_a_trusted_key_file_by_name": Refusal(
        lambda t: "Bearer " + t.signer.token("prod", kid=f"key-{t.signer.kid}.pem"), 401, BAD_TOKEN
    ),
    "key_bound_to_prod_at_staging": Refusal(
        lambda t: "Bearer " + t.bound_signer.token("staging"),
        401,
        BAD_TOKEN,
        host("cortex", "staging"),
    ),
}


@pytest.fixture
def tokens(
    signer: Signer,
    bound_signer: Signer,
    untrusted: Signer,
    minted: dict[str, Minted],
    gateway: Gateway,
) -> Tokens:
    return Tokens(signer, bound_signer, untrusted, minted, gateway)


def send(gateway: Gateway, host_header: str, authorization: str | None) -> Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return request(gateway.port, host_header, QUERY_PATH, headers)


def forwarded(upstreams: dict[str, Recorder]) -> int:
    return sum(len(recorder.requests) for recorder in upstreams.values())


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_refusal_has_the_reference_status_and_body_every_time(
    case: str,
    tokens: Tokens,
    trusted: dict[str, str],
    bindings: dict[str, str],
    upstreams: dict[str, Recorder],
) -> None:
    refusal = REFUSALS[case]
    authorization = refusal.authorization(tokens)
    tenant = refusal.host.split(".")[1]
    before = forwarded(upstreams)

    # Twice: a refused token must never be remembered as verified.
    responses = [send(tokens.gateway, refusal.host, authorization) for _ in range(2)]
    reference = data_token.authenticate(
        authorization, tenant, trusted, "acme", int(time.time()), bindings
    )

    for response in responses:
        assert (response.status, response.body, response.content_type) == (
            refusal.status,
            refusal.body,
            REFUSAL_CONTENT_TYPE,
        )
    assert (reference.status, reference.body) == (refusal.status, refusal.body)
    assert forwarded(upstreams) == before, "a refused request reached an upstream"


# Keys bound to tenants: every combination -------------------------------------------


BINDING_CASES = [
    # (key, endpoint tenant, tenant in sub, expected status, body)
    ("instance-wide", "prod", "prod", 200, ""),
    ("instance-wide", "prod", "staging", 401, UNEXPECTED + "staging"),
    ("instance-wide", "staging", "staging", 200, ""),
    ("instance-wide", "staging", "prod", 401, UNEXPECTED + "prod"),
    ("bound to prod", "prod", "prod", 200, ""),
    ("bound to prod", "prod", "staging", 401, UNEXPECTED + "staging"),
    ("bound to prod", "staging", "staging", 401, BAD_TOKEN),
    ("bound to prod", "staging", "prod", 401, BAD_TOKEN),
]


@pytest.mark.parametrize(
    ("key", "endpoint", "sub", "status", "body"),
    BINDING_CASES,
    ids=[f"{k} key, {e} endpoint, sub {s}" for k, e, s, _, _ in BINDING_CASES],
)
def test_a_bound_key_is_accepted_only_at_its_tenants_endpoints(
    key: str,
    endpoint: str,
    sub: str,
    status: int,
    body: str,
    signer: Signer,
    bound_signer: Signer,
    trusted: dict[str, str],
    bindings: dict[str, str],
    gateway: Gateway,
    upstreams: dict[str, Recorder],
) -> None:
    chosen = bound_signer if key == "bound to prod" else signer
    authorization = "Bearer " + chosen.token(sub)
    for service in ("cortex", "loki"):
        path = unique_path("/api/v1/labels" if service == "cortex" else "/loki/api/v1/labels")
        response = request(
            gateway.port, host(service, endpoint), path, {"Authorization": authorization}
        )
        reference = data_token.authenticate(
            authorization, endpoint, trusted, "acme", int(time.time()), bindings
        )
        assert (reference.status, reference.body) == (status, body)
        if status == 200:
            assert response.status == 200
            upstream = upstreams[f"{service}_query"]
            arrived = [r for r in upstream.requests if r.path.endswith(path.partition("?")[2])]
            assert [r.values("X-Scope-OrgID") for r in arrived] == [[endpoint]]
        else:
            assert (response.status, response.body) == (status, body)


def test_each_tenants_minted_token_works_at_its_own_endpoints(
    gateway: Gateway, minted: dict[str, Minted]
) -> None:
    for tenant, credential in minted.items():
        for service, path in (("cortex", QUERY_PATH), ("loki", "/loki/api/v1/labels")):
            response = request(gateway.port, host(service, tenant), path, bearer(credential.token))
            assert response.status == 200, (tenant, service, response)


# Forwarding --------------------------------------------------------------------------


def test_two_authorization_headers_are_refused_as_malformed(
    gateway: Gateway, minted: dict[str, Minted]
) -> None:
    # Deliberate: the reference sees one header value; HAProxy would see the last one.
    token = minted["prod"].token
    response = request(
        gateway.port,
        PROD_CORTEX,
        QUERY_PATH,
        header_list=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert (response.status, response.body) == (401, data_token.BAD_FORMAT)


def test_push_reaches_the_metrics_push_upstream_with_the_tenant_as_scope(
    gateway: Gateway, minted: dict[str, Minted], upstreams: dict[str, Recorder]
) -> None:
    path = unique_path("/api/v1/push")
    response = request(
        gateway.port, PROD_CORTEX, path, bearer(minted["prod"].token), method="POST", body=b"x"
    )
    assert response == Response(200, f"cortex_push got POST {path}")
    assert upstreams["cortex_push"].arrived(path).values("X-Scope-OrgID") == ["prod"]


def test_authorization_is_not_forwarded(
    gateway: Gateway, minted: dict[str, Minted], upstreams: dict[str, Recorder]
) -> None:
    path = unique_path(QUERY_PATH)
    response = request(gateway.port, PROD_CORTEX, path, bearer(minted["prod"].token))
    assert response.status == 200
    assert (
        upstreams["cortex_query"].arrived(query_upstream_path(path)).values("Authorization") == []
    )


def test_client_sent_scope_header_is_replaced(
    gateway: Gateway, minted: dict[str, Minted], upstreams: dict[str, Recorder]
) -> None:
    spoofed = [("X-Scope-OrgID", "staging"), ("x-scope-orgid", "system")]
    path = unique_path(QUERY_PATH)
    response = request(
        gateway.port, PROD_CORTEX, path, headers=bearer(minted["prod"].token), header_list=spoofed
    )
    assert response.status == 200
    arrived = upstreams["cortex_query"].arrived(query_upstream_path(path))
    assert arrived.values("X-Scope-OrgID") == ["prod"]


def test_token_as_basic_auth_password_is_accepted_whatever_the_username(
    gateway: Gateway, minted: dict[str, Minted], upstreams: dict[str, Recorder]
) -> None:
    path = unique_path(QUERY_PATH)
    response = request(gateway.port, PROD_CORTEX, path, basic("anyone", minted["prod"].token))
    assert response.status == 200
    arrived = upstreams["cortex_query"].arrived(query_upstream_path(path))
    assert arrived.values("X-Scope-OrgID") == ["prod"]
    assert arrived.values("Authorization") == []


def test_loki_push_reaches_the_logs_push_upstream(
    gateway: Gateway, minted: dict[str, Minted], upstreams: dict[str, Recorder]
) -> None:
    path = unique_path("/loki/api/v1/push")
    response = request(
        gateway.port, host("loki", "prod"), path, bearer(minted["prod"].token), method="POST"
    )
    assert response == Response(200, f"loki_push got POST {path}")
    assert upstreams["loki_push"].arrived(path).values("X-Scope-OrgID") == ["prod"]


@pytest.mark.parametrize(
    ("service", "path"), [("cortex", QUERY_PATH), ("loki", "/loki/api/v1/labels")]
)
def test_system_tenant_endpoints_work_like_any_other(
    gateway: Gateway,
    minted: dict[str, Minted],
    upstreams: dict[str, Recorder],
    service: str,
    path: str,
) -> None:
    probe = unique_path(path)
    response = request(gateway.port, host(service, "system"), probe, bearer(minted["system"].token))
    assert response.status == 200
    arrived_path = query_upstream_path(probe) if service == "cortex" else probe
    arrived = upstreams[f"{service}_query"].arrived(arrived_path)
    assert arrived.values("X-Scope-OrgID") == ["system"]


def test_port_suffix_in_host_is_ignored(gateway: Gateway, minted: dict[str, Minted]) -> None:
    response = request(gateway.port, f"{PROD_CORTEX}:443", QUERY_PATH, bearer(minted["prod"].token))
    assert response.status == 200


def test_host_is_matched_without_regard_to_case(
    gateway: Gateway, minted: dict[str, Minted]
) -> None:
    response = request(gateway.port, PROD_CORTEX.upper(), QUERY_PATH, bearer(minted["prod"].token))
    assert response.status == 200


def test_absolute_form_request_reaches_upstream_in_origin_form(
    gateway: Gateway, minted: dict[str, Minted], upstreams: dict[str, Recorder]
) -> None:
    path = unique_path("/api/v1/query")
    response = request(
        gateway.port, PROD_CORTEX, f"https://{PROD_CORTEX}{path}", bearer(minted["prod"].token)
    )
    assert response.status == 200
    assert upstreams["cortex_query"].arrived(query_upstream_path(path)).method == "GET"


@pytest.mark.parametrize(
    "host_header",
    [
        "cortex.unknown.acme.example.com",
        "cortex.prod.other.example.com",
        "dd.prod.acme.example.com",
        "acme.example.com",
        "127.0.0.1",
    ],
)
def test_unknown_host_is_not_found_even_with_a_valid_token(
    gateway: Gateway, minted: dict[str, Minted], host_header: str
) -> None:
    response = request(
        gateway.port, host_header, QUERY_PATH, bearer(minted["prod"].token), sni=PROD_CORTEX
    )
    assert (response.status, response.body, response.content_type) == (
        404,
        NOT_FOUND_BODY,
        REFUSAL_CONTENT_TYPE,
    )


def test_health_endpoint_answers_without_credentials(gateway: Gateway) -> None:
    assert plain_request(gateway.health_port, "anything", "/healthz").status == 200


def test_rendered_configuration_checks_without_a_single_warning(gateway: Gateway) -> None:
    """Zero-warning mode (`-dW`): a release that deprecates anything we use fails here."""
    assert HAPROXY is not None
    config = str(gateway.directory / "haproxy.cfg")
    check = subprocess.run(
        [HAPROXY, "-c", "-dW", "-f", config], capture_output=True, text=True, timeout=60
    )
    output = check.stdout + check.stderr
    assert check.returncode == 0, output
    assert "WARNING" not in output


# The verified-token cache -------------------------------------------------------------


def test_a_token_accepted_at_one_host_is_verified_again_at_another(
    gateway: Gateway, bound_signer: Signer
) -> None:
    # Accepted (and remembered) at prod; at staging the binding refuses it. Were the
    # cache keyed by the token alone, staging would skip rule 4 and answer rule 6.
    authorization = bearer(bound_signer.token("prod"))
    assert request(gateway.port, PROD_CORTEX, QUERY_PATH, authorization).status == 200
    assert request(gateway.port, PROD_CORTEX, QUERY_PATH, authorization).status == 200
    at_staging = request(gateway.port, host("cortex", "staging"), QUERY_PATH, authorization)
    assert (at_staging.status, at_staging.body) == (401, BAD_TOKEN)


def test_expiry_is_checked_on_every_request_even_for_a_remembered_token(
    gateway: Gateway, signer: Signer
) -> None:
    # The first answer counts only if it came before `exp` by the clock HAProxy reads
    # too; on a machine too slow for that, again with a longer lifetime.
    for lifetime in (2, 4, 8, 16, 32, 64):
        expires = int(time.time()) + lifetime
        authorization = bearer(signer.token("prod", exp=expires))
        accepted = request(gateway.port, PROD_CORTEX, QUERY_PATH, authorization)
        if time.time() < expires:
            break
    assert accepted.status == 200
    wait_for_clock(expires, timeout=lifetime + 1)
    expired = request(gateway.port, PROD_CORTEX, QUERY_PATH, authorization)
    assert (expired.status, expired.body) == (401, BAD_TOKEN)


# Time claims at their exact edges ----------------------------------------------------


TIME_EDGES: dict[str, tuple[str, int, int]] = {
    # case -> (claim, claim minus the second of the decision, the reference's status);
    # golang-jwt v4, Opstrace's authenticator, decides the same: expired once now is not
    # before exp, valid from nbf and from iat on (whole seconds).
    "exp_one_second_ago": ("exp", -1, 401),
    "exp_now": ("exp", 0, 401),
    "exp_in_one_second": ("exp", 1, 200),
    "nbf_one_second_ago": ("nbf", -1, 200),
    "nbf_now": ("nbf", 0, 200),
    "nbf_in_one_second": ("nbf", 1, 401),
    "iat_one_second_ago": ("iat", -1, 200),
    "iat_now": ("iat", 0, 200),
    "iat_in_one_second": ("iat", 1, 401),
}
EDGE_SECONDS_MAX = 120.0


@dataclass(frozen=True)
class EdgeAnswer:
    """A token whose claim lies at an edge of the second HAProxy decided it in."""

    authorization: str
    second: int
    """The second (`date`) HAProxy decided in: the request was sent in it and answered
    before it ended, by the clock HAProxy reads too."""
    response: Response


@pytest.fixture(scope="module")
def edge_answers(gateway: Gateway, signer: Signer) -> dict[str, EdgeAnswer]:
    """HAProxy's answer to each `TIME_EDGES` token, sent in the second its claim is
    relative to. Tokens are signed ahead for the next second; a case whose answer came
    after that second ended says nothing about the edge and is sent again."""
    answers: dict[str, EdgeAnswer] = {}
    deadline = time.monotonic() + EDGE_SECONDS_MAX
    while len(answers) < len(TIME_EDGES):
        assert time.monotonic() < deadline, (
            f"no answer within its second: {set(TIME_EDGES) - set(answers)}"
        )
        second = int(time.time()) + 1
        pending: dict[str, str] = {}
        for case, (claim, offset, _) in TIME_EDGES.items():
            if case not in answers:
                at_the_edge: dict[str, Any] = {claim: second + offset}
                pending[case] = "Bearer " + signer.token("prod", **at_the_edge)
        wait_for_clock(second, timeout=2)
        connection = TLSConnection(gateway.port, PROD_CORTEX)
        try:
            for case, authorization in pending.items():
                sent = time.time()
                response = harness.send(
                    connection, PROD_CORTEX, QUERY_PATH, {"Authorization": authorization}
                )
                if second <= sent and time.time() < second + 1:
                    answers[case] = EdgeAnswer(authorization, second, response)
        finally:
            connection.close()
    return answers


@pytest.mark.parametrize("case", list(TIME_EDGES))
def test_a_time_claim_at_its_edge_is_decided_as_the_reference_decides(
    case: str,
    edge_answers: dict[str, EdgeAnswer],
    trusted: dict[str, str],
    bindings: dict[str, str],
) -> None:
    answer = edge_answers[case]
    reference = data_token.authenticate(
        answer.authorization, "prod", trusted, "acme", answer.second, bindings
    )
    assert reference.status == TIME_EDGES[case][2]
    assert answer.response.status == reference.status
    if reference.status == 401:
        assert answer.response.body == reference.body


# Process lifecycle --------------------------------------------------------------------


def test_the_images_stop_signal_lets_an_in_flight_request_finish(
    tmp_path: Path, signer: Signer
) -> None:
    """The stock image stops with SIGUSR1 (soft stop): HAProxy stops listening, then
    waits for what is in flight."""
    with in_flight_request(tmp_path, signer) as (gateway, release, answered):
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGUSR1)
        # Released only once the worker stopped listening: the request is in flight
        # across the stop, not answered before it.
        wait_until(gateway.stopped_listening, "the soft stop")
        release.set()
        assert gateway.process.wait(timeout=STARTUP_SECONDS) == 0
    assert [response.status for response in answered] == [200]


def test_sigterm_drops_an_in_flight_request(tmp_path: Path, signer: Signer) -> None:
    with in_flight_request(tmp_path, signer) as (gateway, release, answered):
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGTERM)
        # HAProxy exits while the upstream still holds the answer back.
        assert gateway.process.wait(timeout=STARTUP_SECONDS) == 0
        release.set()
    assert answered == []


@contextlib.contextmanager
def in_flight_request(
    tmp_path: Path, signer: Signer
) -> Iterator[tuple[Gateway, threading.Event, list[Response]]]:
    """A gateway with one request in flight: arrived at the upstream, which answers it
    only once the yielded event is set. Yields the gateway, the event and the answers
    the client got (none if its connection was dropped)."""
    answered: list[Response] = []
    release = threading.Event()

    def send() -> None:
        with contextlib.suppress(http.client.HTTPException, OSError):  # dropped: no answer
            answered.append(
                request(gateway.port, PROD_CORTEX, QUERY_PATH, bearer(signer.token("prod")))
            )

    with (
        Recorder("held", hold=release).running() as held,
        running_gateway(
            tmp_path / "config", keys.key_set([signer.public_pem]), one_upstream(held.url)
        ) as gateway,
    ):
        client = threading.Thread(target=send)
        client.start()
        try:
            wait_until(lambda: len(held.requests) == 1, "the request to reach the upstream")
            yield gateway, release, answered
        finally:
            release.set()
            client.join(timeout=STARTUP_SECONDS)


def test_removing_a_tenants_key_revokes_its_remembered_token_after_a_soft_reload(
    tmp_path: Path, minted: dict[str, Minted], upstreams: dict[str, Recorder]
) -> None:
    key_set = {m.kid: m.public_pem for m in minted.values()}
    prod, staging = minted["prod"], minted["staging"]
    urls = {backend: recorder.url for backend, recorder in upstreams.items()}
    with running_gateway(tmp_path / "config", key_set, urls) as gateway:
        for _ in range(2):  # the second one is answered from the verified-token cache
            assert request(gateway.port, PROD_CORTEX, QUERY_PATH, bearer(prod.token)).status == 200

        gateway.render({kid: pem for kid, pem in key_set.items() if kid != prod.kid})
        gateway.reload()

        revoked = request(gateway.port, PROD_CORTEX, QUERY_PATH, bearer(prod.token))
        other = request(gateway.port, host("cortex", "staging"), QUERY_PATH, bearer(staging.token))
        assert (revoked.status, revoked.body) == (401, data_token.BAD_TOKEN)
        assert other.status == 200
        assert not (gateway.directory / f"key-{prod.kid}.pem").exists()


def test_a_thousand_bound_keys_load_and_each_verifies_its_own_tokens_only(
    tmp_path: Path, upstreams: dict[str, Recorder]
) -> None:
    # Every 50th key is real (its tokens must pass); the rest are stand-ins that no
    # private key belongs to, so that 1,000 keys cost no 1,000 key generations. Each key
    # is bound to its own tenant, as the program binds tenants' credentials.
    real = {index: Signer.generate() for index in range(0, 1000, 50)}
    pems = [
        real[index].public_pem if index in real else stand_in_public_key(f"key-{index}")
        for index in range(1000)
    ]
    tenants = tuple(f"t{index}" for index in range(1000))
    key_set = keys.key_set(pems)
    bound = {keys.key_id(pem): f"t{index}" for index, pem in enumerate(pems)}
    urls = {backend: recorder.url for backend, recorder in upstreams.items()}
    with running_gateway(tmp_path / "config", key_set, urls, tenants, bindings=bound) as gateway:
        statuses = {
            index: request(
                gateway.port,
                host("cortex", f"t{index}"),
                QUERY_PATH,
                bearer(signer.token(f"t{index}")),
            ).status
            for index, signer in real.items()
        }
        elsewhere = request(
            gateway.port, host("cortex", "t1"), QUERY_PATH, bearer(real[0].token("t1"))
        )
        stranger = request(
            gateway.port, host("cortex", "t0"), QUERY_PATH, bearer(Signer.generate().token("t0"))
        )
    assert statuses == dict.fromkeys(real, 200)
    assert (elsewhere.status, elsewhere.body) == (401, data_token.BAD_TOKEN)
    assert (stranger.status, stranger.body) == (401, data_token.BAD_TOKEN)
