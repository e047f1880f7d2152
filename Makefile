# Journeylens — thin verbs over the tools. Everything installs into .venv from PyPI (and Debian for Chromium).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: install run test test-sqlite-smoke lint format migrate worker bench load fuzz browser clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## build .venv with the journeylens command

run: install  ## migrate, seed the demo, start web + worker (+ embedded Redis), print the URL
	PORT=$(PORT) $(BIN)/journeylens up

test: install  ## the whole suite (PostgreSQL/Redis when TEST_DATABASE_URL/REDIS_URL say so; else SQLite + embedded Redis)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-sqlite-smoke: install  ## migrations and the smoke test on SQLite with an embedded Redis
	env -u TEST_DATABASE_URL -u DATABASE_URL -u REDIS_URL -u TEST_REDIS_URL \
	  $(BIN)/python -m pytest tests/integration/test_migrations.py tests/integration/test_smoke.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: install  ## upgrade the database to head
	$(BIN)/journeylens db upgrade

worker: install  ## one RQ worker (needs REDIS_URL)
	$(BIN)/journeylens worker

bench: install  ## mining speed and figures against pm4py, in one process (see bench/RESULTS.md)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/mining.py
	@if [ -f bench/journeys.py ]; then $(BIN)/python bench/journeys.py; fi
	$(BIN)/python bench/overlay.py
	$(BIN)/python bench/dashboard.py

load: install  ## the load test (~10 min): 50 locust users on gunicorn + PostgreSQL + a worker; LOAD_ARGS=--write-results
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/load.py $(LOAD_ARGS)

fuzz: install  ## a long fuzz run of the log readers (CI runs a bounded one inside `make test`)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-5000} $(BIN)/python -m pytest tests/unit/mining/test_fuzz_readers.py tests/unit/mining/test_properties.py -q

browser:  ## Debian's Chromium for the browser tests (Playwright cannot download one here)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) for the browser tests"; fi; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
