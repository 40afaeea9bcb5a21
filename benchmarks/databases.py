"""The databases a run uses: a SQLite file in a temporary directory and a fresh PostgreSQL
database created for the run (migrated to head, dropped afterwards), plus bulk loading."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import column, create_engine, table, text
from sqlalchemy.engine import URL, make_url

from agent_pool_store import migrations

PG_ADMIN_URL = os.environ.get(
    "AGENT_POOL_STORE_BENCH_PG",
    os.environ.get(
        "AGENT_POOL_STORE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    ),
)
"""A PostgreSQL URL with the right to create databases (the run makes and drops its own)."""

RECORDS = table(
    "agent_pool_records", column("pool_id"), column("seq"), column("kind"), column("payload_json")
)
"""The log table shared with the reference, as a plain Core table (no library code)."""

BULK_BATCH = 5000


def sqlite_database(directory: Path, name: str = "bench.sqlite") -> URL:
    """A SQLite file in ``directory``, migrated to head."""
    url = make_url(f"sqlite:///{directory / name}")
    migrations.upgrade(url)
    return url


def postgresql_problem(admin_url: str = PG_ADMIN_URL) -> str | None:
    """Why the PostgreSQL server cannot be used, or ``None`` if it can."""
    engine = create_engine(admin_url)
    try:
        with engine.connect():
            return None
    except Exception as error:  # any failure means unusable
        return str(error).splitlines()[0]
    finally:
        engine.dispose()


@contextmanager
def postgresql_database(admin_url: str = PG_ADMIN_URL) -> Iterator[URL]:
    """A fresh database for this run, migrated to head; dropped when the block ends."""
    name = f"aps_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
        try:
            migrations.upgrade(url)
            yield url
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


T = TypeVar("T")


def on_each_dialect(measure: Callable[[URL], T]) -> dict[str, T]:
    """``measure(url)`` on a fresh SQLite file, then on a fresh PostgreSQL database.

    Keyed ``SQLite`` and ``PostgreSQL``; PostgreSQL is left out, with a line saying why,
    when its server cannot be reached.
    """
    results: dict[str, T] = {}
    with tempfile.TemporaryDirectory() as folder:
        results["SQLite"] = measure(sqlite_database(Path(folder)))
    problem = postgresql_problem()
    if problem is None:
        with postgresql_database() as url:
            results["PostgreSQL"] = measure(url)
    else:
        print(f"PostgreSQL skipped: {problem}")
    return results


def bulk_insert(url: URL, rows: Sequence[tuple[str, int, str, str]]) -> None:
    """Insert log rows straight into ``agent_pool_records``, as another writer would."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for start in range(0, len(rows), BULK_BATCH):
                connection.execute(
                    RECORDS.insert(),
                    [
                        {"pool_id": pool_id, "seq": seq, "kind": kind, "payload_json": payload}
                        for pool_id, seq, kind, payload in rows[start : start + BULK_BATCH]
                    ],
                )
    finally:
        engine.dispose()


def vacuum_analyze(url: URL) -> None:
    """PostgreSQL: reclaim dead row versions and refresh statistics (what autovacuum does)."""
    if url.get_backend_name() != "postgresql":
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
