"""The client's address: the TCP peer, or what trusted proxies say in front of it.

``X-Forwarded-For`` and ``Forwarded`` are written by whoever sent the request,
so they are read only when the peer is one of the operator's trusted proxies,
and then only right to left, skipping further trusted hops: the first address
that is not a trusted proxy is the client. Anything to its left was written by
the client itself and could be anything (a scanner could claim to be a home
IP). A malformed hop stops the walk at the last address we could trust.
``Forwarded`` (RFC 7239) wins over ``X-Forwarded-For`` when both are present.

Behind a CDN without this, every hit comes from the CDN and network rules see
nothing (SendGrid's MPP flag fails the same way, machine-traffic.md §3 Apple).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from mailbeacon.core.classify.networks import Address, NetworkEntry, NetworkTable, Scope, parse_address

__all__ = ["TrustedProxies", "client_ip"]

_FORWARDED_FOR: Final = re.compile(r'(?i)(?:^|[;,\s])for\s*=\s*("[^"]*"|[^;,\s]*)')


class TrustedProxies:
    """The proxies whose forwarding headers are believed (CIDR blocks, IPv4 and IPv6)."""

    __slots__ = ("_table",)

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self._table = NetworkTable(NetworkEntry(n, "trusted", Scope.NONE, Scope.NONE) for n in networks)

    def __bool__(self) -> bool:
        return len(self._table) > 0

    def __contains__(self, address: Address) -> bool:
        return self._table.lookup(str(address)) is not None


def client_ip(peer: str | None, headers: Mapping[str, str], trusted: TrustedProxies) -> str | None:
    """The client address for a request from ``peer`` (None if the peer is not an address).

    ``headers`` has lower-case names, as in ``RequestFacts``.
    """
    address = parse_address(peer)
    if address is None or not trusted or address not in trusted:
        return str(address) if address is not None else None
    for hop in reversed(_hops(headers)):
        hop_address = _hop_address(hop)
        if hop_address is None:
            break  # malformed: nothing to its left can be trusted either
        address = hop_address
        if address not in trusted:
            break
    return str(address)


def _hops(headers: Mapping[str, str]) -> list[str]:
    forwarded = headers.get("forwarded")
    if forwarded:
        return [value.strip('"') for value in _FORWARDED_FOR.findall(forwarded)]
    return [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]


def _hop_address(hop: str) -> Address | None:
    if hop.startswith("["):  # "[2001:db8::1]:4711"
        hop = hop[1 : hop.find("]")] if "]" in hop else ""
    elif hop.count(":") == 1:  # "192.0.2.1:4711"
        hop = hop.partition(":")[0]
    return parse_address(hop)
