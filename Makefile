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

# A value from the environment or the make line, else from .env (as written there).
env_value = $(or $($(1)),$(shell sed -n 's/^$(1)=//p' .env))

COMPOSE ?= docker compose
# The Docker stack's image family: bitnami or apache (STACK in .env; `make up STACK=apache`).
STACK := $(call env_value,STACK)
COMPOSE_FILES_bitnami := -f docker-compose.kafka.yml -f docker-compose.spark.yml \
	-f docker-compose.producer.yml -f docker-compose.dashboard.yml
# The official images: docker-compose.apache.yml right after the Spark file it overrides.
COMPOSE_FILES_apache := -f docker-compose.kafka.yml -f docker-compose.spark.yml \
	-f docker-compose.apache.yml -f docker-compose.producer.yml -f docker-compose.dashboard.yml
# How many nodes (TOPOLOGY in .env; `make up TOPOLOGY=cluster`): single, or cluster (three Kafka
# nodes, two Spark workers), whose file comes last (with the official images, its second file
# gives the Kafka nodes that image's variable names).
TOPOLOGY := $(call env_value,TOPOLOGY)
CLUSTER_FILES_bitnami := -f docker-compose.cluster.yml
CLUSTER_FILES_apache := -f docker-compose.cluster.yml -f docker-compose.cluster.apache.yml
COMPOSE_FILES = $(COMPOSE_FILES_$(STACK)) $(if $(filter cluster,$(TOPOLOGY)),$(CLUSTER_FILES_$(STACK)))
DC = $(COMPOSE) $(COMPOSE_FILES)
# make submit runs submit.sh in spark-master through the image's entrypoint: Bitnami's gives
# the container's uid a passwd entry (Ivy and Hadoop need one); apache/spark's passes it on.
SPARK_ENTRYPOINT_bitnami := /opt/bitnami/scripts/spark/entrypoint.sh
SPARK_ENTRYPOINT_apache := /opt/entrypoint.sh
# The official images' Spark (APACHE_SPARK_VERSION), for the tests of those versions.
NEWEST_VENV := .venv-newest
NEWEST_STAMP := $(NEWEST_VENV)/.installed
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

.PHONY: venv-newest
venv-newest: $(NEWEST_STAMP) ## Create .venv-newest with the official images' Spark (make test uses it)

$(NEWEST_STAMP): pyproject.toml Makefile .env
	@test -x $(NEWEST_VENV)/bin/python || $(PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(NEWEST_VENV)/bin/python -m pip install --quiet -e '.[db]' \
	  'pyspark==$(call env_value,APACHE_SPARK_VERSION)'
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
report: $(STAMP) ## Chart the job's CSV as output/monthly_logins.png (INPUT=... or DB_URL=..., OUTPUT=...)
	$(PY) -m reporting.chart $(if $(INPUT),--input $(INPUT)) $(if $(DB_URL),--db-url $(DB_URL)) $(if $(OUTPUT),--output $(OUTPUT))

.PHONY: produce
produce: $(STAMP) ## Run the producer on the host; pass flags with ARGS="--rate 200"
	$(PY) -m producer $(ARGS)

.PHONY: job
job: $(STAMP) ## Run the Spark job locally; pass flags with ARGS="--trigger available-now"
	consumer/submit.sh $(ARGS)

##@ With Docker (Bitnami images, or STACK=apache for the official ones; TOPOLOGY=cluster for 3 Kafka nodes and 2 Spark workers; needs Docker and Compose v2)

# Before anything starts: every port the stack publishes must be free (or the stack's own).
CHECK_PORTS = $(DC) $(1) config --format json | $(PYTHON) scripts/check_ports.py $(COMPOSE_FILES)

.PHONY: up
up: check-docker $(DB_ENV_FILES) ## Start Kafka, Spark, the producer, PostgreSQL and the dashboard; waits until healthy
	@$(call CHECK_PORTS)
	$(DC) up -d --build --wait
	@echo "Up ($(STACK) images$(if $(filter cluster,$(TOPOLOGY)),; cluster: 3 Kafka nodes and 2 Spark workers)). Spark master UI: http://localhost:$(call env_value,SPARK_MASTER_UI_HOST_PORT)  Count logins: make submit ARGS='--trigger available-now'  Dashboard: http://127.0.0.1:$(call env_value,DASHBOARD_HOST_PORT)"

.PHONY: up-ui
up-ui: check-docker $(DB_ENV_FILES) ## Also start Kafka UI on http://localhost:8088 (compose profile "ui")
	@$(call CHECK_PORTS,--profile ui)
	$(DC) --profile ui up -d --build --wait

.PHONY: submit
submit: check-docker ## Run the Spark job on the Docker cluster (same submit.sh); ARGS="--trigger available-now"
	@DC="$(DC)" SPARK_ENTRYPOINT="$(SPARK_ENTRYPOINT_$(STACK))" scripts/docker-submit.sh $(ARGS)

.PHONY: down
down: check-docker ## Stop and remove the containers; keeps the volumes (data, checkpoints)
	$(DC) --profile ui down --remove-orphans

.PHONY: clean
clean: check-docker ## Stop and remove the containers and the volumes (of STACK's family)
	$(DC) --profile ui down --remove-orphans --volumes

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
	@case "$(STACK)" in bitnami|apache) ;; *) echo "error: STACK must be bitnami or apache, not '$(STACK)' (set in .env or on the make line)" >&2; exit 1;; esac
	@case "$(TOPOLOGY)" in single|cluster) ;; *) echo "error: TOPOLOGY must be single or cluster, not '$(TOPOLOGY)' (set in .env or on the make line)" >&2; exit 1;; esac

