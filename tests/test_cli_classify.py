"""``mailbeacon classify``: JSON lines in, one verdict line per hit out, in order."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mailbeacon.cli import main

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)


def run(*lines: object, args: tuple[str, ...] = ()) -> tuple[int, list[dict[str, object]]]:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    result = CliRunner().invoke(main, ["classify", *args], input=text)
    return result.exit_code, [json.loads(line) for line in result.output.splitlines()]


def test_each_hit_gets_its_verdict_and_keeps_its_fields() -> None:
    code, out = run({"kind": "open", "ua": "Mozilla/5.0", "ip": "17.58.1.1", "t": 30, "id": 7})
    assert code == 0
    assert out == [
        {
            "kind": "open",
            "ua": "Mozilla/5.0",
            "ip": "17.58.1.1",
            "t": 30,
            "id": 7,
            "classification": "machine",
            "reasons": ["apple_mpp"],
            "confidence": 0.7,
        }
    ]


def test_later_lines_of_a_message_revise_earlier_ones() -> None:
    first = {"kind": "click", "ua": CHROME, "ip": "198.51.100.7", "message": "m", "link": 0, "t": 400}
    trap = {**first, "link": 9, "honeypot": True, "t": 401}
    _, out = run(first, trap)
    assert [line["reasons"] for line in out] == [["honeypot"], ["honeypot"]]


def test_other_messages_are_not_revised_together() -> None:
    first = {"kind": "click", "ua": CHROME, "ip": "198.51.100.7", "message": "a", "link": 0, "t": 400}
    _, out = run(first, {**first, "message": "b", "link": 9, "honeypot": True})
    assert out[0]["classification"] == "human"


def test_a_bad_line_gets_an_error_object_in_its_place_and_exit_1() -> None:
    code, out = run({"kind": "open", "ua": CHROME, "t": 5000}, "not json", {"kind": "peek"})
    assert code == 1
    assert out[0]["classification"] == "human"
    assert out[1]["line"] == 2
    assert str(out[1]["error"]).startswith("not JSON")
    assert out[2] == {"line": 3, "error": "kind must be one of open, click, unsubscribe (got 'peek')"}


def test_a_wrongly_typed_field_is_named() -> None:
    _, out = run({"kind": "click", "link": "3"})
    assert out == [{"line": 1, "error": "link must be an integer link index (got '3')"}]


def test_a_json_array_line_is_an_error() -> None:
    _, out = run("[1, 2]")
    assert out == [{"line": 1, "error": "a line must be a JSON object"}]


def test_blank_lines_are_skipped() -> None:
    code, out = run("", {"kind": "open", "ua": CHROME, "t": 5000}, "   ")
    assert (code, len(out)) == (0, 1)


def test_headers_are_read_case_insensitively() -> None:
    _, out = run({"kind": "click", "ua": CHROME, "t": 5000, "headers": {"Sec-Purpose": "prefetch"}})
    assert out[0]["reasons"] == ["prefetch_header"]


def test_ua_may_come_from_the_headers() -> None:
    _, out = run({"kind": "click", "t": 5000, "headers": {"user-agent": "curl/8.4.0"}})
    assert out[0]["reasons"] == ["http_client"]


def test_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "hits.jsonl"
    path.write_text(json.dumps({"kind": "click", "ua": "curl/8.4.0"}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["classify", str(path)])
    assert json.loads(result.output)["reasons"] == ["http_client"]


def test_gmail_proxy_switch() -> None:
    proxy = {"kind": "open", "ua": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)", "t": 5000}
    _, out = run(proxy, args=("--gmail-proxy-as-unknown",))
    assert out[0]["classification"] == "unknown"


def test_own_scanner_network() -> None:
    _, out = run(
        {"kind": "click", "ua": CHROME, "ip": "192.0.2.9", "t": 5000},
        args=("--scanner-network", "192.0.2.0/24=acme"),
    )
    assert out[0]["reasons"] == ["scanner_network:acme"]


def test_a_bad_scanner_network_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["classify", "--scanner-network", "nope"], input="")
    assert result.exit_code == 2
    assert "is not a network" in result.output
