"""A real ``mailbeacon serve`` process on a free loopback port, and a client for it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from guard.loopback_guard import child_environment
from mailbeacon import KeyRing, Tracker

BIN = Path(sys.executable).parent / "mailbeacon"

# What a person's mail client sends: the classifier labels these hits human (python-httpx's own
# user agent is an HTTP client, a machine, and would never make a message "opened").
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
BROWSER = {"User-Agent": BROWSER_UA, "Accept": "image/avif,image/webp,image/apng,*/*;q=0.8"}


def free_port() -> int:
    # No SO_REUSEPORT on the probe: a port a listening server holds is never handed out.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    database_url: str
    data_dir: Path
    keys: str
    extra_env: dict[str, str] = field(default_factory=dict)
    serve_args: tuple[str, ...] = ()  # more arguments to `mailbeacon serve` (--workers N)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _clients: dict[str | None, httpx.Client] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        # child_environment(): the loopback guard runs inside the server and its workers too.
        return {
            **child_environment(),
            "MAILBEACON_DATA_DIR": str(self.data_dir),
            "MAILBEACON_DATABASE_URL": self.database_url,
            "MAILBEACON_KEYS": self.keys,
            "MAILBEACON_BASE_URL": self.base,
            "MAILBEACON_LOG_LEVEL": "warning",
            **self.extra_env,
        }

    def start(self) -> Server:
        self.port = self.port or free_port()
        with open(self.data_dir / f"server-{self.port}.log", "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [str(BIN), "serve", "--port", str(self.port), *self.serve_args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        path = self.data_dir / f"server-{self.port}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *args], env=self.env, capture_output=True, text=True, check=check, timeout=60
        )

    def new_account(self, name: str) -> str:
        """A new sender account and its API key."""
        return self.cli("apikey", "create", name).stdout.strip()

    def tracker(self, **kwargs: Any) -> Tracker:
        return Tracker(self.base, keys=KeyRing.parse(self.keys), **kwargs)

    def client(self, key: str | None = None) -> httpx.Client:
        """A client sending ``key`` (one per key, closed when the server stops)."""
        if key not in self._clients:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            self._clients[key] = httpx.Client(base_url=self.base, headers=headers, timeout=30)
        return self._clients[key]


# A current desktop browser: what a person's click or image load looks like to the classifier
# (httpx's own user agent is an HTTP client, a machine).
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def browser_get(url: str, **kwargs: Any) -> httpx.Response:
    """``httpx.get`` as a person's browser would send it."""
    headers = {"User-Agent": BROWSER, **kwargs.pop("headers", {})}
    return httpx.get(url, headers=headers, **kwargs)
