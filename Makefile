# Every target sets itself up from nothing: `make test` and `make report` install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.perflab-installed

.PHONY: install test report bench clean lab

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest

# The main job, the nightly run on short defaults: every lab scenario and its fix (real
# PostgreSQL, the sample service, real k6), the doctor, a report per run, the optimization
# log (default -> fixed), every notebook executed to offline HTML in reports/DATE/.
REPORT_DURATION ?= 15
SCENARIOS := healthy login-storm false-idle retry-storm

report: install
	$(BIN)/perflab nightly --duration $(REPORT_DURATION) --scenarios $(SCENARIOS)
	$(BIN)/perflab runs

bench: install
	$(BIN)/python benchmarks/run.py

# JupyterLab on 127.0.0.1 with notebooks/ and the store ready: PERFLAB_STORE (default
# data/perflab.duckdb) with the bundled samples ingested. Options go in LAB_ARGS, e.g.
# make lab LAB_ARGS=--ServerApp.port=8899. exec: the server is make's child, stoppable by PID.
LAB_ARGS ?=
lab: install
	export PERFLAB_STORE="$${PERFLAB_STORE:-$(CURDIR)/data/perflab.duckdb}"; \
	$(BIN)/python -c 'from perflab.report.notebook_helpers import setup; setup()[0].close()' && \
	exec $(BIN)/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

clean:
	rm -rf $(VENV) data/perflab.duckdb data/perflab.duckdb.wal
