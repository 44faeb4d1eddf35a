# Two commands do all the set-up: `make demo` and `make test`.
# The virtual environment is built from the committed, hash-pinned lock file.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: demo test unit integration lint bench lock clean

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 (apt-get install python3.11 python3.11-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

## Run the guided tour on a fresh data directory with embedded defaults.
demo: $(STAMP)
	$(BIN)/custodes demo

## Debian's Chromium, for the passkey ceremony test (never a downloaded browser).
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	@{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; } >/dev/null 2>&1 \
		|| { echo "error: cannot install chromium; as root on Debian run: apt-get install -y --no-install-recommends chromium"; exit 1; }

## Run the whole test suite: lint, architecture contracts, unit and integration tests.
test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

integration: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -m integration

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_rate.py
	$(BIN)/python benchmarks/identity_speed.py
	$(BIN)/python benchmarks/audit_verify.py

## Re-resolve the lock file after changing dependencies in pyproject.toml.
lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
