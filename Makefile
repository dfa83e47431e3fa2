# churnguard: two commands matter. `make demo` runs the platform locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SAM_VENV := .venv-sam
SAM    := $(SAM_VENV)/bin/sam
# checkov pins its own dependencies (boto3 among them): it gets a virtualenv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# The tool environments are built with uv (a dev dependency), whose cache (~/.cache/uv, or UV_CACHE_DIR) is
# content-addressed and shared by every clone on the machine: a fresh clone links the wheels it already has
# instead of resolving and unpacking ~150 packages again with pip. Each clone still gets its own environments.
UV     := $(BIN)/uv
PYTEST := $(BIN)/python -m pytest
export SAM_CLI_TELEMETRY := 0
# pip must not stall on a slow mirror forever.
export PIP_DEFAULT_TIMEOUT ?= 60

include infra/localstack.mk
include infra/deploy/deploy.mk

.PHONY: help venv demo test test-unit test-functional test-infra lint validate clean

help:
	@echo "make demo    train on generated (or DATA=file.csv) customers, promote, serve on 127.0.0.1:8000 (PORT=, HOST=)"
	@echo "make demo EVENTS=1   the same from generated event logs: feature build, time-ordered training, refresh, score by id"
	@echo "make test    every test: lint (ruff, mypy, import contracts, cfn-lint, sam, checkov), unit, functional (moto),"
	@echo "             LocalStack executor and end-to-end"
	@echo "make test-browser   the console in headless Chromium against the demo (make chromium installs it)"
	@echo "make bench   measure latency, cold start, throughput, package sizes, cost -> bench/results.json"
	@echo "make localstack-up / localstack-down   LocalStack on the host, no Docker"
	@echo "make deploy-local   sam build + deploy template.yaml into LocalStack + seed a champion"
	@echo "make e2e            end-to-end tests through the stack deployed in a LocalStack of their own"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

$(SAM_VENV)/.installed: | $(VENV)/.installed
	$(UV) venv -q --seed --allow-existing -p $(PYTHON) $(SAM_VENV)
	$(UV) pip install -q -p $(SAM_VENV)/bin/python "aws-sam-cli>=1.120"
	touch $@

# make demo PORT=8123 HOST=0.0.0.0 DATA=customers.csv. Only values given on the command line count (a shell's own
# HOST or PORT variable does not), and the port is checked first, before the virtualenv or any training.
DEMO_PORT = $(if $(filter command line,$(origin PORT)),$(PORT),8000)
DEMO_HOST = $(if $(filter command line,$(origin HOST)),$(HOST),127.0.0.1)
demo:
	@$(PYTHON) shared/churnguard/local/ports.py '$(DEMO_HOST)' '$(DEMO_PORT)' 'make demo PORT={}'
	@$(MAKE) --no-print-directory venv
	$(BIN)/churn demo --host '$(DEMO_HOST)' --port '$(DEMO_PORT)' $(if $(DATA),--data '$(DATA)') $(if $(EVENTS),--events)

test: lint test-unit test-functional test-fuzz test-browser test-infra e2e

test-unit: venv
	$(PYTEST) tests/unit -q

test-functional: venv
	$(PYTEST) tests/functional -q

# Property-based fuzzing of the API from its own OpenAPI document (schemathesis), plus explicit bad input.
test-fuzz: venv
	$(PYTEST) tests/fuzz -q

$(CHECKOV_VENV)/.installed: | $(VENV)/.installed
	$(UV) venv -q --allow-existing -p $(PYTHON) $(CHECKOV_VENV)
	$(UV) pip install -q -p $(CHECKOV_VENV)/bin/python "checkov>=3.2,<4"
	touch $@

test-infra: venv
	$(PYTEST) infra/lambda_executor/tests -q

lint: venv $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint
	$(CHECKOV) -f template.yaml --config-file .checkov.yaml

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache build

# Batch scoring throughput of one function instance on 1M generated rows against moto server S3.
.PHONY: bench-batch
bench-batch: venv
	$(BIN)/python bench/batch_bench.py --rows $(or $(ROWS),1000000) --out bench/batch_results.json

# ---------------------------------------------------------------- performance (issue 6)
.PHONY: package bench
# Build every function with its layers as `sam build` does, for x86_64 and arm64; record sizes in
# infra/packaging/package-sizes.json; then audit both builds against the python3.12 runtime (native libraries, pip check).
package: venv
	$(BIN)/python infra/packaging/package.py build --arch all
	$(BIN)/python infra/packaging/runtime_audit.py

# Latency (real handler vs naive vs floor), cold start of the packaged predict function, sizes, cost,
# the 1M-row batch benchmark (merged from bench/batch_results.json) and a 60 s wrk load test.
bench: venv package wrk bench-batch bench-features
	PYTHONPATH=shared:. $(BIN)/python -m bench.run

# wrk (Debian package) for the load test, installed only when missing.
.PHONY: wrk bench-load
wrk:
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

# A short load test on its own (not part of make test: it is a benchmark): LOAD_SECONDS=60 for the full one.
bench-load: venv wrk
	PYTHONPATH=shared:. $(BIN)/python -m bench.load --seconds $(or $(LOAD_SECONDS),10)

# Features from event logs: 10M generated events -> features for 100k customers at 12 cutoffs, in one
# function-sized process (2 threads, 2 GB for DuckDB); time and peak memory -> bench/feature_results.json.
.PHONY: bench-features
bench-features: venv
	$(BIN)/python bench/feature_bench.py --customers $(or $(CUSTOMERS),100000) --out bench/feature_results.json

# ---------------------------------------------------------------- the console (issue 17)
.PHONY: chromium test-browser console
# Debian's Chromium for the browser tests, installed only when missing (Playwright drives it; nothing is downloaded).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)

# The console in headless Chromium against `churn demo`; screenshots of each page land in tests/artifacts/.
test-browser: venv chromium
	$(PYTEST) tests/browser -q

# The console on 127.0.0.1:8080 against AWS_ENDPOINT_URL (`make demo` serves it with its data on port 8001).
console: venv
	$(BIN)/churn console
