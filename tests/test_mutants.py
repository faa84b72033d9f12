"""The mutation check's list of planted bugs stays in step with the code."""

from __future__ import annotations

from tools import mutants


def test_every_mutant_finds_its_code_exactly_once() -> None:
    assert mutants.stale_mutants() == []


def test_mutant_names_are_unique() -> None:
    names = [mutant.name for mutant in mutants.MUTANTS]
    assert len(set(names)) == len(names)
