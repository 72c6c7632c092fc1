"""pytracking2's link format and API, written for mailbeacon.

A token is ``json.dumps(data)`` (the ``json`` module's defaults, so the same
bytes as pytracking2), then either URL-safe base64 (padded) or a Fernet token,
joined onto a base URL with ``urllib.parse.urljoin``. The data is a JSON object
with up to three keys: ``url`` (clicks only), ``metadata`` and ``webhook``.

Decoding here behaves like pytracking2's, exceptions included, because callers
of a drop-in replacement may catch them. It is NOT safe for untrusted input in
a server: plain tokens are unauthenticated. See :mod:`mailbeacon.pytracking.legacy`
for the strict decoder and ``docs/pytracking2-migration.md`` for the way out.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections import namedtuple
from copy import deepcopy
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "PNG_MIME_TYPE",
    "TRACKING_PIXEL",
    "Configuration",
    "TrackingResult",
    "TrackingResultJSON",
    "get_click_tracking_result",
    "get_click_tracking_url",
    "get_click_tracking_url_path",
    "get_configuration",
    "get_open_tracking_pixel",
    "get_open_tracking_result",
    "get_open_tracking_url",
    "get_open_tracking_url_path",
]

# A 1x1 transparent PNG, 68 bytes (the same bytes pytracking2 serves).
TRACKING_PIXEL: Final[bytes] = base64.b64decode(
    b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)

PNG_MIME_TYPE: Final = "image/png"

DEFAULT_TIMEOUT_SECONDS: Final = 5

_CRYPTO_HINT: Final = (
    "an encryption_bytestring_key is configured, which needs the 'cryptography' package: "
    "pip install 'mailbeacon[crypto]'"
)


def _fernet(key: bytes | str) -> Fernet:
    """Build a Fernet from ``key``, importing cryptography only when a key is configured."""
    try:
        from cryptography.fernet import Fernet
    except ImportError as exc:
        raise ImportError(_CRYPTO_HINT) from exc
    return Fernet(key)


_TOKEN: Final = re.compile(r"[A-Za-z0-9_=-]+")
_PROBE: Final = "e30="  # the token of {}


@lru_cache(maxsize=256)
def _join_prefix(base: str) -> str | None:
    """What ``urljoin(base, token)`` puts before ``token``, or None if it is not a plain prefix."""
    joined = urljoin(base, _PROBE)
    return joined[: -len(_PROBE)] if joined.endswith(_PROBE) else None


def _join(base: str | None, token: str) -> str:
    """``urljoin(base, token)``, as pytracking2 does (no base: the token alone).

    A token (URL-safe base64 or Fernet) is a single relative path segment with
    no dot segment, query or fragment, so urljoin resolves the base the same
    way for every token: the result is a per-base prefix plus the token. Caching
    that prefix keeps urljoin's exact behaviour (a base without a trailing "/"
    loses its last segment, query and fragment are dropped, dot segments are
    resolved) without parsing the base again for every link.
    """
    if not base:
        return token
    prefix = _join_prefix(base)
    if prefix is None or _TOKEN.fullmatch(token) is None:
        return urljoin(base, token)
    return prefix + token


class Configuration:
    """Where tracking links point, what they carry and how they are protected.

    :param webhook_url: The webhook to notify when a click or open is registered.
    :param webhook_timeout_seconds: Timeout of the webhook POST (default 5).
    :param include_webhook_url: If True, the webhook URL is embedded in every link.
        Anyone can then edit a plain link to make your server POST anywhere (SSRF).
    :param base_open_tracking_url: Base URL that open (pixel) tokens are joined onto.
    :param base_click_tracking_url: Base URL that click tokens are joined onto.
    :param default_metadata: Metadata associated with every tracking event.
    :param include_default_metadata: If True, the default metadata is embedded in
        every link; if False it is added back when a link is decoded.
    :param encryption_bytestring_key: A Fernet key (``Fernet.generate_key()``):
        links are then encrypted and authenticated (needs ``mailbeacon[crypto]``).
    :param encoding: The text encoding of the JSON and of the token (default utf-8).
    :param kwargs: Kept in ``self.kwargs``, unused, as in pytracking2.
    """

    encryption_key: Fernet | None

    def __init__(
        self,
        webhook_url: str | None = None,
        webhook_timeout_seconds: float | None = DEFAULT_TIMEOUT_SECONDS,
        include_webhook_url: bool = False,
        base_open_tracking_url: str | None = None,
        base_click_tracking_url: str | None = None,
        default_metadata: dict[str, Any] | None = None,
        include_default_metadata: bool = False,
        encryption_bytestring_key: bytes | str | None = None,
        encoding: str = "utf-8",
        **kwargs: Any,
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_timeout_seconds = webhook_timeout_seconds
        self.include_webhook_url = include_webhook_url
        self.base_open_tracking_url = base_open_tracking_url
        self.base_click_tracking_url = base_click_tracking_url
        self.default_metadata = default_metadata
        self.include_default_metadata = include_default_metadata
        self.encryption_bytestring_key = encryption_bytestring_key
        self.encoding = encoding
        self.kwargs = kwargs
        self.encryption_key = None
        self.cache_encryption_key()

    def __str__(self) -> str:
        return (
            f"<pytracking.Configuration> Open Tracking URL: {self.base_open_tracking_url} "
            f"Click Tracking URL: {self.base_click_tracking_url} Webhook URL: {self.webhook_url}"
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> Configuration:
        # The Fernet instance is derived state: rebuild it rather than copy it.
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for name, value in vars(self).items():
            if name != "encryption_key":
                setattr(clone, name, deepcopy(value, memo))
        clone.encryption_key = None
        clone.cache_encryption_key()
        return clone

    def merge_with_kwargs(self, kwargs: dict[str, Any]) -> Configuration:
        """A deep copy of this configuration with the settings named in ``kwargs`` replaced.

        Names that are not settings (``metadata``, typos, ...) are ignored, as in pytracking2.
        """
        merged = deepcopy(self)
        settings = vars(merged)
        for name, value in kwargs.items():
            if name in settings and name != "encryption_key":
                setattr(merged, name, value)
        if "encryption_bytestring_key" in kwargs:
            merged.cache_encryption_key()
        return merged

    def cache_encryption_key(self) -> None:
        """(Re)build ``encryption_key`` from ``encryption_bytestring_key``."""
        key = self.encryption_bytestring_key
        self.encryption_key = _fernet(key) if key else None

    def get_data_to_embed(
        self, url_to_track: str | None, extra_metadata: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The JSON object a link carries: ``url``, ``metadata`` and ``webhook``, each only if set."""
        data: dict[str, Any] = {}
        if url_to_track:
            data["url"] = url_to_track
        metadata: dict[str, Any] = {}
        if self.include_default_metadata and self.default_metadata:
            metadata.update(self.default_metadata)
        if extra_metadata:
            metadata.update(extra_metadata)
        if metadata:
            data["metadata"] = metadata
        if self.include_webhook_url and self.webhook_url:
            data["webhook"] = self.webhook_url
        return data

    def get_url_encoded_data_str(self, data_to_embed: dict[str, Any]) -> str:
        """The token for ``data_to_embed``: Fernet if a key is set, else padded URL-safe base64."""
        payload = json.dumps(data_to_embed).encode(self.encoding)
        if self.encryption_key:
            return self.encryption_key.encrypt(payload).decode(self.encoding)
        return base64.urlsafe_b64encode(payload).decode(self.encoding)

    def get_open_tracking_url_from_data_str(self, data_str: str) -> str:
        return _join(self.base_open_tracking_url, data_str)

    def get_click_tracking_url_from_data_str(self, data_str: str) -> str:
        return _join(self.base_click_tracking_url, data_str)

    def get_open_tracking_url(self, extra_metadata: dict[str, Any] | None) -> str:
        data_str = self.get_url_encoded_data_str(self.get_data_to_embed(None, extra_metadata))
        return self.get_open_tracking_url_from_data_str(data_str)

    def get_click_tracking_url(self, url_to_track: str | None, extra_metadata: dict[str, Any] | None) -> str:
        data_str = self.get_url_encoded_data_str(self.get_data_to_embed(url_to_track, extra_metadata))
        return self.get_click_tracking_url_from_data_str(data_str)

    def get_tracking_result(
        self, encoded_url_path: str, request_data: dict[str, Any] | None, is_open: bool
    ) -> TrackingResult:
        """Decode a token (one leading ``/`` allowed) into a ``TrackingResult``.

        Raises what pytracking2 raises on bad input (``binascii.Error``,
        ``UnicodeDecodeError``, ``json.JSONDecodeError``, ``InvalidToken``,
        ``AttributeError``, ``TypeError``, ...). For untrusted input use
        :func:`mailbeacon.pytracking.legacy.decode_legacy_token`.
        """
        timestamp = int(time.time())
        if encoded_url_path.startswith("/"):
            encoded_url_path = encoded_url_path[1:]
        token = encoded_url_path.encode(self.encoding)
        if self.encryption_key:
            payload = self.encryption_key.decrypt(token)
        else:
            payload = base64.urlsafe_b64decode(token)
        data = json.loads(payload.decode(self.encoding))

        metadata: dict[str, Any] = {}
        if not self.include_default_metadata and self.default_metadata:
            metadata.update(self.default_metadata)
        metadata.update(data.get("metadata", {}))

        webhook_url = data.get("webhook") if self.include_webhook_url else self.webhook_url

        return TrackingResult(
            is_open_tracking=is_open,
            is_click_tracking=not is_open,
            tracked_url=data.get("url"),
            webhook_url=webhook_url,
            metadata=metadata,
            request_data=request_data,
            timestamp=timestamp,
        )

    def get_click_tracking_url_path(self, url: str) -> str:
        """``url`` without its ``base_click_tracking_url`` prefix (not checked, as in pytracking2)."""
        return url[len(self.base_click_tracking_url) :]  # type: ignore[arg-type]

    def get_open_tracking_url_path(self, url: str) -> str:
        """``url`` without its ``base_open_tracking_url`` prefix (not checked, as in pytracking2)."""
        return url[len(self.base_open_tracking_url) :]  # type: ignore[arg-type]


