"""SQLite, the embedded default: WAL, ``BEGIN IMMEDIATE`` for writers, driver-level writes.

Connections use WAL, a busy timeout and ``synchronous=FULL`` by default; the driver's own
transaction handling is turned off so that a write unit can start with ``BEGIN IMMEDIATE``
(taking SQLite's write lock before reading) while reads use a plain ``BEGIN``. A statement
costs no round trip here, so every append is a unit of work (``try_append`` answers
``None``), whose head read and writes run on the ``sqlite3`` connection (:mod:`.driver`); a
look-up is one statement (``try_look_up``).
"""

from __future__ import annotations

import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, Engine, event, exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL

from agent_pool_store.asyncio_bridge import pause
from agent_pool_store.domain import AgentPoolStoreRecordPayload
from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.follow_loop import Waiter
from agent_pool_store.sql import statements
from agent_pool_store.sql.dialects.driver import (
    execute_sql,
    execute_steps,
    fetch_alone,
    fetch_one,
    look_up,
    many_step,
)
from agent_pool_store.sql.dialects.sqlite_waiter import SqliteWaiter
from agent_pool_store.sql.errors import driver_cause, is_busy, timeout_error
from agent_pool_store.sql.pool_head import PoolHead
from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.schema import key_and_json
from agent_pool_store.sql.settings import EngineSettings, schema_refused
from agent_pool_store.sql.upsert import upsert_statement

WRITE_OPTION = "agent_pool_store_write"
"""Connection execution option marking a write unit: it begins with ``BEGIN IMMEDIATE``."""

_BUSY_SET = "agent_pool_store_busy_ms"
"""Key in a pooled connection's ``info``: the busy timeout currently set on it."""

_CONFIGURED: weakref.WeakSet[Engine] = weakref.WeakSet()
_CONFIGURED_CONNECTION = "agent_pool_store_configured"
"""Key in a pooled connection's ``info``: the store's pragmas are set on it."""


_TAKE_WRITE_LOCK = "UPDATE agent_pool_store_pools SET pool_id = pool_id WHERE 0"
"""A write that changes nothing: SQLite takes the write lock for it (as ``BEGIN IMMEDIATE``
would), so a unit in a host's transaction knows at once whether it can write."""


def _in_transaction(connection: Connection) -> bool:
    """Whether the driver connection (``sqlite3``'s, or aiosqlite's over it) is in one."""
    driver: Any = connection.connection.driver_connection
    return bool(driver.in_transaction)


