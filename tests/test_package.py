"""The layout: pure rules, resource code and in-pod code apart, with no cycle between them.

- `opstrace` is pure: it imports no Pulumi SDK, no `components`, no tools;
- `components` registers resources (and holds the dynamic providers);
- `sidecar` is what the gateway pods run: the standard library and itself only
  (tests/test_kube_client.py runs it from exactly what the pod gets);
- `tools` (what an operator runs) and `devtools` (what developers run) use the others.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Final

PROJECT_DIR = Path(__file__).resolve().parent.parent
PACKAGES: Final = ("opstrace", "components", "sidecar", "tools", "devtools", "bench")
MAY_IMPORT: Final = {
    "opstrace": {"opstrace", "sidecar"},
    "sidecar": {"sidecar"},
    "components": {"components", "opstrace", "sidecar"},
    "tools": {"tools", "opstrace", "components", "sidecar"},
    "devtools": {"devtools", "tools", "opstrace", "components", "sidecar"},
    "bench": {"bench", "tools", "opstrace", "components", "sidecar", "tests"},
}
"""Which of the project's packages each may import: the arrows point one way only."""


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module in the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((PROJECT_DIR / package).rglob("*.py")):
            parts = path.relative_to(PROJECT_DIR).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(path: Path) -> set[str]:
    """The project packages a module imports (absolute imports, at any depth)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name.split(".")[0] for name in names} & {*PACKAGES, "tests"}


def test_each_package_imports_only_the_packages_below_it() -> None:
    wrong = {
        name: sorted(imported(path) - MAY_IMPORT[name.split(".")[0]])
        for name, path in modules().items()
        if imported(path) - MAY_IMPORT[name.split(".")[0]]
    }
    assert wrong == {}


def test_no_module_name_appears_twice() -> None:
    """A reader finds a concept by its module's name: one file per name in the project
    (`opstrace.gateway` renders what the package `components.gateway` registers; their
    modules are named apart)."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for name, path in modules().items():
        if path.stem not in ("__init__", "__main__"):
            by_name[path.stem].append(name)
    assert {stem: names for stem, names in by_name.items() if len(names) > 1} == {}


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


def test_pure_modules_import_no_pulumi_sdk() -> None:
    """Every module of `opstrace` (and of `sidecar`), imported, loads no Pulumi SDK at all."""
    pure = [name for name in modules() if name.split(".")[0] in ("opstrace", "sidecar")]
    probe = (
        "import sys, importlib\n"
        f"for name in {pure!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('pulumi')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
