"""NetworkTable: published networks by address, most specific first; client_ip behind proxies."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.core.classify import NetworkEntry, NetworkTable, Scope, TrustedProxies, client_ip
from mailbeacon.core.classify.networks import _ipv4_int

M, N = Scope.MACHINE, Scope.NONE


def table(*entries: tuple[str, str]) -> NetworkTable:
    return NetworkTable(NetworkEntry(cidr, name, M, N) for cidr, name in entries)


def name(t: NetworkTable, ip: str | None) -> str | None:
    found = t.lookup(ip)
    return found.name if found else None


def test_an_address_in_a_block_is_found() -> None:
    assert name(table(("40.107.0.0/16", "eop")), "40.107.218.12") == "eop"


def test_block_edges_are_inside_and_neighbours_outside() -> None:
    t = table(("10.0.0.0/24", "a"))
    assert [name(t, ip) for ip in ("10.0.0.0", "10.0.0.255", "9.255.255.255", "10.0.1.0")] == [
        "a",
        "a",
        None,
        None,
    ]


def test_the_most_specific_block_wins() -> None:
    t = table(("17.0.0.0/8", "apple"), ("17.58.0.0/16", "inner"))
    assert (name(t, "17.58.1.1"), name(t, "17.1.1.1")) == ("inner", "apple")


def test_an_address_after_a_nested_block_finds_the_outer_one() -> None:
    t = table(("10.0.0.0/8", "outer"), ("10.1.0.0/16", "inner"))
    assert name(t, "10.200.0.1") == "outer"


def test_ipv6_and_ipv4_mapped_addresses() -> None:
    t = table(("2a01:111:f400::/48", "eop6"), ("40.107.0.0/16", "eop"))
    assert (name(t, "2a01:111:f400::1"), name(t, "::ffff:40.107.1.1")) == ("eop6", "eop")


@pytest.mark.parametrize(
    "bad", [None, "", "not-an-ip", "999.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4:80", "١.٢.٣.٤"]
)
def test_malformed_addresses_find_nothing(bad: str | None) -> None:
    assert table(("0.0.0.0/0", "all")).lookup(bad) is None


def test_a_later_duplicate_block_replaces_the_earlier() -> None:
    assert name(table(("192.0.2.0/24", "shipped"), ("192.0.2.0/24", "operator")), "192.0.2.1") == "operator"


def test_operator_spec_names_the_bad_block() -> None:
    with pytest.raises(ValueError, match="'nope' is not a network"):
        NetworkEntry.parse_spec("nope")


def test_shipped_csv_rows_parse() -> None:
    rows = NetworkEntry.from_csv("network,name,opens,clicks,source\n# c\n10.0.0.0/8,x,machine,probable,s\n")
    assert rows == [NetworkEntry("10.0.0.0/8", "x", Scope.MACHINE, Scope.PROBABLE, "s")]


PROXIES = TrustedProxies(["10.0.0.0/8", "fd00::/8"])


def test_forwarded_for_is_ignored_from_an_untrusted_peer() -> None:
    assert client_ip("203.0.113.9", {"x-forwarded-for": "1.1.1.1"}, PROXIES) == "203.0.113.9"


def test_forwarded_for_is_read_right_to_left_behind_a_trusted_proxy() -> None:
    headers = {"x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.0.0.2"}
    assert client_ip("10.0.0.1", headers, PROXIES) == "198.51.100.7"


def test_forwarded_header_wins_over_x_forwarded_for() -> None:
    headers = {"forwarded": 'for="[2001:db8::17]:4711";proto=https', "x-forwarded-for": "1.1.1.1"}
    assert client_ip("10.0.0.1", headers, PROXIES) == "2001:db8::17"


def test_a_malformed_hop_stops_at_the_last_trusted_address() -> None:
    assert client_ip("10.0.0.1", {"x-forwarded-for": "garbage\x00"}, PROXIES) == "10.0.0.1"


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_ip("10.0.0.1", {"x-forwarded-for": "1.1.1.1"}, TrustedProxies()) == "10.0.0.1"


def test_a_peer_that_is_not_an_address_gives_none() -> None:
    assert client_ip("unix-socket", {}, PROXIES) is None


def _reference_ipv4(ip: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(ip))
    except ValueError:
        return None


_octet = st.one_of(
    st.integers(0, 300).map(str), st.sampled_from(["00", "01", "007", "0x1", "-1", "", " 1", "١"])
)


@given(st.one_of(st.lists(_octet, min_size=1, max_size=5).map(".".join), st.text(max_size=20)))
def test_the_fast_ipv4_parse_agrees_with_ipaddress(ip: str) -> None:
    # The lookup's IPv4 shortcut must take exactly what ipaddress takes (no octal, no
    # short forms), or an odd spelling could dodge, or wrongly hit, a scanner's block.
    assert _ipv4_int(ip) == _reference_ipv4(ip)
