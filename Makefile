# Login pipeline: Faker producer -> Apache Kafka -> Spark Structured Streaming monthly counts.
# `make` (or `make help`) lists the targets. Versions and images live in .env.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SPARK_IVY_DIR ?= $(CURDIR)/.cache/ivy
export PYSPARK_PYTHON ?= $(CURDIR)/$(PY)

COMPOSE_FILES := -f docker-compose.kafka.yml -f docker-compose.spark.yml -f docker-compose.producer.yml
TOOLS_BIN := .cache/bin

##@ Without Docker (local Kafka from Maven Central, Spark from pip)

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo

.PHONY: venv
venv: $(STAMP) ## Create .venv and install the pinned dependencies (automatic on first use)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "error: Python 3.10+ is needed, found " + sys.version.split()[0] + " (set PYTHON=python3.x)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[spark,report,dev]'
	@touch $@

.PHONY: local-up
local-up: $(STAMP) ## Start the local Kafka broker (KRaft) at KAFKA_BOOTSTRAP_SERVERS; returns when ready
	$(PY) -m services.kafka up

.PHONY: local-down
local-down: $(STAMP) ## Stop the local Kafka broker
	$(PY) -m services.kafka down

.PHONY: local-status
local-status: $(STAMP) ## Is the local broker running and answering?
	$(PY) -m services.kafka status

.PHONY: demo
demo: $(STAMP) ## Backfill ~50k events, count them per month with Spark, check the sum
	$(PY) -m services.demo

.PHONY: produce
produce: $(STAMP) ## Run the producer on the host; pass flags with ARGS="--rate 200"
	$(PY) -m producer $(ARGS)

.PHONY: job
job: $(STAMP) ## Run the Spark job locally; pass flags with ARGS="--trigger available-now"
	consumer/submit.sh $(ARGS)

##@ Quality

.PHONY: test
test: $(STAMP) lint tools ## Lint, then every test: unit and integration (real Kafka and Spark)
	$(PY) -m pytest

.PHONY: test-unit
test-unit: $(STAMP) ## Unit tests only (no services, seconds)
	$(PY) -m pytest -m "not integration"

.PHONY: lint
lint: $(STAMP) ## ruff check and ruff format --check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

.PHONY: format
format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

.PHONY: tools
tools: $(TOOLS_BIN)/docker-compose ## Build the Compose v2 CLI used to check the compose files

$(TOOLS_BIN)/docker-compose: scripts/build-compose.sh
	scripts/build-compose.sh $(TOOLS_BIN)

##@ Clean-up

.PHONY: clean-local
clean-local: ## Stop the local broker and delete its data, checkpoints and outputs
	-$(PY) -m services.kafka down
	rm -rf .local output

.PHONY: distclean
distclean: clean-local ## Also delete .venv and downloaded jars and tools
	rm -rf $(VENV) .cache
