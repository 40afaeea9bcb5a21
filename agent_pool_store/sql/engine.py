"""Engines for the supported dialects: SQLite (embedded default) and PostgreSQL (psycopg 3).

SQLite connections use WAL, a busy timeout and ``synchronous=FULL`` by default; the driver's
own transaction handling is turned off so that a write unit can start with
``BEGIN IMMEDIATE`` (taking SQLite's write lock before reading) while reads use a plain
``BEGIN``. PostgreSQL connections get a ``lock_timeout`` so no wait is unbounded.
"""

from __future__ import annotations

import sqlite3
import time
import weakref
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.sql.driver_execution import execute_sql

DEFAULT_URL = "sqlite:///agent-pool.sqlite"
"""The embedded default database: a SQLite file in the working directory."""

WRITE_OPTION = "agent_pool_store_write"
"""Connection execution option marking a write unit (SQLite: ``BEGIN IMMEDIATE``)."""

SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


@dataclass(frozen=True)
class EngineSettings:
    """How the store talks to its database."""

    lock_timeout: float = 10.0
    """Seconds an operation may wait for another writer before failing with Timeout."""
    sqlite_synchronous: SqliteSynchronous = "FULL"
    """SQLite ``PRAGMA synchronous``: FULL keeps every commit durable across power loss."""


def safe_url(url: URL) -> str:
    """The URL as text with any password masked."""
    return url.render_as_string(hide_password=True)


_CONFIGURED: weakref.WeakSet[Engine] = weakref.WeakSet()


def _enable_wal(cursor: Any, timeout: float) -> None:
    """Switch the file to WAL (persistent), waiting up to ``timeout`` for other writers.

    SQLite does not apply its busy timeout to the journal-mode switch, so a file that is not
    in WAL yet would fail at once while another connection writes; retry instead.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _configure_sqlite(engine: Engine, settings: EngineSettings) -> None:
    if engine in _CONFIGURED:
        return
    _CONFIGURED.add(engine)
    busy_ms = max(1, int(settings.lock_timeout * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            _enable_wal(cursor, settings.lock_timeout)
            cursor.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        execute_sql(connection, "BEGIN IMMEDIATE" if write else "BEGIN")


def build_engine(url_or_engine: str | URL | Engine, settings: EngineSettings) -> Engine:
    """An engine for ``url_or_engine``, configured for the store.

    A given :class:`~sqlalchemy.Engine` is configured in place (SQLite event hooks); its
    owner keeps it and disposes of it.
    """
    if isinstance(url_or_engine, Engine):
        engine = url_or_engine
    else:
        url = make_url(url_or_engine)
        backend = url.get_backend_name()
        kwargs: dict[str, Any] = {}
        if backend == "sqlite":
            kwargs["connect_args"] = {"timeout": settings.lock_timeout}
        elif backend == "postgresql":
            if url.get_driver_name() not in ("psycopg", ""):
                raise AgentError(
                    AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                    RetryClassification.HOST_CONFIGURATION_NEEDED,
                    f"unsupported PostgreSQL driver in {safe_url(url)}: use postgresql+psycopg://",
                )
            url = url.set(drivername="postgresql+psycopg")
            lock_ms = max(1, int(settings.lock_timeout * 1000))
            kwargs["connect_args"] = {"options": f"-c lock_timeout={lock_ms}"}
        else:
            raise AgentError(
                AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                RetryClassification.HOST_CONFIGURATION_NEEDED,
                f"unsupported database {safe_url(url)}: use sqlite:/// or postgresql+psycopg://",
            )
        engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, settings)
    return engine
