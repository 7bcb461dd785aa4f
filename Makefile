# Two commands on a fresh machine: `make run` and `make test`. Both create the virtualenv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Test processes (pytest-xdist): the tests mostly wait on brokers and worker start-up, so more
# processes than cores pay. Whole files go to one process (module fixtures stay shared), the
# slowest first (tests/support/durations.json). PYTEST_WORKERS=0 runs serially in one process.
PYTEST_WORKERS ?= 4
PYTEST_PAR = -n $(PYTEST_WORKERS) $(if $(filter 0,$(PYTEST_WORKERS)),,--dist loadfile --no-loadscope-reorder)
# Bytecode is cached (__pycache__, ignored by git) even where the environment says not to: every
# test process and every worker a test starts would otherwise compile the whole tree again.
PYTEST = env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_PAR)

.PHONY: run promtool test test-unit test-integration test-deploy test-e2e schemas dashboards bench chaos history bench-history provision clean help

help:
	@echo "make run       - the whole district live: embedded Kafka + PostgreSQL, 5 services, simulator, Prometheus"
	@echo "                 on :9090 (Ctrl-C stops; WORKERS=N workers per service, PROMETHEUS=0 without it)"
	@echo "make test      - unit, contract, integration, deploy and end-to-end tests (real broker + database)"
	@echo "make bench     - throughput/latency/memory benchmark; prints one JSON line"
	@echo "make chaos     - the district (2 workers/service, Prometheus) under seeded faults, then its invariants"
	@echo "                 checked; one JSON line, exit 1 on a failed check (SEED, CHAOS_MINUTES<=20, CHAOS_RATE)"
	@echo "make history  - YEARS=5 SCALE=1.0: a district's years of history in PostgreSQL (DATABASE_URL, else var/history)"
	@echo "                 and, with TOPICS=1 (the default up to SCALE=0.01), the events topics the services published"
	@echo "make bench-history - read, close and ledger-check figures on a generated history vs an empty one, rebuilds"
	@echo "                 from its topics; one JSON line"
	@echo "make schemas   - regenerate JSON Schema + AsyncAPI from the contract package, OpenAPI from the routes"
	@echo "make provision - create the contract topics on KAFKA_BOOTSTRAP_SERVERS"

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m services.launcher

provision: $(STAMP)
	$(PY) -m services.kit.provision

# promtool (Debian package `prometheus`) unit-tests the alert and recording rules. Installed here
# when missing and apt-get is usable as root; otherwise those tests say why they skip (and fail in CI).
promtool:
	@command -v promtool >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) ; } \
	  || echo "note: promtool not installed; the rule tests will skip (apt-get install prometheus)"

test: $(STAMP) promtool
	$(PYTEST) $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PYTEST) tests/unit tests/contract $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(PYTEST) tests/integration $(PYTEST_ARGS)

test-deploy: $(STAMP) promtool
	$(PYTEST) tests/deploy $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(PYTEST) tests/e2e $(PYTEST_ARGS)

schemas: $(STAMP)
	$(PY) -m schemas.generate
	$(PY) -m services.kit.openapi
	$(PY) -m services.kit.policydoc
	$(PY) -m services.kit.piidoc
	$(PY) -m services.assessment.indicatordoc

dashboards: $(STAMP)
	$(PY) deploy/grafana/generate.py

bench: $(STAMP)
	$(PY) -m tests.bench.run

chaos: $(STAMP) promtool
	$(PY) -m tests.chaos.run

YEARS ?= 5
SCALE ?= 1.0
# TOPICS=1 also writes the events topics (var/history/topics.tsv.gz, and KAFKA_BOOTSTRAP_SERVERS
# when set); TOPICS=0 does not; unset, they are written up to SCALE 0.01.
TOPICS ?=
history: $(STAMP)
	TOPICS=$(TOPICS) $(PY) -m tests.history.generate --years $(YEARS) --scale $(SCALE)

# wrk (Debian package `wrk`) is the read load: installed here when missing and apt-get is usable
# as root; otherwise the bench loads from aiohttp in its own process and says so (load_tool).
bench-history: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null) ; } \
	  || echo "note: wrk not installed; the reads are loaded from aiohttp (apt-get install wrk)"
	$(PY) -m tests.history.bench

clean:
	rm -rf var/ .pytest_cache .hypothesis
