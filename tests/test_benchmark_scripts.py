"""The benchmark scripts that run in seconds, run small: they must agree with the formats and
APIs they drive (a script that writes an old hit log format would measure nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.postgres
def test_the_ingest_benchmark_drains_every_hit_it_wrote_on_each_database(postgres_database: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--rows", "500", "--warm", "100", "--json",
         "--postgres-url", postgres_database],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    # The script itself fails unless mb_events grew by exactly the rows it wrote.
    assert [row["name"] for row in results] == ["SQLite normal", "SQLite full", "PostgreSQL"]
    assert all(row["rows"] == 500 and row["rows_per_second"] > 0 for row in results)


def test_the_hit_cost_benchmark_answers_and_logs_every_hit_it_drives() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "hit_cost.py"),
         "--hits", "1500", "--warm", "300", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # The script itself fails unless all 1,800 requests were answered and the 1,500 timed ones logged.
    assert result["hits"] == result["logged"] == 1500
    assert result["connections"] == 64
    assert 0 < result["cpu_us_per_hit"] < 10_000
