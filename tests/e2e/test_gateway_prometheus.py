"""A real Prometheus remote-writes over HTTPS through the gateway into a real receiving
Prometheus.

sender Prometheus --HTTPS remote_write--> gateway (HAProxy) --> tenant recorder --> receiver
   bearer token file, test CA             TLS, SNI, token       records X-Scope-OrgID

The sender addresses `https://cortex.prod.acme.example.com/api/v1/push`, exactly the URL a
tenant configures, and verifies the gateway's certificate against the test CA. Its
`proxy_url` is a CONNECT tunnel to the gateway's port, standing in for DNS: TLS runs end
to end between Prometheus and HAProxy, with that host as SNI and as Host.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.backends import prometheus, query
from tests.e2e.conftest import Minted
from tests.e2e.harness import (
    NEEDS_HAPROXY,
    NEEDS_PROMETHEUS,
    TENANTS,
    Recorder,
    connect_tunnel,
    gateway_ca,
    host,
    one_upstream,
    running_gateway,
    wait_until,
)
from tools.ports import free_port

pytestmark = [
    pytest.mark.e2e,
    NEEDS_HAPROXY,
    NEEDS_PROMETHEUS,
]

ARRIVAL_SECONDS = 60.0
SENDER_JOB = "sender"


def test_remote_write_over_https_through_the_gateway_arrives_with_the_tokens_tenant(
    tmp_path: Path, minted: dict[str, Minted]
) -> None:
    trusted = {m.kid: m.public_pem for m in minted.values()}
    bindings = {m.kid: tenant for tenant, m in minted.items()}
    endpoint = host("cortex", "prod")
    token_file = tmp_path / "prod.token"
    token_file.write_text(minted["prod"].token, encoding="utf-8")

    receiver_port = free_port()
    with prometheus(
        tmp_path / "receiver", receiver_port, {"global": {}}, "--web.enable-remote-write-receiver"
    ):
        tenant_recorder = Recorder("metrics", forward_to=f"127.0.0.1:{receiver_port}")
        with (
            tenant_recorder.running(),
            Recorder("queries").running() as queries,
            running_gateway(
                tmp_path / "gateway",
                trusted,
                {**one_upstream(queries.url), "cortex_push": tenant_recorder.url},
                TENANTS,
                bindings=bindings,
            ) as gateway,
            connect_tunnel(gateway.port) as (tunnel_port, tunnelled),
        ):
            sender_port = free_port()
            sender_config = {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": SENDER_JOB,
                        "static_configs": [{"targets": [f"127.0.0.1:{sender_port}"]}],
                    }
                ],
                "remote_write": [
                    {
                        "url": f"https://{endpoint}/api/v1/push",
                        "proxy_url": f"http://127.0.0.1:{tunnel_port}",
                        "tls_config": {"ca_file": str(gateway_ca().file)},
                        "authorization": {"credentials_file": str(token_file)},
                        "queue_config": {"batch_send_deadline": "1s", "max_backoff": "1s"},
                    }
                ],
            }
            with prometheus(tmp_path / "sender", sender_port, sender_config):
                wait_until(
                    lambda: bool(query(receiver_port, f'up{{job="{SENDER_JOB}"}}')),
                    "the sender's samples in the receiver",
                    timeout=ARRIVAL_SECONDS,
                )

    assert set(tunnelled) == {f"{endpoint}:443"}
    pushes = [r for r in tenant_recorder.requests if r.path == "/api/v1/push"]
    assert pushes, "no remote write reached the metrics backend"
    assert queries.requests == []
    pushed = [
        line for line in gateway.log_text().splitlines() if "route=cortex:/api/v1/push " in line
    ]
    assert pushed, "no access log line of a push"
    assert all(line.endswith(" version=HTTP/2.0") for line in pushed), "Prometheus spoke HTTP/1"
    assert {tuple(r.values("X-Scope-OrgID")) for r in pushes} == {("prod",)}
    assert all(r.values("Authorization") == [] for r in pushes)
