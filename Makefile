# The two commands of the README. Each makes its own virtualenv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SDIST  := .cache/sdist/pytracking2-0.4.6.tar.gz

.PHONY: run test lint bench bench-server bench-webhooks bench-ingest bench-hit clean

run: $(VENV)/.run-installed
	$(BIN)/mailbeacon serve

test: $(VENV)/.dev-installed $(SDIST)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/core.py

# Issue 3's numbers: nginx, pytracking2 under gunicorn, mailbeacon on SQLite and PostgreSQL (benchmarks/README.md).
bench-server: | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	command -v wrk >/dev/null && command -v nginx >/dev/null || \
		{ apt-get update -qq && apt-get install -y wrk nginx-light; }
	$(BIN)/python benchmarks/server.py $(BENCH_SERVER_ARGS)

# Issue 5's numbers: hit -> SSE and hit -> webhook latency, tracking with webhooks on (benchmarks/README.md).
bench-webhooks: | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y wrk; }
	$(BIN)/python benchmarks/webhooks.py $(BENCH_WEBHOOKS_ARGS)

# What the ingester and the database spend per hit moved into the database; no target (benchmarks/README.md).
bench-ingest: | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/ingest.py $(BENCH_INGEST_ARGS)

# What a hit costs the HTTP process in Python, no socket or disk; no target (benchmarks/README.md).
bench-hit: | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/hit_cost.py $(BENCH_HIT_ARGS)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml src/mailbeacon/core/_speedups.pyx | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml src/mailbeacon/core/_speedups.pyx | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.run-installed

# pytracking2's own test suite runs against mailbeacon.pytracking (tests/compat).
$(SDIST): | $(VENV)/bin/python
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: pytracking2==0.4.6 -d .cache/sdist

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
