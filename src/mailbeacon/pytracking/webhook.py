"""``send_webhook``: POST a tracking result as JSON, as pytracking2 does (needs ``mailbeacon[webhook]``)."""

from __future__ import annotations

from typing import Any

try:
    import requests
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise ImportError(
        "mailbeacon.pytracking.webhook needs the 'requests' package: pip install 'mailbeacon[webhook]'"
    ) from exc

from mailbeacon.pytracking.tracking import Configuration, TrackingResult, get_configuration

__all__ = ["send_webhook"]


def send_webhook(
    tracking_result: TrackingResult, configuration: Configuration | None = None, **kwargs: Any
) -> requests.Response:
    """POST ``tracking_result`` as JSON to ``tracking_result.webhook_url`` and return the response.

    The body is::

        {
            "is_open_tracking": false,
            "is_click_tracking": true,
            "metadata": {...},
            "request_data": null,
            "tracked_url": "http://...",   # clicks only
            "timestamp": 1389177318
        }

    The timeout is the configuration's ``webhook_timeout_seconds``. If links
    embed the webhook URL (``include_webhook_url=True``), whoever edits a plain
    link chooses where this POST goes (SSRF): keep the webhook URL in settings.

    :param tracking_result: The TrackingResult to post.
    :param configuration: An optional Configuration instance.
    :param kwargs: Configuration settings that override ``configuration``'s.
    """
    config = get_configuration(configuration, kwargs)
    payload: dict[str, Any] = {
        "is_open_tracking": tracking_result.is_open_tracking,
        "is_click_tracking": tracking_result.is_click_tracking,
        "metadata": tracking_result.metadata,
        "request_data": tracking_result.request_data,
        "timestamp": tracking_result.timestamp,
    }
    if tracking_result.tracked_url:
        payload["tracked_url"] = tracking_result.tracked_url
    # Looked up on the module at call time, so patch("requests.post") is seen.
    return requests.post(
        tracking_result.webhook_url,  # type: ignore[arg-type]
        json=payload,
        timeout=config.webhook_timeout_seconds,
    )
