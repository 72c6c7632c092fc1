"""webhooks.policy: the retry schedule, jitter, Retry-After, what counts as delivered, when to disable."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from mailbeacon.webhooks.policy import DEFAULT_SCHEDULE, Decision, Outcome, RetryPolicy, parse_retry_after

NOW = 1_760_000_000.0
DAY = 86400.0


class Extreme(random.Random):
    """uniform() at one end of its range: the jitter's bounds, not a sample of them."""

    def __init__(self, end: int) -> None:
        super().__init__(0)
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return (a, b)[self.end]


def no_jitter() -> RetryPolicy:
    return RetryPolicy(jitter=0)


def test_the_schedule_is_the_standard_webhooks_one() -> None:
    policy = no_jitter()
    delays = [policy.next_delay(n) for n in range(1, 8)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000]


def test_the_schedule_spans_about_three_days_in_twelve_attempts() -> None:
    policy = no_jitter()
    delays = []
    attempts = 1
    while (delay := policy.next_delay(attempts)) is not None:
        delays.append(delay)
        attempts += 1
    assert attempts == 12  # the first try and 11 retries
    assert 2.5 * DAY < sum(delays) < 3.5 * DAY
    assert sum(delays) == sum(DEFAULT_SCHEDULE)


def test_after_the_last_retry_there_is_none() -> None:
    assert RetryPolicy().next_delay(len(DEFAULT_SCHEDULE) + 1) is None
    assert RetryPolicy().next_delay(100) is None


def test_attempts_start_at_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy().next_delay(0)


@pytest.mark.parametrize(("attempts", "base"), list(enumerate(DEFAULT_SCHEDULE, start=1)))
def test_jitter_stays_within_twenty_percent(attempts: int, base: float) -> None:
    policy = RetryPolicy()
    assert policy.next_delay(attempts, rng=Extreme(0)) == pytest.approx(base * 0.8)
    assert policy.next_delay(attempts, rng=Extreme(1)) == pytest.approx(base * 1.2)
    rng = random.Random(attempts)
    samples = [policy.next_delay(attempts, rng=rng) for _ in range(200)]
    assert all(base * 0.8 <= s <= base * 1.2 for s in samples if s is not None)
    assert len(set(samples)) > 150  # endpoints that failed together come back spread out


def test_a_custom_schedule_is_followed() -> None:
    policy = RetryPolicy(schedule=(0.2, 0.2), jitter=0)
    assert [policy.next_delay(n) for n in (1, 2, 3)] == [0.2, 0.2, None]


# -- Retry-After ----------------------------------------------------------------------------


def test_retry_after_longer_than_the_schedule_is_honoured() -> None:
    assert no_jitter().next_delay(1, retry_after=120) == 120


def test_retry_after_shorter_than_the_schedule_does_not_speed_it_up() -> None:
    assert no_jitter().next_delay(3, retry_after=10) == 1800


@pytest.mark.parametrize("absurd", [DAY + 1, 10 * 365 * DAY, float("inf")])
def test_retry_after_is_capped_at_a_day(absurd: float) -> None:
    assert no_jitter().next_delay(1, retry_after=absurd) == DAY


def test_retry_after_does_not_extend_a_used_up_schedule() -> None:
    assert no_jitter().next_delay(len(DEFAULT_SCHEDULE) + 1, retry_after=60) is None


@pytest.mark.parametrize(
    ("value", "seconds"), [("120", 120.0), (" 7 ", 7.0), ("0", 0.0), ("9" * 30, 1e30 - 1)]
)
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == pytest.approx(seconds)


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(datetime.fromtimestamp(NOW + 3600, UTC), usegmt=True)
    assert parse_retry_after(later, NOW) == pytest.approx(3600)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0  # in the past: now


def test_an_absurd_retry_after_date_is_capped_once_applied() -> None:
    far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW)
    assert far is not None
    assert far > 100 * 365 * DAY
    assert no_jitter().next_delay(1, retry_after=far) == DAY


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2020", "12 seconds"])
def test_an_unreadable_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


# -- outcomes -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(code: int) -> None:
    assert Outcome(code).delivered
    assert RetryPolicy().decide(Outcome(code), 1, None, NOW) == Decision(None)


@pytest.mark.parametrize("code", [None, 100, 301, 302, 307, 308, 400, 401, 404, 409, 429, 500, 502, 503, 504])
def test_everything_else_but_410_is_retried(code: int | None) -> None:
    outcome = Outcome(code, "HTTP error")
    assert not outcome.delivered
    assert not outcome.gone
    decision = no_jitter().decide(outcome, 1, None, NOW)
    assert decision == Decision(5, None)


def test_410_gone_disables_the_endpoint_and_stops_retrying() -> None:
    decision = RetryPolicy().decide(Outcome(410, "HTTP 410"), 1, None, NOW)
    assert decision == Decision(None, "the receiver answered 410 Gone")


def test_429_with_retry_after_waits_as_asked() -> None:
    assert no_jitter().decide(Outcome(429, "HTTP 429", retry_after=600), 1, None, NOW).next_delay == 600


def test_an_endpoint_failing_for_five_days_is_disabled() -> None:
    policy = no_jitter()
    within = policy.decide(Outcome(500), 3, NOW - 5 * DAY, NOW)
    assert within.disable is None
    beyond = policy.decide(Outcome(500), 3, NOW - 5 * DAY - 1, NOW)
    assert beyond.disable == "no successful delivery for 5 days"
    assert beyond.next_delay == 1800  # this delivery keeps its schedule; the endpoint stops claiming


def test_a_success_never_disables_even_after_a_long_failure() -> None:
    assert RetryPolicy().decide(Outcome(200), 3, NOW - 30 * DAY, NOW).disable is None


def test_disable_after_is_configurable() -> None:
    policy = RetryPolicy(disable_after=60)
    assert policy.decide(Outcome(None, "timeout"), 1, NOW - 61, NOW).disable == (
        f"no successful delivery for {60 / DAY:g} days"
    )
