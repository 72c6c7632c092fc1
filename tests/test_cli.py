"""The `mailbeacon` command, in-process with CliRunner."""

from __future__ import annotations

import base64
import json
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner

from mailbeacon import KeyRing, Tracker
from mailbeacon.cli import main

KEYS = "k1:" + base64.b64encode(bytes(range(32))).decode()
ENV = {"MAILBEACON_KEYS": KEYS, "MAILBEACON_BASE_URL": "https://t.example.com"}


def _run(*args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=ENV if env is None else env, input=input)
    return result.exit_code, result.stdout, result.stderr


def test_encode_then_decode_round_trips() -> None:
    code, url, _ = _run(
        "token", "encode", "--url", "https://a.example/x", "--message-id", "m1", "--metadata", '{"c":1}'
    )
    assert code == 0
    assert url.startswith("https://t.example.com/c/")
    code, out, _ = _run("token", "decode", url.strip())
    assert code == 0
    data = json.loads(out)
    assert (data["kind"], data["url"], data["message_id"], data["metadata"]) == (
        "click",
        "https://a.example/x",
        "m1",
        {"c": 1},
    )


def test_encoded_url_verifies_with_the_library() -> None:
    _, url, _ = _run("token", "encode", "--kind", "open", "--message-id", "m2")
    tracker = Tracker("https://t.example.com", KeyRing.parse(KEYS))
    assert tracker.decode(url.strip()).message_id == "m2"


def test_decode_of_forged_token_is_one_clear_line() -> None:
    code, out, err = _run(
        "token", "decode", "https://t.example.com/c/eyJ1cmwiOiAiaHR0cHM6Ly9ldmlsLmV4YW1wbGUifQ"
    )
    assert code == 1
    assert out == ""
    assert err.startswith("Error: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_keys_explain_how_to_fix() -> None:
    code, _, err = _run("token", "encode", "--url", "https://a.example/", env={"MAILBEACON_KEYS": ""})
    assert code == 1
    assert "mailbeacon keys generate" in err


def test_click_needs_url() -> None:
    code, _, err = _run("token", "encode", "--kind", "click")
    assert code == 2
    assert "--url" in err


def test_unsafe_destination_refused() -> None:
    code, _, err = _run("token", "encode", "--url", "javascript:alert(1)")
    assert code == 1
    assert "http" in err


def test_bad_metadata_is_a_usage_error() -> None:
    code, _, err = _run("token", "encode", "--url", "https://a.example/", "--metadata", "[1,2]")
    assert code == 2
    assert "JSON object" in err


def test_rewrite_html_file_to_output(tmp_path: Path) -> None:
    source = tmp_path / "in.html"
    source.write_text('<!doctype html><body><a href="https://a.example/">a</a></body>', encoding="utf-8")
    target = tmp_path / "out.html"
    code, _, _ = _run("rewrite", str(source), "-o", str(target), "--message-id", "m3")
    assert code == 0
    out = target.read_text(encoding="utf-8")
    assert out.startswith("<!doctype html><body><img ")
    assert "https://t.example.com/c/" in out


def test_rewrite_html_to_stdout_from_stdin() -> None:
    code, out, _ = _run("rewrite", "-", "--no-open", input=b'<a href="https://a.example/">a</a>')
    assert code == 0
    assert out.startswith('<a href="https://t.example.com/c/')


def test_rewrite_eml(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["Subject"] = "hi"
    msg.set_content("plain https://a.example/t")
    msg.add_alternative('<body><a href="https://a.example/h">h</a></body>', subtype="html")
    source = tmp_path / "m.eml"
    source.write_bytes(msg.as_bytes())
    code, out, _ = _run("rewrite", str(source), "--text-links", "--list-unsubscribe")
    assert code == 0
    parsed = message_from_bytes(out.encode(), policy=policy.default)
    assert parsed["Subject"] == "hi"
    assert "t.example.com/c/" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "t.example.com/c/" in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_rewrite_missing_file_is_one_line(tmp_path: Path) -> None:
    code, _, err = _run("rewrite", str(tmp_path / "nope.html"))
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_rewrite_non_utf8_html_is_explained(tmp_path: Path) -> None:
    source = tmp_path / "latin.html"
    source.write_bytes("<p>café</p>".encode("latin-1"))
    code, _, err = _run("rewrite", str(source))
    assert code == 1
    assert "not UTF-8" in err


def test_keys_generate_prints_usable_spec() -> None:
    code, out, _ = _run("keys", "generate", "--id", "k7", env={})
    assert code == 0
    ring = KeyRing.parse(out.strip())
    assert ring.active.id == "k7"
    assert len(ring.active.secret) == 32


def test_keys_generate_keep_appends_current() -> None:
    code, out, _ = _run("keys", "generate", "--id", "k2", "--keep")
    assert code == 0
    assert [k.id for k in KeyRing.parse(out.strip())] == ["k2", "k1"]
