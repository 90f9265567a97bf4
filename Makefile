# Every target sets itself up from nothing: `make test` and `make report` install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.perflab-installed

.PHONY: install test report bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest

# The main job: ingest the bundled samples into the default store and show what is there.
report: install
	find data/samples -type f ! -name '*.md' -print0 | sort -z | xargs -0 $(BIN)/perflab ingest
	$(BIN)/perflab sources

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) data/perflab.duckdb data/perflab.duckdb.wal
