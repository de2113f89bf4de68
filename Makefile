# `make demo` and `make test` both set up .venv/ on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck docs unit jest bench lock clean pubsub-stubs

# The deal-page panel (Salesforce LWC, Jest) and card (HubSpot UI extension, Vitest): their own npm projects.
NODE_PROJECTS := config/salesforce config/hubspot/src/app/cards
NODE_OK := node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'

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

# Two processes (the machines have 2 cores), a test file per process at a time: files share module fixtures.
unit: setup
	$(BIN)/pytest -q -n 2 --dist loadfile

# Installs each project's packages from its lockfile (again only when the lockfile changed), then its tests.
jest:
	@for dir in $(NODE_PROJECTS); do \
		if ! command -v npm >/dev/null 2>&1 || ! $(NODE_OK) 2>/dev/null; then \
			echo "SKIPPED $$dir tests: they need Node.js 20.19 or newer with npm (e.g. apt-get install nodejs npm)"; \
			continue; \
		fi; \
		echo "$$dir: npm test"; \
		( cd $$dir && { [ node_modules/.package-lock.json -nt package-lock.json ] \
			|| npm ci --no-audit --no-fund --loglevel=error; } && npm test --silent ) || exit 1; \
	done

test: lint typecheck docs unit jest

bench: setup
	$(BIN)/python bench/rules_throughput.py

# The service's and the container image's pinned dependencies, with hashes (pip-tools in a throwaway venv).
lock:
	$(PYTHON) -m venv /tmp/bant-sync-lock && /tmp/bant-sync-lock/bin/pip install --quiet pip-tools
	/tmp/bant-sync-lock/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# The Salesforce Pub/Sub API stubs (src/pubsub_api/README.md): regenerated from the vendored proto.
pubsub-stubs: setup
	cd src && ../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. \
		pubsub_api/pubsub_api.proto
