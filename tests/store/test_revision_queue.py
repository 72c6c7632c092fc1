"""The reviser's queue: bounded in memory, every key comes back once the memory is empty."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.store.revision_queue import RevisionQueue

keys = st.sets(
    st.tuples(st.sampled_from(["acct-a", "acct-b"]), st.text(min_size=1, max_size=40)), max_size=60
)


@settings(max_examples=200)
@given(st.lists(keys, max_size=12), st.integers(1, 20), st.integers(1, 25))
def test_every_queued_key_comes_back_and_memory_stays_bounded(
    batches: list[set[tuple[str, str]]], bound: int, take: int
) -> None:
    queue = RevisionQueue(memory_keys=bound)
    queued: set[tuple[str, str]] = set()
    for batch in batches:
        queue.add(batch)
        queued |= batch
        assert len(queue) <= bound
    taken: list[tuple[str, str]] = []
    while queue:
        got = queue.take(take)
        assert got, "a non-empty queue gave nothing"
        assert len(got) <= take
        taken += got
    assert set(taken) == queued  # nothing lost; a key spilled twice may come back twice
    assert queue.take(take) == []
    queue.close()


def test_a_burst_past_the_bound_goes_to_the_file_not_to_memory() -> None:
    queue = RevisionQueue(memory_keys=100)
    for i in range(50):
        queue.add({("acct", f"message-{i}-{j}") for j in range(40)})  # 2,000 keys
    assert len(queue) <= 100
    assert queue.spilled >= 1900
    seen = set()
    while queue:
        seen.update(queue.take(500))
    assert len(seen) == 2000
    # Drained: the file is emptied, and the next burst starts in memory again.
    queue.add({("acct", "after")})
    assert len(queue) == 1
    queue.close()
