"""Test databases: a migrated SQLite template file, and a PostgreSQL database per test run."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

from agent_pool_store import migrations

PG_ADMIN_URL = os.environ.get(
    "AGENT_POOL_STORE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
"""A PostgreSQL URL with the right to create databases (the tests make their own)."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, copied by each test that needs a fresh database."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    migrations.upgrade(sqlite_url(path))
    return path


@pytest.fixture
def sqlite_file(sqlite_template: Path, tmp_path: Path) -> Path:
    """A fresh, migrated SQLite file in this test's temporary directory."""
    path = tmp_path / "agent-pool.sqlite"
    shutil.copyfile(sqlite_template, path)
    return path


def _pg_reachable() -> str | None:
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect():
            return None
    except Exception as error:  # any failure means unreachable
        return str(error).splitlines()[0]
    finally:
        engine.dispose()


@contextmanager
def new_pg_database(prefix: str, options: str = "") -> Iterator[URL]:
    """A new, empty PostgreSQL database (``CREATE DATABASE … options``), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" {options}'))
        yield make_url(PG_ADMIN_URL).set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[URL]:
    """A fresh PostgreSQL database for this test run, migrated to head, dropped afterwards.

    Unreachable server: the tests fail under ``CI=true`` and are skipped elsewhere.
    """
    problem = _pg_reachable()
    if problem is not None:
        message = (
            f"PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string()} unreachable: {problem}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with new_pg_database("aps_test") as url:
        migrations.upgrade(url)
        yield url


def truncate_all(url: URL, schema: str | None = None) -> None:
    """Empty every table of this library (shared and own) in a test database (its schema)."""
    engine = create_engine(url)
    prefix = "" if schema is None else f'"{schema}".'
    try:
        with engine.begin() as connection:
            tables = [
                prefix + name
                for name in inspect(connection).get_table_names(schema=schema)
                if name.startswith("agent_pool_") and name != migrations.VERSION_TABLE
            ]
            connection.execute(text(f"TRUNCATE {', '.join(tables)}"))
    finally:
        engine.dispose()


@pytest.fixture
def pg_url(pg_database: URL) -> URL:
    """The run's PostgreSQL database, emptied for this test."""
    truncate_all(pg_database)
    return pg_database


PG_SCHEMA = "aps_contract"
"""The schema the ``postgresql-schema`` backends keep the store in."""


@pytest.fixture(scope="session")
def pg_schema_database(pg_database: URL) -> Iterator[URL]:
    """A PostgreSQL database for this test run with the store migrated into :data:`PG_SCHEMA`
    only: ``public`` has none of its tables, so nothing can silently fall through to it."""
    with new_pg_database("aps_test_schema") as url:
        migrations.upgrade(url, schema=PG_SCHEMA)
        yield url


@pytest.fixture
def pg_schema_url(pg_schema_database: URL) -> URL:
    """The run's PostgreSQL database, its :data:`PG_SCHEMA` emptied for this test."""
    truncate_all(pg_schema_database, PG_SCHEMA)
    return pg_schema_database
