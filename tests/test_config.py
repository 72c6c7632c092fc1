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