# A plain namedtuple, as in pytracking2 (its fields are untyped there too).
TrackingResultJSON = namedtuple(
    "TrackingResultJSON",
    [
        "is_open_tracking",
        "is_click_tracking",
        "tracked_url",
        "webhook_url",
        "metadata",
        "request_data",
        "timestamp",
    ],
)


class TrackingResult:
    """What a decoded tracking link says, plus who asked for it.

    :param is_open_tracking: The link was an open (pixel) link.
    :param is_click_tracking: The link was a click link.
    :param tracked_url: Where a click redirects to (None for opens).
    :param webhook_url: Where to POST the event.
    :param metadata: The metadata (dict) of the link.
    :param request_data: Data about the client that requested the link (dict).
    :param timestamp: Seconds since the epoch when the link was decoded.
    """

    def __init__(
        self,
        is_open_tracking: bool = False,
        is_click_tracking: bool = False,
        tracked_url: str | None = None,
        webhook_url: str | None = None,
        metadata: dict[str, Any] | None = None,
        request_data: dict[str, Any] | None = None,
        timestamp: int | None = None,
    ) -> None:
        self.is_open_tracking = is_open_tracking
        self.is_click_tracking = is_click_tracking
        self.tracked_url = tracked_url
        self.webhook_url = webhook_url
        self.metadata = metadata
        self.request_data = request_data
        self.timestamp = timestamp

    def to_json_dict(self) -> TrackingResultJSON:
        """The result as a ``TrackingResultJSON`` namedtuple (``._asdict()`` gives a JSON-able dict)."""
        return TrackingResultJSON(
            self.is_open_tracking,
            self.is_click_tracking,
            self.tracked_url,
            self.webhook_url,
            self.metadata,
            self.request_data,
            self.timestamp,
        )

    def __str__(self) -> str:
        return (
            f"<pytracking.TrackingResult> is_open_tracking: {self.is_open_tracking} "
            f"is_click_tracking: {self.is_click_tracking} tracked_url: {self.tracked_url}"
        )


