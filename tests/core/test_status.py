"""Status derivation: forward only, terminal bounces, machines never open, any order gives the same."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.core.events import Classification, EventType
from mailbeacon.core.status import EventFacts, RecipientState, Status, derive, fold, merge, summarize

H, M, U = Classification.HUMAN, Classification.MACHINE, Classification.UNKNOWN


def facts(kind: EventType, at: float, verdict: Classification = U) -> EventFacts:
    return EventFacts(kind, at, verdict)


def test_a_new_recipient_is_sent() -> None:
    assert RecipientState().status is Status.SENT


def test_status_moves_forward_step_by_step() -> None:
    state = RecipientState()
    expected = [Status.SENT, Status.DELIVERED, Status.OPENED, Status.CLICKED]
    for kind, status in zip(
        (EventType.SENT, EventType.DELIVERED, EventType.OPENED, EventType.CLICKED), expected, strict=True
    ):
        state = fold(state, facts(kind, 1.0))
        assert state.status is status


def test_a_late_delivery_does_not_move_status_back() -> None:
    state = derive([facts(EventType.CLICKED, 5.0), facts(EventType.DELIVERED, 9.0)])
    assert state.status is Status.CLICKED
    assert state.delivered_at == 9.0


def test_a_click_implies_an_open() -> None:
    state = derive([facts(EventType.CLICKED, 5.0, H)])
    assert state.first_open_at == state.first_click_at == state.first_human_open_at == 5.0


def test_a_machine_fetch_never_opens() -> None:
    state = derive(
        [facts(EventType.DELIVERED, 1.0), facts(EventType.OPENED, 2.0, M), facts(EventType.CLICKED, 3.0, M)]
    )
    assert state.status is Status.DELIVERED
    assert state.first_fetched_at == 2.0
    assert state.first_open_at is None
    assert state.first_click_at is None


def test_a_human_open_after_a_machine_fetch_is_the_first_human_open() -> None:
    state = derive([facts(EventType.OPENED, 2.0, M), facts(EventType.OPENED, 7.0, H)])
    assert (state.status, state.first_fetched_at, state.first_human_open_at) == (Status.OPENED, 2.0, 7.0)


def test_bounced_and_failed_are_terminal() -> None:
    assert derive([facts(EventType.BOUNCED, 1.0), facts(EventType.CLICKED, 2.0)]).status is Status.BOUNCED
    assert derive([facts(EventType.FAILED, 1.0), facts(EventType.DELIVERED, 2.0)]).status is Status.FAILED


def test_unsubscribe_and_complaint_are_flags_not_steps() -> None:
    state = derive(
        [
            facts(EventType.DELIVERED, 1.0),
            facts(EventType.UNSUBSCRIBED, 2.0),
            facts(EventType.COMPLAINED, 3.0),
        ]
    )
    assert (state.status, state.unsubscribed_at, state.complained_at) == (Status.DELIVERED, 2.0, 3.0)


def test_summary_of_a_group_message() -> None:
    assert summarize([]) is Status.SENT
    opened, bounced = derive([facts(EventType.OPENED, 1.0)]), derive([facts(EventType.BOUNCED, 1.0)])
    assert summarize([opened, bounced]) is Status.OPENED
    assert summarize([bounced, bounced]) is Status.BOUNCED


events = st.lists(
    st.builds(
        EventFacts,
        st.sampled_from(list(EventType)),
        st.floats(min_value=0, max_value=1e9, allow_nan=False),
        st.sampled_from(list(Classification)),
    ),
    max_size=12,
)


@given(events, st.randoms(use_true_random=False))
def test_any_order_and_any_repetition_give_the_same_state(history: list[EventFacts], rnd: object) -> None:
    shuffled = list(history)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert derive(shuffled) == derive(history)
    assert derive(history + history) == derive(history)


@given(events, events)
def test_merging_two_parts_equals_folding_the_whole(
    first: list[EventFacts], second: list[EventFacts]
) -> None:
    assert merge(derive(first), derive(second)) == derive(first + second)
