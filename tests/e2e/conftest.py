"""Fixtures for tests that build namespace labs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from skylan.lab import Lab, naming, netns


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as built:
        yield built
    left = [n for n in netns.list_netns() if naming.lab_id_of(n) == built.id]
    assert not left, f"lab left namespaces behind: {left}"
