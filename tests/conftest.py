"""Shared fixtures: a tiny generated landing zone and settings pointing at temporary folders."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from loyalist.config import Settings, get_settings
from loyalist.generate import GeneratorConfig, generate
from loyalist.targets import ensure_postgres_database, postgres_conninfo

TINY = GeneratorConfig(customers=400, days=60, seed=7, end_date=date(2025, 3, 31), dirty_rate=0.002)
# Enough history for the ML step to train (it needs 3 x churn_after_days of data).
SEASON = GeneratorConfig(customers=800, days=300, seed=7, end_date=date(2025, 3, 31), dirty_rate=0.002)


@pytest.fixture(scope="session")
def tiny_landing_master(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landing_master")
    generate(TINY, out)
    return out


@pytest.fixture(scope="session")
def season_landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("season_landing")
    generate(SEASON, out)
    return out


@pytest.fixture
def landing(tiny_landing_master: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny landing zone (tests may add or change files)."""
    out = tmp_path / "landing"
    shutil.copytree(tiny_landing_master, out)
    return out


@pytest.fixture
def settings(tmp_path: Path, landing: Path, monkeypatch) -> Settings:
    monkeypatch.setenv("LOYALIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOYALIST_LANDING_DIR", str(landing))
    monkeypatch.setenv("LOYALIST_DUCKDB_MEMORY_LIMIT", "1GB")
    return get_settings()


@pytest.fixture
def pg_database(monkeypatch):
    """A database of our own on the local server (the marts use fixed schema names), dropped afterwards."""
    name = f"loyalist_dbt_test_{os.getpid()}"
    monkeypatch.setenv("LOYALIST_PG_DBNAME", name)
    with psycopg.connect(postgres_conninfo("postgres"), autocommit=True) as pg:
        pg.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    assert ensure_postgres_database(name)
    yield name
    with psycopg.connect(postgres_conninfo("postgres"), autocommit=True) as pg:
        pg.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def target_with_empty_landing(request, settings) -> Settings:
    """``settings`` on each dbt target (DuckDB; PostgreSQL, marked postgres), with no landing files:
    the test writes its own, day by day."""
    if request.param == "postgres":
        request.getfixturevalue("pg_database")
    for folder in settings.landing_dir.iterdir():
        if folder.is_dir():
            shutil.rmtree(folder)
    return replace(settings, dbt_target=request.param)

