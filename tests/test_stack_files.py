"""Stack file values as the Pulumi CLI reads them and hands them to the program.

The rule is the CLI's (YAML 1.2 as gopkg.in/yaml.v3 resolves it, values as Go prints
them); tests/engine/test_cli_copies.py checks the same cases against the real CLI.
"""

from __future__ import annotations

import pytest

from tools.stack_files import (
    OFFLINE_SECRET,
    PROJECT_DIR,
    cli_config_problem,
    cli_text,
    load_yaml,
)

HANDED_OVER = [
    ("plain_text", "acme", "acme"),
    ("yes_is_text", "yes", "yes"),
    ("on_is_text", "on", "on"),
    ("capitalised_true", "True", "true"),
    ("octal_with_a_leading_zero", "010", "8"),
    ("octal_with_0o", "0o17", "15"),
    ("hexadecimal", "0x1F", "31"),
    ("underscores", "1_000", "1000"),
    ("exponent", "1e3", "1000"),
    ("integral_float", "2.0", "2"),
    ("trailing_zero_lost", "1.30", "1.3"),
    ("tiny_float", "0.0000001", "1e-7"),
    ("clock_time_is_text", "1:30", "1:30"),
    ("date", "2026-12-01", "2026-12-01 00:00:00 +0000 UTC"),
    ("time_with_zone", "2026-12-01T10:00:00Z", "2026-12-01 10:00:00 +0000 UTC"),
    ("null", "null", ""),
    ("tilde", "~", ""),
    ("quoted_number_stays_text", "'007'", "007"),
    (
        "object_keys_sorted_html_escaped",
        "{b: '<&>', a: [1.50, yes, null]}",
        '{"a":[1.5,"yes",null],"b":"\\u003c\\u0026\\u003e"}',
    ),
    ("non_ascii_as_is", "[é ü]", '["é ü"]'),
]


@pytest.mark.parametrize(
    ("written", "handed"),
    [row[1:] for row in HANDED_OVER],
    ids=[row[0] for row in HANDED_OVER],
)
def test_stack_file_value_reaches_the_program_as_the_cli_hands_it(
    written: str, handed: str
) -> None:
    assert cli_text(load_yaml(f"value: {written}")["value"]) == handed


def test_an_encrypted_value_is_set_and_never_shown_offline() -> None:
    assert cli_text({"secure": "v1:c2FsdA==:v1:abc"}) == OFFLINE_SECRET


def test_an_encrypted_value_passes_the_clis_check_of_a_declared_string() -> None:
    config = {
        "opstrace:instanceName": "acme",
        "opstrace:domain": "acme.dev",
        "opstrace:grafanaClientSecret": {"secure": "v1:c2FsdA==:v1:abc"},
    }
    assert cli_config_problem("dev", config, PROJECT_DIR) is None
