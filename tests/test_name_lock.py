"""The instance name cannot change once a stack has created the instance."""

from __future__ import annotations

import pytest

from components.name_lock import NameLockProvider
from tests.provider_host import DiffChanges, ProviderHost


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


@pytest.fixture
def lock_host(provider_host: ProviderHost) -> ProviderHost:
    return provider_host.serving(NameLockProvider())


@pytest.mark.provider_host
def test_renaming_is_refused_by_check_through_the_provider_host(lock_host: ProviderHost) -> None:
    created = lock_host.create(lock_host.check({"name": "acme"}).inputs)
    checked = lock_host.check({"name": "acme2"}, olds=created.properties)
    assert [prop for prop, _ in checked.failures] == ["name"]
    assert "it cannot become 'acme2'" in checked.failures[0][1]


@pytest.mark.provider_host
def test_unchanged_name_gives_no_diff_through_the_provider_host(lock_host: ProviderHost) -> None:
    created = lock_host.create(lock_host.check({"name": "acme"}).inputs)
    diff = lock_host.diff(created.id, created.properties, {"name": "acme"})
    assert diff.changes is DiffChanges.NONE
