"""The Django views and send_webhook, with links from both libraries. Nothing leaves the process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest
import pytracking as pt2

from mailbeacon import pytracking as mb

from .strategies import FERNET_KEY

CONFIG = {
    "webhook_url": "https://webhook.com/tracking/",
    "base_open_tracking_url": "https://a.b.com/tracking/open/",
    "base_click_tracking_url": "https://a.b.com/tracking/",
    "default_metadata": {"d": 1},
    "encryption_bytestring_key": FERNET_KEY,
}


@pytest.fixture
def django_settings() -> Iterator[Any]:
    from django.conf import settings

    if not settings.configured:
        settings.configure()
    settings.PYTRACKING_CONFIGURATION = CONFIG
    yield settings
    del settings.PYTRACKING_CONFIGURATION


def _request(**meta: str) -> Any:
    from django.test import RequestFactory

    return RequestFactory().get("/t/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Mutt/2.2", **meta)


@pytest.mark.parametrize("make", [pt2.get_click_tracking_url, mb.get_click_tracking_url], ids=["pt2", "mb"])
def test_click_view_redirects(django_settings: Any, make: Any) -> None:
    from mailbeacon.pytracking.django import ClickTrackingView, get_configuration_from_settings

    seen: list[Any] = []

    class View(ClickTrackingView):  # type: ignore[misc]
        def notify_tracking_event(self, tracking_result: Any) -> None:
            seen.append(tracking_result)

    configuration = get_configuration_from_settings()
    link = make("https://dest.example/é?a=1", {"m": 2}, configuration=configuration)
    path = mb.get_click_tracking_url_path(link, configuration=configuration)
    response = View.as_view()(_request(), path)
    assert response.status_code == 302
    assert response["Location"] == "https://dest.example/%C3%A9?a=1"
    (result,) = seen
    assert result.metadata == {"d": 1, "m": 2}
    assert result.request_data == {"user_agent": "Mutt/2.2", "user_ip": "203.0.113.9"}


def test_open_view_serves_the_pixel_and_404s_on_garbage(django_settings: Any) -> None:
    from django.http import Http404

    from mailbeacon.pytracking.django import OpenTrackingView

    errors: list[Exception] = []

    class View(OpenTrackingView):  # type: ignore[misc]
        def notify_decoding_error(self, exception: Exception, request: Any) -> None:
            errors.append(exception)

    link = pt2.get_open_tracking_url({"m": 1}, **CONFIG)
    path = mb.get_open_tracking_url_path(link, **CONFIG)
    response = View.as_view()(_request(), path)
    assert response.status_code == 200
    assert response.content == mb.TRACKING_PIXEL
    assert response["Content-Type"] == "image/png"
    with pytest.raises(Http404):
        View.as_view()(_request(), path[:-3])
    assert len(errors) == 1


def test_send_webhook_calls_requests_post_at_call_time() -> None:
    from mailbeacon.pytracking.webhook import send_webhook

    result = mb.TrackingResult(False, True, "https://dest/", "https://hook.example/", {"m": 1}, None, 7)
    with patch("requests.post") as post:
        response = send_webhook(result, webhook_timeout_seconds=2)
    assert response is post.return_value
    post.assert_called_once_with(
        "https://hook.example/",
        json={
            "is_open_tracking": False,
            "is_click_tracking": True,
            "metadata": {"m": 1},
            "request_data": None,
            "timestamp": 7,
            "tracked_url": "https://dest/",
        },
        timeout=2,
    )
    # pytracking2's suite patches through its own module path: the same global function.
    with patch("pytracking.webhook.requests.post") as post:
        send_webhook(mb.TrackingResult(True, False, None, "https://hook.example/"))
    assert post.call_args.kwargs["json"] == {
        "is_open_tracking": True,
        "is_click_tracking": False,
        "metadata": None,
        "request_data": None,
        "timestamp": None,
    }
    assert post.call_args.kwargs["timeout"] == mb.DEFAULT_TIMEOUT_SECONDS
