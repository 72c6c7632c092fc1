"""The endpoints API: SSRF refusals, account isolation, CRUD."""

from __future__ import annotations

import uuid

import pytest

from .harness import Server, free_port


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/hook", "must use https"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://127.1/hook", "loopback"),
        ("https://2130706433/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://100.64.0.1/hook", "carrier-grade NAT"),
        ("https://224.0.0.1/hook", "multicast"),
        ("ftp://example.com/hook", "must use https"),
    ],
)
def test_unsafe_urls_are_refused_at_creation(server: Server, key: str, url: str, why: str) -> None:
    # The session server does not allow private addresses; nothing here connects anywhere.
    response = server.client(key).post("/api/v1/webhooks", json={"url": url})
    assert response.status_code == 422, response.text
    assert why in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "url"


def test_the_metadata_address_is_refused_even_in_private_mode(hook_server: Server, hook_key: str) -> None:
    response = hook_server.client(hook_key).post("/api/v1/webhooks", json={"url": "http://169.254.169.254/"})
    assert response.status_code == 422
    assert "metadata" in response.json()["detail"]


def test_another_accounts_endpoint_is_a_404(hook_server: Server, hook_key: str) -> None:
    other = hook_server.new_account(f"other-{uuid.uuid4().hex[:10]}")
    # Loopback, allowed by this server's private mode; nobody listens on the port.
    created = hook_server.client(hook_key).post(
        "/api/v1/webhooks", json={"url": f"http://127.0.0.1:{free_port()}/"}
    )
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["id"]
    assert created.json()["secret"].startswith("whsec_")
    them = hook_server.client(other)
    assert them.get(f"/api/v1/webhooks/{endpoint_id}").status_code == 404
    assert them.patch(f"/api/v1/webhooks/{endpoint_id}", json={"enabled": False}).status_code == 404
    assert them.delete(f"/api/v1/webhooks/{endpoint_id}").status_code == 404
    assert them.post(f"/api/v1/webhooks/{endpoint_id}/rotate", json={}).status_code == 404
    assert them.post(f"/api/v1/webhooks/{endpoint_id}/test").status_code == 404
    assert them.get(f"/api/v1/webhooks/{endpoint_id}/attempts").status_code == 404
    assert them.get("/api/v1/webhooks").json() == {"data": []}
    listed = hook_server.client(hook_key).get("/api/v1/webhooks").json()["data"]
    assert [e["id"] for e in listed] == [endpoint_id]
    assert listed[0]["secret"] is None  # shown on creation and rotation only


def test_update_disable_and_delete(hook_server: Server, hook_key: str) -> None:
    client = hook_server.client(hook_key)
    created = client.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:{free_port()}/"})
    endpoint_id = created.json()["id"]
    patched = client.patch(f"/api/v1/webhooks/{endpoint_id}", json={"types": ["clicked"], "enabled": False})
    assert patched.status_code == 200
    assert patched.json()["types"] == ["clicked"]
    assert patched.json()["enabled"] is False
    refused = client.patch(f"/api/v1/webhooks/{endpoint_id}", json={"url": "http://169.254.169.254/"})
    assert refused.status_code == 422
    enabled = client.patch(f"/api/v1/webhooks/{endpoint_id}", json={"enabled": True}).json()
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] is None
    assert client.delete(f"/api/v1/webhooks/{endpoint_id}").status_code == 204
    assert client.get(f"/api/v1/webhooks/{endpoint_id}").status_code == 404
