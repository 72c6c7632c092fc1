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
