"""Which published network a client address belongs to, and what that means for opens and clicks.

A network says different things on the pixel and on a link (machine-traffic.md
§1.5 and §4): Microsoft EOP detonates both, so both are ``machine``; Outlook on
the web proxies a person's image loads, so its ranges are ``human_possible`` on
opens; Proofpoint and Mimecast relay real clicks through browser isolation, so
there a click is only ``probable`` and counts as a machine inside the
delivery-time window alone.

Lookups are a bisect over sorted ranges. CIDR blocks are either nested or
disjoint, so each range keeps a pointer to the smallest range that contains it:
the last range starting at or before the address either contains it or one of
its ancestors does, and the most specific match wins. Malformed addresses find
nothing; IPv4-mapped IPv6 addresses are looked up as IPv4.
"""

from __future__ import annotations

import csv
import ipaddress
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

__all__ = ["NetworkEntry", "NetworkMatch", "NetworkTable", "Scope", "parse_address"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Scope(StrEnum):
    """What a hit from a network means, separately for opens and for clicks."""

    MACHINE = "machine"  # certain: only machines request from here
    PROBABLE = "probable"  # a machine inside the delivery-time window, a person possible after it
    HUMAN_POSSIBLE = "human_possible"  # proxies people's requests: never a machine signal on its own
    NONE = "none"  # says nothing for this kind of hit


@dataclass(frozen=True, slots=True)
class NetworkEntry:
    """One published block: ``network`` in CIDR form, a short ``name`` used in reasons."""

    network: str
    name: str
    opens: Scope
    clicks: Scope
    source: str = ""

    @classmethod
    def parse_spec(cls, spec: str) -> NetworkEntry:
        """An operator's scanner network, ``CIDR`` or ``CIDR=name``: a machine on opens and clicks.

        Raises ValueError naming the bad block (for the settings resolver to report).
        """
        cidr, _, name = spec.strip().partition("=")
        try:
            ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            msg = f"{spec!r} is not a network; write CIDR or CIDR=name, e.g. 203.0.113.0/24=acme"
            raise ValueError(msg) from None
        return cls(cidr.strip(), name.strip() or "custom", Scope.MACHINE, Scope.MACHINE, "operator")

    @classmethod
    def from_csv(cls, text: str) -> list[NetworkEntry]:
        """Rows of ``network,name,opens,clicks,source`` (a header row and ``#`` lines are skipped)."""
        lines = (line for line in text.splitlines() if line.strip() and not line.startswith("#"))
        rows = csv.DictReader(lines)
        return [
            cls(row["network"], row["name"], Scope(row["opens"]), Scope(row["clicks"]), row.get("source", ""))
            for row in rows
        ]


class NetworkMatch(NamedTuple):
    name: str
    opens: Scope
    clicks: Scope


def parse_address(ip: str | None) -> Address | None:
    """The address in ``ip``, or None if it is missing or malformed (never raises)."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class _Ranges:
    """Sorted, nested-or-disjoint integer ranges of one address family."""

    __slots__ = ("ends", "parents", "starts", "values")

    def __init__(self, items: list[tuple[int, int, NetworkMatch]]) -> None:
        # Sort by start, larger block first; an exact duplicate keeps the entry given last.
        unique = {(s, e): v for s, e, v in items}
        ordered = sorted(unique.items(), key=lambda kv: (kv[0][0], -kv[0][1]))
        self.starts = [s for (s, _), _ in ordered]
        self.ends = [e for (_, e), _ in ordered]
        self.values = [v for _, v in ordered]
        self.parents = _parents(self.starts, self.ends)

    def find(self, x: int) -> NetworkMatch | None:
        i = bisect_right(self.starts, x) - 1
        while i >= 0:
            if x <= self.ends[i]:
                return self.values[i]
            i = self.parents[i]
        return None


def _parents(starts: list[int], ends: list[int]) -> list[int]:
    parents: list[int] = []
    stack: list[int] = []
    for i, start in enumerate(starts):
        while stack and ends[stack[-1]] < start:
            stack.pop()
        parents.append(stack[-1] if stack else -1)
        stack.append(i)
    return parents


class NetworkTable:
    """Published networks by address, most specific block first."""

    __slots__ = ("_v4", "_v6")

    def __init__(self, entries: Iterable[NetworkEntry]) -> None:
        by_version: dict[int, list[tuple[int, int, NetworkMatch]]] = {4: [], 6: []}
        for entry in entries:
            net = ipaddress.ip_network(entry.network, strict=False)
            value = NetworkMatch(entry.name, entry.opens, entry.clicks)
            by_version[net.version].append((int(net.network_address), int(net.broadcast_address), value))
        self._v4 = _Ranges(by_version[4])
        self._v6 = _Ranges(by_version[6])

    def __len__(self) -> int:
        return len(self._v4.starts) + len(self._v6.starts)

    def lookup(self, ip: str | None) -> NetworkMatch | None:
        if not ip:
            return None
        number = _ipv4_int(ip)  # the common case, without building an ipaddress object
        if number is not None:
            return self._v4.find(number)
        address = parse_address(ip)
        if address is None:
            return None
        ranges = self._v4 if address.version == 4 else self._v6
        return ranges.find(int(address))


def _ipv4_int(ip: str) -> int | None:
    """Dotted-quad IPv4 as an integer, or None (then ``ipaddress`` decides, and rejects
    what it rejects: leading zeros, which some parsers read as octal)."""
    parts = ip.split(".")
    if len(parts) != 4:
        return None
    number = 0
    for part in parts:
        if not (part.isascii() and part.isdigit()) or len(part) > 3 or (part[0] == "0" and len(part) > 1):
            return None
        octet = int(part)
        if octet > 255:
            return None
        number = number << 8 | octet
    return number
