"""The mutation check: its planted bugs follow the code; its copy runs on the checkout's engine."""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import sys
from pathlib import Path

import pytest

from devtools import mutants
from tools.cluster import state


def test_every_mutant_finds_its_code_exactly_once() -> None:
    assert mutants.stale_mutants() == []


def test_mutant_names_are_unique() -> None:
    names = [mutant.name for mutant in mutants.MUTANTS]
    assert len(set(names)) == len(names)


def test_the_copy_uses_the_checkouts_engine_cluster_and_environment(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    for shared in (".engine/cluster", ".venv/bin"):
        (root / shared).mkdir(parents=True)
    (root / "__main__.py").write_text("")
    copy = mutants.make_copy(tmp_path / "work", root)
    assert (copy / ".engine").resolve() == (root / ".engine").resolve()
    assert (copy / ".venv").resolve() == (root / ".venv").resolve()


def test_the_copy_holds_its_own_code(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "__main__.py").write_text("")
    copy = mutants.make_copy(tmp_path / "work", root)
    assert not (copy / "__main__.py").is_symlink()


def test_a_copy_finds_the_checkouts_cluster_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else the copy's tests see the running cluster as stale and stop it."""
    root = tmp_path / "checkout"
    (root / "tools" / "cluster").mkdir(parents=True)
    (root / ".engine").mkdir()
    shutil.copy(inspect.getfile(state), root / "tools" / "cluster" / "state.py")
    copy = mutants.make_copy(tmp_path / "work", root)
    spec = importlib.util.spec_from_file_location("copied_state", copy / "tools/cluster/state.py")
    assert spec is not None
    assert spec.loader is not None
    copied = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, copied)  # its dataclasses look it up
    spec.loader.exec_module(copied)
    assert (root / ".engine" / "cluster").resolve() == copied.STATE
