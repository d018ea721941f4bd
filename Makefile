# apisync — two commands to get going: `make run` (UI + sandbox) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
REQUIREMENTS := requirements.txt requirements-cluster.txt
# The provider registration (the `apisync` connection type; see provider/apisync_provider).
PROVIDER := provider/pyproject.toml provider/apisync_provider/__init__.py
STAMP := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) constraints.txt $(PROVIDER) | cksum | cut -d' ' -f1)

.PHONY: help install browser thirdparty run cluster test lint format demo bench cli clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): $(REQUIREMENTS) constraints.txt $(PROVIDER)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(addprefix -r ,$(REQUIREMENTS)) -c constraints.txt
	$(PY) -m pip install --quiet --no-deps ./provider
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)  ## create .venv and install the pinned stack (the Celery stack included)

# The browser tests drive Debian's Chromium through Playwright (`playwright install` downloads a
# browser, which CI and offline machines cannot): installed once, a no-op when it is there.
CHROMIUM ?= /usr/bin/chromium

browser:  ## install Debian's Chromium for the browser tests (idempotent; needs root or sudo)
	@test -x $(CHROMIUM) || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; }

# API servers nobody here wrote (thirdparty/servers.py), for the real-server tests: json-server and
# json-graphql-server from npm (package-lock.json), Datasette in a venv of its own, nginx as the rate limit.
THIRDPARTY := thirdparty/package-lock.json thirdparty/requirements-datasette.txt
THIRDPARTY_STAMP := thirdparty/.installed-$(shell cat $(THIRDPARTY) | cksum | cut -d' ' -f1)

$(THIRDPARTY_STAMP): $(THIRDPARTY)
	@test -x /usr/sbin/nginx || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nginx-light; }
	cd thirdparty && npm ci --no-audit --no-fund --loglevel=error
	@test -x thirdparty/.venv-datasette/bin/python || $(PYTHON) -m venv thirdparty/.venv-datasette
	thirdparty/.venv-datasette/bin/python -m pip install --quiet -r thirdparty/requirements-datasette.txt
	@rm -f thirdparty/.installed-* && touch $@

thirdparty: $(THIRDPARTY_STAMP)  ## install the third-party API servers the real-server tests sync from

run: install  ## start the sandbox APIs and Airflow (UI on http://localhost:8080); Ctrl-C stops all
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/run_local.py

cluster: install  ## the CeleryExecutor stack as processes: PostgreSQL metadata, Redis, 2 workers (no Docker)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/cluster.py

test: install browser thirdparty  ## ruff, mypy, then the whole pytest suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/pytest

demo: install  ## run every sync DAG once for a fixed interval against the sandbox; print what was synced
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/demo.py

cli: install  ## the command line next to `make run`: make cli ARGS="gaps", ARGS="replay orders 2026-01-03T10:00Z"
	@$(PY) scripts/cli.py $(ARGS)

bench: install  ## run every benchmark; each prints `BENCH <name> key=value ...`
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

lint: install  ## ruff check + format check, mypy --strict on plugins/apisync
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:  ## remove the local Airflow homes and caches (keeps .venv)
	rm -rf .airflow .airflow-cluster .airflow-test .pytest_cache .ruff_cache .mypy_cache
