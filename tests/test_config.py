"""Settings.from_env: the one resolver; every error names its variable."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from mailbeacon import ConfigError, Settings
from mailbeacon.config import generate_keyring

SECRET = base64.b64encode(bytes(32)).decode()


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.keys is None
    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.encrypt_tokens is False
    assert settings.token_ttl is None


def test_reads_every_variable() -> None:
    settings = Settings.from_env(
        {
            "MAILBEACON_KEYS": f"k1:{SECRET}",
            "MAILBEACON_BASE_URL": "https://t.example.com",
            "MAILBEACON_ENCRYPT_TOKENS": "true",
            "MAILBEACON_TOKEN_TTL": "3600",
        }
    )
    assert settings.keys is not None
    assert settings.keys.active.id == "k1"
    assert settings.base_url == "https://t.example.com"
    assert settings.encrypt_tokens is True
    assert settings.token_ttl == timedelta(hours=1)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MAILBEACON_KEYS": "k1"}, "MAILBEACON_KEYS"),
        ({"MAILBEACON_ENCRYPT_TOKENS": "maybe"}, "MAILBEACON_ENCRYPT_TOKENS"),
        ({"MAILBEACON_TOKEN_TTL": "soon"}, "MAILBEACON_TOKEN_TTL"),
        ({"MAILBEACON_TOKEN_TTL": "-5"}, "MAILBEACON_TOKEN_TTL"),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_missing_keys_say_how_to_make_one() -> None:
    with pytest.raises(ConfigError, match="mailbeacon keys generate"):
        Settings.from_env({}).require_keys()


def test_generated_keys_are_fresh_and_strong() -> None:
    first, second = generate_keyring(), generate_keyring()
    assert len(first.active.secret) == 32
    assert first.active.secret != second.active.secret


def test_classifier_settings_reach_the_classifier() -> None:
    from mailbeacon.classify_data import default_classifier
    from mailbeacon.core.events import RequestFacts

    settings = Settings.from_env(
        {
            "MAILBEACON_CLASSIFY_OPEN_WINDOW": "90",
            "MAILBEACON_CLASSIFY_CLICK_WINDOW": "15.5",
            "MAILBEACON_CLASSIFY_BURST_SECONDS": "20",
            "MAILBEACON_CLASSIFY_BURST_LINKS": "4",
            "MAILBEACON_GMAIL_PROXY_AS_UNKNOWN": "true",
            "MAILBEACON_SCANNER_NETWORKS": "203.0.113.0/24=acme-gateway, 2001:db8::/32",
            "MAILBEACON_SENDER_COOKIES": "session_id",
        }
    )
    config = settings.classifier
    windows = (config.open_window_seconds, config.click_window_seconds, config.burst_seconds)
    assert windows == (90.0, 15.5, 20.0)
    assert config.burst_min_links == 4
    assert config.gmail_proxy_as_unknown is True
    assert config.sender_cookies == ("session_id",)
    browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"
    verdict = default_classifier(config)(
        RequestFacts(kind="click", method="GET", at=1e9, user_agent=browser, ip="203.0.113.9", headers={})
    )
    assert verdict.classification.value == "machine"
    assert any("acme-gateway" in reason for reason in verdict.reasons)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MAILBEACON_SCANNER_NETWORKS": "10.0.0.0/33"}, "MAILBEACON_SCANNER_NETWORKS"),
        ({"MAILBEACON_CLASSIFY_OPEN_WINDOW": "soon"}, "MAILBEACON_CLASSIFY_OPEN_WINDOW"),
        ({"MAILBEACON_CLASSIFY_BURST_SECONDS": "-1"}, "MAILBEACON_CLASSIFY_BURST_SECONDS"),
        ({"MAILBEACON_CLASSIFY_BURST_LINKS": "2.5"}, "MAILBEACON_CLASSIFY_BURST_LINKS"),
        ({"MAILBEACON_GMAIL_PROXY_AS_UNKNOWN": "maybe"}, "MAILBEACON_GMAIL_PROXY_AS_UNKNOWN"),
        ({"MAILBEACON_APPLE_EGRESS_FILE": "/nonexistent/egress.csv"}, "MAILBEACON_APPLE_EGRESS_FILE"),
    ],
)
def test_bad_classifier_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)
