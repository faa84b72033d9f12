"""What `make up` prints for the local instance: each tenant's endpoints and curl lines
that work pasted into a shell, each with the status it gets.

Pure: from the stack outputs (`endpoints`, and which token file holds each tenant's
token) to text. Every line reaches the gateway pods on this machine (`--connect-to`: the
endpoint names stay in SNI and Host, the connection goes to 127.0.0.1), trusts the local
cluster's CA only (`--cacert`), and reads its token from the tenant's token file, so no
token is printed. A line is a comment saying what it does and `expect <status>`, then the
command, which prints the response's body and, last, its status.
"""

from __future__ import annotations

import shlex
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from opstrace import names
from tools.local import no_loki, remote_write

QUERY: Final = remote_write.SERIES
PUSH_PATH: Final = "/api/v1/push"
QUERY_PATH: Final = "/api/v1/query?" + urllib.parse.urlencode({"query": QUERY})
LOGS_PATH: Final = "/loki/api/v1/labels"
EXPECT_MARK: Final = ": expect "
"""Between a line's comment and the status its command gets (tests parse it)."""


@dataclass(frozen=True)
class Check:
    """One printed command: what it does, the status it gets, the command line."""

    what: str
    expect: int
    command: str

    def lines(self) -> list[str]:
        return [f"  # {self.what}{EXPECT_MARK}{self.expect}", f"  {self.command}"]


@dataclass(frozen=True)
class Access:
    """How this machine reaches the local gateway: its address, its CA, the token files."""

    gateway: tuple[str, int]
    ca_file: Path
    remote_write_script: Path
    token_files: Mapping[str, Path]
    """Tenant -> the file holding the token the lines use."""


def curl(access: Access, tenant: str, url: str, *options: str) -> str:
    """curl of `url` with `tenant`'s token through the local gateway, printing the body
    and then the status."""
    host, port = access.gateway
    words = [
        "curl",
        "-sS",
        "-w",
        "\\n%{http_code}\\n",
        "--cacert",
        str(access.ca_file),
        "--connect-to",
        f"::{host}:{port}",
        *options,
    ]
    token = f'--oauth2-bearer "$(cat {shlex.quote(str(access.token_files[tenant]))})"'
    return f"{shlex.join(words)} {token} {shlex.quote(url)}"


def tenant_checks(
    access: Access, tenant: str, endpoints: Mapping[str, str], other: str, other_cortex: str
) -> list[Check]:
    """Push a sample with `tenant`'s token, query it back, the same token at `other`'s
    endpoint, and the logs endpoint (which no Loki serves here)."""
    cortex, loki = endpoints["cortex"], endpoints["loki"]
    headers = [word for header in remote_write.CONTENT_HEADERS for word in ("-H", header)]
    push = curl(access, tenant, cortex + PUSH_PATH, *headers, "--data-binary", "@-")
    script = shlex.join(["python3", str(access.remote_write_script)])
    return [
        Check(f"push a sample with {tenant}'s token", 200, f"{script} | {push}"),
        Check(
            f"query it back with {tenant}'s token (its value: the push's time)",
            200,
            curl(access, tenant, cortex + QUERY_PATH),
        ),
        Check(
            f"{tenant}'s token at {other}'s endpoint: refused",
            401,
            curl(access, tenant, other_cortex + QUERY_PATH),
        ),
        Check(
            f"{tenant}'s logs endpoint: no Loki runs locally",
            no_loki.STATUS,
            curl(access, tenant, loki + LOGS_PATH),
        ),
    ]


def report(
    access: Access, tenants: Sequence[str], endpoints: Mapping[str, Mapping[str, str]]
) -> str:
    """Every user tenant's endpoints and checks; another tenant's endpoint for the 401 is
    the next tenant's (the system tenant's when there is one user tenant)."""
    out: list[str] = []
    for index, tenant in enumerate(tenants):
        other = tenants[(index + 1) % len(tenants)] if len(tenants) > 1 else names.SYSTEM_TENANT
        mine = endpoints[tenant]
        out.append(f"tenant {tenant}: metrics {mine['cortex']}  logs {mine['loki']}")
        for check in tenant_checks(access, tenant, mine, other, endpoints[other]["cortex"]):
            out.extend(check.lines())
    return "\n".join(out)