def get_configuration(configuration: Configuration | None, kwargs: dict[str, Any]) -> Configuration:
    """``configuration`` (or a default one) with the settings in ``kwargs`` taking precedence.

    Always returns a new object, so callers may change it freely.
    """
    return (configuration or Configuration()).merge_with_kwargs(kwargs)


def get_open_tracking_url(
    metadata: dict[str, Any] | None = None, configuration: Configuration | None = None, **kwargs: Any
) -> str:
    """An open-tracking (pixel) URL carrying ``metadata``.

    :param metadata: A JSON-serialisable dict to embed in the link.
    :param configuration: An optional Configuration instance.
    :param kwargs: Configuration settings that override ``configuration``'s.
    """
    return get_configuration(configuration, kwargs).get_open_tracking_url(metadata)


def get_open_tracking_pixel() -> tuple[bytes, str]:
    """The transparent 1x1 PNG and its MIME type."""
    return (TRACKING_PIXEL, PNG_MIME_TYPE)


def get_click_tracking_url(
    url_to_track: str | None,
    metadata: dict[str, Any] | None = None,
    configuration: Configuration | None = None,
    **kwargs: Any,
) -> str:
    """A click-tracking URL that carries ``url_to_track`` and ``metadata``.

    :param url_to_track: Where the click should go.
    :param metadata: A JSON-serialisable dict to embed in the link.
    :param configuration: An optional Configuration instance.
    :param kwargs: Configuration settings that override ``configuration``'s.
    """
    return get_configuration(configuration, kwargs).get_click_tracking_url(url_to_track, metadata)


