"""Django views for pytracking2-style links (needs ``mailbeacon[django]``).

Subclass ``OpenTrackingView`` / ``ClickTrackingView`` and override
``notify_tracking_event`` (and ``notify_decoding_error``); the configuration
comes from ``settings.PYTRACKING_CONFIGURATION`` (a dict of Configuration
arguments) unless ``get_configuration`` is overridden.

``ClickTrackingView`` redirects wherever the link says. With plain
(unencrypted) links anyone can write such a link: your domain becomes an open
redirect. Configure an ``encryption_bytestring_key``, or move to
:class:`mailbeacon.Tracker` (see ``docs/pytracking2-migration.md``).
"""

from __future__ import annotations

from typing import Any

try:
    from django.conf import settings
    from django.http import Http404, HttpResponse, HttpResponseRedirect
    from django.views.generic import View
    from ipware import get_client_ip
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise ImportError(
        "mailbeacon.pytracking.django needs Django and django-ipware: pip install 'mailbeacon[django]'"
    ) from exc

from mailbeacon.pytracking.tracking import (
    PNG_MIME_TYPE,
    TRACKING_PIXEL,
    Configuration,
    TrackingResult,
    get_configuration,
)

__all__ = [
    "ClickTrackingView",
    "OpenTrackingView",
    "TrackingView",
    "get_configuration_from_settings",
    "get_request_data",
    "get_tracking_result",
]


class TrackingView(View):  # type: ignore[misc]
    """Base tracking view; subclasses override the ``notify_*`` hooks."""

    def notify_tracking_event(self, tracking_result: TrackingResult) -> None:
        """Called with the decoded link, before the redirect or pixel is sent."""

    def notify_decoding_error(self, exception: Exception, request: Any) -> None:
        """Called with the error when a link does not decode, before the 404."""

    def get_configuration(self) -> Configuration:
        """The Configuration to decode with; by default from ``settings.PYTRACKING_CONFIGURATION``."""
        return get_configuration_from_settings()


class ClickTrackingView(TrackingView):
    """Decode a click link, call ``notify_tracking_event``, then redirect (302) to its URL.

    ``request_data`` holds the client's ``user_agent`` and ``user_ip``. A link
    that does not decode calls ``notify_decoding_error`` and gives a 404; so
    does a link without a URL.
    """

    def get(self, request: Any, path: str) -> HttpResponseRedirect:
        configuration = self.get_configuration()
        try:
            tracking_result = get_tracking_result(request, path, False, configuration)
        except Exception as exc:  # pytracking2's decoder raises many types; all mean "bad link"
            self.notify_decoding_error(exc, request)
            raise Http404 from None
        if not tracking_result.tracked_url:
            raise Http404
        self.notify_tracking_event(tracking_result)
        return HttpResponseRedirect(tracking_result.tracked_url)


class OpenTrackingView(TrackingView):
    """Decode an open link, call ``notify_tracking_event``, then serve the 1x1 PNG.

    ``request_data`` holds the client's ``user_agent`` and ``user_ip``. A link
    that does not decode calls ``notify_decoding_error`` and gives a 404.
    """

    def get(self, request: Any, path: str) -> HttpResponse:
        configuration = self.get_configuration()
        try:
            tracking_result = get_tracking_result(request, path, True, configuration)
        except Exception as exc:  # pytracking2's decoder raises many types; all mean "bad link"
            self.notify_decoding_error(exc, request)
            raise Http404 from None
        self.notify_tracking_event(tracking_result)
        return HttpResponse(TRACKING_PIXEL, content_type=PNG_MIME_TYPE)


def get_request_data(request: Any) -> dict[str, Any]:
    """The client's user agent and IP (via django-ipware, which reads X-Forwarded-For and friends)."""
    return {
        "user_agent": request.META.get("HTTP_USER_AGENT"),
        "user_ip": get_client_ip(request)[0],
    }


def get_configuration_from_settings(settings_name: str = "PYTRACKING_CONFIGURATION") -> Configuration:
    """A Configuration built from the dict in ``settings.<settings_name>``."""
    return get_configuration(None, getattr(settings, settings_name))


def get_tracking_result(
    request: Any, path: str, is_open: bool, configuration: Configuration | None = None, **kwargs: Any
) -> TrackingResult:
    """Decode ``path`` (the token part of the URL) and attach the request's user agent and IP.

    :param request: A Django request.
    :param path: The token part of the URL (usually a URL pattern parameter).
    :param is_open: True for an open link, False for a click link.
    :param configuration: An optional Configuration instance.
    :param kwargs: Configuration settings that override ``configuration``'s.
    """
    config = get_configuration(configuration, kwargs)
    return config.get_tracking_result(path, get_request_data(request), is_open)
