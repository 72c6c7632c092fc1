"""Webhook delivery against real receiver processes: retries, timeouts, 410, redirects, restarts."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.config import generate_keyring
from mailbeacon.webhooks import verify

from .harness import Server
from .webhook_harness import FAST, Receiver, add_endpoint, new_message, report, wait_until


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    running = Receiver(tmp_path / "receiver").start()
    try:
        yield running
    finally:
        running.stop()


def _attempts(server: Server, key: str, endpoint_id: str) -> list[dict[str, object]]:
    response = server.client(key).get(f"/api/v1/webhooks/{endpoint_id}/attempts")
    assert response.status_code == 200
    data: list[dict[str, object]] = response.json()["data"]
    return data


def test_an_event_arrives_signed_once(hook_server: Server, hook_key: str, receiver: Receiver) -> None:
    endpoint = add_endpoint(hook_server, hook_key, receiver.url)
    new_message(hook_server, hook_key, "m1", campaign="spring")
    seq = report(hook_server, hook_key, "m1")
    wait_until(lambda: len(receiver.requests()) >= 2, 10)
    # "sent" was recorded when the message was registered; the two may arrive in either order.
    types = {verify(r["body"], r["headers"], endpoint["secret"])["type"] for r in receiver.requests()}
    assert types == {"message.sent", "message.delivered"}
    request = next(r for r in receiver.requests() if "message.delivered" in r["body"])
    event = verify(request["body"], request["headers"], endpoint["secret"])
    assert event["data"]["seq"] == seq
    assert event["data"]["campaign"] == "spring"
    assert event["data"]["classification"] == "unknown"
    assert request["headers"]["webhook-id"].startswith("wh_")
    wait_until(lambda: len(_attempts(hook_server, hook_key, endpoint["id"])) >= 2, 5)
    assert len(receiver.requests()) == 2


def test_a_receiver_down_for_n_attempts_gets_the_event_once_it_is_back(
    hook_server: Server, hook_key: str, receiver: Receiver
) -> None:
    receiver.script(fail_first=3, status=503)
    new_message(hook_server, hook_key, "m1")  # before the endpoint: no "sent" webhook
    endpoint = add_endpoint(hook_server, hook_key, receiver.url)
    report(hook_server, hook_key, "m1")
    wait_until(lambda: len(receiver.requests()) >= 4, 15)
    wait_until(lambda: len(_attempts(hook_server, hook_key, endpoint["id"])) >= 4, 5)
    requests = receiver.requests()
    assert len(requests) == 4  # three 503s, then the one that succeeded, and no more
    assert len({r["headers"]["webhook-id"] for r in requests}) == 1  # the same id on every retry
    codes = [a["status_code"] for a in _attempts(hook_server, hook_key, endpoint["id"])]
    assert codes == [200, 503, 503, 503]


def test_a_receiver_that_always_fails_is_tried_as_often_as_the_schedule_says(
    hook_server: Server, hook_key: str, receiver: Receiver
) -> None:
    receiver.script(fail_first=100, status=500)
    new_message(hook_server, hook_key, "m1")  # before the endpoint: no "sent" webhook
    endpoint = add_endpoint(hook_server, hook_key, receiver.url)
    report(hook_server, hook_key, "m1")
    wait_until(
        lambda: (
            hook_server.client(hook_key).get(f"/api/v1/webhooks/{endpoint['id']}").json()["deliveries"]
            == {"failed": 1}
        ),
        20,
    )
    assert len(receiver.requests()) == 6  # the first try and five retries (FAST schedule)


def test_a_receiver_that_hangs_past_the_timeout_is_retried(
    hook_server: Server, hook_key: str, receiver: Receiver
) -> None:
    receiver.script(fail_first=1, status=200, hang=3)
    new_message(hook_server, hook_key, "m1")  # before the endpoint: no "sent" webhook
    endpoint = add_endpoint(hook_server, hook_key, receiver.url)
    report(hook_server, hook_key, "m1")
    wait_until(lambda: len(_attempts(hook_server, hook_key, endpoint["id"])) >= 2, 15)
    attempts = _attempts(hook_server, hook_key, endpoint["id"])
    assert attempts[-1]["status_code"] is None
    assert "no answer within" in str(attempts[-1]["error"])
    assert attempts[0]["status_code"] == 200


def test_410_gone_disables_the_endpoint(hook_server: Server, hook_key: str, receiver: Receiver) -> None:
    receiver.script(fail_first=100, status=410)
    new_message(hook_server, hook_key, "m1")  # before the endpoint: no "sent" webhook
    endpoint = add_endpoint(hook_server, hook_key, receiver.url)
    report(hook_server, hook_key, "m1")
    client = hook_server.client(hook_key)
    wait_until(lambda: not client.get(f"/api/v1/webhooks/{endpoint['id']}").json()["enabled"], 10)
    assert "410" in client.get(f"/api/v1/webhooks/{endpoint['id']}").json()["disabled_reason"]
    report(hook_server, hook_key, "m1", "bounced")
    wait_until(lambda: len(_attempts(hook_server, hook_key, endpoint["id"])) >= 1, 5)
    assert len(receiver.requests()) == 1


def test_a_redirect_is_not_followed(hook_server: Server, hook_key: str, tmp_path: Path) -> None:
    target = Receiver(tmp_path / "target").start()
    redirecting = Receiver(tmp_path / "redirecting").start()
    try:
        redirecting.script(fail_first=100, status=302, location=target.url)
        new_message(hook_server, hook_key, "m1")  # before the endpoint: no "sent" webhook
        endpoint = add_endpoint(hook_server, hook_key, redirecting.url)
        report(hook_server, hook_key, "m1")
        wait_until(lambda: len(_attempts(hook_server, hook_key, endpoint["id"])) >= 2, 10)
        attempts = _attempts(hook_server, hook_key, endpoint["id"])
        assert attempts[-1]["status_code"] == 302
        assert "redirects are not followed" in str(attempts[-1]["error"])
        assert target.requests() == []
    finally:
        target.stop()
        redirecting.stop()


def test_retry_after_is_honoured(hook_server: Server, hook_key: str, receiver: Receiver) -> None:
    receiver.script(fail_first=1, status=429, retry_after=2)
    new_message(hook_server, hook_key, "m1")  # before the endpoint: no "sent" webhook
    add_endpoint(hook_server, hook_key, receiver.url)
    report(hook_server, hook_key, "m1")
    wait_until(lambda: len(receiver.requests()) >= 2, 10)
    first, second = receiver.requests()[:2]
    assert second["at"] - first["at"] >= 1.9  # not the schedule's 0.2 s


def test_the_endpoint_filters_by_type(hook_server: Server, hook_key: str, receiver: Receiver) -> None:
    new_message(hook_server, hook_key, "m1")  # before the endpoint: no "sent" webhook
    add_endpoint(hook_server, hook_key, receiver.url, types=["bounced"])
    report(hook_server, hook_key, "m1", "delivered")
    report(hook_server, hook_key, "m1", "bounced")
    wait_until(lambda: receiver.requests(), 10)
    report(hook_server, hook_key, "m1", "complained")
    assert [b["type"] for b in receiver.bodies()] == ["message.bounced"]


def test_deliveries_pending_at_a_kill_go_out_after_restart(
    own_database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    # No worker in the first run: the deliveries are still in the outbox when it is killed.
    # Its own database: the session's hook_server would otherwise deliver them meanwhile.
    env = {**FAST, "MAILBEACON_WEBHOOK_WORKER": "false"}
    server = Server(own_database_url, tmp_path, generate_keyring().to_spec(), extra_env=env).start()
    try:
        key = server.new_account(f"kill-{uuid.uuid4().hex[:10]}")
        new_message(server, key, "m1")  # before the endpoint: no "sent" webhook
        endpoint = add_endpoint(server, key, receiver.url)
        seqs = {report(server, key, "m1", kind) for kind in ("delivered", "bounced", "complained")}
        server.stop(signal.SIGKILL)
        assert receiver.requests() == []
        server.extra_env = FAST
        server.start()
        wait_until(lambda: len(receiver.requests()) >= 3, 15)
        bodies = receiver.bodies()
        assert {b["data"]["seq"] for b in bodies} == seqs
        for request in receiver.requests():
            verify(request["body"], request["headers"], endpoint["secret"])
    finally:
        server.stop()


def test_a_rotated_secret_signs_with_both_during_the_overlap(
    hook_server: Server, hook_key: str, receiver: Receiver
) -> None:
    endpoint = add_endpoint(hook_server, hook_key, receiver.url)
    rotated = hook_server.client(hook_key).post(f"/api/v1/webhooks/{endpoint['id']}/rotate", json={})
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    hook_server.client(hook_key).post(f"/api/v1/webhooks/{endpoint['id']}/test")
    wait_until(lambda: receiver.requests(), 10)
    request = receiver.requests()[0]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    assert verify(request["body"], request["headers"], endpoint["secret"])["type"] == "message.test"
    assert verify(request["body"], request["headers"], new_secret)["type"] == "message.test"


def test_replay_sends_a_time_range_again(hook_server: Server, hook_key: str, receiver: Receiver) -> None:
    new_message(hook_server, hook_key, "m1")
    report(hook_server, hook_key, "m1", "delivered")  # before the endpoint existed
    endpoint = add_endpoint(hook_server, hook_key, receiver.url)
    response = hook_server.client(hook_key).post(
        f"/api/v1/webhooks/{endpoint['id']}/replay",
        json={"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"},
    )
    assert response.status_code == 422  # more than 31 days
    response = hook_server.client(hook_key).post(
        f"/api/v1/webhooks/{endpoint['id']}/replay",
        json={"since": "2026-01-01T00:00:00Z", "until": "2026-01-20T00:00:00Z"},
    )
    assert response.json() == {"queued": 0}
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    response = hook_server.client(hook_key).post(
        f"/api/v1/webhooks/{endpoint['id']}/replay",
        json={
            "since": (now - timedelta(hours=1)).isoformat(),
            "until": (now + timedelta(hours=1)).isoformat(),
        },
    )
    assert response.json() == {"queued": 2}  # "sent" (on registration) and "delivered"
    wait_until(lambda: len(receiver.requests()) >= 2, 10)
    assert sorted(b["type"] for b in receiver.bodies()) == ["message.delivered", "message.sent"]


def test_a_new_endpoint_gets_every_hit_answered_after_it_was_created(
    database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    # Tracking hits are committed by the ingester process, which caches the endpoints; it must
    # see an endpoint created through the API before it commits any hit answered afterwards.
    from .harness import browser_get

    server = Server(database_url, tmp_path, generate_keyring().to_spec(), extra_env=FAST).start()
    try:
        key = server.new_account("default")  # the account tracking links name by default
        tracker = server.tracker()
        client = server.client(key)
        for round_ in range(3):
            # A hit first, so the ingester has just read the endpoints (a cache, if any, is warm).
            assert browser_get(tracker.open_url(message_id=f"warm-{round_}")).status_code == 200
            wait_until(lambda r=round_: client.get(f"/api/v1/messages/warm-{r}").status_code == 200, 10)
            add_endpoint(server, key, receiver.url, types=["opened"], description=f"round {round_}")
            assert browser_get(tracker.open_url(message_id=f"after-{round_}")).status_code == 200
            wait_until(
                lambda r=round_: f"after-{r}" in {b["data"]["message_id"] for b in receiver.bodies()}, 10
            )
    finally:
        server.stop()
