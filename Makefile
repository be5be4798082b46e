# One entry point for every routine task. A fresh clone needs only python3 (3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/mqlsync demo

lint: $(STAMP)
	$(BIN)/ruff check scoring connectors store flows sandbox tests bench
	$(BIN)/ruff format --check scoring connectors store flows sandbox tests bench
	$(BIN)/mypy scoring connectors store flows sandbox

bench: $(STAMP)
	$(BIN)/python bench/scoring.py
	$(BIN)/python bench/store_ingest.py
	$(BIN)/python bench/sandbox.py
	$(BIN)/python bench/connectors.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/bulk.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
