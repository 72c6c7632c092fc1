"""Keys and key rings: parsing MAILBEACON_KEYS, rotation order, secrets never shown."""

from __future__ import annotations

import base64

import pytest

from mailbeacon.core.errors import KeyConfigError
from mailbeacon.core.keys import Key, KeyRing

SECRET = bytes(range(32))
B64 = base64.b64encode(SECRET).decode()
B64URL = base64.urlsafe_b64encode(SECRET).decode().rstrip("=")


def test_parse_first_key_is_active() -> None:
    ring = KeyRing.parse(f"k2:{B64URL}, k1:{B64}")
    assert ring.active.id == "k2"
    assert [k.id for k in ring] == ["k2", "k1"]
    assert ring.get("k1") is not None
    assert ring.get("k1").secret == SECRET  # type: ignore[union-attr]


def test_spec_round_trips() -> None:
    ring = KeyRing.parse(f"a:{B64},b:{B64URL}")
    assert KeyRing.parse(ring.to_spec()).keys == ring.keys


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "at least one key"),
        ("k1", "no ':'"),
        ("k1:!!!", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "at least 16 bytes"),
        (f"bad id:{B64}", "must be 1-16 characters"),
        (f"k1:{B64},k1:{B64}", "appears twice"),
        (f"{'x' * 17}:{B64}", "must be 1-16 characters"),
    ],
)
def test_bad_specs_say_what_to_fix(spec: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message):
        KeyRing.parse(spec)


def test_secret_is_hidden_in_repr() -> None:
    key = Key("k1", SECRET)
    assert B64 not in repr(key)
    assert SECRET.hex() not in repr(key)
    assert "hidden" in str(key)
    assert "k1" in repr(KeyRing([key]))
