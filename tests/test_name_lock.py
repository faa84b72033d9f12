"""The instance name cannot change once a stack has created the instance."""

from __future__ import annotations

from components.name_lock import NameLockProvider


def test_first_name_is_accepted() -> None:
    assert NameLockProvider().check({}, {"name": "acme"}).failures == []


def test_same_name_again_is_accepted_and_unchanged() -> None:
    provider = NameLockProvider()
    assert provider.check({"name": "acme"}, {"name": "acme"}).failures == []
    assert provider.diff("acme", {"name": "acme"}, {"name": "acme"}).changes is False


def test_renaming_fails_the_preview_naming_old_and_new() -> None:
    (failure,) = NameLockProvider().check({"name": "acme"}, {"name": "acme2"}).failures
    assert failure.property == "name"
    assert failure.reason.startswith(
        "instanceName: this stack's instance is 'acme'; it cannot become 'acme2'."
    )
