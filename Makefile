# pncp-ingest — every target installs what is missing first, so each works on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATE   ?= 2025-10-22

.PHONY: install test demo bench s3-start s3-stop clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make test: the whole suite, against the PNCP simulator and a real S3 server (SeaweedFS) on loopback.
test: $(STAMP)
	@bash scripts/s3-local.sh start
	@PNCP_TEST_REQUIRE_S3=1 $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; bash scripts/s3-local.sh stop; exit $$rc

## make demo: start the simulator, ingest a sample day into ./data/demo, show what landed.
demo: $(STAMP)
	@$(BIN)/python examples/demo.py --date $(DATE) --dest ./data/demo

## make bench: the real CLI against the simulator; prints a table, writes bench/out/results.json.
bench: $(STAMP)
	@$(BIN)/python bench/bench.py $(BENCH_ARGS)

s3-start: $(STAMP)
	@bash scripts/s3-local.sh start

s3-stop:
	@bash scripts/s3-local.sh stop

clean:
	rm -rf data/demo .pytest_cache .cache
