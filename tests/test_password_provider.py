"""`PasswordProvider` through the real provider host, as `pulumi up` and `refresh` drive
it: a Grafana admin password is made once and kept by every later run and refresh."""

from __future__ import annotations

import pytest

from components.passwords import PASSWORD_BYTES, PasswordProvider
from tests.provider_host import DiffChanges, ProviderHost

pytestmark = pytest.mark.provider_host


@pytest.fixture(scope="module")
def host(provider_host: ProviderHost) -> ProviderHost:
    return provider_host.serving(PasswordProvider())


def test_a_new_password_is_random_url_safe_text_of_192_bits(host: ProviderHost) -> None:
    first = host.create({}).properties["password"]
    second = host.create({}).properties["password"]
    assert first != second
    assert len(first) == len(second) == PASSWORD_BYTES * 4 // 3
    assert all(c.isalnum() or c in "-_" for c in first + second)


def test_a_later_run_keeps_the_password(host: ProviderHost) -> None:
    made = host.create({})
    diff = host.diff(made.id, made.properties, {})
    assert diff.changes is DiffChanges.NONE
    assert diff.replaces == ()


def test_a_refresh_keeps_the_password_in_state(host: ProviderHost) -> None:
    made = host.create({})
    refreshed = host.read(made.id, made.properties, {})
    assert refreshed.id == made.id
    assert refreshed.properties["password"] == made.properties["password"]
