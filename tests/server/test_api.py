"""The REST API of a real server: registration, status, listing, delivery reports, errors."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from .harness import Server, browser_get


def create(server: Server, key: str, **fields: Any) -> dict[str, Any]:
    body = {"recipient": "r-1", "html": '<body><a href="https://ex.com/x">x</a></body>', **fields}
    response = server.client(key).post("/api/v1/messages", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def message(server: Server, key: str, message_id: str) -> dict[str, Any]:
    response = server.client(key).get(f"/api/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def report(server: Server, key: str, message_id: str, **body: Any) -> httpx.Response:
    return server.client(key).post(f"/api/v1/messages/{message_id}/events", json=body)


def click_url(created: dict[str, Any]) -> str:
    return str(created["html"].split('href="')[1].split('"')[0])


def test_registering_returns_tracked_html_text_and_urls(server: Server, key: str) -> None:
    created = create(server, key, text="See https://ex.com/y now", campaign="spring", tags=["a", "b"])
    assert created["html"].startswith('<body><img src="' + server.base + "/o/")
    assert click_url(created).startswith(server.base + "/c/")
    assert created["text"].startswith("See " + server.base + "/c/")
    assert [link["url"] for link in created["links"]] == ["https://ex.com/x", "https://ex.com/y"]
    got = message(server, key, created["id"])
    assert (got["status"], got["campaign"], got["tags"]) == ("sent", "spring", ["a", "b"])
    assert [link["index"] for link in got["links"]] == [0, 1]


def test_status_moves_forward_only_whatever_the_order(server: Server, key: str) -> None:
    created = create(server, key)
    browser_get(click_url(created))
    assert message(server, key, created["id"])["status"] == "clicked"  # a click implies an open
    assert report(server, key, created["id"], type="delivered").status_code == 201  # late delivery report
    got = message(server, key, created["id"])
    assert got["status"] == "clicked"
    recipient = got["recipients"][0]
    assert recipient["delivered_at"] is not None
    assert recipient["first_open_at"] == recipient["first_click_at"]


def test_bounced_is_terminal(server: Server, key: str) -> None:
    created = create(server, key)
    assert report(server, key, created["id"], type="bounced", detail={"code": "5.1.1"}).status_code == 201
    browser_get(created["open_url"])
    report(server, key, created["id"], type="delivered")
    got = message(server, key, created["id"])
    assert got["status"] == "bounced"
    assert got["events"][1]["detail"] == {"code": "5.1.1"}


def test_reporting_the_same_event_id_twice_records_it_once(server: Server, key: str) -> None:
    created = create(server, key)
    first = report(server, key, created["id"], type="delivered", event_id="esp-123")
    again = report(server, key, created["id"], type="delivered", event_id="esp-123")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert [e["type"] for e in message(server, key, created["id"])["events"]] == ["sent", "delivered"]


def test_events_at_a_given_time_are_ordered_by_time(server: Server, key: str) -> None:
    created = create(server, key)
    report(server, key, created["id"], type="delivered", at="2020-01-01T00:00:00Z")
    got = message(server, key, created["id"])
    assert [e["type"] for e in got["events"]] == ["delivered", "sent"]
    assert got["events"][0]["at"] == "2020-01-01T00:00:00Z"


def test_another_accounts_message_is_a_404_like_a_missing_one(server: Server, key: str) -> None:
    created = create(server, key)
    other = server.new_account(f"other-{uuid.uuid4().hex[:8]}")
    theirs = server.client(other).get(f"/api/v1/messages/{created['id']}")
    missing = server.client(other).get("/api/v1/messages/does-not-exist")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.headers["content-type"] == "application/problem+json"
    assert report(server, other, created["id"], type="delivered").status_code == 404
    assert server.client(other).get("/api/v1/messages").json()["data"] == []


def test_missing_or_wrong_key_is_a_401(server: Server) -> None:
    assert server.client().get("/api/v1/messages").status_code == 401
    wrong = server.client("mb_not-a-key").get("/api/v1/messages")
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert "apikey create" in wrong.json()["detail"]


def test_revoked_key_stops_working(server: Server) -> None:
    name = f"revoke-{uuid.uuid4().hex[:8]}"
    key = server.new_account(name)
    assert server.client(key).get("/api/v1/messages").status_code == 200
    line = next(
        line for line in server.cli("apikey", "list").stdout.splitlines() if line.endswith(f"{name}  default")
    )
    server.cli("apikey", "revoke", line.split()[0])
    # The server trusts a verified key for at most 10 s; a fresh client sees the revocation at once.
    fresh = browser_get(server.base + "/api/v1/messages", headers={"Authorization": f"Bearer {key}x"})
    assert fresh.status_code == 401


def test_list_filters_and_paginates(server: Server, key: str) -> None:
    ids = [
        create(server, key, campaign="c1" if i % 2 else "c2", tags=[f"t{i}"], recipient=f"p{i}")["id"]
        for i in range(5)
    ]
    client = server.client(key)
    everything = client.get("/api/v1/messages", params={"limit": 2})
    body = everything.json()
    assert [m["id"] for m in body["data"]] == ids[::-1][:2]
    seen = [m["id"] for m in body["data"]]
    while body["next_cursor"]:
        body = client.get("/api/v1/messages", params={"limit": 2, "cursor": body["next_cursor"]}).json()
        seen += [m["id"] for m in body["data"]]
    assert seen == ids[::-1]
    assert [m["id"] for m in client.get("/api/v1/messages", params={"campaign": "c1"}).json()["data"]] == [
        ids[3],
        ids[1],
    ]
    assert [m["id"] for m in client.get("/api/v1/messages", params={"tag": "t2"}).json()["data"]] == [ids[2]]
    assert [m["id"] for m in client.get("/api/v1/messages", params={"recipient": "p4"}).json()["data"]] == [
        ids[4]
    ]
    browser_get(create(server, key, campaign="c3")["open_url"])
    opened = client.get("/api/v1/messages", params={"status": "opened"}).json()["data"]
    assert [m["campaign"] for m in opened] == ["c3"]
    later = client.get("/api/v1/messages", params={"created_after": "2999-01-01T00:00:00Z"}).json()
    assert later["data"] == []


def test_stats_count_totals_and_uniques_per_campaign_and_link(server: Server, key: str) -> None:
    campaign = f"camp-{uuid.uuid4().hex[:6]}"
    first = create(server, key, campaign=campaign)
    second = create(server, key, campaign=campaign, recipient="r-2")
    for _ in range(3):
        browser_get(first["open_url"])
    browser_get(click_url(second))
    report(server, key, first["id"], type="delivered")
    stats = server.client(key).get("/api/v1/stats", params={"campaign": campaign}).json()
    (group,) = stats["groups"]
    assert (group["campaign"], group["sent"], group["delivered"]) == (campaign, 2, 1)
    assert group["opens"]["total"]["all"] == 3
    assert group["opens"]["unique"]["all"] == 1
    assert group["opens"]["total"]["human"] == 3
    assert group["clicks"]["unique"]["all"] == 1
    assert group["links"] == [
        {
            "url": "https://ex.com/x",
            "clicks": {
                "total": {"human": 1, "machine": 0, "unknown": 0, "all": 1},
                "unique": {"human": 1, "machine": 0, "unknown": 0, "all": 1},
            },
        }
    ]
    cli = json.loads(
        server.cli("stats", "--account", _account_name(server, key), "--campaign", campaign, "--json").stdout
    )
    assert cli == stats


def _account_name(server: Server, key: str) -> str:
    hint = key[:10]
    line = next(line for line in server.cli("apikey", "list").stdout.splitlines() if hint in line)
    return line.split()[3]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b'{"recipient": "r", "campain": "typo"}', 422, "campain"),
        (b'{"recipient": 42}', 422, "recipient"),
        (b'{"recipient": "r", "tags": "not-a-list"}', 422, "tags"),
        (b'{"recipient": "r", "channel": "fax"}', 422, "channel"),
        (b'{"recipient": "r", "id": "has space"}', 422, "id"),
        (b"[]", 422, "body"),
        (b'{"subject": "no recipient"}', 422, "recipient"),
    ],
)
def test_bad_input_is_a_precise_4xx(
    server: Server, key: str, body: bytes, status: int, field: str | None
) -> None:
    response = server.client(key).post(
        "/api/v1/messages", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["status"] == status
    if field is not None:
        assert field in [error["field"] for error in problem["errors"]]
        assert field in problem["detail"]


def test_oversized_body_is_a_413_and_stores_nothing(server: Server, key: str) -> None:
    big = {"recipient": "r", "id": "too-big", "html": "x" * (2 * 1024 * 1024)}
    response = server.client(key).post("/api/v1/messages", json=big)
    assert response.status_code == 413
    assert "MAILBEACON_MAX_BODY_BYTES" in response.json()["detail"]
    assert server.client(key).get("/api/v1/messages/too-big").status_code == 404


def test_duplicate_message_id_is_a_409(server: Server, key: str) -> None:
    create(server, key, id="dup-1")
    again = server.client(key).post("/api/v1/messages", json={"recipient": "r", "id": "dup-1"})
    assert again.status_code == 409


def test_bad_cursor_and_bad_limits_are_4xx(server: Server, key: str) -> None:
    client = server.client(key)
    assert client.get("/api/v1/messages", params={"cursor": "garbage"}).status_code == 400
    assert client.get("/api/v1/messages", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/messages", params={"status": "nope"}).status_code == 422
    assert client.get("/api/v1/messages", params={"created_after": "2020-01-01T00:00:00"}).status_code == 422


def test_report_validates_type_and_recipient(server: Server, key: str) -> None:
    created = create(server, key)
    assert (
        report(server, key, created["id"], type="opened").status_code == 422
    )  # only the tracker records opens
    assert report(server, key, created["id"], type="delivered", recipient="someone-else").status_code == 422


def test_health_metrics_openapi_and_docs(server: Server) -> None:
    assert browser_get(server.base + "/healthz").text == "ok\n"
    metrics = browser_get(server.base + "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "mailbeacon_events_committed_total" in metrics.text
    spec = browser_get(server.base + "/openapi.json").json()
    assert "/api/v1/messages" in spec["paths"]
    assert browser_get(server.base + "/docs").status_code == 200
    assert browser_get(server.base + "/nope").status_code == 404
