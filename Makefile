# The two commands of the contract: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PORT   ?= 8000

.PHONY: run test install lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# The key that seals customer email and phone at rest: made once for this checkout
# (git-ignored), used unless PAYMEND_DATA_KEY is already set. Keep it with the database:
# without it the sealed contact details cannot be read.
DATA_KEY_FILE := .paymend-data-key
# and the key that signs customers' status links (docs/customers.md), made the same way
LINK_KEY_FILE := .paymend-link-key
WITH_DATA_KEY  = PAYMEND_DATA_KEY="$${PAYMEND_DATA_KEY:-$$(cat $(DATA_KEY_FILE))}" \
	PAYMEND_LINK_KEY="$${PAYMEND_LINK_KEY:-$$(cat $(LINK_KEY_FILE))}"

$(DATA_KEY_FILE) $(LINK_KEY_FILE): | $(STAMP)
	umask 077 && $(BIN)/paymend pii new-key > $@.tmp && mv $@.tmp $@

## run: set up, migrate the SQLite database, start paymend on http://127.0.0.1:$(PORT)
run: install $(DATA_KEY_FILE) $(LINK_KEY_FILE)
	$(WITH_DATA_KEY) $(BIN)/paymend db upgrade
	$(WITH_DATA_KEY) $(BIN)/paymend serve --port $(PORT) --demo-key-file .paymend-demo-key

## test: set up and run the whole suite (lint, types, tests)
test: install lint typecheck pytest

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck:
	$(BIN)/mypy

# one pytest worker per core and one more (PYTEST_WORKERS=0 runs them in this process):
# many tests wait on their own servers and subprocesses, which leaves a worker per core
# short of the cores. On a slow 2-core machine the suite took 760 s with 2 workers,
# 597 s with 3 (the cores 80 % busy), 572 s with 4
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))

pytest:
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --durations=15

## bench: the engine, HTTP and outbox-lag benchmarks (PostgreSQL too when reachable);
## bench/scale_out.py needs PostgreSQL and Redis
bench: install
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/http_load.py
	$(BIN)/python bench/event_lag.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache paymend.db paymend.db-* paymend-simulator.db* .paymend-demo-key .paymend-demo-key-console
