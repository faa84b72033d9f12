"""The gateway pods' sidecar, its parts alone: which file sets it loads, how it writes
them, what it reports; and the wait of `pulumi up` on its reports (`rollout.behind`).

The sidecar against a real API server and a real HAProxy: tests/e2e/test_gateway_reload.py.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.gateway.rollout import behind
from opstrace.gateway import manifests
from sidecar import contract, sync
from sidecar.contract import CHECKSUM_KEY, PARTS_KEY
from sidecar.sync import Incomplete, Loader, Options, Status, Watched

CONFIG, KEYS, MORE_KEYS = "gw-config", "gw-keys-0", "gw-keys-1"
WANTED = (CONFIG, KEYS, MORE_KEYS)
CRT_LIST = (
    "./certs/system.pem cortex.system.a.b loki.system.a.b\n./certs/prod.pem cortex.prod.a.b\n"
)
BASE = {"haproxy.cfg": "global\n", "crt-list": CRT_LIST, "keys.map": ""}
PARTS = (
    {"key-a.pem": "PEM A", "keys.map": "a ./key-a.pem\n"},
    {"key-b.pem": "PEM B", "keys.map": "b ./key-b.pem\n"},
)
JOINED = {
    **BASE,
    "key-a.pem": "PEM A",
    "key-b.pem": "PEM B",
    "keys.map": "a ./key-a.pem\nb ./key-b.pem\n",
}
WHOLE = contract.config_checksum(JOINED)


def config_maps(
    parts: tuple[dict[str, str], ...] = PARTS, named: tuple[dict[str, str], ...] = PARTS
) -> dict[str, dict[str, str]]:
    """The gateway's ConfigMaps: the configuration of a render whose shards' parts were
    `named`, and shards holding `parts` (a shard not yet updated: they differ)."""
    manifest = "".join(f"{contract.config_checksum(part)}\n" for part in named)
    whole = contract.config_checksum(contract.joined(BASE, named))
    return {
        CONFIG: {**BASE, CHECKSUM_KEY: whole, PARTS_KEY: manifest},
        **{
            name: {**part, CHECKSUM_KEY: contract.config_checksum(part)}
            for name, part in zip((KEYS, MORE_KEYS), parts, strict=True)
        },
    }


def secret(tenant: str, chain: str = "CHAIN", *, labelled: bool = True) -> dict[str, Any]:
    labels = {contract.TENANT_LABEL: tenant, contract.CERTIFICATE_LABEL: "acme"} if labelled else {}
    return {
        "metadata": {"name": f"{tenant}-endpoints-tls", "labels": labels},
        "data": {
            "tls.crt": base64.b64encode(chain.encode()).decode(),
            "tls.key": base64.b64encode(b"KEY").decode(),
        },
    }


SECRETS = {f"{t}-endpoints-tls": secret(t) for t in ("system", "prod")}


def test_a_whole_set_is_every_shard_joined_and_every_certificate_the_crt_list_names() -> None:
    found = sync.file_set(config_maps(), SECRETS, WANTED)
    assert (found.checksum, found.pending) == (WHOLE, ())
    assert found.files == {
        **JOINED,
        "certs/system.pem": "CHAIN",
        "certs/system.pem.key": "KEY",
        "certs/prod.pem": "CHAIN",
        "certs/prod.pem.key": "KEY",
    }


def test_a_shard_of_another_render_than_the_configuration_names_is_not_a_set() -> None:
    # Between the updates of one `pulumi up`: the configuration names a new part of
    # shard 1, which still holds the old one.
    newer = (PARTS[0], {**PARTS[1], "key-c.pem": "PEM C"})
    with pytest.raises(Incomplete, match="from different renders"):
        sync.file_set(config_maps(parts=PARTS, named=newer), SECRETS, WANTED)


def test_a_configuration_whose_checksum_is_not_its_joined_set_is_not_a_set() -> None:
    tampered = config_maps()
    tampered[CONFIG][CHECKSUM_KEY] = "0" * 64
    with pytest.raises(Incomplete, match="do not join into the set they name"):
        sync.file_set(tampered, SECRETS, WANTED)


def test_a_config_map_not_seen_yet_is_named() -> None:
    only = {CONFIG: config_maps()[CONFIG]}
    with pytest.raises(Incomplete, match=f"^ConfigMap {KEYS} not seen yet$"):
        sync.file_set(only, SECRETS, WANTED)


def test_a_tenant_whose_certificate_is_not_issued_yet_is_left_out_and_named() -> None:
    found = sync.file_set(config_maps(), {"s": secret("system")}, WANTED)
    assert found.pending == ("prod",)
    assert found.files["crt-list"] == "./certs/system.pem cortex.system.a.b loki.system.a.b\n"
    assert "certs/prod.pem" not in found.files
    assert found.checksum == WHOLE  # the render is served: its revocations hold at once


def test_with_no_certificate_issued_at_all_there_is_nothing_to_serve_yet() -> None:
    with pytest.raises(
        Incomplete,
        match=r"^no tenant's certificate is issued yet \(waiting for 'system', 'prod'\)$",
    ):
        sync.file_set(config_maps(), {}, WANTED)


def test_a_secret_without_the_tenant_label_is_no_tenants_certificate() -> None:
    secrets = {"s": secret("system"), "p": secret("prod", labelled=False)}
    assert sync.file_set(config_maps(), secrets, WANTED).pending == ("prod",)


SHOW_PROC_2_6 = (
    "#<PID>          <type>          <reloads>       <uptime>        <version>      \n"
    "31739           master          2 [failed: 1]   0d00h00m04s     2.6.12-1+deb12u4\n"
    "# workers\n31839           worker          1               0d00h00m03s     2.6.12\n"
)
SHOW_PROC_3_4 = (
    "#<PID>          <type>          <reloads>       <uptime>        <version>      \n"
    "31504           master          1 [failed: 0]   0d00h00m03s     3.4.7-1        \n"
    "# workers\n31602           worker          0               0d00h00m02s     3.4.7-1\n"
)


@pytest.mark.parametrize(
    ("answer", "counts"), [(SHOW_PROC_2_6, (2, 1)), (SHOW_PROC_3_4, (1, 0))], ids=["2.6", "3.4"]
)
def test_the_masters_reload_counts_are_read_from_show_proc(
    answer: str, counts: tuple[int, int]
) -> None:
    assert sync.reload_counts(answer) == counts


def test_a_generation_is_written_owner_only_and_made_current_in_one_rename(
    tmp_path: Path,
) -> None:
    sync.write_generation(tmp_path, 1, {"haproxy.cfg": "one", "certs/prod.pem.key": "KEY"})
    sync.write_generation(tmp_path, 2, {"haproxy.cfg": "two"})
    current = tmp_path / contract.CURRENT
    assert os.readlink(current) == "gen-2"
    assert (current / "haproxy.cfg").read_text() == "two"
    assert stat.S_IMODE((tmp_path / "gen-1" / "certs" / "prod.pem.key").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [contract.CURRENT, "gen-1", "gen-2"]


def test_old_generations_go_but_the_newest_and_the_one_kept(tmp_path: Path) -> None:
    for number in range(1, 6):
        sync.write_generation(tmp_path, number, {"haproxy.cfg": str(number)})
    sync.prune(tmp_path, keep=["gen-1"])
    assert sorted(p.name for p in tmp_path.glob("gen-*")) == ["gen-1", "gen-4", "gen-5"]


def loader(tmp_path: Path, watched: Watched, reports: list[Status]) -> Loader:
    options = Options(
        namespace="system-tenant",
        pod="gw-0",
        pod_uid="uid",
        config_maps=WANTED,
        certificates=f"{contract.CERTIFICATE_LABEL}=acme",
        files=tmp_path,
        master_socket=tmp_path / "no-haproxy-yet.sock",  # before HAProxy starts
        listen=("127.0.0.1", 0),
    )
    return Loader(options, watched, reports.append, log=lambda line: None)


def test_the_sidecar_reports_waiting_then_serving_and_is_ready_once_serving(
    tmp_path: Path,
) -> None:
    watched, reports = Watched(), list[Status]()
    load = loader(tmp_path, watched, reports)
    watched.listed_config_map(CONFIG, [{"data": config_maps()[CONFIG]}])
    load.step()
    for name in (KEYS, MORE_KEYS):
        watched.listed_config_map(name, [{"data": config_maps()[name]}])
    watched.listed_secrets([{**s, "metadata": {**s["metadata"]}} for s in SECRETS.values()])
    load.step()
    load.step()  # nothing new: nothing written, nothing reported
    assert [(r.state, r.checksum, r.ready) for r in reports] == [
        ("waiting", "", False),
        ("serving", WHOLE, True),
    ]
    assert reports[0].message == f"ConfigMap {KEYS} not seen yet"
    assert os.readlink(tmp_path / contract.CURRENT) == "gen-1"


def test_a_deleted_config_map_makes_the_set_incomplete_again(tmp_path: Path) -> None:
    watched, reports = Watched(), list[Status]()
    load = loader(tmp_path, watched, reports)
    for name, data in config_maps().items():
        watched.listed_config_map(name, [{"data": data}])
    watched.listed_secrets(list(SECRETS.values()))
    load.step()
    watched.listed_config_map(KEYS, [])
    load.step()
    assert [(r.state, r.checksum) for r in reports] == [("serving", WHOLE), ("waiting", WHOLE)]


def pod(name: str, *, deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-02T00:00:00Z"
    return {"metadata": metadata}


def lease(name: str, checksum: str, state: str = "serving", message: str = "") -> dict[str, Any]:
    annotations = {
        contract.SERVED_ANNOTATION: checksum,
        contract.STATE_ANNOTATION: state,
        contract.MESSAGE_ANNOTATION: message,
    }
    return {"metadata": {"name": f"{contract.LEASE_PREFIX}{name}", "annotations": annotations}}


def test_up_is_done_when_every_live_pod_reports_the_checksum() -> None:
    pods = [pod("a"), pod("b"), pod("old", deleting=True)]
    assert behind(pods, [lease("a", "c2"), lease("b", "c2")], "c2") == []


def test_up_names_each_pod_that_is_behind_and_what_its_sidecar_says() -> None:
    pods = [pod("a"), pod("b"), pod("c")]
    leases = [lease("a", "c2"), lease("b", "c1", "waiting", "the certificate of tenant 'qa'")]
    assert behind(pods, leases, "c2") == [
        "b: waiting (the certificate of tenant 'qa')",
        "c: its sidecar has not reported yet",
    ]


def test_the_shipped_sidecar_runs_on_the_standard_library_alone(tmp_path: Path) -> None:
    # What the pod's code volume holds, run by a Python that sees no installed package.
    for key, content in manifests.sync_code().items():
        path = tmp_path / key.replace("--", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    probe = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import sidecar.sync; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pulumi', 'yaml', 'cryptography'}))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "[]", "")