def _enable_wal(cursor: Any, timeout: float) -> None:
    """Switch the file to WAL (persistent), waiting up to ``timeout`` for other writers.

    SQLite does not apply its busy timeout to the journal-mode switch, so a file that is not
    in WAL yet would fail at once while another connection writes; retry instead.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode")  # not chained: aiosqlite's returns its own
            if cursor.fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class SqliteDialect:
    """The store on SQLite (``sqlite:///path``), through the standard ``sqlite3`` module."""

    name = "sqlite"
    insert = staticmethod(sqlite.insert)
    migrates_on_open = True
    batch_migrations = True

    def __init__(self, settings: EngineSettings, *, shared_engine: bool = False) -> None:
        if settings.schema is not None:
            raise schema_refused(self.name)
        self.settings = settings  # a shared engine's connections are set up at checkout

    @staticmethod
    def engine_arguments(url: URL, settings: EngineSettings) -> tuple[URL, dict[str, Any]]:
        """The URL and ``create_engine`` arguments for an engine the store builds.

        A file database's connection pool waits at most ``lock_timeout`` for a free
        connection (an in-memory database has one connection per thread, and no wait).
        """
        if settings.schema is not None:
            raise schema_refused(SqliteDialect.name)
        arguments: dict[str, Any] = {"connect_args": {"timeout": settings.lock_timeout}}
        if SqliteDialect.is_file(url):
            arguments["pool_timeout"] = settings.lock_timeout
        return url, arguments

    @staticmethod
    def is_file(url: URL) -> bool:
        """Whether ``url`` names a database file, which every connection opens alike.

        A database in memory is a different one per connection (unless shared by name).
        """
        if url.get_backend_name() != "sqlite":
            return False
        return bool(url.database) and url.database != ":memory:" and "memory" not in str(url.query)

    @staticmethod
    def missing_database(url: URL) -> str | None:
        """Why ``url`` names no existing database (a file that is not there), else ``None``."""
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None  # in memory, or a URI whose path SQLite interprets
        if Path(database).exists():
            return None
        return f"there is no SQLite database file {database!r}"

    def configure_engine(self, engine: Engine) -> None:
        """WAL, busy timeout and ``synchronous`` on connect; our own ``BEGIN`` per unit."""
        if engine in _CONFIGURED:
            return
        _CONFIGURED.add(engine)
        settings = self.settings
        busy_ms = self._busy_ms(None)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                _enable_wal(cursor, settings.lock_timeout)
                cursor.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
            finally:
                cursor.close()
            record.info[_CONFIGURED_CONNECTION] = True
            record.info[_BUSY_SET] = busy_ms

        @event.listens_for(engine, "checkout")
        def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            # a connection the engine's pool held before the store configured it
            if not record.info.get(_CONFIGURED_CONNECTION):
                _on_connect(dbapi_connection, record)

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            if _in_transaction(connection):
                return  # a unit began it (begin_unit); SQLAlchemy began with a Core statement
            write = bool(connection.get_execution_options().get(WRITE_OPTION))
            self._begin(connection, write=write, busy_ms=busy_ms)

    def _busy_ms(self, seconds: float | None) -> int:
        """The busy timeout, in milliseconds, for waits of ``seconds`` (``None``: the full)."""
        return max(1, int((self.settings.lock_timeout if seconds is None else seconds) * 1000))

    def _begin(self, connection: Connection, *, write: bool, busy_ms: int) -> None:
        """``BEGIN IMMEDIATE`` (write) or ``BEGIN`` on the driver, after the busy timeout."""
        info = connection.connection.info
        if info.get(_BUSY_SET, self._busy_ms(None)) != busy_ms:  # shorter, or back to full
            execute_sql(connection, f"PRAGMA busy_timeout = {busy_ms}")
            info[_BUSY_SET] = busy_ms
        execute_sql(connection, "BEGIN IMMEDIATE" if write else "BEGIN")

    def check_database(self, connection: Connection) -> None:
        """Nothing to check: SQLite keeps text as the ``sqlite3`` module hands it over."""

    def unit_options(self, *, write: bool) -> dict[str, Any]:
        """A write begins with ``BEGIN IMMEDIATE`` (a read is one snapshot already)."""
        return {WRITE_OPTION: write}

    def begin_unit(self, connection: Connection, *, write: bool, wait_limit: float | None) -> None:
        """``BEGIN IMMEDIATE`` (write, taking the file's write lock) or ``BEGIN``, on the driver.

        SQLAlchemy's own transaction is not begun: a unit that only runs driver-level
        statements (an append: head, batch, ``COMMIT``) skips its bookkeeping. If the unit
        runs a Core statement, SQLAlchemy begins then, and its ``begin`` event finds the
        driver in the unit's transaction and sends nothing. A shorter ``wait_limit`` is the
        busy timeout set before ``BEGIN``.
        """
        self._begin(connection, write=write, busy_ms=self._busy_ms(wait_limit))

    def end_unit(self, connection: Connection) -> None:
        """``ROLLBACK`` on the driver if the unit's transaction is still open."""
        if _in_transaction(connection):
            execute_sql(connection, "ROLLBACK")

    @contextmanager
    def host_unit(self, connection: Connection, *, write: bool) -> Iterator[None]:
        """The busy timeout for the unit; for a write, SQLite's write lock, taken first.

        A host's transaction began with a plain ``BEGIN``. If it has not written yet, the
        unit takes the write lock now, waiting for other writers at most ``lock_timeout``.
        If it has read, and another connection holds the lock or has committed since,
        SQLite cannot give it the lock at all: the unit fails at once (Retryable: roll the
        host's transaction back and run it again) rather than wait for what cannot come.
        The host's busy timeout is set back afterwards.
        """
        busy_ms = self._busy_ms(None)
        previous = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {busy_ms}")
        try:
            if write:
                try:
                    connection.exec_driver_sql(_TAKE_WRITE_LOCK)
                except exc.OperationalError as error:
                    if not is_busy(error):
                        raise
                    raise AgentError(
                        AgentErrorKind.TIMEOUT,
                        RetryClassification.RETRYABLE,
                        "sqlite agent pool store: the host's transaction could not take "
                        "SQLite's write lock (another connection holds it, or wrote after "
                        "this transaction first read); roll the transaction back and run "
                        "it again, and let it write (or bind the store) before it reads",
                    ) from driver_cause(error)
            yield
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(previous)}")

    def in_schema(
        self, connection: Connection, *, create: bool = False
    ) -> AbstractContextManager[None]:
        """Nothing to do: SQLite has no schemas (a dialect with one is never made)."""
        return nullcontext()

    def lock_for_migration(self, connection: Connection) -> None:
        """Nothing more: the migration's ``BEGIN IMMEDIATE`` holds the file's write lock."""

    def lock_logs(self, connection: Connection) -> None:
        """Nothing more: a write unit's ``BEGIN IMMEDIATE`` already keeps every writer out."""

    def read_head(self, connection: Connection, pool_id: str, *, lock: bool) -> PoolHead | None:
        """The head on the driver connection (the unit already holds the lock it needs)."""
        statement = statements.HEAD_FOR_UPDATE if lock else statements.HEAD
        row = fetch_one(connection, statement, {"pool_id": pool_id})
        return None if row is None else PoolHead.of_row(row)

    def write_batch(self, connection: Connection, pool_id: str, batch: ProjectionBatch) -> None:
        """One ``executemany`` per table on the driver connection, in the unit's transaction.

        All of them in one call to the driver (:func:`.driver.execute_steps`: one hop to
        aiosqlite's thread on an asyncio engine).
        """
        steps = []
        if batch.records:
            steps.append(
                many_step(
                    connection,
                    statements.RECORDS_INSERT,
                    [
                        {"pool_id": pool_id, "seq": seq, "kind": kind, "payload_json": json}
                        for seq, kind, json in batch.records
                    ],
                )
            )
        pool_values: dict[str, object] = {
            "projected_seq": batch.seq,
            "last_append_at": datetime.now(UTC),  # in process: this host is the database's
        }
        if batch.config_json is not None:
            pool_values["config_json"] = batch.config_json
        if batch.created:
            pool_values["created"] = True
        steps.append(
            many_step(
                connection,
                statements.pool_update(tuple(sorted(pool_values))),
                [{"pool_id_key": pool_id, **pool_values}],
            )
        )
        for table, changes in batch.rows.items():
            key, json_column = key_and_json(table)
            upserts = [
                {"pool_id": pool_id, key: k, json_column: json, "seq": seq}
                for k, (seq, json) in changes.items()
                if json is not None
            ]
            deletes = [
                {"pool_id": pool_id, "key": k} for k, (_, json) in changes.items() if json is None
            ]
            if upserts:
                steps.append(many_step(connection, upsert_statement(self.insert, table), upserts))
            if deletes:
                steps.append(many_step(connection, statements.delete_by_key(table), deletes))
        execute_steps(connection, steps)

    def commit(self, engine: Engine, connection: Connection, transaction_id: str | None) -> bool:
        """``COMMIT``: in process, so it either commits or fails having changed nothing.

        SQLAlchemy's, if a Core statement of the unit began its transaction too (its
        ``COMMIT`` is the driver's); otherwise on the driver (see :meth:`begin_unit`).
        """
        if connection.in_transaction():
            connection.commit()
        else:
            execute_sql(connection, "COMMIT")
        return True

    def try_append(
        self,
        engine: Engine,
        pool_id: str,
        readable_config: str,
        payload: AgentPoolStoreRecordPayload,
        payload_json: str,
    ) -> int | None:
        """Never: an append in a unit of work costs no extra round trip on SQLite."""
        return None

    def try_look_up(
        self,
        engine: Engine,
        pool_id: str,
        readable_config: str,
        json_column: Column[str],
        key: str,
    ) -> tuple[str | None] | None:
        """The look-up as one statement (:func:`.driver.look_up`).

        No ``BEGIN`` and ``COMMIT``; on aiosqlite, two hops to its thread against a read
        unit's eight.
        """
        return look_up(engine, pool_id, readable_config, json_column, key, autocommit=False)

    def try_next_event_sequence(
        self, engine: Engine, pool_id: str, readable_config: str
    ) -> int | None:
        """The counter advanced by one statement (:func:`.statements.count_up_statement`).

        Outside ``BEGIN``, ``sqlite3`` runs it as its own transaction, which waits for the
        write lock up to the busy timeout: a wait that ran out is Timeout; any other error
        leaves the call to a unit of work.
        """
        parameters = {"pool_id": pool_id, "readable_config": readable_config}
        try:
            row = fetch_alone(
                engine, statements.count_up_statement(self.insert), parameters, autocommit=False
            )
        except exc.DBAPIError as error:
            if is_busy(error):
                raise timeout_error(
                    f"{self.name} agent pool store", self.settings.lock_timeout
                ) from driver_cause(error, engine.url)
            return None
        return None if row is None else int(row[0])

    def open_waiter(self, engine: Engine, pool_id: str, poll_interval: float) -> Waiter:
        """Polls ``PRAGMA data_version`` on a connection of its own."""
        return SqliteWaiter(engine.url, poll_interval, self.settings.lock_timeout, pause=pause)
