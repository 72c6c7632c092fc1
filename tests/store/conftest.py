"""A started store on each real database (``database_url``), closed after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailbeacon.store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    opened.upgrade()
    opened.start()
    try:
        yield opened
    finally:
        opened.close()
