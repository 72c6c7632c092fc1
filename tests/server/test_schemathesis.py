"""Property-based fuzzing of the REST API from its own OpenAPI document (bounded)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .harness import Server

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_openapi_fuzzing_finds_no_5xx_and_no_schema_mismatch(server: Server, key: str) -> None:
    # positive_data_acceptance is left out: an opaque cursor, or a recipient that is not one of the
    # message's, is schema-valid and still rightly refused; every other default check runs.
    # The stream is left out (an endless response: every example would wait for the timeout), and
    # so are the webhook endpoints: their fuzzed URLs would make the server resolve random host
    # names, which sends DNS queries off this machine. tests/server/test_webhook_api.py covers them.
    result = subprocess.run(
        [
            str(SCHEMATHESIS), "run", f"{server.base}/openapi.json",
            "-H", f"Authorization: Bearer {key}",
            "--max-examples", "25", "--seed", "7",
            "--exclude-checks", "positive_data_acceptance",
            "--request-timeout", "10",
            "--exclude-path-regex", "^/api/v1/(stream|webhooks)",
        ],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout
