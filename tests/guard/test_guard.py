"""The loopback guard trips, before any packet leaves, here and in the subprocesses the tests start."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from . import loopback_guard
from .loopback_guard import LoopbackGuardError


@pytest.fixture(autouse=True)
def _unlogged(monkeypatch: pytest.MonkeyPatch) -> None:
    # These refusals are the point of the test: keep them out of the log that fails the run.
    monkeypatch.delenv(loopback_guard.ENV_LOG, raising=False)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server


def test_the_guard_is_active_in_the_test_process() -> None:
    assert getattr(socket, "_mailbeacon_loopback_guard", False)
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(loopback_guard.FOLDER)


@pytest.mark.parametrize("address", ["10.255.255.1", "169.254.169.254", "192.168.1.1", "8.8.8.8"])
def test_a_connect_off_loopback_is_refused_before_the_syscall(address: str, listener: socket.socket) -> None:
    with socket.socket() as sock:
        sock.setblocking(False)
        with pytest.raises(LoopbackGuardError, match=f"connect to \\('{address}', 80\\)"):
            sock.connect((address, 80))
        # Had the kernel seen that connect, this non-blocking socket would now be connecting
        # (EINPROGRESS), and a second connect would fail with EALREADY. It connects cleanly.
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        code = sock.connect_ex(listener.getsockname())
        assert code in (0, errno.EINPROGRESS)


def test_connect_ex_create_connection_and_udp_sendto_are_refused() -> None:
    with socket.socket() as sock, pytest.raises(LoopbackGuardError):
        sock.connect_ex(("10.255.255.1", 443))
    with pytest.raises(LoopbackGuardError):
        socket.create_connection(("169.254.169.254", 80), timeout=1)
    with socket.socket(socket.AF_INET6) as sock, pytest.raises(LoopbackGuardError):
        sock.connect(("fd00::1", 80, 0, 0))
    with socket.socket(type=socket.SOCK_DGRAM) as sock, pytest.raises(LoopbackGuardError):
        sock.sendto(b"x", ("10.255.255.53", 53))


@pytest.mark.parametrize("name", ["example.com", "localhost.", "sub.localhost", "metadata.google.internal"])
def test_resolving_a_name_is_refused(name: str) -> None:
    with pytest.raises(LoopbackGuardError, match="a DNS query"):
        socket.getaddrinfo(name, 443)
    with pytest.raises(LoopbackGuardError):
        socket.gethostbyname(name)


def test_reverse_lookups_of_other_addresses_are_refused() -> None:
    with pytest.raises(LoopbackGuardError):
        socket.gethostbyaddr("10.255.255.1")
    with pytest.raises(LoopbackGuardError):
        socket.getnameinfo(("10.255.255.1", 80), 0)
    assert socket.getnameinfo(("10.255.255.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "127.0.0.1", "2130706433", "0x7f.1", "::1", "10.1"]
)
def test_ip_literals_and_localhost_resolve_without_dns(host: str) -> None:
    assert socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)


def test_loopback_traffic_passes_in_every_spelling(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    for host in ("127.0.0.1", "127.1", "2130706433", "localhost"):
        with socket.create_connection((host, port), timeout=2):
            pass
    with socket.socket(socket.AF_INET6) as sock:
        sock.connect_ex(("::1", port, 0, 0))  # nothing listens on ::1: refused by the kernel, not the guard


def test_an_http_client_off_loopback_fails_with_the_guard_error() -> None:
    with pytest.raises(LoopbackGuardError):
        httpx.get("http://10.255.255.1/", timeout=1)


def test_the_guard_runs_in_subprocesses_and_logs_what_it_refused(tmp_path: os.PathLike[str]) -> None:
    log = os.path.join(tmp_path, "guard.log")
    code = (
        "import socket\n"
        "try:\n    socket.create_connection(('169.254.169.254', 80), timeout=1)\n"
        "except RuntimeError as exc:\n    print(type(exc).__name__)\n"
    )
    env = {**loopback_guard.child_environment(), loopback_guard.ENV_LOG: log}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "LoopbackGuardError"
    with open(log, encoding="utf-8") as text:
        assert "refused connect to ('169.254.169.254', 80)" in text.read()
