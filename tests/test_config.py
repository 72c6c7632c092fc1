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


def test_classification_settings_become_the_classifier_config() -> None:
    settings = Settings.from_env(
        {
            "MAILBEACON_CLASSIFY_INSTANT_SECONDS": "1.5",
            "MAILBEACON_CLASSIFY_BURST_LINKS": "4",
            "MAILBEACON_GMAIL_PROXY_AS_UNKNOWN": "yes",
            "MAILBEACON_SCANNER_NETWORKS": "203.0.113.0/24=acme, 2001:db8::/32",
            "MAILBEACON_SENDER_COOKIES": "sid,helpdesk",
        }
    )
    config = settings.classify
    assert (config.instant_seconds, config.burst_min_links, config.gmail_proxy_as_unknown) == (1.5, 4, True)
    assert [(n.network, n.name) for n in config.extra_networks] == [
        ("203.0.113.0/24", "acme"),
        ("2001:db8::/32", "custom"),
    ]
    assert config.sender_cookies == ("sid", "helpdesk")
    assert Settings.from_env({}).classify.open_window_seconds == 60.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAILBEACON_CLASSIFY_OPEN_WINDOW", "soon"),
        ("MAILBEACON_CLASSIFY_CLICK_WINDOW", "-1"),
        ("MAILBEACON_CLASSIFY_BURST_LINKS", "2.5"),
        ("MAILBEACON_CLASSIFY_BURST_SECONDS", "nan"),
        ("MAILBEACON_SCANNER_NETWORKS", "300.1.1.0/24=x"),
    ],
)
def test_bad_classification_setting_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_background_nice_defaults_to_10_and_takes_0_to_19() -> None:
    assert Settings.from_env({}).background_nice == 10
    assert Settings.from_env({"MAILBEACON_BACKGROUND_NICE": "0"}).background_nice == 0
    assert Settings.from_env({"MAILBEACON_BACKGROUND_NICE": " 19 "}).background_nice == 19


@pytest.mark.parametrize(("value", "why"), [("-1", "from 0"), ("20", "from 0"), ("low", "whole number")])
def test_background_nice_out_of_range_says_what_is_allowed(value: str, why: str) -> None:
    with pytest.raises(ConfigError, match=f"MAILBEACON_BACKGROUND_NICE must be .*{why}"):
        Settings.from_env({"MAILBEACON_BACKGROUND_NICE": value})


def test_background_max_lag_defaults_to_5_seconds_and_0_turns_the_idle_class_off() -> None:
    assert Settings.from_env({}).background_max_lag == 5.0
    assert Settings.from_env({"MAILBEACON_BACKGROUND_MAX_LAG": "0"}).background_max_lag == 0.0
    assert Settings.from_env({"MAILBEACON_BACKGROUND_MAX_LAG": " 2.5 "}).background_max_lag == 2.5


@pytest.mark.parametrize(
    ("value", "why"), [("-1", "0 or a positive"), ("nan", "0 or a positive"), ("soon", "number")]
)
def test_background_max_lag_says_what_is_allowed(value: str, why: str) -> None:
    with pytest.raises(ConfigError, match=f"MAILBEACON_BACKGROUND_MAX_LAG must be .*{why}"):
        Settings.from_env({"MAILBEACON_BACKGROUND_MAX_LAG": value})
