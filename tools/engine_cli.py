"""The Pulumi CLI that `make engine` built, run in an environment of its own.

`environment` isolates every `pulumi` command: its own PULUMI_HOME and file backend,
passphrase secrets, no plugin downloads, no update check, no prompts, and none of the
caller's PULUMI_/AWS_/KUBECONFIG variables. The engine finds its language host and the
dynamic provider shim beside the `pulumi` binary (as a release bundles them), and the
Kubernetes provider in its plugin cache, put there by `KUBERNETES_PLUGIN_INSTALL` as an
operator's CLI downloads it: nothing from PATH (the CLI would warn "using
pulumi-resource-kubernetes from $PATH" on every run). The engine tests and the local
instance (`tools.local`) run it so.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from typing import Final

from tools.cluster.state import BIN

PULUMI: Final = BIN / "pulumi"
KUBERNETES_PROVIDER_VERSION: Final = importlib.metadata.version("pulumi-kubernetes")
"""The provider release the program's SDK asks the engine for (engine/build.sh builds it)."""
KUBERNETES_PLUGIN_INSTALL: Final = (
    "plugin",
    "install",
    "resource",
    "kubernetes",
    f"v{KUBERNETES_PROVIDER_VERSION}",
    "--file",
    str(BIN / "pulumi-resource-kubernetes"),
)
"""`pulumi` arguments that install the provider `make engine` built into the plugin cache."""


def environment(home: Path, backend: Path, passphrase: str) -> dict[str, str]:
    """The environment of every `pulumi` command: isolated, offline, non-interactive."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PULUMI_", "AWS_", "KUBECONFIG", "VIRTUAL_ENV"))
    }
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            "PULUMI_HOME": str(home),
            "PULUMI_BACKEND_URL": f"file://{backend}",
            "PULUMI_CONFIG_PASSPHRASE": passphrase,
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "1",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "PULUMI_EXPERIMENTAL": "false",
            "NO_COLOR": "1",
        }
    )
    return env
