"""A drop-in replacement for pytracking2 0.4.6: ``from mailbeacon import pytracking``.

The same names, signatures, links and results as pytracking2, so that changing
the import is the whole migration. Submodules, imported on demand like
pytracking2's: ``html`` (``adapt_html``, byte-exact), ``django`` (views),
``webhook`` (``send_webhook``) and, new here, ``legacy`` (a strict decoder of
pytracking2 tokens for servers).

pytracking2's link format is unsafe by design (plain links are unsigned, so
click links are an open redirect; Fernet links never expire). New code should
use :class:`mailbeacon.Tracker`; see ``docs/pytracking2-migration.md``.
"""

from mailbeacon.pytracking.tracking import (
    DEFAULT_TIMEOUT_SECONDS,
    PNG_MIME_TYPE,
    TRACKING_PIXEL,
    Configuration,
    TrackingResult,
    get_click_tracking_result,
    get_click_tracking_url,
    get_click_tracking_url_path,
    get_open_tracking_pixel,
    get_open_tracking_result,
    get_open_tracking_url,
    get_open_tracking_url_path,
)

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "PNG_MIME_TYPE",
    "TRACKING_PIXEL",
    "Configuration",
    "TrackingResult",
    "get_click_tracking_result",
    "get_click_tracking_url",
    "get_click_tracking_url_path",
    "get_open_tracking_pixel",
    "get_open_tracking_result",
    "get_open_tracking_url",
    "get_open_tracking_url_path",
]
