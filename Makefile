# stormwatch: every target installs what it needs into .venv first.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do $$p -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck unit integration schemas bench bench-latency bench-storm bench-correlation bench-partitioned bench-nab bench-feedback bench-insights bench-remediation bench-responders clean

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "stormwatch needs Python >= 3.11 (python3.11 or python3.12 on PATH)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

## dev: embedded local stack (broker, Redis, worker, sample storm), incidents printed live
dev: $(STAMP)
	$(VENV)/bin/stormwatch dev

# two pytest workers (a file each at a time: its module fixtures run once), each with its own
# broker and Redis; most integration time is waiting on child processes
PYTEST := $(PY) -m pytest -q -n 2 --dist loadfile

## test: lint, type checks, unit and integration tests (starts its own broker and Redis)
test: $(STAMP) lint typecheck
	$(PYTEST)

lint: $(STAMP)
	$(VENV)/bin/ruff check pipeline benchmarks tests
	$(VENV)/bin/ruff format --check pipeline benchmarks tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PYTEST) tests/unit

integration: $(STAMP)
	$(PYTEST) tests/integration

schemas: $(STAMP)
	$(VENV)/bin/stormwatch schemas --write

# every bench writes its figures as JSON too with JSON=PATH (make bench-nab JSON=nab.json)
BENCH_JSON = $(if $(JSON), --json $(JSON))

bench: $(STAMP)
	$(PY) -m benchmarks.streaming$(BENCH_JSON)

# processing latency of one worker next to the Faust and raw-client floors, at several rates
bench-latency: $(STAMP)
	$(PY) -m benchmarks.streaming --latency-at 500 1000 2000$(BENCH_JSON)

# the storm on one connected 1,000-service topology: 1 and 2 workers, event sizes, exits, RSS
bench-storm: $(STAMP)
	$(PY) -m benchmarks.streaming --storm-only --domains 2$(BENCH_JSON)

bench-correlation: $(STAMP)
	$(PY) -m benchmarks.correlation$(BENCH_JSON)

# one connected topology as K correlation domains + the merge stage, against one domain
bench-partitioned: $(STAMP)
	$(PY) -m benchmarks.partitioned$(BENCH_JSON)

bench-nab: $(STAMP)
	$(PY) -m benchmarks.nab --cv$(BENCH_JSON)

bench-feedback: $(STAMP)
	$(PY) -m benchmarks.feedback$(BENCH_JSON)

# insights: noisy rules on rca-dev, suggested missing edges on DeathStarBench storms
bench-insights: $(STAMP)
	$(PY) -m benchmarks.insights$(BENCH_JSON)

# seeded incidents with runbooks, wrong root causes and flapping services: the guards at work
bench-remediation: $(STAMP)
	$(PY) -m benchmarks.remediation$(BENCH_JSON)

# responder recommendation: a simulated company, a year of incidents, against two baselines
bench-responders: $(STAMP)
	$(PY) -m benchmarks.responders$(BENCH_JSON)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
