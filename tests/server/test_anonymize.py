"""``anonymize_ip``: the fast IPv4 path agrees with ``ipaddress`` on every input; the hit path
stores each address anonymized, through a bounded memo."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from mailbeacon import Tracker
from mailbeacon.config import Privacy, generate_keyring
from mailbeacon.server.tracking import TrackingEndpoints, anonymize_ip
from mailbeacon.store.recorder import EventRow


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


class _Sink:
    def __init__(self) -> None:
        self.rows: list[EventRow] = []

    def record(self, row: EventRow, waiter: object = None) -> object:
        self.rows.append(row)
        return waiter


class _Waiter:
    def done(self) -> bool:
        return False

    def set_result(self, _ok: bool) -> None:
        return None


def _stored_ips(peers: list[str | None], privacy: Privacy) -> tuple[list[str | None], TrackingEndpoints]:
    keys = generate_keyring()
    sink = _Sink()
    endpoints = TrackingEndpoints(
        keys=keys, recorder=sink, default_account="a", known_account=lambda _: True, privacy=privacy
    )
    tracker = Tracker("http://127.0.0.1:8000", keys=keys)
    for n, peer in enumerate(peers):
        path = tracker.open_url(message_id=f"m{n}", recipient="r").partition("8000")[2]
        endpoints.answer("GET", path, [], peer, _Waiter())
    return [row.ip for row in sink.rows], endpoints


def test_each_hit_stores_its_own_address_anonymized_repeated_or_not() -> None:
    peers = ["192.0.2.7", "192.0.2.200", "198.51.100.9", "2001:db8:1:2::5", "192.0.2.7"]
    peers += ["", None, "not an ip"]
    stored, _ = _stored_ips(peers, Privacy.ANONYMIZED)
    assert stored == ["192.0.2.0", "192.0.2.0", "198.51.100.0", "2001:db8:1::", "192.0.2.0", None, None, None]
    assert _stored_ips(peers[:4], Privacy.FULL)[0] == peers[:4]
    assert _stored_ips(peers[:4], Privacy.MINIMAL)[0] == [None] * 4


def test_the_anonymization_memo_stays_bounded_under_a_flood_of_addresses() -> None:
    peers: list[str | None] = [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(5000)]
    stored, endpoints = _stored_ips(peers, Privacy.ANONYMIZED)
    assert stored == [anonymize_ip(peer) for peer in peers if peer]
    assert 0 < len(endpoints._anonymized) <= 4096  # cleared at the bound, never past it
