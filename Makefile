# `make demo` and `make test` both set up .venv/ on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck docs unit bench lock clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "bant-sync needs Python 3.11 or newer: set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/bant-sync demo

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy

docs: setup
	$(BIN)/mkdocs build --strict --site-dir build/site

unit: setup
	$(BIN)/pytest -q

test: lint typecheck docs unit

bench: setup
	$(BIN)/python bench/rules_throughput.py

# The service's and the container image's pinned dependencies, with hashes (pip-tools in a throwaway venv).
lock:
	$(PYTHON) -m venv /tmp/bant-sync-lock && /tmp/bant-sync-lock/bin/pip install --quiet pip-tools
	/tmp/bant-sync-lock/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
