"""The `components` package: its public names, and what importing the provider costs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def test_package_exports_each_component_by_name() -> None:
    import components
    from components.instance import Instance

    assert components.Instance is Instance
    assert set(components.__all__) >= {"Instance", "Tenant", "TrustStore", "Gateway", "Dns"}


def test_importing_the_token_provider_does_not_import_cloud_sdks() -> None:
    """The provider host imports components.tokens for every token operation."""
    probe = (
        "import sys, components.tokens\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pulumi_aws', 'pulumi_kubernetes'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


PURE_PACKAGES = {"components.rules": (), "components.gateway": ("component", "rollout")}
"""Packages of pure modules: importing them loads no Pulumi SDK (but the named modules,
which register resources)."""


def test_pure_modules_import_no_pulumi_sdk() -> None:
    """The rules and the gateway's renderers are pure: importing each of them loads no
    Pulumi SDK at all."""
    probe = (
        "import sys, pkgutil, importlib\n"
        f"for package, registering in {PURE_PACKAGES!r}.items():\n"
        "    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):\n"
        "        if info.name not in registering:\n"
        "            importlib.import_module(f'{package}.{info.name}')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('pulumi')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
