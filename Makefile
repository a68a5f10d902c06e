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

COMPOSE ?= docker compose
COMPOSE_FILES := -f docker-compose.kafka.yml -f docker-compose.spark.yml -f docker-compose.producer.yml \
	-f docker-compose.dashboard.yml
DC = $(COMPOSE) $(COMPOSE_FILES)
TOOLS_BIN := .cache/bin
# The Docker stack's database passwords, one file per role (ignored by git).
DB_ENV_FILES := postgres/postgres.env postgres/job.env postgres/dashboard.env

##@ Without Docker (local Kafka from Maven Central, Spark from pip)

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo

.PHONY: venv
venv: $(STAMP) ## Create .venv and install the pinned dependencies (automatic on first use)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "error: Python 3.10+ is needed, found " + sys.version.split()[0] + " (set PYTHON=python3.x)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[spark,report,confluent,db,dashboard,dev]'
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
demo: $(STAMP) ## Backfill ~50k events, count them per month with Spark, check the sum; ARGS="--period week"
	$(PY) -m services.demo $(ARGS)

.PHONY: dashboard
dashboard: $(STAMP) ## Live dashboard on http://127.0.0.1:8050 of make demo's database; ARGS="--db-url URL"
	$(PY) -m dashboard $(ARGS)

.PHONY: report
report: $(STAMP) ## Chart the job's CSV as reports/monthly_logins.png (INPUT=... or DB_URL=..., OUTPUT=...)
	$(PY) -m reporting.monthly_chart $(if $(INPUT),--input $(INPUT)) $(if $(DB_URL),--db-url $(DB_URL)) $(if $(OUTPUT),--output $(OUTPUT))

.PHONY: produce
produce: $(STAMP) ## Run the producer on the host; pass flags with ARGS="--rate 200"
	$(PY) -m producer $(ARGS)

.PHONY: job
job: $(STAMP) ## Run the Spark job locally; pass flags with ARGS="--trigger available-now"
	consumer/submit.sh $(ARGS)

##@ With Docker (Bitnami images; needs a Docker engine and Compose v2)

.PHONY: up
up: check-docker $(DB_ENV_FILES) ## Start Kafka, Spark, the producer, PostgreSQL and the dashboard; waits until healthy
	$(DC) up -d --build --wait
	@echo "Up. Spark master UI: http://localhost:8080  Count logins: make submit ARGS='--trigger available-now'  Dashboard: http://127.0.0.1:$${DASHBOARD_HOST_PORT:-$$(sed -n 's/^DASHBOARD_HOST_PORT=//p' .env)}"

.PHONY: up-ui
up-ui: check-docker $(DB_ENV_FILES) ## Also start Kafka UI on http://localhost:8088 (compose profile "ui")
	$(DC) --profile ui up -d --build --wait

.PHONY: submit
submit: check-docker ## Run the Spark job on the Docker cluster (same submit.sh); ARGS="--trigger available-now"
	@DC="$(DC)" scripts/docker-submit.sh $(ARGS)

.PHONY: down
down: check-docker ## Stop and remove the containers; keeps the volumes (data, checkpoints)
	$(DC) --profile ui down

.PHONY: clean
clean: check-docker ## Stop and remove the containers and their volumes
	$(DC) --profile ui down --volumes

# A password file from its committed example, with a new random password (hex, 48 digits).
$(DB_ENV_FILES): postgres/%.env: | postgres/%.env.example
	@umask 077 && password="$$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" \
	  && sed "s/=change-me$$/=$$password/" "postgres/$*.env.example" >"$@.tmp" && mv "$@.tmp" "$@"
	@echo "Created $@ with a random password (not committed; make clean, then edit it, to change it)."

.PHONY: logs
logs: check-docker ## Follow the containers' logs; SERVICE=kafka for one
	$(DC) logs --follow $(SERVICE)

.PHONY: ps
ps: check-docker ## Show the containers and their health
	$(DC) ps

.PHONY: check-docker
check-docker: ## Check that docker, Compose v2 and the engine are usable (the targets above do)
	@command -v docker >/dev/null 2>&1 || { echo "error: docker not found. Install Docker (https://docs.docker.com/engine/install/), or use the local mode: make demo" >&2; exit 1; }
	@$(COMPOSE) version >/dev/null 2>&1 || { echo "error: '$(COMPOSE)' does not work: Docker Compose v2 is needed (https://docs.docker.com/compose/install/). With a standalone binary: make up COMPOSE=docker-compose" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "error: the Docker engine is not reachable (is it running? may you use it?). Without Docker: make demo" >&2; exit 1; }

##@ Quality

.PHONY: test
test: $(STAMP) lint tools ## Lint, then every test: unit and integration (real Kafka and Spark)
	$(PY) -m pytest

.PHONY: test-unit
test-unit: $(STAMP) ## Unit tests only (no services, seconds)
	$(PY) -m pytest -m "not integration"

.PHONY: test-dashboard
test-dashboard: $(STAMP) ## The dashboard in headless Chromium; records its page load in docs/PERFORMANCE.md
	$(PY) -m pytest tests/integration/test_dashboard_browser.py
	$(PY) scripts/dashboard_report.py

.PHONY: test-docker
test-docker: $(STAMP) tools ## The README's Docker walkthrough on a real engine (local test images; starts the engine as root on Debian)
	tests/docker/engine.sh
	$(PY) -m pytest -m docker
	$(PY) scripts/docker_report.py

.PHONY: bench
bench: $(STAMP) ## Benchmarks against a minimal Spark job and Kafka's tools (about 15 minutes); writes docs/PERFORMANCE.md
	$(PY) -m bench.run

.PHONY: reliability
reliability: $(STAMP) ## Run the fault-injection tests and regenerate docs/RELIABILITY.md
	$(PY) -m pytest tests/integration/test_reliability.py tests/integration/test_security.py
	$(PY) scripts/reliability_report.py

.PHONY: audit
audit: $(STAMP) ## Check the pinned Python environment for known vulnerabilities (pip-audit)
	$(PY) -m pip_audit --strict --skip-editable --progress-spinner off

MUTATION_JOBS ?= 2

.PHONY: mutation
mutation: $(STAMP) ## Mutation testing of the pure logic with mutmut (about 16 minutes); prints the score (docs/TESTING.md)
	rm -rf mutants
	SECONDS=0; $(PY) -m mutmut run --max-children $(MUTATION_JOBS); echo "mutmut run took $${SECONDS} s"
	$(PY) -m mutmut export-cicd-stats
	$(PY) -m mutmut results
	@$(PY) -c 'import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); \
	  killed, total = s["killed"] + s["timeout"], s["total"] - s["skipped"]; \
	  survived, untested, timeouts = s["survived"], s["no_tests"], s["timeout"]; \
	  print(f"Mutation score: {killed} of {total} mutants killed ({100 * killed / total:.1f} %),", \
	        f"{timeouts} of them by a timeout; {survived} survived, {untested} had no test")'

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
