"""When the program advises a large stack to skip the engine's whole-state checkpoints."""

from __future__ import annotations

from opstrace.state_checkpoints import (
    BACKEND_URL,
    LARGE_STACK_CREDENTIALS,
    SKIP_CHECKPOINTS,
    checkpoint_advice,
)

LARGE = LARGE_STACK_CREDENTIALS
FILE_BACKEND = {BACKEND_URL: "file:///home/operator/instance/.pulumi-state"}


def test_a_large_stack_on_a_file_backend_is_advised_to_skip_checkpoints() -> None:
    advice = checkpoint_advice(LARGE, FILE_BACKEND)
    assert advice is not None
    assert advice.startswith(f"{LARGE} credentials: with the backend file://, ")
    assert f"set {SKIP_CHECKPOINTS}=true" in advice


def test_an_object_store_backend_is_advised_alike() -> None:
    assert checkpoint_advice(LARGE, {BACKEND_URL: "s3://bucket/state"}) is not None


def test_a_smaller_stack_is_not_advised() -> None:
    assert checkpoint_advice(LARGE - 1, FILE_BACKEND) is None


def test_a_stack_that_already_skips_checkpoints_is_not_advised() -> None:
    for value in ("true", "TRUE", "1"):
        assert checkpoint_advice(LARGE, {**FILE_BACKEND, SKIP_CHECKPOINTS: value}) is None


def test_a_false_setting_still_advises() -> None:
    assert checkpoint_advice(LARGE, {**FILE_BACKEND, SKIP_CHECKPOINTS: "false"}) is not None


def test_a_journaling_service_backend_is_not_advised() -> None:
    for url in ("https://api.pulumi.com", "http://pulumi.internal:8080"):
        assert checkpoint_advice(LARGE, {BACKEND_URL: url}) is None


def test_an_unknown_backend_is_not_advised() -> None:
    """`pulumi login` alone leaves no trace in the environment: no guess."""
    assert checkpoint_advice(LARGE * 10, {}) is None


def test_the_advice_names_no_path_of_the_backend() -> None:
    """A backend URL may carry a bucket or a home folder: the warning names its scheme."""
    advice = checkpoint_advice(LARGE, FILE_BACKEND)
    assert advice is not None
    assert "/home/operator" not in advice
