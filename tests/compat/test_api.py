"""The same names and signatures as pytracking2 0.4.6, and its Configuration semantics."""

from __future__ import annotations

import copy
import importlib
import inspect
import sys
from typing import Any
from unittest.mock import patch

import pytest
import pytracking as pt2
import pytracking.html
import pytracking.tracking
import pytracking.webhook
from cryptography.fernet import Fernet

import mailbeacon.pytracking.html
import mailbeacon.pytracking.tracking
import mailbeacon.pytracking.webhook
from mailbeacon import pytracking as mb

from .strategies import FERNET_KEY, OTHER_FERNET_KEY

PUBLIC = {
    "": [
        "Configuration",
        "TrackingResult",
        "get_click_tracking_url",
        "get_click_tracking_result",
        "get_click_tracking_url_path",
        "get_open_tracking_url_path",
        "get_open_tracking_url",
        "get_open_tracking_result",
        "get_open_tracking_pixel",
        "TRACKING_PIXEL",
        "PNG_MIME_TYPE",
        "DEFAULT_TIMEOUT_SECONDS",
    ],
    ".tracking": [
        "Configuration",
        "TrackingResult",
        "TrackingResultJSON",
        "get_configuration",
        "get_click_tracking_url",
        "get_click_tracking_result",
        "get_click_tracking_url_path",
        "get_open_tracking_url_path",
        "get_open_tracking_url",
        "get_open_tracking_result",
        "get_open_tracking_pixel",
        "TRACKING_PIXEL",
        "PNG_MIME_TYPE",
        "DEFAULT_TIMEOUT_SECONDS",
    ],
    ".html": ["adapt_html", "DEFAULT_ATTRIBUTES"],
    ".webhook": ["send_webhook"],
    ".django": [
        "TrackingView",
        "OpenTrackingView",
        "ClickTrackingView",
        "get_request_data",
        "get_configuration_from_settings",
        "get_tracking_result",
    ],
}


def _shape(obj: Any) -> list[tuple[str, Any, Any]]:
    """Parameter names, kinds and defaults: the signature without annotations."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]


@pytest.mark.parametrize("submodule", list(PUBLIC))
def test_same_names_and_signatures(submodule: str) -> None:
    ours = importlib.import_module("mailbeacon.pytracking" + submodule)
    theirs = importlib.import_module("pytracking" + submodule)
    for name in PUBLIC[submodule]:
        mine, reference = getattr(ours, name), getattr(theirs, name)
        if inspect.isfunction(reference):
            assert _shape(mine) == _shape(reference), name
        elif inspect.isclass(reference):
            assert issubclass(mine, tuple) == issubclass(reference, tuple), name
            if issubclass(reference, tuple):
                assert mine._fields == reference._fields
                continue
            assert _shape(mine) == _shape(reference), name
            for attr, value in vars(reference).items():
                if inspect.isfunction(value) and not attr.startswith("__"):
                    assert _shape(getattr(mine, attr)) == _shape(value), f"{name}.{attr}"
        else:
            assert mine == reference, name


def test_package_all_matches() -> None:
    assert sorted(mb.__all__) == sorted(pt2.__all__)


def test_webhook_signature_and_pixel_module_attributes() -> None:
    assert mailbeacon.pytracking.html.DEFAULT_ATTRIBUTES == pytracking.html.DEFAULT_ATTRIBUTES
    assert mailbeacon.pytracking.tracking.TRACKING_PIXEL == pytracking.tracking.TRACKING_PIXEL
    assert _shape(mailbeacon.pytracking.webhook.send_webhook) == _shape(pytracking.webhook.send_webhook)


# -- Configuration semantics -------------------------------------------------


def test_merge_with_kwargs_copies_and_overrides() -> None:
    base = mb.Configuration(default_metadata={"a": {"b": 1}}, webhook_url="https://w/")
    merged = base.merge_with_kwargs({"webhook_url": "https://x/", "not_a_setting": 1, "metadata": {}})
    assert merged is not base
    assert merged.webhook_url == "https://x/"
    assert base.webhook_url == "https://w/"
    assert not hasattr(merged, "not_a_setting")
    merged.default_metadata["a"]["b"] = 2  # type: ignore[index]
    assert base.default_metadata == {"a": {"b": 1}}


def test_merge_with_kwargs_sets_the_free_form_kwargs_too() -> None:
    base = mb.Configuration(custom=1)
    assert base.kwargs == {"custom": 1}
    assert base.merge_with_kwargs({"kwargs": {"other": 2}}).kwargs == {"other": 2}


def test_encryption_key_is_rebuilt_on_copy_and_merge() -> None:
    config = mb.Configuration(encryption_bytestring_key=FERNET_KEY)
    assert isinstance(config.encryption_key, Fernet)
    clone = copy.deepcopy(config)
    assert isinstance(clone.encryption_key, Fernet)
    assert clone.encryption_key is not config.encryption_key
    token = clone.get_url_encoded_data_str({"a": 1})
    assert Fernet(FERNET_KEY).decrypt(token.encode()) == b'{"a": 1}'

    rekeyed = config.merge_with_kwargs({"encryption_bytestring_key": OTHER_FERNET_KEY})
    assert Fernet(OTHER_FERNET_KEY).decrypt(rekeyed.get_url_encoded_data_str({}).encode()) == b"{}"
    assert config.merge_with_kwargs({"encryption_bytestring_key": None}).encryption_key is None


def test_deepcopy_keeps_subclasses() -> None:
    class MyConfiguration(mb.Configuration):
        pass

    assert type(copy.deepcopy(MyConfiguration())) is MyConfiguration
    assert type(mb.tracking.get_configuration(MyConfiguration(), {})) is MyConfiguration


def test_get_configuration_always_returns_a_new_object() -> None:
    config = mb.Configuration()
    assert mb.tracking.get_configuration(config, {}) is not config
    assert isinstance(mb.tracking.get_configuration(None, {"webhook_url": "u"}), mb.Configuration)


def test_bad_fernet_key_raises_like_pytracking2() -> None:
    with pytest.raises(ValueError, match="Fernet key"):
        mb.Configuration(encryption_bytestring_key=b"short")


def test_missing_cryptography_names_the_extra() -> None:
    # None in sys.modules makes "from cryptography.fernet import Fernet" raise ImportError.
    with (
        patch.dict(sys.modules, {"cryptography.fernet": None}),
        pytest.raises(ImportError, match=r"pip install 'mailbeacon\[crypto\]'"),
    ):
        mb.Configuration(encryption_bytestring_key=FERNET_KEY)
    # Without a key nothing is imported, so plain links work without cryptography.
    with patch.dict(sys.modules, {"cryptography.fernet": None}):
        assert mb.get_open_tracking_url(base_open_tracking_url="https://t/") == "https://t/e30="


def test_url_path_helpers_slice_like_pytracking2() -> None:
    assert mb.get_click_tracking_url_path("https://a/t/XYZ", base_click_tracking_url="https://a/t/") == "XYZ"
    assert mb.get_open_tracking_url_path("https://a/o/XYZ", base_open_tracking_url="https://a/o/") == "XYZ"
    with pytest.raises(TypeError):
        mb.get_open_tracking_url_path("https://a/o/XYZ")
    with pytest.raises(TypeError):
        pt2.get_open_tracking_url_path("https://a/o/XYZ")
