"""What the README tells operators to run does what it says, and lists what the code defines."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from components.rules import keys, limits
from tests.test_broken_stacks import broken_stacks
from tools.mutants import MUTANTS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_key_id_shell_command_gives_the_key_id(tmp_path: Path) -> None:
    (command,) = [line.strip() for line in README.splitlines() if "| sha1sum" in line]
    pem = keys.public_key_pem(keys.generate_private_key(2048))
    (tmp_path / "public.pem").write_text(pem)
    result = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == keys.key_id(pem)


def test_the_readme_names_both_newcomer_commands() -> None:
    assert re.search(r"^make up +#", README, re.MULTILINE)
    assert re.search(r"^make test +#", README, re.MULTILINE)


def test_the_readme_lists_every_limit_a_stack_may_set_with_its_backend_name() -> None:
    rows = re.findall(
        r"^\| `(metrics|logs)` \| `(\w+)` \| `(\w+)` \| ([^|]+) \| `([^`]+)` \|$",
        README,
        re.MULTILINE,
    )
    assert rows == [
        (group, limit.key, limit.backend_key, limit.unit, limit.example)
        for group in limits.GROUPS
        for limit in limits.LIMITS[group]
    ]


def test_the_readme_counts_the_broken_stacks_and_the_mutants_there_are() -> None:
    (stacks,) = re.findall(r"hold a table of (\d+) broken stacks", README)
    (mutants,) = re.findall(r"# plant (\d+) known bugs", README)
    assert (int(stacks), int(mutants)) == (len(broken_stacks("project")), len(MUTANTS))
