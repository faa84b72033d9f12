"""Where the local instance keeps its files, and its fixed names.

Everything lives under `.engine/local/` of the checkout, beside the local cluster's state
(`.engine/cluster/`): the Pulumi CLI's home and file backend, the Cortex's data, the
tenants' token files, the supervised processes' logs and pid files. `make down` deletes
the folder; the binaries (`.engine/bin`, links into the build caches) stay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from tools.cluster.state import ENGINE_DIR, ROOT
from tools.cluster.supervisor import Supervisor

STACK: Final = "local"
"""The shipped stack `make up` runs when no STACK is given: stacks/Pulumi.local.yaml."""
LOCAL_DIR: Final = ENGINE_DIR / "local"
HOME: Final = LOCAL_DIR / "pulumi-home"
BACKEND: Final = LOCAL_DIR / "pulumi-state"
CORTEX_DIR: Final = LOCAL_DIR / "cortex"
TOKENS: Final = LOCAL_DIR / "tokens"
PASSPHRASE: Final = "opstrace-local-instance"
"""Encrypts the local stack's secrets in its state. Fixed and published: the state and the
tokens never leave this machine (the token files are beside it, mode 0600), and the
instance lives only as long as its local cluster. stacks/Pulumi.local.yaml ships the salt
that goes with it, so that the CLI never writes a salt of its own into that file."""
CORTEX: Final = "cortex"
NO_LOKI: Final = "no-loki"
PROCESSES: Final = (CORTEX, NO_LOKI)
SUPERVISOR: Final = Supervisor(LOCAL_DIR)
REMOTE_WRITE_SCRIPT: Final = ROOT / "tools" / "local" / "remote_write.py"


def token_file(tenant: str, token: str) -> Path:
    """Where a tenant's token is written for the printed curl lines (and any client)."""
    return TOKENS / tenant / token
