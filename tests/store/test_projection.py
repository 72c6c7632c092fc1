"""The projection's upsert rows: the per-event shortcut gives exactly what folding gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.core.events import Classification, EventType
from mailbeacon.core.status import rank
from mailbeacon.store.projection import _TIMES, fold_batch, recipient_rows
from mailbeacon.store.recorder import EventRow

ROWS = st.builds(
    EventRow,
    account_id=st.sampled_from(["a1", "a2"]),
    message_id=st.sampled_from(["m1", "m2", "m3"]),
    recipient=st.sampled_from(["r1", "r2"]),
    type=st.sampled_from([kind.value for kind in EventType]),
    at=st.floats(0, 1e9, allow_nan=False),
    classification=st.sampled_from([label.value for label in Classification]),
)


@settings(max_examples=500)
@given(st.lists(ROWS, max_size=30))
def test_recipient_rows_are_the_folded_states(rows: list[EventRow]) -> None:
    folded = {
        key: (*key, state.status.value, rank(state.status), *(getattr(state, name) for name in _TIMES))
        for key, state in fold_batch(rows).items()
    }
    assert recipient_rows(rows) == folded


def test_a_machine_open_alone_sets_only_the_fetch_time() -> None:
    row = EventRow("a", "m", "r", "opened", 5.0, classification="machine")
    ((key, values),) = recipient_rows([row]).items()
    assert key == ("a", "m", "r")
    named = dict(zip(("status", "status_rank", *_TIMES), values[3:], strict=True))
    assert named["status"] == "sent"  # a machine never moves the status
    assert named["first_fetched_at"] == 5.0
    assert named["first_open_at"] is None
