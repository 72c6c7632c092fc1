"""Where a webhook may be sent: https to public addresses only (the SSRF defence).

A URL is checked when an endpoint is created or changed and again before
every attempt, because DNS can change after registration (rebinding). The
check resolves the host and refuses it if *any* address it resolves to is
not public; the sender then connects to one of the addresses checked here,
never resolving again, and follows no redirects.

``ipaddress`` flags alone are not enough (CVE-2024-4032 changed them, and
CGNAT 100.64/10 is neither private nor global), so the refused ranges are an
explicit table, and IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4,
Teredo) are unwrapped and checked again. Numeric host spellings such as
``127.1`` or ``2130706433`` are caught because the *resolved* address is what
gets checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Target", "UnsafeURL", "check_address", "check_url", "resolve_target"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# (network, why it is refused), checked in order; the reason ends up in the API's error.
_REFUSED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("0.0.0.0/8", "'this network' (0.0.0.0/8 reaches local services on Linux)"),
        ("10.0.0.0/8", "private (10.0.0.0/8)"),
        ("100.64.0.0/10", "carrier-grade NAT (100.64.0.0/10)"),
        ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
        ("169.254.0.0/16", "link-local (169.254.0.0/16, where cloud metadata services live)"),
        ("172.16.0.0/12", "private (172.16.0.0/12)"),
        ("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"),
        ("192.0.2.0/24", "documentation (192.0.2.0/24)"),
        ("192.168.0.0/16", "private (192.168.0.0/16)"),
        ("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
        ("198.51.100.0/24", "documentation (198.51.100.0/24)"),
        ("203.0.113.0/24", "documentation (203.0.113.0/24)"),
        ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
        ("240.0.0.0/4", "reserved (240.0.0.0/4, including broadcast)"),
        ("::/128", "unspecified (::)"),
        ("::1/128", "loopback (::1)"),
        ("fc00::/7", "unique local (fc00::/7)"),
        ("fe80::/10", "link-local (fe80::/10)"),
        ("fec0::/10", "site-local (fec0::/10)"),
        ("ff00::/8", "multicast (ff00::/8)"),
        ("2001:db8::/32", "documentation (2001:db8::/32)"),
    )
)
# Kinds that private mode (MAILBEACON_WEBHOOK_ALLOW_PRIVATE) lets through: on-premise receivers.
_PRIVATE_OK = ("private", "loopback", "unique local", "carrier-grade", "link-local (fe80")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_6TO4 = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
_METADATA = ipaddress.ip_address("169.254.169.254")


class UnsafeURL(ValueError):
    """A webhook URL that may not be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the address to connect to."""

    scheme: str
    host: str
    port: int
    address: str


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _6TO4:
        return address.sixtofour
    if address in _TEREDO and address.teredo is not None:
        return address.teredo[1]  # the client's address
    return None


def check_address(text: str, *, allow_private: bool = False) -> str | None:
    """Why ``text`` (an IP address) is refused, or None when it may be used."""
    address: Address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            why = check_address(str(inner), allow_private=allow_private)
            return f"{text} embeds {inner}, which is {why}" if why else None
    if address == _METADATA:  # never, not even in private mode
        return "the cloud metadata service (169.254.169.254)"
    for network, why in _REFUSED:
        if address.version == network.version and address in network:
            if allow_private and why.startswith(_PRIVATE_OK):
                return None
            return why
    return None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, *, allow_private: bool = False) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL that is well-formed and of an allowed scheme; raises UnsafeURL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_private else ("https",)
    if scheme not in allowed:
        hint = "" if allow_private else " (plain http only with MAILBEACON_WEBHOOK_ALLOW_PRIVATE=true)"
        raise UnsafeURL(f"webhook URLs must use https, not {scheme or 'no scheme'!r}{hint}")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeURL("the URL must not carry a user name or password; authenticate with the signature")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def resolve_target(url: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> Target:
    """Check ``url``, resolve its host, refuse it if any address is not public; raises UnsafeURL."""
    scheme, host, port = check_url(url, allow_private=allow_private)
    try:
        addresses = (resolver or _system_resolver)(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeURL(f"the host {host!r} does not resolve ({exc})") from None
    if not addresses:
        raise UnsafeURL(f"the host {host!r} does not resolve")
    for address in addresses:
        why = check_address(address, allow_private=allow_private)
        if why is not None:
            shown = host if host == address else f"{host!r} resolves to {address}, which"
            raise UnsafeURL(
                f"{shown} is {why}; webhooks go to public addresses only "
                "(MAILBEACON_WEBHOOK_ALLOW_PRIVATE=true allows private receivers)"
            )
    return Target(scheme, host, port, addresses[0])
