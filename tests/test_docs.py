"""What the README and docs/ tell operators to run does what they say, and list what the code
defines."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from devtools.mutants import MUTANTS
from opstrace import keys
from opstrace.policy import limits
from tests.test_broken_stacks import broken_stacks

PROJECT_DIR = Path(__file__).resolve().parent.parent
README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
README_MAX_LINES = 200


def doc(name: str) -> str:
    return (PROJECT_DIR / "docs" / name).read_text(encoding="utf-8")


def test_the_key_id_shell_command_gives_the_key_id(tmp_path: Path) -> None:
    (command,) = [line.strip() for line in doc("tenants.md").splitlines() if "| sha1sum" in line]
    pem = keys.public_key_pem(keys.generate_private_key(2048))
    (tmp_path / "public.pem").write_text(pem)
    result = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == keys.key_id(pem)


def test_the_readme_names_both_newcomer_commands() -> None:
    assert re.search(r"^make up +#", README, re.MULTILINE)
    assert re.search(r"^make test +#", README, re.MULTILINE)


def test_the_tenant_docs_list_every_limit_a_stack_may_set_with_its_backend_name() -> None:
    rows = re.findall(
        r"^\| `(metrics|logs)` \| `(\w+)` \| `(\w+)` \| ([^|]+) \| `([^`]+)` \|$",
        doc("tenants.md"),
        re.MULTILINE,
    )
    assert rows == [
        (group, limit.key, limit.backend_key, limit.unit, limit.example)
        for group in limits.GROUPS
        for limit in limits.LIMITS[group]
    ]


def test_the_docs_count_the_broken_stacks_and_the_mutants_there_are() -> None:
    (stacks,) = re.findall(r"hold a table of (\d+) broken stacks", doc("settings.md"))
    (mutants,) = re.findall(r"# plant (\d+) known bugs", doc("testing.md"))
    assert (int(stacks), int(mutants)) == (len(broken_stacks("project")), len(MUTANTS))


def test_the_readme_is_a_front_door() -> None:
    assert len(README.splitlines()) <= README_MAX_LINES


def test_every_document_the_readme_links_exists() -> None:
    linked = re.findall(r"\]\((docs/[a-z-]+\.md)\)", README)
    assert linked
    assert [name for name in linked if not (PROJECT_DIR / name).is_file()] == []
