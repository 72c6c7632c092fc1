"""webhooks.ssrf: which URLs a webhook may go to, and why the others are refused.

Numeric hosts go through the real ``getaddrinfo`` (glibc parses them itself, no
DNS); host names go through a resolver given to ``resolve_target``, so nothing
here asks DNS. The loopback guard (tests/guard) would fail a test that did.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

import pytest

from mailbeacon.webhooks.ssrf import Target, UnsafeURL, check_address, check_url, resolve_target

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def answers(*addresses: str) -> Callable[[str, int], Sequence[str]]:
    """A resolver that answers every name with ``addresses`` (what a hostile DNS zone could say)."""
    return lambda host, port: list(addresses)


def refused(
    url: str, *, allow_private: bool = False, resolver: Callable[..., Sequence[str]] | None = None
) -> str:
    with pytest.raises(UnsafeURL) as caught:
        resolve_target(url, allow_private=allow_private, resolver=resolver)
    return str(caught.value)


# (address, words the refusal must contain)
REFUSED = [
    ("127.0.0.1", "loopback (127.0.0.0/8)"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback (::1)"),
    ("10.0.0.1", "private (10.0.0.0/8)"),
    ("10.255.255.1", "private (10.0.0.0/8)"),
    ("172.16.0.1", "private (172.16.0.0/12)"),
    ("172.31.255.255", "private (172.16.0.0/12)"),
    ("192.168.1.1", "private (192.168.0.0/16)"),
    ("169.254.169.254", "cloud metadata service"),
    ("169.254.1.1", "link-local (169.254.0.0/16"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.255", "carrier-grade NAT"),
    ("224.0.0.1", "multicast (224.0.0.0/4)"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved (240.0.0.0/4"),
    ("255.255.255.255", "reserved (240.0.0.0/4, including broadcast)"),
    ("0.0.0.0", "'this network'"),
    ("0.1.2.3", "'this network'"),
    ("192.0.0.192", "IETF protocol assignments"),
    ("192.0.2.1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("::", "unspecified"),
    ("::ffff:127.0.0.1", "IPv4-mapped address of 127.0.0.1, which is loopback"),
    ("::ffff:7f00:1", "IPv4-mapped address of 127.0.0.1"),
    ("::ffff:169.254.169.254", "IPv4-mapped address of 169.254.169.254, which is the cloud metadata"),
    ("::ffff:10.0.0.1", "IPv4-mapped address of 10.0.0.1, which is private"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::ffff:0:7f00:1", "IPv4-translated"),
    ("64:ff9b::a9fe:a9fe", "NAT64 address of 169.254.169.254"),
    ("64:ff9b::a00:1", "NAT64 address of 10.0.0.1, which is private"),
    ("64:ff9b:1::a00:1", "local-use NAT64"),
    ("2002:a9fe:a9fe::1", "6to4 address of 169.254.169.254"),
    ("2002:7f00:1::", "6to4 address of 127.0.0.1"),
    # Teredo: server 65.54.227.120, client 10.0.0.1 stored inverted (0xf5ff:fffe).
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo address of 10.0.0.1, which is private"),
    ("fc00::1", "unique local (fc00::/7)"),
    ("fd00::1", "unique local (fc00::/7)"),
    ("fd00:ec2::254", "cloud metadata service (fd00:ec2::254)"),
    ("fe80::1", "link-local (fe80::/10)"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast (ff00::/8)"),
    ("2001:db8::1", "documentation"),
    ("100::1", "discard-only"),
    ("4000::1", "not global unicast (outside 2000::/3)"),
]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_every_non_public_address_is_refused_with_the_reason(address: str, why: str) -> None:
    reason = check_address(address)
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_a_url_naming_the_address_is_refused_and_says_why(address: str, why: str) -> None:
    host = f"[{address}]" if ":" in address else address
    message = refused(f"https://{host}/hook")
    assert why in message
    assert "public addresses only" in message


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_a_name_resolving_to_the_address_is_refused(address: str, why: str) -> None:
    message = refused("https://hooks.example.com/", resolver=answers(address))
    assert f"'hooks.example.com' resolves to {address}, which is" in message
    assert why in message


def test_one_bad_address_among_good_ones_is_enough_to_refuse() -> None:
    message = refused("https://hooks.example.com/", resolver=answers(PUBLIC_V4, PUBLIC_V6, "10.1.2.3"))
    assert "10.1.2.3" in message


@pytest.mark.parametrize("address", [PUBLIC_V4, PUBLIC_V6, "1.1.1.1", "2001:4860:4860::8888"])
def test_public_addresses_pass(address: str) -> None:
    assert check_address(address) is None
    target = resolve_target("https://hooks.example.com:8443/x", resolver=answers(address))
    assert target == Target("https", "hooks.example.com", 8443, address)


def test_the_sender_connects_to_the_checked_address_and_keeps_the_host() -> None:
    seen: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return [PUBLIC_V4]

    target = resolve_target("https://Hooks.Example.COM./in", resolver=resolver)
    assert seen == [("hooks.example.com", 443)]  # lower case, the root's dot dropped
    assert (target.host, target.port, target.address) == ("hooks.example.com", 443, PUBLIC_V4)


# -- odd spellings of loopback, through the real getaddrinfo (numeric: no DNS) --------------


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433/",  # decimal
        "https://0x7f.1/",  # hex, short form
        "https://0x7f000001/",
        "https://017700000001/",  # octal
        "https://0177.0.0.1/",
        "https://127.1/",
        "https://127.0.0.1./",  # trailing dot: the same host, and without the strip a DNS query
        "https://127。0。0。1/",  # IDNA full-width dots
        "https://[::ffff:127.0.0.1]/",
        "https://[0:0:0:0:0:ffff:127.0.0.1]/",  # gitlab-ce#53242
        "https://[::1]:8443/",
        "https://127.0.0.1:443/",
        "https://0/",
        "https://[::]/",
        "https://[fe80::1%25lo]/",
    ],
)
def test_numeric_spellings_of_local_addresses_are_refused(url: str) -> None:
    message = refused(url)
    assert " is " in message
    assert "public addresses only" in message


def test_the_numeric_forms_really_are_loopback_to_the_system() -> None:
    # Why the resolved address is checked and not the text: these are not "IP addresses" to
    # ipaddress, but getaddrinfo (and so any HTTP client) connects them to 127.0.0.1.
    for host in ("2130706433", "0x7f.1", "017700000001"):
        assert socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)[0][4][0] == "127.0.0.1"


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "api.localhost", "x.LocalHost."])
def test_localhost_names_are_refused_without_asking_dns(host: str) -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("resolved a localhost name")

    assert "RFC 6761" in refused(f"https://{host}/", resolver=no_dns)


# -- the URL itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/", "must use https, not 'http' (plain http only with"),
        ("ftp://hooks.example.com/", "must use https, not 'ftp'"),
        ("file:///etc/passwd", "must use https, not 'file'"),
        ("gopher://hooks.example.com/", "must use https, not 'gopher'"),
        ("//hooks.example.com/", "must use https, not 'no scheme'"),
        ("hooks.example.com/hook", "must use https"),
        ("https:///hook", "no host"),
        ("https://user:pw@hooks.example.com/", "must not carry a user name or password"),
        ("https://hooks.example.com@127.0.0.1/", "must not carry a user name"),
        ("https://127.0.0.1\\@hooks.example.com/", "must not carry a user name"),
        ("https://@hooks.example.com/", "must not carry a user name"),
        ("https://hooks.example.com:0/", "port 0"),
        ("https://hooks.example.com:65536/", "not a valid URL"),
        ("https://hooks.example.com:http/", "not a valid URL"),
        ("https://[hooks.example.com]/", "not a valid URL"),
        ("https://[::1/", "not a valid URL"),
        ("https://%31%32%37.0.0.1/", "not a valid host name"),
        ("https://hooks..example.com/", "not a valid host name"),
        ("https://hoo ks.example.com/", "not a valid host name"),
    ],
)
def test_malformed_or_disallowed_urls_are_refused_before_any_lookup(url: str, why: str) -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError(f"resolved {host!r} of a URL that should have been refused")

    assert why in refused(url, resolver=no_dns)


def test_an_idn_host_is_resolved_in_its_ascii_form() -> None:
    seen: list[str] = []
    resolve_target("https://bücher.example/", resolver=lambda host, port: seen.append(host) or [PUBLIC_V4])
    assert seen == ["xn--bcher-kva.example"]


def test_ports_are_kept_and_default_by_scheme() -> None:
    assert check_url("https://hooks.example.com/") == ("https", "hooks.example.com", 443)
    assert check_url("https://hooks.example.com:8443/") == ("https", "hooks.example.com", 8443)
    assert check_url("http://hooks.example.com/", allow_private=True) == ("http", "hooks.example.com", 80)


def test_a_name_that_does_not_resolve_is_refused() -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    assert "does not resolve" in refused("https://nowhere.example/", resolver=nxdomain)
    assert "does not resolve" in refused("https://nowhere.example/", resolver=answers())


# -- private mode (MAILBEACON_WEBHOOK_ALLOW_PRIVATE) -----------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_mode_allows_private_and_loopback_receivers(address: str) -> None:
    assert check_address(address, allow_private=True) is None
    resolve_target("http://receiver.internal:8080/", allow_private=True, resolver=answers(address))


def test_private_mode_allows_plain_http_and_localhost_names() -> None:
    target = resolve_target("http://localhost:9/hook", allow_private=True)
    assert target.scheme == "http"
    assert target.address in ("127.0.0.1", "::1")


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("169.254.169.254", "cloud metadata service"),  # AWS, GCP, Azure, OpenStack
        ("::ffff:169.254.169.254", "cloud metadata service"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata service"),
        ("2002:a9fe:a9fe::1", "cloud metadata service"),
        ("fd00:ec2::254", "cloud metadata service"),  # AWS over IPv6, inside fc00::/7
        ("100.100.100.200", "cloud metadata service"),  # Alibaba Cloud, inside 100.64/10
        ("169.254.170.2", "cloud metadata service"),  # AWS ECS task credentials
        ("169.254.1.1", "link-local (169.254.0.0/16"),
        ("0.0.0.0", "'this network'"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("192.0.0.192", "IETF protocol assignments"),  # Oracle Cloud's metadata
        ("::127.0.0.1", "IPv4-compatible"),
    ],
)
def test_private_mode_never_allows_metadata_or_non_unicast(address: str, why: str) -> None:
    message = refused("http://receiver.internal/", allow_private=True, resolver=answers(address))
    assert why in message
    assert "MAILBEACON_WEBHOOK_ALLOW_PRIVATE" not in message  # private mode would not help


def test_private_mode_still_refuses_other_schemes_and_user_names() -> None:
    assert "not 'ftp'" in refused("ftp://10.0.0.1/", allow_private=True)
    assert "user name" in refused("http://a:b@10.0.0.1/", allow_private=True)


def test_the_refusal_points_at_private_mode_only_where_it_helps() -> None:
    assert "MAILBEACON_WEBHOOK_ALLOW_PRIVATE=true allows private receivers" in refused("https://10.0.0.1/")
    assert "MAILBEACON_WEBHOOK_ALLOW_PRIVATE" not in refused("https://169.254.169.254/")