def get_click_tracking_result(
    encoded_url_path: str,
    request_data: dict[str, Any] | None = None,
    configuration: Configuration | None = None,
    **kwargs: Any,
) -> TrackingResult:
    """Decode a click link: the token path, or the full URL if ``base_click_tracking_url`` is set.

    :param encoded_url_path: The token part of the URL, or the whole URL.
    :param request_data: Data about the client (e.g. user agent) to attach to the result.
    :param configuration: An optional Configuration instance.
    :param kwargs: Configuration settings that override ``configuration``'s.
    """
    config = get_configuration(configuration, kwargs)
    base = config.base_click_tracking_url
    if base and encoded_url_path.startswith(base):
        encoded_url_path = config.get_click_tracking_url_path(encoded_url_path)
    return config.get_tracking_result(encoded_url_path, request_data, is_open=False)


def get_click_tracking_url_path(url: str, configuration: Configuration | None = None, **kwargs: Any) -> str:
    """The token part of a click URL (what :func:`get_click_tracking_result` takes)."""
    return get_configuration(configuration, kwargs).get_click_tracking_url_path(url)


def get_open_tracking_result(
    encoded_url_path: str,
    request_data: dict[str, Any] | None = None,
    configuration: Configuration | None = None,
    **kwargs: Any,
) -> TrackingResult:
    """Decode an open link: the token path, or the full URL if ``base_open_tracking_url`` is set.

    :param encoded_url_path: The token part of the URL, or the whole URL.
    :param request_data: Data about the client (e.g. user agent) to attach to the result.
    :param configuration: An optional Configuration instance.
    :param kwargs: Configuration settings that override ``configuration``'s.
    """
    config = get_configuration(configuration, kwargs)
    base = config.base_open_tracking_url
    if base and encoded_url_path.startswith(base):
        encoded_url_path = config.get_open_tracking_url_path(encoded_url_path)
    return config.get_tracking_result(encoded_url_path, request_data, is_open=True)


def get_open_tracking_url_path(url: str, configuration: Configuration | None = None, **kwargs: Any) -> str:
    """The token part of an open URL (what :func:`get_open_tracking_result` takes)."""
    return get_configuration(configuration, kwargs).get_open_tracking_url_path(url)
