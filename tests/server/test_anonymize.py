"""``anonymize_ip``: the fast IPv4 path agrees with ``ipaddress`` on every input."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.server.tracking import anonymize_ip


def reference(ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def test_known_cases() -> None:
    assert anonymize_ip("198.51.100.7") == "198.51.100.0"
    assert anonymize_ip("2001:db8:1234:5678::1") == "2001:db8:1234::"
    assert anonymize_ip("::ffff:198.51.100.7") == reference("::ffff:198.51.100.7")
    odd_inputs = ("01.2.3.4", "1.2.3.04", "256.1.1.1", "1.2.3", "0x7f.0.0.1", " 1.2.3.4")
    odd_inputs += ("1.2.3.4\x00", "١.2.3.4")
    for odd in (*odd_inputs, ""):
        assert anonymize_ip(odd) == reference(odd), odd


octet = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "007", "0x1", "-1", "", " 1"]))


@given(st.lists(octet, min_size=1, max_size=5).map(".".join))
def test_dotted_inputs_agree_with_ipaddress(ip: str) -> None:
    assert anonymize_ip(ip) == reference(ip)


@given(st.ip_addresses().map(str))
def test_real_addresses_agree_with_ipaddress(ip: str) -> None:
    assert anonymize_ip(ip) == reference(ip)
