"""Human or machine on a real server: request-time verdicts, revision, honeypot, preview, stats."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from .harness import BROWSER, Server, browser_get

HTML = (
    '<html><body><p>Hi</p><a href="https://ex.com/a">A</a> <a href="https://ex.com/b">B</a>'
    ' <a href="https://ex.com/c?x=1&amp;y=2">C</a></body></html>'
)


def create(server: Server, key: str, **fields: Any) -> dict[str, Any]:
    response = server.client(key).post("/api/v1/messages", json={"recipient": "r-1", "html": HTML, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def links(created: dict[str, Any]) -> list[str]:
    return [part.split('"')[0] for part in created["html"].split('href="')[1:]]


def message(server: Server, key: str, message_id: str) -> dict[str, Any]:
    response = server.client(key).get(f"/api/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def eventually(server: Server, key: str, message_id: str, check: Callable[[dict[str, Any]], bool]) -> Any:
    """The message once ``check`` holds (revision runs right after the commit, on its own thread)."""
    deadline = time.monotonic() + 15
    while True:
        got = message(server, key, message_id)
        if check(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def hits(got: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in got["events"] if e["type"] == kind]


def test_an_http_client_is_a_machine_and_a_browser_a_person(server: Server, key: str) -> None:
    created = create(server, key)
    httpx.get(created["open_url"])  # python-httpx/…
    assert message(server, key, created["id"])["status"] == "sent"
    browser_get(created["open_url"])
    got = message(server, key, created["id"])
    opens = hits(got, "opened")
    assert [(e["classification"], e["reasons"][0]) for e in opens] == [
        ("machine", "http_client"),
        ("human", "no_machine_signal"),
    ]
    assert got["status"] == "opened"
    assert got["first_fetched_at"] <= got["first_human_open_at"]
    assert got["recipients"][0]["first_fetched_at"] == got["first_fetched_at"]


def test_apple_mpp_fetch_counts_as_fetched_not_opened(server: Server, key: str) -> None:
    created = create(server, key)
    browser_get(created["open_url"], headers={"User-Agent": "Mozilla/5.0"})
    got = message(server, key, created["id"])
    assert hits(got, "opened")[0]["reasons"] == ["apple_mpp"]
    assert got["status"] == "sent"
    assert got["first_fetched_at"] is not None
    assert got["first_human_open_at"] is None


def test_honeypot_click_exposes_the_same_clients_earlier_clicks(server: Server, key: str) -> None:
    created = create(server, key, honeypot=True)
    assert "data-mb-honeypot" in created["html"]
    assert len(created["links"]) == 3  # the honeypot is not one of the message's links
    honeypot, *real = links(created)  # it sits right after <body>
    scanner = {"User-Agent": BROWSER, "X-Test": "scanner"}
    assert browser_get(real[0], headers=scanner).status_code == 302
    assert message(server, key, created["id"])["status"] == "clicked"  # looked like a person, for now
    assert browser_get(honeypot, headers=scanner).status_code == 302
    got = eventually(server, key, created["id"], lambda m: m["status"] == "sent")
    clicks = hits(got, "clicked")
    assert [e["classification"] for e in clicks] == ["machine", "machine"]
    assert all("honeypot" in e["reasons"] for e in clicks)
    assert clicks[1]["detail"] == {"honeypot": True}
    assert got["status"] == "sent"  # the earlier "click" was the scanner: status moved back
    assert got["first_human_open_at"] is None


def test_burst_over_every_link_is_a_scanner(server: Server, key: str) -> None:
    created = create(server, key)
    for url in links(created):
        browser_get(url)
    got = eventually(
        server,
        key,
        created["id"],
        lambda m: m["status"] == "sent",  # one response reads recipients, then events: wait for both
    )
    assert {e["classification"] for e in hits(got, "clicked")} == {"machine"}
    assert all("burst_all_links" in e["reasons"] for e in hits(got, "clicked"))
    assert got["status"] == "sent"


def test_timing_from_delivery_is_applied_by_revision(fresh_server: Server) -> None:
    server = fresh_server.start()  # the default windows
    key = server.new_account("timing")
    early, late = create(server, key), create(server, key)
    for created, ago in ((early, 0.2), (late, 3600.0)):
        at = datetime.fromtimestamp(time.time() - ago, UTC).isoformat()
        response = server.client(key).post(
            f"/api/v1/messages/{created['id']}/events", json={"type": "delivered", "at": at}
        )
        assert response.status_code == 201, response.text
        browser_get(created["open_url"])
    got = eventually(server, key, early["id"], lambda m: m["status"] == "delivered")
    assert hits(got, "opened")[0]["reasons"] == ["within_delivery_window"]
    assert got["status"] == "delivered"
    assert hits(message(server, key, late["id"]), "opened")[0]["classification"] == "human"
    # Stats: only the person's open counts in the open rate.
    stats = server.client(key).get("/api/v1/stats").json()["totals"]
    assert (stats["delivered"], stats["opened_by_person"], stats["fetched"]) == (2, 1, 2)
    assert stats["open_rate"] == 0.5
    assert stats["opens"]["total"]["machine"] == 1


def test_reclassify_reruns_the_rules_with_new_settings(fresh_server: Server) -> None:
    server = fresh_server.start()
    key = server.new_account("reclassify")
    created = create(server, key)
    browser_get(created["open_url"], headers={"User-Agent": "Mozilla/5.0 (compatible; GoogleImageProxy)"})
    got = eventually(server, key, created["id"], lambda m: bool(hits(m, "opened")))
    assert hits(got, "opened")[0]["classification"] == "human"
    server.extra_env["MAILBEACON_GMAIL_PROXY_AS_UNKNOWN"] = "true"
    run = server.cli("reclassify", "--account", "reclassify", "--message", created["id"])
    assert "1 events changed" in run.stdout
    assert hits(message(server, key, created["id"]), "opened")[0]["classification"] == "unknown"
    again = server.cli("reclassify", "--account", "reclassify")
    assert "0 events changed" in again.stdout
    missing = server.cli("reclassify", "--message", "nope", check=False)
    assert missing.returncode != 0
    assert "error" in missing.stderr.lower()


def test_preview_shows_the_message_without_tracking(server: Server, key: str) -> None:
    created = create(server, key, honeypot=True)
    response = server.client(key).post("/api/v1/preview", json={"html": created["html"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["pixels_removed"], body["links_untracked"]) == (1, 3)
    assert body["html"] == HTML  # byte for byte the HTML that was sent
    # Another account cannot untrack this account's links.
    other = server.new_account("preview-other")
    foreign = server.client(other).post("/api/v1/preview", json={"html": created["html"]}).json()
    assert foreign["html"] == created["html"]


def test_sender_view_cookie_and_trusted_proxy(fresh_server: Server) -> None:
    fresh_server.extra_env.update(
        {
            "MAILBEACON_SENDER_COOKIES": "helpdesk_session",
            "MAILBEACON_TRUSTED_PROXIES": "127.0.0.1/32",
            "MAILBEACON_SCANNER_NETWORKS": "203.0.113.0/24=acme",
            "MAILBEACON_PRIVACY": "full",
        }
    )
    server = fresh_server.start()
    key = server.new_account("sender")
    created = create(server, key)
    browser_get(created["open_url"], headers={"Cookie": "helpdesk_session=SECRET; lang=en"})
    browser_get(created["open_url"], headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
    got = eventually(server, key, created["id"], lambda m: len(hits(m, "opened")) == 2)
    own, scanner = hits(got, "opened")
    assert own["reasons"] == ["sender_own_view"]
    assert "SECRET" not in str(got)  # only the cookie's name is kept
    assert (scanner["ip"], scanner["reasons"]) == ("203.0.113.9", ["scanner_network:acme"])
    assert got["status"] == "sent"


def test_bad_input_is_classified_never_a_500(server: Server, key: str) -> None:
    created = create(server, key)
    pixel, click = created["open_url"], links(created)[0]
    weird: list[dict[str, str]] = [
        {},
        {"User-Agent": ""},
        {"User-Agent": "x" * 100_000},
        {"User-Agent": "Mozilla/5.0 \twith a tab"},
        {"User-Agent": BROWSER, "X-Forwarded-For": "not-an-ip, ::ffff:999.1.1.1"},
        {"User-Agent": BROWSER, "Forwarded": 'for="[2001:db8::1]:4711";proto=https'},
        {"User-Agent": BROWSER, "Referer": "javascript:x", "Sec-Purpose": "prefetch;"},
    ]
    with httpx.Client(timeout=10) as client:
        for headers in weird:
            request = client.build_request("GET", pixel, headers=headers)
            if "User-Agent" not in headers:
                del request.headers["User-Agent"]
            assert client.send(request).status_code == 200
            assert client.get(click, headers=headers).status_code == 302
        raw = client.build_request("GET", pixel, headers=[(b"User-Agent", b"\xff\xfe\xc3(binary")])
        assert client.send(raw).status_code == 200
    # Control characters other than tab (which clients refuse to send) on a raw socket: the
    # HTTP layer may refuse them (RFC 9110 5.5) with a 400; never a 500, never a dead server.
    path = pixel.split(str(server.port), 1)[1].encode()
    for value in (b"a\x01\x1b[31m", b"DEL \x7f", b"\x0b\x0c"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUser-Agent: " + value + b"\r\n\r\n")
            assert conn.recv(64).split(b" ")[1] in (b"200", b"400")
    got = message(server, key, created["id"])
    engaged = [e for e in got["events"] if e["type"] in ("opened", "clicked")]
    assert len(engaged) >= 2 * len(weird) + 1
    assert all(e["classification"] in ("human", "machine", "unknown") and e["reasons"] for e in engaged)
    assert engaged[0]["reasons"] == ["missing_user_agent"]
    assert server.client().get("/healthz").status_code == 200
