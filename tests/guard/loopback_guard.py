"""The loopback guard: in tests, no packet may leave this machine.

Installed in the pytest process (``tests/conftest.py``) and, through
``sitecustomize.py`` in this folder (first on ``PYTHONPATH``), in every Python
subprocess the tests start: ``mailbeacon serve`` and its forked workers and
ingester, ``mailbeacon worker``, the webhook receivers, the CLI.

It refuses, *before* the system call:

- ``connect``/``connect_ex``/``create_connection``/``sendto``/``sendmsg`` of an IPv4/IPv6 socket to
  anything but loopback (127.0.0.0/8, ::1, and IPv4-mapped loopback);
- name resolution (``getaddrinfo``, ``gethostbyname[_ex]``) of anything but an
  IP literal (any spelling glibc parses itself: ``127.1``, ``0x7f.1``,
  ``2130706433``) or ``localhost``: any other name would be a DNS query, and
  this machine's resolver is not on loopback;
- reverse lookups (``gethostbyaddr``, ``getnameinfo`` without ``NI_NUMERICHOST``)
  of non-loopback addresses.

A refusal raises ``LoopbackGuardError`` (a ``RuntimeError``, not an
``OSError``, so code that handles network errors does not mistake it for one)
and is appended to the file named by ``MAILBEACON_TEST_GUARD_LOG``; the pytest
session fails if that file is not empty at the end, so a refusal that some
``except Exception`` swallowed still fails the run. Code that does not go
through Python's ``socket`` module (libpq inside psycopg, uvloop's C
listener) is not covered; those only ever talk to 127.0.0.1 here.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ENV_LOG", "LoopbackGuardError", "child_environment", "install", "is_loopback"]

ENV_LOG = "MAILBEACON_TEST_GUARD_LOG"
FOLDER = Path(__file__).resolve().parent
_MARK = "_mailbeacon_loopback_guard"
_LOCAL_NAMES = frozenset({"localhost"})
_RAW_GETADDRINFO = getattr(socket, "_mailbeacon_raw_getaddrinfo", socket.getaddrinfo)


class LoopbackGuardError(RuntimeError):
    """A test tried to reach or resolve something off this machine."""


def _literal_is_loopback(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an IP address on loopback, in any spelling glibc parses (``127.1``)."""
    try:
        return _literal_is_loopback(host)
    except ValueError:
        pass
    try:  # the numeric forms only: AI_NUMERICHOST never asks DNS
        infos = _RAW_GETADDRINFO(host, None, 0, 0, 0, socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return False  # a name: connect() would resolve it in C, past the getaddrinfo guard
    return all(_literal_is_loopback(str(info[4][0])) for info in infos)


def _trip(what: str) -> LoopbackGuardError:
    message = f"loopback guard: refused {what}; tests must not send packets off this machine"
    path = os.environ.get(ENV_LOG)
    if path:
        stack = "".join(traceback.format_stack(limit=12)[:-2])
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"[pid {os.getpid()}] {message}\n{stack}\n")
    print(message, file=sys.stderr, flush=True)
    return LoopbackGuardError(message)


def _check_address(family: int, address: Any, call: str) -> None:
    if family not in (socket.AF_INET, socket.AF_INET6):
        return  # AF_UNIX, netlink, ...: not the network
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not is_loopback(str(host)):
        raise _trip(f"{call} to {address!r}")


def _numeric(original: Callable[..., Any], host: Any) -> bool:
    try:
        original(host, None, 0, 0, 0, socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return False
    return True


def _check_name(original: Callable[..., Any], host: Any, call: str) -> None:
    if host is None:
        return
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    if text.lower() in _LOCAL_NAMES or _numeric(original, host):
        return
    raise _trip(f"{call} of {text!r} (a DNS query)")


def install() -> None:
    """Guard this process's ``socket`` module (idempotent)."""
    if getattr(socket, _MARK, False):
        return
    setattr(socket, _MARK, True)
    raw_getaddrinfo = socket.getaddrinfo
    socket._mailbeacon_raw_getaddrinfo = raw_getaddrinfo  # type: ignore[attr-defined]
    cls = socket.socket
    connect, connect_ex, sendto, sendmsg = cls.connect, cls.connect_ex, cls.sendto, cls.sendmsg

    def guarded_connect(self: socket.socket, address: Any) -> None:
        _check_address(self.family, address, "connect")
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        _check_address(self.family, address, "connect_ex")
        return connect_ex(self, address)

    def guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
        _check_address(self.family, args[-1], "sendto")
        return sendto(self, data, *args)

    def guarded_sendmsg(self: socket.socket, buffers: Any, *args: Any) -> int:
        if len(args) >= 3 and args[2] is not None:
            _check_address(self.family, args[2], "sendmsg")
        return sendmsg(self, buffers, *args)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        _check_name(raw_getaddrinfo, host, "getaddrinfo")
        return raw_getaddrinfo(host, *args, **kwargs)

    def by_name(original: Callable[..., Any], call: str) -> Callable[..., Any]:
        def guarded(host: Any) -> Any:
            _check_name(raw_getaddrinfo, host, call)
            return original(host)

        return guarded

    raw_gethostbyaddr, raw_getnameinfo = socket.gethostbyaddr, socket.getnameinfo
    raw_create_connection = socket.create_connection

    def guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        # Checked before it makes a socket: its cleanup catches OSError only and would leak one.
        host = str(address[0])
        if _numeric(raw_getaddrinfo, host) and not is_loopback(host):
            raise _trip(f"connect to {tuple(address)!r}")
        return raw_create_connection(address, *args, **kwargs)

    def guarded_gethostbyaddr(host: str) -> Any:
        if not is_loopback(host) and host.lower() not in _LOCAL_NAMES:
            raise _trip(f"gethostbyaddr of {host!r} (a reverse DNS query)")
        return raw_gethostbyaddr(host)

    def guarded_getnameinfo(address: Any, flags: int) -> Any:
        if not flags & socket.NI_NUMERICHOST and not is_loopback(str(address[0])):
            raise _trip(f"getnameinfo of {address!r} (a reverse DNS query)")
        return raw_getnameinfo(address, flags)

    cls.connect = guarded_connect  # type: ignore[method-assign]
    cls.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    cls.sendto = guarded_sendto  # type: ignore[method-assign,assignment]
    cls.sendmsg = guarded_sendmsg  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo
    socket.create_connection = guarded_create_connection
    socket.gethostbyname = by_name(socket.gethostbyname, "gethostbyname")
    socket.gethostbyname_ex = by_name(socket.gethostbyname_ex, "gethostbyname_ex")
    socket.gethostbyaddr = guarded_gethostbyaddr
    socket.getnameinfo = guarded_getnameinfo


def child_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``PYTHONPATH`` with this folder first (its ``sitecustomize`` installs the guard)."""
    environ = dict(os.environ if environ is None else environ)
    rest = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(FOLDER)]
    environ["PYTHONPATH"] = os.pathsep.join([str(FOLDER), *rest])
    return environ
