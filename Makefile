# The two commands of the README: `make up` and `make test` (plus `make down`).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up down test venv system-deps

$(STAMP): requirements.txt constraints.txt pyproject.toml setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	bash scripts/system-deps.sh --services

up: venv system-deps
	$(BIN)/greenlight up

down: venv
	$(BIN)/greenlight down

test: venv system-deps
	$(BIN)/python -m pytest -n auto -q --durations=15 $(PYTEST_ARGS)
