# The commands a person runs are the commands CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PY_SOURCES := flows tests terraform bench
# checkov pins packaging/networkx/cachetools below ours, so it has a venv of its own.
CHECKOV := $(VENV)/tools/checkov/bin/checkov

.PHONY: setup run test lint typecheck lock audit show clean-lake

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project from the lock

run: $(STAMP) ## run the main example flow on the zero-config defaults
	$(BIN)/python flows/examples/basic_etl_pipeline.py

test: $(STAMP) $(CHECKOV) ## lint, type check and the whole test suite
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy flows
	$(BIN)/mypy terraform/main.py terraform/stacks bench
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy flows
	$(BIN)/mypy terraform/main.py terraform/stacks bench

lock: ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header --annotation-style line -o requirements.lock

audit: $(STAMP) ## audit the locked dependencies for known vulnerabilities (needs the PyPI JSON API)
	$(BIN)/pip-audit --strict --disable-pip --no-deps --progress-spinner off -r requirements.lock

TABLE ?= silver/orders
show: $(STAMP) ## print a table's schema, row count, newest commits and first rows (TABLE=layer/name)
	$(BIN)/python -m flows.show $(TABLE)

clean-lake: ## delete the local zero-config lake
	rm -rf lake

# Benchmarks (bench/): generated data is cached in bench/out/; results go to bench/results.json
# and bench/RESULTS.md. `make bench SCALE="1000000"` picks the row counts.
SCALE ?= 1000000 10000000
.PHONY: bench
bench: $(STAMP) ## measure speed and peak memory against baselines (bench/RESULTS.md)
	$(BIN)/python -m bench --scale $(SCALE)

# Local platform (docker/): PostgreSQL, Prefect server + UI, S3 store, worker.
COMPOSE := docker compose --project-directory docker -f docker/docker-compose.yml
.PHONY: up down reset deploy ui server server-up server-down

up: ## start the local platform (docker compose) and wait until it is healthy
	docker/init-env.sh
	$(COMPOSE) up --detach --build --wait
	@$(MAKE) --no-print-directory ui

down: ## stop the local platform, keeping its data
	$(COMPOSE) down

reset: ## stop the local platform and delete its database and lake volumes
	$(COMPOSE) down --volumes

deploy: up ## register every deployment in prefect.yaml with the local platform
	$(COMPOSE) exec -T worker /opt/app/docker/bin/deploy.sh

ui: ## print the Prefect UI address
	@echo "Prefect UI: http://localhost:$$( (sed -n 's/^PREFECT_PORT=//p' docker/.env 2>/dev/null; echo 4200) | head -n 1)"

server-up: $(STAMP) ## a native Prefect server in the background on http://127.0.0.1:4200 (SQLite); flows started from any shell use it
	$(BIN)/python -m flows.server start

server-down: $(STAMP) ## stop the background Prefect server
	$(BIN)/python -m flows.server stop

server: server-up ## the same as server-up: nothing to export afterwards

# Alerts (flows/monitoring/automations.py): a notification block and Prefect automations that
# notify on failed/crashed flow runs and on failed data quality checks. Needs PREFECT_API_URL and
# LAKE_ALERT_SLACK_WEBHOOK_URL (Slack) or LAKE_ALERT_WEBHOOK_URL (a JSON webhook).
.PHONY: alerts
alerts: $(STAMP) ## create or replace the alert automations on the Prefect server
	$(BIN)/python -m flows.monitoring.automations

# Cloud (terraform/): synthesize the CDK Terrain stacks and scan them. Synth needs node (jsii).
.PHONY: synth checkov
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 20

$(CHECKOV): terraform/checkov.lock
	test -x $(VENV)/tools/checkov/bin/python || $(PYTHON) -m venv $(VENV)/tools/checkov
	$(VENV)/tools/checkov/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r terraform/checkov.lock
	touch $(CHECKOV)

synth: $(STAMP) ## synthesize terraform/cdktf.out (set TF_STATE_BUCKET; see terraform/README.md)
	cd terraform && ../$(BIN)/python main.py

# Host upgrade (terraform/README.md): a push never replaces the host; this does, on purpose. The
# new host boots the newest Amazon Linux 2023 AMI, gets the same state volume (PostgreSQL: every
# run, deployment and schedule) and installs the release deployed last.
STACK ?= dev
.PHONY: host-upgrade
host-upgrade: synth ## replace the EC2 host of STACK (dev|prod) with one on the newest AMI; keeps all state
	cd terraform/cdktf.out/stacks/$(STACK) && terraform init -input=false && \
	  terraform apply -input=false -replace=aws_instance.host

checkov: export TF_STATE_BUCKET ?= scan-only-no-state
checkov: synth $(CHECKOV) ## synth, then checkov on the stacks (skips and reasons: .checkov.yaml)
	BC_SKIP_MAPPING=TRUE $(CHECKOV) --config-file .checkov.yaml -d terraform/cdktf.out/stacks
