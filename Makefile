# The commands a person runs are the commands CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint typecheck lock clean-lake

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project from the lock

run: $(STAMP) ## run the main example flow on the zero-config defaults
	$(BIN)/python flows/examples/basic_etl_pipeline.py

test: $(STAMP) ## lint, type check and the whole test suite
	$(BIN)/ruff check flows tests
	$(BIN)/ruff format --check flows tests
	$(BIN)/mypy flows
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check flows tests
	$(BIN)/ruff format --check flows tests

typecheck: $(STAMP)
	$(BIN)/mypy flows

lock: ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header --annotation-style line -o requirements.lock

clean-lake: ## delete the local zero-config lake
	rm -rf lake
