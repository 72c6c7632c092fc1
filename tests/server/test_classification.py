"""The real server labels every hit human, machine or unknown, with reasons; machines never open a message."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from .harness import BROWSER, BROWSER_UA, Server

HTML = '<html><body><a href="https://shop.example/">Shop</a></body></html>'
APPLE_MPP_UA = "Mozilla/5.0"  # what Apple's proxy sends, from Apple's egress networks
APPLE_EGRESS = "17.58.0.1"  # inside 17.0.0.0/8, Apple's published block


def _create(server: Server, key: str) -> dict[str, Any]:
    response = server.client(key).post("/api/v1/messages", json={"recipient": "r-1", "html": HTML})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _message(server: Server, key: str, message_id: str) -> dict[str, Any]:
    response = server.client(key).get(f"/api/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _engagement(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in body["events"] if event["type"] in ("opened", "clicked")]


def test_a_browser_open_is_human_and_opens_the_message(server: Server, key: str) -> None:
    created = _create(server, key)
    assert httpx.get(created["open_url"], headers=BROWSER).status_code == 200
    body = _message(server, key, created["id"])
    [opened] = _engagement(body)
    assert opened["classification"] == "human"
    assert body["status"] == "opened"
    assert body["recipients"][0]["first_human_open_at"] is not None


def test_an_http_client_fetch_is_a_machine_and_changes_no_status(server: Server, key: str) -> None:
    created = _create(server, key)
    assert httpx.get(created["open_url"]).status_code == 200  # python-httpx's own user agent
    click = created["html"].split('href="')[1].split('"')[0]
    assert httpx.get(click).status_code == 302  # the redirect happens all the same: only the label varies
    body = _message(server, key, created["id"])
    labels = [(event["type"], event["classification"], event["reasons"]) for event in _engagement(body)]
    assert labels == [("opened", "machine", ["http_client"]), ("clicked", "machine", ["http_client"])]
    assert body["status"] == "sent"
    recipient = body["recipients"][0]
    assert recipient["first_fetched_at"] is not None  # the fetch is kept, as a fetch
    assert recipient["first_human_open_at"] is None


def test_stats_split_opens_by_classification(server: Server, key: str) -> None:
    created = _create(server, key)
    httpx.get(created["open_url"], headers=BROWSER)
    httpx.get(created["open_url"], headers={"User-Agent": "curl/8.5.0"})
    machine_only = _create(server, key)
    httpx.get(machine_only["open_url"], headers={"User-Agent": "curl/8.5.0"})
    totals = server.client(key).get("/api/v1/stats").json()["totals"]
    opens = totals["opens"]["total"]
    assert (opens["human"], opens["machine"], opens["unknown"], opens["all"]) == (1, 2, 0, 3)
    assert totals["opens"]["unique"]["all"] == 2
    # Two messages sent, both fetched, one by a person: the open rate counts the person only.
    assert totals["open_rate"] == pytest.approx(totals["opens"]["unique"]["human"] / totals["sent"])
    assert totals["open_rate"] < totals["opens"]["unique"]["all"] / totals["sent"]


@pytest.mark.parametrize(
    "user_agent",
    ["", "x" * 100_000, "\x00\x01binary\xff", "Mozilla/5.0 \x1b[31m", BROWSER_UA + "\t\r"],
    ids=["empty", "100KB", "binary", "control", "trailing-controls"],
)
def test_odd_user_agents_are_classified_never_an_error(server: Server, key: str, user_agent: str) -> None:
    created = _create(server, key)
    raw = user_agent.encode("latin-1", "replace").replace(b"\r", b"").replace(b"\n", b"")
    status = _raw_get(server, created["open_url"].removeprefix(server.base), raw)  # httpx refuses such values
    assert status in (200, 400, 431)  # the HTTP layer may refuse a 100 KB or binary header before us
    if status == 200:
        [opened] = _engagement(_message(server, key, created["id"]))
        assert opened["classification"] in ("human", "machine", "unknown")
        assert opened["reasons"]


def _raw_get(server: Server, path: str, user_agent: bytes) -> int:
    """GET ``path`` with a user agent of any bytes, over a plain socket; the response's status."""
    request = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request % (path.encode(), user_agent))
        head = connection.recv(64)
    return int(head.split(b" ", 2)[1])


@pytest.fixture
def proxied(fresh_server: Server) -> Server:
    fresh_server.extra_env["MAILBEACON_TRUSTED_PROXIES"] = "127.0.0.1/32"
    fresh_server.extra_env["MAILBEACON_PRIVACY"] = "full"
    return fresh_server.start()


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(proxied: Server, tmp_path: Path) -> None:
    key = proxied.new_account("proxied")
    created = _create(proxied, key)
    headers = {"User-Agent": APPLE_MPP_UA, "X-Forwarded-For": f"{APPLE_EGRESS}, 127.0.0.1"}
    httpx.get(created["open_url"], headers=headers)
    [opened] = _engagement(_message(proxied, key, created["id"]))
    assert opened["ip"] == APPLE_EGRESS
    assert opened["classification"] == "machine"
    assert "apple_mpp" in opened["reasons"]


def test_forwarded_for_from_anyone_else_is_ignored(server: Server, key: str) -> None:
    created = _create(server, key)
    httpx.get(created["open_url"], headers={**BROWSER, "X-Forwarded-For": APPLE_EGRESS})
    [opened] = _engagement(_message(server, key, created["id"]))
    assert opened["ip"] == "127.0.0.0"  # the socket's peer, anonymized; the header was not believed
    assert opened["classification"] == "human"


def test_a_bad_classifier_setting_stops_the_server_with_one_line(fresh_server: Server) -> None:
    fresh_server.extra_env["MAILBEACON_SCANNER_NETWORKS"] = "not-a-network=acme"
    result = fresh_server.cli("db", "upgrade", check=False)
    assert result.returncode != 0
    assert "MAILBEACON_SCANNER_NETWORKS" in result.stderr
    assert "Traceback" not in result.stderr
