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

# The main job: ingest the bundled samples, run every lab scenario and its fix on short
# defaults (real PostgreSQL, the sample service, real k6), and print the runs.
REPORT_DURATION ?= 15
SCENARIOS := healthy login-storm false-idle retry-storm
FIXABLE := login-storm false-idle retry-storm

report: install
	find data/samples -type f ! -name '*.md' -print0 | sort -z | xargs -0 $(BIN)/perflab ingest
	$(BIN)/perflab sources
	set -e; for s in $(SCENARIOS); do $(BIN)/perflab run $$s --duration $(REPORT_DURATION); done
	set -e; for s in $(FIXABLE); do $(BIN)/perflab run $$s --variant fixed --duration $(REPORT_DURATION); done
	$(BIN)/perflab runs

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) data/perflab.duckdb data/perflab.duckdb.wal