##@ Quality

.PHONY: test
# The tests on the Docker engine (walkthroughs, ports, cluster drills) spend most of their
# time waiting on containers and outages; they run beside the rest, on free ports (the
# others' Spark drivers take 4040 and up), with their output kept in a log printed once both
# have ended. A third stream (the benchmarks' smoke run apart) was tried: on 2 cores the
# three only slowed each other (docs/TESTING.md).
DOCKER_TESTS := docker or cluster
DOCKER_LOG := output/test-docker.log

test: $(STAMP) lint tools venv-newest ## Lint, then every test: unit, integration (real Kafka and Spark), Docker
	@mkdir -p output
	@echo "The Docker engine's tests run beside the others; their output follows at the end ($(DOCKER_LOG))."
	@PIPELINE_TEST_MOVE_PORTS=all $(PY) -m pytest -p no:cacheprovider -m "$(DOCKER_TESTS)" \
	  --basetemp=output/pytest-docker >$(DOCKER_LOG) 2>&1 & docker_tests=$$!; \
	status=0; $(PY) -m pytest -m "not ($(DOCKER_TESTS))" || status=$$?; \
	docker_status=0; wait $$docker_tests || docker_status=$$?; \
	echo; echo "==> The Docker engine's tests ($(DOCKER_LOG))"; cat $(DOCKER_LOG); \
	if [[ $$status -ne 0 || $$docker_status -ne 0 ]]; then \
	  echo "make test: failed (other tests: exit $$status; Docker engine's tests: exit $$docker_status)" >&2; exit 1; fi

.PHONY: test-unit
test-unit: $(STAMP) ## Unit tests: pure logic, nothing started (no broker, no Spark, no Docker), on every core
	$(PY) -m pytest tests/unit -m "not integration" -n auto

.PHONY: test-transforms
test-transforms: $(STAMP) ## The job's DataFrame transforms on small DataFrames, in a local SparkSession (no broker)
	$(PY) -m pytest tests/transforms

.PHONY: test-dashboard
test-dashboard: $(STAMP) ## The dashboard in headless Chromium (make docs-dashboard also records its page load)
	$(PY) -m pytest tests/integration/test_dashboard_browser.py

.PHONY: test-docker
test-docker: $(STAMP) tools ## The Docker walkthrough (docs/DOCKER.md) on a real engine (local test images; starts the engine as root on Debian)
	tests/images/engine.sh
	$(PY) -m pytest -m docker

.PHONY: test-cluster
test-cluster: $(STAMP) tools ## Three Kafka nodes and two Spark workers on a real engine, and four failure drills
	tests/images/engine.sh
	$(PY) -m pytest -m cluster

# Tests leave the tracked files as they were; these targets run them and then write what
# they measured into docs/, whether they passed or not (a figure recorded only on success
# would hide the failures), and exit with the tests' status.
.PHONY: docs-dashboard
docs-dashboard: $(STAMP) ## make test-dashboard, then its page load into docs/PERFORMANCE.md
	@status=0; $(PY) -m pytest tests/integration/test_dashboard_browser.py || status=$$?; \
	$(PY) scripts/dashboard_report.py && exit $$status

.PHONY: docs-docker
docs-docker: $(STAMP) tools ## make test-docker, then its figures into docs/PERFORMANCE.md
	tests/images/engine.sh
	@status=0; $(PY) -m pytest -m docker || status=$$?; \
	$(PY) scripts/docker_report.py && exit $$status

.PHONY: docs-cluster
docs-cluster: $(STAMP) tools ## make test-cluster, then the drills into docs/RELIABILITY.md and docs/PERFORMANCE.md
	tests/images/engine.sh
	@status=0; $(PY) -m pytest -m cluster || status=$$?; \
	$(PY) scripts/reliability_report.py --cluster && $(PY) scripts/docker_report.py --cluster \
	  && exit $$status

.PHONY: bench
bench: $(STAMP) ## Benchmarks against a minimal Spark job and Kafka's tools (about 30 minutes); writes docs/PERFORMANCE.md
	$(PY) -m bench.run

.PHONY: bench-realtime
bench-realtime: $(STAMP) venv-newest ## Spark's real-time mode vs a 1 s trigger for the detector's pre-filter, on .venv-newest's Spark (about 4 minutes); writes its section of docs/PERFORMANCE.md
	$(PY) -m bench.realtime

.PHONY: bench-cluster
bench-cluster: $(STAMP) check-docker ## Scaling out on the cluster topology: RF 3 vs 1, 2 Spark workers vs 1 (about 15 minutes); writes its section of docs/PERFORMANCE.md
	$(PY) -m bench.cluster

.PHONY: reliability
reliability: $(STAMP) ## Run the fault-injection tests and regenerate docs/RELIABILITY.md (passed or not)
	@status=0; $(PY) -m pytest tests/integration/test_reliability.py tests/integration/test_live_faults.py \
	  tests/integration/test_checkpoint_guards.py tests/integration/test_security.py || status=$$?; \
	$(PY) scripts/reliability_report.py && exit $$status

.PHONY: audit
audit: $(STAMP) ## Check the pinned Python environment for known vulnerabilities (pip-audit)
	$(PY) -m pip_audit --strict --skip-editable --progress-spinner off

MUTATION_JOBS ?= 2

.PHONY: mutation
mutation: $(STAMP) ## Mutation testing of the pure logic with mutmut (about an hour); prints the score (docs/TESTING.md)
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
	rm -rf $(VENV) $(NEWEST_VENV) .cache
