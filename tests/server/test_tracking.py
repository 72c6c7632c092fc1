"""The tracking endpoints of a real server: pixel, click, unsubscribe, and what they record."""

from __future__ import annotations

import re
import socket
import time
import uuid
from typing import Any

import httpx

from mailbeacon.server.responses import GIF

from .harness import Server, browser_get

HTML = '<html><body><p>Hi</p><a href="https://shop.example/sale?a=1&amp;b=2">Sale</a></body></html>'


def create(server: Server, key: str, **fields: Any) -> dict[str, Any]:
    body = {"recipient": "r-1", "html": HTML, **fields}
    response = server.client(key).post("/api/v1/messages", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def events(server: Server, key: str, message_id: str, wait_for: int = 0) -> list[dict[str, Any]]:
    response = server.client(key).get(f"/api/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def test_pixel_is_a_gif_that_no_cache_keeps(server: Server, key: str) -> None:
    created = create(server, key)
    response = browser_get(created["open_url"])
    assert response.status_code == 200
    assert response.content == GIF
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"] == "no-store, no-cache, must-revalidate, private"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"


def test_a_pixel_hit_is_recorded_before_its_answer(server: Server, key: str) -> None:
    created = create(server, key)
    browser_get(created["open_url"], headers={"User-Agent": "Mozilla/5.0 test"})
    # No waiting: the hit was committed before the pixel was sent.
    kinds = [event["type"] for event in events(server, key, created["id"])]
    assert kinds == ["sent", "opened"]


def test_forged_pixel_is_served_and_not_recorded(server: Server, key: str) -> None:
    created = create(server, key)
    forged = created["open_url"][:-3] + ("AAA" if not created["open_url"].endswith("AAA") else "BBB")
    response = browser_get(forged)
    assert response.status_code == 200
    assert response.content == GIF
    assert [e["type"] for e in events(server, key, created["id"])] == ["sent"]


def test_head_is_answered_and_never_recorded(server: Server, key: str) -> None:
    created = create(server, key)
    click = created["html"].split('href="')[1].split('"')[0]
    assert httpx.head(created["open_url"]).status_code == 200
    head = httpx.head(click)
    assert head.status_code == 302
    assert head.headers["location"] == "https://shop.example/sale?a=1&b=2"
    assert [e["type"] for e in events(server, key, created["id"])] == ["sent"]


def test_click_redirects_to_the_signed_destination_and_records_the_link(server: Server, key: str) -> None:
    created = create(server, key)
    click = created["html"].split('href="')[1].split('"')[0]
    response = browser_get(click)
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example/sale?a=1&b=2"
    assert response.headers["referrer-policy"] == "no-referrer"
    clicked = events(server, key, created["id"])[-1]
    assert (clicked["type"], clicked["link"], clicked["url"]) == (
        "clicked",
        0,
        "https://shop.example/sale?a=1&b=2",
    )
    assert clicked["classification"] == "human"


def test_forged_click_is_a_404_that_never_redirects(server: Server, key: str) -> None:
    created = create(server, key)
    click = created["html"].split('href="')[1].split('"')[0]
    for bad in (click[:-2] + "xy", click + "A", f"{server.base}/c/", f"{server.base}/c/not-a-token"):
        response = browser_get(bad)
        assert response.status_code == 404, bad
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")
    assert [e["type"] for e in events(server, key, created["id"])] == ["sent"]


def test_an_open_token_is_not_a_click(server: Server, key: str) -> None:
    created = create(server, key)
    token = created["open_url"].rsplit("/", 1)[1]
    assert browser_get(f"{server.base}/c/{token}").status_code == 404


def test_expired_click_token_does_not_redirect(server: Server) -> None:
    from datetime import UTC, datetime, timedelta

    tracker = server.tracker()
    url = tracker.click_url(
        "https://shop.example/", message_id="m-exp", expires_at=datetime.now(UTC) + timedelta(seconds=1)
    )
    time.sleep(1.2)
    assert browser_get(url).status_code == 404


def test_unsubscribe_get_only_asks_and_post_one_click_records(server: Server, key: str) -> None:
    created = create(server, key)
    url = created["unsubscribe_url"]
    page = browser_get(url)
    assert page.status_code == 200
    assert 'method="post"' in page.text
    assert [e["type"] for e in events(server, key, created["id"])] == ["sent"]
    assert httpx.post(url, content=b"wrong=1").status_code == 400
    done = httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    assert [e["type"] for e in events(server, key, created["id"])] == ["sent", "unsubscribed"]
    message = server.client(key).get(f"/api/v1/messages/{created['id']}").json()
    assert message["recipients"][0]["unsubscribed_at"] is not None


def test_unsubscribe_with_a_bad_token_is_a_404(server: Server) -> None:
    assert browser_get(f"{server.base}/u/nope").status_code == 404
    assert httpx.post(f"{server.base}/u/nope", content=b"List-Unsubscribe=One-Click").status_code == 404


def test_other_methods_are_refused(server: Server, key: str) -> None:
    created = create(server, key)
    assert httpx.put(created["open_url"]).status_code == 405
    assert httpx.delete(created["open_url"]).status_code == 405


def test_offline_minted_links_are_recorded_under_their_account(server: Server, key: str) -> None:
    account = server.cli("apikey", "list").stdout.splitlines()
    assert account  # the account exists
    tracker = server.tracker()  # no account in the token: the default account
    url = tracker.open_url(message_id="offline-1", recipient="r-9")
    assert browser_get(url).status_code == 200
    # The default account's key sees it; this test's own account does not.
    default_key = server.new_account("default")
    offline = server.client(default_key).get("/api/v1/messages/offline-1")
    assert offline.status_code == 200
    body = offline.json()
    assert body["registered"] is False
    assert body["status"] == "opened"
    assert server.client(key).get("/api/v1/messages/offline-1").status_code == 404


def test_a_new_accounts_first_offline_hit_is_recorded(server: Server, key: str) -> None:
    # The server caches the set of account ids; an account created since (by the CLI, in
    # another process) must not lose its first hits until the next refresh.
    assert browser_get(create(server, key)["open_url"]).status_code == 200  # the set is fresh now
    created = server.cli("apikey", "create", f"new-{uuid.uuid4().hex[:10]}")
    new_key = created.stdout.strip()
    match = re.search(r"\(id (\w+)\)", created.stderr)
    assert match, created.stderr
    url = server.tracker(account=match.group(1)).open_url(message_id="first-hit", recipient="r-1")
    assert browser_get(url).status_code == 200  # before any API call could teach it the account
    response = server.client(new_key).get("/api/v1/messages/first-hit")
    assert response.status_code == 200, response.text
    assert [event["type"] for event in response.json()["events"]] == ["opened"]


def raw_status(server: Server, request_line: bytes, headers: bytes = b"") -> int | None:
    """Send bytes no HTTP client would, and read the status (None: the server closed the connection)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request_line + b"\r\nHost: 127.0.0.1\r\n" + headers + b"Connection: close\r\n\r\n")
        reply = connection.recv(200)
    if not reply.startswith(b"HTTP/1.1 "):
        return None
    return int(reply[9:12])


def test_huge_tokens_traversal_and_junk_paths_get_a_4xx_never_a_5xx(server: Server) -> None:
    for path in (
        b"/c/" + b"A" * 100_000,
        b"/c/../../etc/passwd",
        b"/c/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        b"/u/" + "\u00e9".encode() * 50,
        b"/c/%00",
        b"/api/v1/messages/%2e%2e",
    ):
        status = raw_status(server, b"GET " + path + b" HTTP/1.1")
        assert status is None or 400 <= status < 500, (path[:40], status)
    assert raw_status(server, b"GET /o/" + b"A" * 5000 + b" HTTP/1.1") in (200, 414, 431, None)


def test_header_flood_is_refused_not_crashed(server: Server) -> None:
    flood = b"".join(b"X-Flood-%d: %s\r\n" % (i, b"v" * 100) for i in range(2000))
    status = raw_status(server, b"GET /o/x HTTP/1.1", flood)
    assert status is None or status < 500
    assert browser_get(server.base + "/healthz").status_code == 200
