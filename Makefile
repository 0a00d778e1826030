# Loyalist — `make demo` then `make test`. Everything installs into this folder (.venv, .tools).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
# uv: use the one on PATH, else bootstrap it with pip into .tools/ (no global install).
UV ?= $(shell command -v uv || echo $(CURDIR)/.tools/uv/bin/uv)
VENV_BIN := $(CURDIR)/.venv/bin
# Extra `uv sync` flags, e.g. SYNC_FLAGS=--all-groups to run the DAG's dbt layer on Spark.
SYNC_FLAGS ?=
# `make dbt-spark` runs in its own environment with the spark group (dbt-spark, PySpark). Kept out of
# .venv on purpose: with PySpark installed, GX's optional Spark import runs pyspark.sql.connect's
# doctest guard, which calls sys.exit(0) in pytest-xdist workers (their __main__ has no __file__)
# and aborts `make test`.
SPARK_VENV := $(CURDIR)/.venv-spark

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

# The suite on TEST_WORKERS processes (pytest-xdist); with worksteal an idle worker takes queued
# tests from a busy one (a DAG test takes 1-2 min). The tests wait on subprocesses (Airflow, dbt)
# more than they use a core: on a 2-core host, 2 workers took 7m17s against 13m29s serially, and
# 4 workers 8m09s (2026-12-06, the 267 tests of then; with the 6 formerly marked slow, 273 tests
# took 8m35s on 2 workers). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)

# Target parity checks (make dbt-postgres / dbt-spark): a small sample built on DuckDB and on the target.
PARITY_DIR ?= $(CURDIR)/.loyalist/parity
PARITY_ARGS ?= --customers 300 --days 200 --seed 7 --end-date 2025-03-31
PARITY_PG_DBNAME ?= loyalist_parity

.PHONY: help install demo test test-all lint airflow-db clean browser dbt-postgres dbt-spark e2e-airflow bench

help:
	@echo "make demo      create .venv, generate sample data, run the loyalist_daily DAG, print the summary"
	@echo "make test      run the test suite (excludes @slow)"
	@echo "make lint      ruff"
	@echo "make e2e-airflow  real Airflow (Postgres metadata DB, scheduler, dag-processor, API server) runs loyalist_daily"
	@echo "make dbt-postgres / dbt-spark   build a sample on DuckDB and on that dbt target, compare the marts"
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

browser:
	@bash scripts/install_browser.sh

test: install browser
	$(VENV_BIN)/pytest -m "not slow" $(PYTEST_PARALLEL)

test-all: install browser
	$(VENV_BIN)/pytest $(PYTEST_PARALLEL)

# Real scheduler run: see scripts/e2e_airflow.py and docs/deployment.md. Needs the local PostgreSQL.
# E2E_ARGS, e.g. "--executor celery" (needs apache-airflow-providers-celery and the local Redis).
e2e-airflow: install
	$(VENV_BIN)/python scripts/e2e_airflow.py $(E2E_ARGS)

dbt-postgres: install
	LOYALIST_PG_DBNAME=$(PARITY_PG_DBNAME) $(VENV_BIN)/python -m loyalist.target_parity --target postgres --data-dir $(PARITY_DIR)/postgres $(PARITY_ARGS)

$(SPARK_VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(SPARK_VENV) $(UV) sync --frozen --python $(PYTHON) --all-groups
	@touch $@

# Needs Java 17; installs the spark dependency group into .venv-spark (see SPARK_VENV above).
dbt-spark: $(SPARK_VENV)/.synced
	$(SPARK_VENV)/bin/python -m loyalist.target_parity --target spark --data-dir $(PARITY_DIR)/spark $(PARITY_ARGS)

# Benchmarks (docs/benchmarks.md): e.g. `make bench SIZES=10000` for a quick one. Not part of `make test`.
SIZES ?= 10000,100000,1000000
BENCH_DAYS ?= 365
bench: install
	PYTHONPATH=$(CURDIR) $(VENV_BIN)/python -m benchmarks.bench --sizes $(SIZES) --days $(BENCH_DAYS)

lint: install
	$(VENV_BIN)/ruff check loyalist ml expectations dags tests scripts benchmarks

clean:
	rm -rf data .loyalist .venv .venv-spark .tools .bench dbt_project/target dbt_project/logs
