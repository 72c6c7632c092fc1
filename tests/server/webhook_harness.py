"""Receivers in their own processes, and helpers to make events happen on a real server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from guard.loopback_guard import child_environment

from .harness import Server, free_port

RECEIVER = Path(__file__).with_name("receiver.py")

# Retries every few tenths of a second, so the whole schedule takes seconds.
FAST = {
    "MAILBEACON_WEBHOOK_ALLOW_PRIVATE": "true",
    "MAILBEACON_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2,0.2,0.2",
    "MAILBEACON_WEBHOOK_TIMEOUT": "1",
}


@dataclass
class Receiver:
    folder: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(RECEIVER), str(self.port), str(self.folder)],
            env=child_environment(),
            start_new_session=True,
        )
        wait_until(self._listening, 10)
        return self

    def _listening(self) -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{self.port}/", timeout=0.5)
        except httpx.TransportError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def script(self, **values: Any) -> None:
        (self.folder / "script.json").write_text(json.dumps(values))

    def requests(self) -> list[dict[str, Any]]:
        path = self.folder / "requests.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests()]


def wait_until(check: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not true within {timeout} s: {check}")


def add_endpoint(server: Server, key: str, url: str, **fields: Any) -> dict[str, Any]:
    response = server.client(key).post("/api/v1/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


def new_message(server: Server, key: str, message_id: str, **fields: Any) -> None:
    body = {"id": message_id, "recipient": "r@example.com", "html": "<p>hi</p>", **fields}
    response = server.client(key).post("/api/v1/messages", json=body)
    assert response.status_code == 201, response.text


def report(server: Server, key: str, message_id: str, event_type: str = "delivered") -> int:
    response = server.client(key).post(f"/api/v1/messages/{message_id}/events", json={"type": event_type})
    assert response.status_code == 201, response.text
    seq: int = response.json()["seq"]
    return seq
