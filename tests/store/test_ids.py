"""Message and delivery ids: ULID-shaped, time-ordered, Crockford base32."""

from __future__ import annotations

import re
import time
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.store.ids import encode_id, new_id

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def reference(value: int) -> str:
    """The ULID definition, five bits a character from the top: the oracle for the fast encoder."""
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_the_encoder_agrees_with_the_definition(value: int) -> None:
    assert encode_id(value) == reference(value)


def test_edges() -> None:
    assert encode_id(0) == "0" * 26
    assert encode_id(2**128 - 1) == "7" + "z" * 25
    assert encode_id(1) == "0" * 25 + "1"


def test_ids_are_unique_time_ordered_and_carry_the_time() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-7][0-9a-hjkmnp-tv-z]{25}", i) for i in ids)
    for i in ids[:: len(ids) // 10]:
        ms = 0  # the first ten characters: two zero bits, then the 48 bits of milliseconds
        for c in i[:10]:
            ms = ms * 32 + CROCKFORD.index(c)
        assert before <= ms <= after
    assert ids[0][:10] <= ids[-1][:10]


def test_the_random_part_uses_every_digit_evenly() -> None:
    counts = Counter("".join(new_id()[10:] for _ in range(5000)))  # 80,000 digits, 2,500 expected each
    assert set(counts) == set(CROCKFORD)
    assert all(2200 < n < 2800 for n in counts.values()), counts  # > 6 standard deviations
