# Loyalist — `make demo` then `make test`. Everything installs into this folder (.venv, .tools).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
# uv: use the one on PATH, else bootstrap it with pip into .tools/ (no global install).
UV ?= $(shell command -v uv || echo $(CURDIR)/.tools/uv/bin/uv)
VENV_BIN := $(CURDIR)/.venv/bin
# Extra `uv sync` flags, e.g. SYNC_FLAGS=--all-groups for the Spark dbt target (CI sets it).
SYNC_FLAGS ?=

# Demo sample: 20k customers, one year ending 2025-12-31. The run triggered at 2026-01-01 00:00 UTC
# covers the data interval [2025-12-31, 2026-01-01) — and, on a fresh warehouse, all history before it.
DEMO_CUSTOMERS ?= 20000
DEMO_DAYS ?= 365
DEMO_SEED ?= 42
DEMO_END_DATE ?= 2025-12-31
DEMO_RUN_DATE ?= 2026-01-01

# Embedded defaults: Airflow on SQLite under .loyalist/, warehouse under data/ (see .env.example).
export AIRFLOW_HOME ?= $(CURDIR)/.loyalist/airflow
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export AIRFLOW__CORE__PARALLELISM ?= 4
export GX_ANALYTICS_ENABLED ?= false
export DBT_SEND_ANONYMOUS_USAGE_STATS ?= False
export UV_COMPILE_BYTECODE ?= 1

.PHONY: help install demo test test-all lint airflow-db clean bench

help:
	@echo "make demo      create .venv, generate sample data, run the loyalist_daily DAG, print the summary"
	@echo "make test      run the test suite (excludes @slow)"
	@echo "make lint      ruff"
	@echo "make bench     benchmarks at SIZES customers (default 10k,100k,1M) -> BENCHMARKS.md (not in make test)"
	@echo "make clean     remove generated data, Airflow state and the venv"

$(UV):
	@echo "uv not found: installing it with pip into .tools/uv"
	$(PYTHON) -m pip install --quiet --target $(CURDIR)/.tools/uv uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) $(SYNC_FLAGS)
	@touch $@

install: .venv/.synced

airflow-db: install
	@mkdir -p $(AIRFLOW_HOME)
	$(VENV_BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || { tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1; }

demo: install airflow-db
	$(VENV_BIN)/loyalist generate --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) --seed $(DEMO_SEED) --end-date $(DEMO_END_DATE)
	@mkdir -p $(AIRFLOW_HOME)
	@echo "running the loyalist_daily DAG for $(DEMO_RUN_DATE) (log: $(AIRFLOW_HOME)/demo-dag-test.log)"
	@$(VENV_BIN)/airflow dags test loyalist_daily $(DEMO_RUN_DATE) > $(AIRFLOW_HOME)/demo-dag-test.log 2>&1; \
	  grep -E "DagRun Finished|ERROR|Error" $(AIRFLOW_HOME)/demo-dag-test.log | grep -v "Error pages" | tail -5 | cut -c1-400; \
	  grep -q "state=success" $(AIRFLOW_HOME)/demo-dag-test.log || { echo "DAG run failed: see $(AIRFLOW_HOME)/demo-dag-test.log"; exit 1; }
	$(VENV_BIN)/loyalist summary

test: install
	$(VENV_BIN)/pytest -m "not slow"

test-all: install
	$(VENV_BIN)/pytest

# Benchmarks (docs/benchmarks.md): e.g. `make bench SIZES=10000` for a quick one. Not part of `make test`.
SIZES ?= 10000,100000,1000000
BENCH_DAYS ?= 365
bench: install
	PYTHONPATH=$(CURDIR) $(VENV_BIN)/python -m benchmarks.bench --sizes $(SIZES) --days $(BENCH_DAYS)

lint: install
	$(VENV_BIN)/ruff check loyalist ml expectations dags tests benchmarks

clean:
	rm -rf data .loyalist .venv .tools .bench dbt_project/target dbt_project/logs
