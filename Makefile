# pncp-ingest — every target installs what is missing first, so each works on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Airflow (~150 packages) lives in its own venv, never in .venv: the Airflow tests drive it.
AIRFLOW_VENV  := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
DEMO_DATE ?= 2025-10-22
DATE   ?= today

.PHONY: install airflow-venv lint test test-fast demo dist bench run backfill status s3-start s3-stop clean

# The demo needs the package and its readers (DuckDB, Polars), not the test tools: a venv made for
# the demo alone gets `.[demo]`; a development venv (make install) already has them.
DEMO_STAMP := $(VENV)/.installed-demo

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make airflow-venv: .venv-airflow with Airflow 3 and pncp-ingest[airflow] (for tests/test_airflow.py).
$(AIRFLOW_STAMP): pyproject.toml
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -e '.[airflow]'
	touch $(AIRFLOW_STAMP)

airflow-venv: $(AIRFLOW_STAMP)

## make test: the whole suite, against the PNCP simulator and a real S3 server (SeaweedFS) on loopback.
## The Airflow tests run in the same pytest, driving .venv-airflow as subprocesses.
test: $(STAMP) $(AIRFLOW_STAMP) lint
	@bash scripts/s3-local.sh start
	@PNCP_TEST_REQUIRE_S3=1 PNCP_TEST_REQUIRE_AIRFLOW=1 $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; bash scripts/s3-local.sh stop; exit $$rc

## make test-fast: the edit-test loop (under a minute): unit, property and in-process tests, none
## of which starts a simulator, an S3 server, Airflow or another process (tests/conftest.py marks those).
test-fast: $(STAMP)
	@$(BIN)/python -m pytest -q -m "not process" $(PYTEST_ARGS)

## make lint: ruff (lint + format check) and mypy --strict on src/ (make test runs it first).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make demo: start the simulator, ingest a sample day into ./data/demo, show what landed.
demo: $(DEMO_STAMP)
	@$(BIN)/python examples/demo.py --date $(DEMO_DATE) --dest ./data/demo
	@echo
	@echo "Next steps:"
	@echo "  what landed, with DuckDB:  $(BIN)/python examples/read_duckdb.py ./data/demo   (examples/read_polars.py: the same with Polars)"
	@echo "  the simulator by hand:     $(BIN)/python -m pncp_ingest.testing serve --port 8080"
	@echo "  and, in another terminal:  $(BIN)/pncp-ingest contratacoes --date $(DEMO_DATE) --dest ./data/sim --base-url http://127.0.0.1:8080/api"
	@echo "                             $(BIN)/pncp-ingest details --date $(DEMO_DATE) --dest ./data/sim --base-url http://127.0.0.1:8080/api"
	@echo "                             $(BIN)/pncp-ingest status --date $(DEMO_DATE) --dest ./data/sim"

## make run DATE=2025-10-22: contratações then details for one day (today, Brasília, by default),
## with the settings of .env / the environment (PNCP_DEST, PNCP_BASE_URL, ...).
run: $(STAMP)
	$(BIN)/pncp-ingest contratacoes --date $(DATE) $(ARGS); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 1 ] || exit $$rc; \
	$(BIN)/pncp-ingest details --date $(DATE) $(ARGS)

## make backfill FROM=2025-01-01 TO=2025-01-31: every day of the range, resumable.
backfill: $(STAMP)
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [ARGS=...]"; exit 2; }
	$(BIN)/pncp-ingest backfill --date $(FROM) --to $(TO) $(ARGS)

## make status [DATE=...] [TO=...]: what is committed, failed, pending and held, per day.
status: $(STAMP)
	$(BIN)/pncp-ingest status --date $(DATE) $(if $(TO),--to $(TO)) $(ARGS)

## make bench: the real CLI against the simulator; prints a table, writes bench/out/results.json.
bench: $(STAMP)
	@$(BIN)/python bench/bench.py $(BENCH_ARGS)

## make dist: a wheel and an sdist in dist/ (install one with pip: see README "Install").
dist:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet build
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

s3-start: $(STAMP)
	@bash scripts/s3-local.sh start

s3-stop:
	@bash scripts/s3-local.sh stop

clean:
	rm -rf data/demo .pytest_cache .cache build dist
