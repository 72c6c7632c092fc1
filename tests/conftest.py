"""Shared fixtures: a fixed key ring so tests are deterministic."""

from __future__ import annotations

import pytest

from mailbeacon import Key, KeyRing, Tracker

SECRET_1 = bytes(range(32))
SECRET_2 = bytes(range(100, 132))


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing([Key("k1", SECRET_1)])


@pytest.fixture
def tracker(ring: KeyRing) -> Tracker:
    return Tracker("https://t.example.com", keys=ring, clock=lambda: 1_700_000_000.0)
