# The two commands of the README: `make up` and `make test` (plus `make down`).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up down test venv system-deps deps

# uv installs the pinned set in ~11 s where pip takes ~33 s (measured on 2 cores; bench/RESULTS.md);
# bytecode is compiled at install, as pip does, since this machine's Python writes none at import.
# Where uv cannot be had or fails, pip installs the same pinned set.
UV_VERSION := 0.13.8
PIP := $(BIN)/pip install -q --disable-pip-version-check
UV := $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python

$(STAMP): requirements.txt constraints.txt pyproject.toml setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	if $(PIP) uv==$(UV_VERSION) && $(UV) -r requirements.txt -c constraints.txt \
	        && $(UV) --no-deps -e .; then :; else \
	    echo "uv failed: installing with pip"; \
	    $(PIP) -r requirements.txt -c constraints.txt && $(PIP) --no-deps -e .; fi
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	bash scripts/system-deps.sh --services

# The venv and the Debian packages install side by side (uv waits on downloads and the disk while
# dpkg unpacks; on a fresh machine each takes 10-20 s).
deps:
	$(MAKE) -j2 --no-print-directory venv system-deps

up: deps
	$(BIN)/greenlight up

down: venv
	$(BIN)/greenlight down

# Plugins named, not found through every installed package's entry points: hypothesis's plugin
# alone made each test process import hypothesis and assertion-rewrite all of it (2 s of CPU per
# xdist worker). tests/conftest.py gives the processes the tests start the usual autoload back.
test: deps
	PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $(BIN)/python -m pytest -p xdist.plugin -n auto -q \
	    --durations=15 $(PYTEST_ARGS)
