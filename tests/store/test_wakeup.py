"""Wake-ups between processes over Unix datagram sockets (store.wakeup), for real."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from mailbeacon.store.wakeup import HTTP, INGESTER, WakeReceiver, WakeSender


def test_a_commit_wakes_every_receiver_of_the_role_and_only_those(tmp_path: Path) -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        counts = {HTTP: 0, INGESTER: 0}

        def on(role: str) -> None:
            counts[role] += 1
            woken.set()

        http = WakeReceiver.bind(tmp_path, HTTP)
        ingester = WakeReceiver.bind(tmp_path, INGESTER)
        assert http is not None
        assert ingester is not None
        http.attach(loop, lambda: on(HTTP))
        ingester.attach(loop, lambda: on(INGESTER))
        sender = WakeSender(tmp_path, HTTP)
        try:
            for _ in range(50):  # many wake-ups before the loop runs: drained as one or a few
                sender()
            await asyncio.wait_for(woken.wait(), 5)
            await asyncio.sleep(0.05)
            return counts[HTTP], counts[INGESTER]
        finally:
            sender.close()
            http.close()
            ingester.close()

    http_wakes, ingester_wakes = asyncio.run(main())
    assert 1 <= http_wakes < 50
    assert ingester_wakes == 0
    assert list((tmp_path / "wake").iterdir()) == []  # closed receivers remove their sockets


def test_a_dead_receivers_socket_is_removed_and_others_still_woken(tmp_path: Path) -> None:
    folder = tmp_path / "wake"
    folder.mkdir()
    dead = folder / f"{HTTP}-999999.sock"
    left = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    left.bind(os.fspath(dead))
    left.close()  # the file stays, nobody reads: what a killed worker leaves
    alive = WakeReceiver.bind(tmp_path, HTTP)
    assert alive is not None
    sender = WakeSender(tmp_path, HTTP)
    try:
        sender()
        assert not dead.exists()
        assert alive._socket.recv(8) == b"!"
        assert sender.sent == 1
    finally:
        sender.close()
        alive.close()


def test_no_receiver_and_no_folder_is_not_an_error(tmp_path: Path) -> None:
    sender = WakeSender(tmp_path / "missing", INGESTER)
    sender()
    assert sender.sent == 0
    sender.close()


def test_a_data_dir_too_long_for_a_unix_socket_falls_back_to_polling(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    assert WakeReceiver.bind(deep, HTTP) is None
