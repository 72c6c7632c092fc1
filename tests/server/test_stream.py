"""GET /api/v1/stream against a real server: live events, resume without gaps or duplicates, tokens."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from .harness import Server
from .webhook_harness import new_message, report, wait_until


class Listener:
    """An SSE client on its own thread, collecting (id, event, data)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.opened = threading.Event()
        self.ended = threading.Event()  # the response ended (or failed)
        self.status = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.opened.wait(10)

    def _lines(self) -> Iterator[str]:
        with httpx.stream("GET", self.url, headers=self.headers, timeout=30) as response:
            self.status = response.status_code
            self.opened.set()
            if response.status_code != 200:
                return
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                yield line

    def _run(self) -> None:
        current: dict[str, str] = {}
        try:
            for line in self._lines():
                if line.startswith(":"):
                    continue
                if not line:
                    if "id" in current:
                        self.events.append(
                            (int(current["id"]), current["event"], json.loads(current["data"]))
                        )
                    current = {}
                    continue
                name, _, value = line.partition(": ")
                current[name] = value
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()
            self.ended.set()

    def close(self) -> None:
        self._stop.set()


def _url(server: Server, query: str = "") -> str:
    return f"{server.base}/api/v1/stream{query}"


def test_events_arrive_live_with_the_seq_as_id(server: Server, key: str) -> None:
    listener = Listener(_url(server), {"Authorization": f"Bearer {key}"})
    try:
        new_message(server, key, "m1")
        seq = report(server, key, "m1", "delivered")
        wait_until(lambda: len(listener.events) >= 2, 10)
        assert listener.events[-1][0] == seq
        assert listener.events[-1][1] == "message.delivered"
        assert listener.events[-1][2]["data"]["message_id"] == "m1"
    finally:
        listener.close()


def test_resume_from_last_event_id_has_no_gaps_or_duplicates(server: Server, key: str) -> None:
    new_message(server, key, "m1")
    seqs = [report(server, key, "m1", kind) for kind in ("delivered", "deferred", "bounced")]
    headers = {"Authorization": f"Bearer {key}", "Last-Event-ID": str(seqs[0])}
    listener = Listener(_url(server), headers)
    try:
        more = [report(server, key, "m1", kind) for kind in ("failed", "complained")]
        wait_until(lambda: len(listener.events) >= 4, 10)
        assert [seq for seq, _, _ in listener.events] == seqs[1:] + more
    finally:
        listener.close()


def test_filters_and_account_isolation(server: Server, key: str) -> None:
    other = server.new_account(f"other-{uuid.uuid4().hex[:10]}")
    listener = Listener(_url(server, "?type=bounced&message=m2"), {"Authorization": f"Bearer {key}"})
    theirs = Listener(_url(server), {"Authorization": f"Bearer {other}"})
    try:
        new_message(server, key, "m1")
        new_message(server, key, "m2")
        report(server, key, "m1", "bounced")
        report(server, key, "m2", "delivered")
        wanted = report(server, key, "m2", "bounced")
        wait_until(lambda: listener.events, 10)
        new_message(server, other, "m3")
        wait_until(lambda: theirs.events, 10)
        assert [seq for seq, _, _ in listener.events] == [wanted]
        assert {e[2]["data"]["message_id"] for e in theirs.events} == {"m3"}
    finally:
        listener.close()
        theirs.close()


def test_a_stream_token_works_as_a_query_parameter_and_keeps_its_scope(server: Server, key: str) -> None:
    minted = server.client(key).post("/api/v1/stream/tokens", json={"message": "m2", "ttl_seconds": 60})
    assert minted.status_code == 201
    token = minted.json()["token"]
    # The token's scope wins: asking for another message does not widen it.
    listener = Listener(_url(server, f"?token={token}&message=m1"))
    try:
        new_message(server, key, "m1")
        new_message(server, key, "m2")
        wait_until(lambda: listener.events, 10)
        assert {e[2]["data"]["message_id"] for e in listener.events} == {"m2"}
    finally:
        listener.close()


def test_a_forged_or_missing_credential_is_refused(server: Server, key: str) -> None:
    token = server.client(key).post("/api/v1/stream/tokens", json={}).json()["token"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert httpx.get(_url(server, f"?token={forged}")).status_code == 401
    assert httpx.get(_url(server)).status_code == 401
    assert httpx.get(_url(server), headers={"Authorization": "Bearer nope"}).status_code == 401
    # A stream token is not an API key.
    listed = httpx.get(f"{server.base}/api/v1/messages", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 401
