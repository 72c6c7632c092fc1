"""The reviser's queue of touched messages: a set in memory, spilling to a file past a bound.

The ingester revises only in its lulls (``Reviser.run_pending``), so under a burst the
queue gains a key per message hit and none leaves. Held as a set, each key cost ~165
bytes: after a 10 s ``wrk`` burst of 436,000 hits on distinct messages the ingester's RSS
had grown from 58 MB to 130 MB, and a longer burst grows it without bound. Past
``memory_keys`` keys, new ones are appended to an anonymous temporary file instead (a
msgpack pair each, ~40 bytes on disk) and read back, a chunk at a time, once the set is
empty. Nothing changes in what is revised or how often: a key read back twice (a message
hit again while spilled) is revised twice, which changes nothing the second time.

Like the set it extends, the file lives as long as the process: revisions queued at a
crash are not redone after it (those hits keep their request-time verdict).

The caller holds its own lock around every call (``Reviser`` does); the standard library
and msgpack do the work, so nothing here is hand-written beyond the bookkeeping.
"""

from __future__ import annotations

import tempfile
from typing import IO, Final

import msgpack

__all__ = ["RevisionQueue"]

Key = tuple[str, str]
_READ_BYTES: Final = 256 * 1024


class RevisionQueue:
    def __init__(self, memory_keys: int = 50_000) -> None:
        self.memory_keys = memory_keys
        self._keys: set[Key] = set()
        self._file: IO[bytes] | None = None
        self._read = 0  # where the next spilled key starts
        self._written = 0  # where the next spilled key goes
        self._packer = msgpack.Packer()
        self.spilled = 0  # keys written to the file so far (a plain counter)

    def __len__(self) -> int:
        """Keys waiting in memory (spilled ones are not counted: see ``__bool__``)."""
        return len(self._keys)

    def __bool__(self) -> bool:
        return bool(self._keys) or self._read < self._written

    def add(self, keys: set[Key]) -> None:
        # Once spilling, keep spilling until the file is read back: keys stay roughly in order.
        if self._read < self._written or len(self._keys) + len(keys) > self.memory_keys:
            self._spill(keys)
        else:
            self._keys |= keys

    def take(self, count: int) -> list[Key]:
        """Up to ``count`` keys, from memory first, then read back from the file."""
        if not self._keys and self._read < self._written:
            self._unspill(count)
        keys = self._keys
        return [keys.pop() for _ in range(min(count, len(keys)))]

    def close(self) -> None:
        """Forget what is queued and close the file (the reviser stops after its last drain)."""
        self._keys.clear()
        self._read = self._written = 0
        if self._file is not None:
            self._file.close()
            self._file = None

    def _spill(self, keys: set[Key]) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 (kept open: the queue's own file)
        data = b"".join(self._packer.pack(key) for key in keys)
        self._file.seek(self._written)
        self._file.write(data)
        self._written += len(data)
        self.spilled += len(keys)

    def _unspill(self, count: int) -> None:
        assert self._file is not None
        self._file.seek(self._read)
        unpacker = msgpack.Unpacker(use_list=False, raw=False)
        unpacker.feed(self._file.read(_READ_BYTES))
        for account_id, message_id in unpacker:
            self._keys.add((account_id, message_id))
            if len(self._keys) >= count:
                break
        self._read += unpacker.tell()
        if self._read >= self._written:
            self._reset()

    def _reset(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
        self._read = self._written = 0
