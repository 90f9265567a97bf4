# Every target sets itself up from nothing: `make test` and `make report` install first, and
# check the system packages they need (scripts/ensure_system_packages.sh).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.perflab-installed

.PHONY: install system-packages test report bench clean clean-data lab

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Debian's chromium and PostgreSQL server binaries: installed when missing and root, else
# one line saying the command to run. Silent when they are there.
system-packages:
	@bash scripts/ensure_system_packages.sh

# Three gates, each run whatever the others gave; the target fails if any failed. ruff and
# mypy (config in pyproject.toml) take seconds; pytest (nbval included) runs last, so its
# summary is the closing line. PYTEST_ARGS narrows pytest (make test PYTEST_ARGS=tests/unit).
PYTEST_ARGS ?=
test: install system-packages
	@failed=""; \
	$(BIN)/python -m ruff check perflab || failed="$$failed ruff"; \
	$(BIN)/python -m mypy --strict perflab || failed="$$failed mypy"; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) || failed="$$failed pytest"; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed" >&2; exit 1; fi

# The main job, the nightly run on short defaults: every lab scenario and its fix (real
# PostgreSQL, the sample service, real k6), the doctor, a report per run, the optimization
# log (default -> fixed), every notebook executed to offline HTML in reports/DATE/. It ends
# with three paths: the night's index, its optimization log and its run reports folder.
REPORT_DURATION ?= 15
SCENARIOS := healthy login-storm false-idle retry-storm

report: install system-packages
	$(BIN)/perflab nightly --duration $(REPORT_DURATION) --scenarios $(SCENARIOS)

bench: install
	$(BIN)/python benchmarks/run.py

# JupyterLab on 127.0.0.1 with notebooks/ and the store ready: PERFLAB_STORE (default
# data/perflab.duckdb; made here if it is not there) with the bundled samples ingested. Options go in LAB_ARGS, e.g.
# make lab LAB_ARGS=--ServerApp.port=8899. exec: the server is make's child, stoppable by PID.
LAB_ARGS ?=
lab: install
	export PERFLAB_STORE="$${PERFLAB_STORE:-$(CURDIR)/data/perflab.duckdb}"; \
	$(BIN)/python -c 'from perflab.notebook import setup; setup(create_store=True)[0].close()' && \
	exec $(BIN)/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

# clean never touches measurements: the venv and caches only. clean-data removes the store
# and the run folders beside it, after asking (CONFIRM=yes answers for a script).
clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

clean-data:
	@store="$${PERFLAB_STORE:-data/perflab.duckdb}"; runs="$$(dirname "$$store")/runs"; \
	[ -e "$$store" ] || [ -e "$$runs" ] || { echo "clean-data: no store at $$store"; exit 0; }; \
	ls -d "$$store" "$$store.wal" "$$runs" 2>/dev/null; \
	answer="$(CONFIRM)"; \
	if [ -z "$$answer" ]; then read -r -p "remove these (the measurements in them are gone for good)? [y/N] " answer; fi; \
	case "$$answer" in y|Y|yes) rm -rf "$$store" "$$store.wal" "$$runs"; echo "clean-data: removed";; \
	  *) echo "clean-data: kept"; exit 1;; esac
