# Common tasks. `make test` is the one command that passes on a fresh machine (CI runs it via .ci/run).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: install test lint typecheck pytest validate plan diff docs bench local-bigquery local-bigquery-stop clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

lint: install
	$(PY) -m ruff check infra policies tests scripts

typecheck: install
	$(PY) -m mypy infra policies tests

# The local BigQuery API server is installed up front so an install failure is reported plainly;
# each test worker starts one on a free port and stops it. Work-stealing keeps both cores busy to the end.
# Bytecode is compiled once up front: with PYTHONDONTWRITEBYTECODE set, every worker and every
# `python -m infra.cli` the tests start would compile the package again.
pytest: install
	$(PY) scripts/local_bigquery.py install
	$(PY) -m compileall -q infra policies tests scripts
	$(PY) -m pytest -n auto --dist worksteal --cov --cov-report=term

test: lint typecheck pytest

validate: install
	$(PY) -m infra.cli validate --contracts

plan: install
	$(PY) -m infra.cli plan --stack $(STACK)

diff: install
	$(PY) -m infra.cli diff --stack $(STACK)

docs: install
	$(PY) -m infra.cli docs
	$(PY) scripts/settings_reference.py
	$(PY) scripts/declaration_reference.py

bench: install
	$(PY) scripts/benchmark.py

local-bigquery: install
	$(PY) scripts/local_bigquery.py start

local-bigquery-stop:
	$(PYTHON) scripts/local_bigquery.py stop

clean:
	rm -rf $(VENV) .local-bigquery .pytest_cache .mypy_cache .ruff_cache
