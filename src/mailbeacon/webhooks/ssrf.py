"""Where a webhook may be sent: https to public addresses only (the SSRF defence).

A URL is checked when an endpoint is created or changed, and again at send
time, because DNS can change after registration (rebinding): every attempt
checks the URL (and an address literal), and every new connection resolves
the host again and is refused if *any* address it resolves to is not public;
the connection then goes to one of the addresses checked, and no redirect is
followed (``webhooks.sender``).

``ipaddress`` flags alone are not enough (CVE-2024-4032 changed them, and
CGNAT 100.64/10 is neither private nor global), so the refused ranges are an
explicit table, and IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4,
Teredo) are unwrapped and checked again; any other IPv6 address outside
2000::/3 (global unicast) is refused. Numeric host spellings such as
``127.1`` or ``2130706433`` are caught because the *resolved* address is what
gets checked; host names are IDNA-encoded, lower-cased and lose one trailing
dot first, and ``localhost`` names (RFC 6761) are refused without asking DNS.

Private mode (``MAILBEACON_WEBHOOK_ALLOW_PRIVATE``, for on-premise receivers
and tests) allows plain http and private, loopback, unique-local, CGNAT and
IPv6 link-local addresses. It never allows cloud metadata services
(169.254.169.254 and the rest of 169.254/16, fd00:ec2::254, 100.100.100.200),
0.0.0.0/8, multicast, reserved or documentation ranges, or a user name in the URL.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = [
    "Target",
    "UnsafeURL",
    "check_address",
    "check_resolved",
    "check_url",
    "is_address",
    "resolve_target",
]

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
        ("192.88.99.0/24", "the deprecated 6to4 relay anycast (192.88.99.0/24)"),
        ("192.168.0.0/16", "private (192.168.0.0/16)"),
        ("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
        ("198.51.100.0/24", "documentation (198.51.100.0/24)"),
        ("203.0.113.0/24", "documentation (203.0.113.0/24)"),
        ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
        ("240.0.0.0/4", "reserved (240.0.0.0/4, including broadcast)"),
        ("::/128", "unspecified (::)"),
        ("::1/128", "loopback (::1)"),
        ("::/96", "IPv4-compatible (::/96, deprecated)"),
        ("::ffff:0:0:0/96", "IPv4-translated (::ffff:0:0:0/96)"),
        ("64:ff9b:1::/48", "local-use NAT64 (64:ff9b:1::/48)"),
        ("100::/64", "discard-only (100::/64)"),
        ("fc00::/7", "unique local (fc00::/7)"),
        ("fe80::/10", "link-local (fe80::/10)"),
        ("fec0::/10", "site-local (fec0::/10)"),
        ("ff00::/8", "multicast (ff00::/8)"),
        ("2001:2::/48", "benchmarking (2001:2::/48)"),
        ("2001:db8::/32", "documentation (2001:db8::/32)"),
    )
)
# Only 2000::/3 is allocated for global unicast; anything else in IPv6 is refused too.
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
# Kinds that private mode (MAILBEACON_WEBHOOK_ALLOW_PRIVATE) lets through: on-premise receivers.
# IPv4 link-local (169.254/16) is not among them: that is where cloud metadata lives.
_PRIVATE_OK = ("private", "loopback", "unique local", "carrier-grade", "link-local (fe80")
# Cloud metadata services, refused even in private mode: the address that hands out a
# machine's credentials is never a webhook receiver (AWS/GCP/Azure/OpenStack, AWS over
# IPv6, Alibaba Cloud; Oracle's 192.0.0.192 is in 192.0.0.0/24, never allowed).
_METADATA = {
    ipaddress.ip_address(text): text
    for text in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_6TO4 = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
_HOST_CHARS = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


class UnsafeURL(ValueError):
    """A webhook URL that may not be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the address to connect to."""

    scheme: str
    host: str
    port: int
    address: str


def _embedded_v4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """(how, the IPv4 address) an IPv6 address carries and a network would deliver to."""
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped address of", address.ipv4_mapped
    if address in _NAT64:
        return "a NAT64 address of", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _6TO4 and address.sixtofour is not None:
        return "a 6to4 address of", address.sixtofour
    if address in _TEREDO and address.teredo is not None:
        return "a Teredo address of", address.teredo[1]  # the client's address
    return None


def check_address(text: str, *, allow_private: bool = False) -> str | None:
    """Why ``text`` (an IP address) is refused, or None when it may be used."""
    address: Address = ipaddress.ip_address(text.split("%", 1)[0])
    if address in _METADATA:  # never, not even in private mode
        return f"the cloud metadata service ({_METADATA[address]})"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            how, inner = embedded
            why = check_address(str(inner), allow_private=allow_private)
            return f"{how} {inner}, which is {why}" if why else None
    for network, why in _REFUSED:
        if address.version == network.version and address in network:
            if allow_private and why.startswith(_PRIVATE_OK):
                return None
            return why
    if address.version == 6 and address not in _GLOBAL_UNICAST:
        return "not global unicast (outside 2000::/3)"
    return None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _host(hostname: str, *, allow_private: bool) -> str:
    """The host in ASCII, lower case, without a trailing dot; raises UnsafeURL for a bad one."""
    if ":" in hostname:
        # An IPv6 literal; its zone arrives percent-encoded ("fe80::1%25lo"), and handed on
        # like that it is no address at all to getaddrinfo, which then asks DNS for it.
        address, _, zone = unquote(hostname).partition("%")
        try:
            parsed = ipaddress.IPv6Address(address)
        except ValueError:
            raise UnsafeURL(f"{hostname!r} is not a valid IPv6 address") from None
        if zone and not _HOST_CHARS.fullmatch(zone.lower()):
            raise UnsafeURL(f"{hostname!r} has an invalid IPv6 zone")
        return f"{parsed}%{zone}" if zone else str(parsed)
    try:
        host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeURL(f"{hostname!r} is not a valid host name") from None
    # One trailing dot is the same name (the DNS root); "127.0.0.1." would otherwise go to DNS.
    host = host[:-1] if host.endswith(".") else host
    if not _HOST_CHARS.fullmatch(host):
        raise UnsafeURL(f"{hostname!r} is not a valid host name (letters, digits, '-', '_' and dots only)")
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise UnsafeURL(f"{hostname!r} is loopback (RFC 6761 reserves localhost names for this machine)")
    return host


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
    if parts.username or parts.password or "@" in parts.netloc:
        raise UnsafeURL("the URL must not carry a user name or password; authenticate with the signature")
    if port == 0:
        raise UnsafeURL("port 0 is not a port a receiver can listen on")
    host = _host(parts.hostname, allow_private=allow_private)
    return scheme, host, port or (443 if scheme == "https" else 80)


def resolve_target(url: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> Target:
    """Check ``url``, resolve its host, refuse it if any address is not public; raises UnsafeURL."""
    scheme, host, port = check_url(url, allow_private=allow_private)
    try:
        addresses = (resolver or _system_resolver)(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeURL(f"the host {host!r} does not resolve ({exc})") from None
    check_resolved(host, addresses, allow_private=allow_private)
    return Target(scheme, host, port, addresses[0])


def check_resolved(host: str, addresses: Sequence[str], *, allow_private: bool = False) -> None:
    """Refuse ``host`` (raise UnsafeURL) unless it resolved and every one of ``addresses`` may be used."""
    if not addresses:
        raise UnsafeURL(f"the host {host!r} does not resolve")
    for address in addresses:
        why = check_address(address, allow_private=allow_private)
        if why is not None:
            shown = address if _same(host, address) else f"{host!r} resolves to {address}, which"
            # Point at private mode only where it would help (never for metadata, say).
            relaxable = not allow_private and check_address(address, allow_private=True) is None
            hint = " (MAILBEACON_WEBHOOK_ALLOW_PRIVATE=true allows private receivers)" if relaxable else ""
            raise UnsafeURL(f"{shown} is {why}; webhooks go to public addresses only{hint}")


def is_address(host: str) -> bool:
    """Whether ``host`` (as ``check_url`` returns it) is an IP address rather than a name."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _same(host: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]) == ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
