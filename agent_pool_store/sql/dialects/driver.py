"""Driver-level execution: hot statements compiled once by SQLAlchemy, run by the driver.

SQLAlchemy's per-statement execution (parameter processing, execution context, result
set-up) costs more than the database's own work for the store's small statements: profiled,
about half the client time of a SQLite append, and a third of a PostgreSQL one. So:

- on SQLite (:mod:`.sqlite`), ``BEGIN`` / ``BEGIN IMMEDIATE``, the pool-head read and every
  write statement of a unit of work run on the ``sqlite3`` connection inside the unit's
  transaction;
- on PostgreSQL (:mod:`.postgresql`), the one-statement append and look-up run on the psycopg
  connection in autocommit mode.

The statements are still built with Core and compiled by SQLAlchemy (once per statement and
dialect), with the bind processors of their types applied as SQLAlchemy would. Driver errors
are wrapped in SQLAlchemy's own ``DBAPIError`` classes (a disconnect invalidates the
connection and says so), so the store's retries and error translation treat them exactly as
errors from ``Connection.execute``. Look-ups and snapshot reads go through
``Connection.execute``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from sqlalchemy import Column, Connection, Engine, exc
from sqlalchemy.engine import Dialect

from agent_pool_store.asyncio_bridge import wait_for
from agent_pool_store.sql import statements
from agent_pool_store.sql.statement_spans import statement_span

T = TypeVar("T")


@dataclass(frozen=True)
class DriverStatement:
    """A statement's SQL for one dialect and how to build the driver's parameters."""

    sql: str
    names: tuple[str, ...]
    """Bind parameter names, in positional order for a positional paramstyle."""
    positional: bool
    """Whether the driver takes a tuple (``?``, SQLite) or a mapping (``%(name)s``, psycopg)."""
    defaults: Mapping[str, Any]
    """Values of the binds that are not required (literals the statement carries)."""
    processors: Mapping[str, Callable[[Any], Any]]
    """The bind processors of the binds' types (e.g. JSON serialisation), as SQLAlchemy
    would apply them."""

    _pick: Callable[[Mapping[str, Any]], Any] | None = field(init=False, repr=False, compare=False)
    """``operator.itemgetter`` of :attr:`names` (a tuple of values for two or more)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pick", operator.itemgetter(*self.names) if self.names else None)

    def parameters(self, row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """``row`` as the driver takes it (KeyError if a required bind is missing)."""
        if self.defaults:
            row = {**self.defaults, **row}
        values: tuple[Any, ...]
        if self._pick is None:
            values = ()
        elif len(self.names) == 1:
            values = (self._pick(row),)
        else:
            values = self._pick(row)
        if self.processors:
            values = tuple(
                value if (processor := self.processors.get(name)) is None else processor(value)
                for name, value in zip(self.names, values, strict=True)
            )
        return values if self.positional else dict(zip(self.names, values, strict=True))


@functools.cache
def driver_statement(statement: Any, dialect: Dialect) -> DriverStatement:
    """Compile ``statement`` for ``dialect`` once."""
    compiled = statement.compile(dialect=dialect)
    binds = compiled.binds
    if compiled.positional:
        names = tuple(compiled.positiontup or ())
    else:
        names = tuple(binds)
        if any(compiled.escaped_bind_names.get(name, name) != name for name in names):
            raise ValueError("bind names that need escaping are not supported")
    processors = {}
    for name, bind in binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    return DriverStatement(
        str(compiled),
        names,
        bool(compiled.positional),
        {name: bind.effective_value for name, bind in binds.items() if not bind.required},
        processors,
    )


Step = tuple[str, Any, bool]
"""One statement for :func:`_run`: its SQL, its parameters (a list of them when ``many``),
and ``many`` (``executemany``)."""


def _on_driver(
    connection: Connection,
    work: Callable[[Any], T],
    work_async: Callable[[Any], Coroutine[Any, Any, T]],
) -> T:
    """``work(dbapi_connection)``, where the driver's calls cost least.

    For ``sqlite3`` and psycopg, here, on the driver's connection. On an asyncio engine the
    DBAPI connection is SQLAlchemy's adaptation of the driver, and each adapted call is an
    await of its own, from the greenlet the async store runs in; so instead:

    - psycopg's ``AsyncConnection`` runs ``work_async`` (the same statements, awaited), as
      one await;
    - aiosqlite keeps its ``sqlite3`` connection in a worker thread, where ``work`` runs, as
      one hop, through aiosqlite's own queue (``Connection._execute``, which SQLAlchemy's
      aiosqlite adaptation also uses).
    """
    record = connection.connection
    if connection.dialect.is_async:
        driver: Any = record.driver_connection
        if connection.dialect.driver == "aiosqlite":
            result: T = wait_for(driver._execute(work, driver._conn))
            return result
        return wait_for(work_async(driver))
    return work(record.dbapi_connection)


def _run(
    connection: Connection,
    steps: Sequence[Step],
    *,
    fetch: Literal["one", "all"] | None = None,
    autocommit: bool = False,
) -> Any:
    """Run statements in order on one driver cursor; the last one's rows as ``fetch`` says.

    ``autocommit`` (psycopg): each statement is its own transaction, with no ``BEGIN`` and
    ``COMMIT`` round trips; the connection (not in a transaction) is put back in
    transaction mode afterwards.

    Driver errors become SQLAlchemy's ``DBAPIError`` naming the statement that failed. A
    disconnect invalidates the connection (as ``Connection.execute`` would), so the pool
    does not hand it out again, and the error says so (``connection_invalidated``).
    """
    dialect = connection.dialect
    dbapi = dialect.loaded_dbapi
    failed: list[Step] = []

    def work(driver: Any) -> Any:
        if autocommit:
            driver.autocommit = True
        try:
            cursor = driver.cursor()
            for step in steps:
                sql, parameters, many = step
                failed[:] = [step]
                if many:
                    cursor.executemany(sql, parameters)
                else:
                    cursor.execute(sql, parameters)
            fetched = (
                None
                if fetch is None
                else cursor.fetchone()
                if fetch == "one"
                else cursor.fetchall()
            )
            failed.clear()
            return fetched
        finally:
            if autocommit:
                driver.autocommit = False

    async def work_async(driver: Any) -> Any:
        if autocommit:
            await driver.set_autocommit(True)
        try:
            async with driver.cursor() as cursor:
                for step in steps:
                    sql, parameters, many = step
                    failed[:] = [step]
                    if many:
                        await cursor.executemany(sql, parameters)
                    else:
                        await cursor.execute(sql, parameters)
                fetched = (
                    None
                    if fetch is None
                    else await cursor.fetchone()
                    if fetch == "one"
                    else await cursor.fetchall()
                )
                failed.clear()
                return fetched
        finally:
            if autocommit:
                await driver.set_autocommit(False)

    try:
        with statement_span(connection, steps):  # telemetry: a child span of the operation
            return _on_driver(connection, work, work_async)
    except dbapi.Error as error:
        lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, None)
        if lost or not failed:  # lost, or its mode could not be set: not to be used again
            connection.invalidate()
        sql, parameters, _ = failed[0] if failed else steps[0]
        raise exc.DBAPIError.instance(
            sql, parameters, error, dbapi.Error, connection_invalidated=lost, dialect=dialect
        ) from None


def execute_sql(connection: Connection, sql: str) -> None:
    """Run a parameterless statement (``BEGIN IMMEDIATE``) on the driver connection."""
    _run(connection, [(sql, (), False)])


def many_step(connection: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]) -> Step:
    """``statement`` once per row, as a step of :func:`execute_steps`."""
    prepared = driver_statement(statement, connection.dialect)
    return prepared.sql, [prepared.parameters(row) for row in rows], True


def execute_steps(connection: Connection, steps: Sequence[Step]) -> None:
    """Run the steps in order on the driver connection, in the current transaction."""
    if steps:
        _run(connection, steps)


def execute_many(connection: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run ``statement`` once per row on the driver connection, in the current transaction."""
    execute_steps(connection, [many_step(connection, statement, rows)])


def fetch_one(
    connection: Connection,
    statement: Any,
    parameters: Mapping[str, Any],
    *,
    autocommit: bool = False,
) -> tuple[Any, ...] | None:
    """The first row ``statement`` returns (as the driver gives it), or ``None``.

    ``autocommit`` (psycopg): the statement is its own transaction (see :func:`_run`); the
    connection must not be in one.
    """
    prepared = driver_statement(statement, connection.dialect)
    row: tuple[Any, ...] | None = _run(
        connection,
        [(prepared.sql, prepared.parameters(parameters), False)],
        fetch="one",
        autocommit=autocommit,
    )
    return row


def fetch_all(
    connection: Connection, statement: Any, parameters: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Every row ``statement`` returns, as the driver gives them, in the current transaction.

    No SQLAlchemy ``Row`` is made per row: for reads of many rows (a log's records).
    """
    prepared = driver_statement(statement, connection.dialect)
    rows: list[tuple[Any, ...]] = _run(
        connection, [(prepared.sql, prepared.parameters(parameters), False)], fetch="all"
    )
    return rows


def fetch_alone(
    engine: Engine, statement: Any, parameters: Mapping[str, Any], *, autocommit: bool
) -> tuple[Any, ...] | None:
    """The first row of ``statement``, run as one statement outside a transaction.

    On a pooled connection's driver connection (see :func:`fetch_one`); ``sqlite3``
    connections are in autocommit mode outside a unit's ``BEGIN``.
    """
    with engine.connect() as connection:
        return fetch_one(connection, statement, parameters, autocommit=autocommit)


def look_up(
    engine: Engine,
    pool_id: str,
    readable_config: str,
    json_column: Column[str],
    key: str,
    *,
    autocommit: bool,
) -> tuple[str | None] | None:
    """A look-up by key as one statement outside a transaction (:func:`fetch_alone`).

    The statement (:func:`~agent_pool_store.sql.statements.lookup_statement`) reads the row
    with the pool's row: ``(json,)`` or ``(None,)`` (no such key) if the pool is current
    with ``readable_config``; ``None`` if it is not, or on any driver error, and a read unit
    of work answers instead (it checks the pool, catches up or reports). ``autocommit``:
    the connection's mode for it (psycopg; ``sqlite3`` connections are always in it).
    """
    parameters = {"pool_id": pool_id, "key": key, "readable_config": readable_config}
    statement = statements.lookup_statement(statements.row_by_key(json_column))
    try:
        row = fetch_alone(engine, statement, parameters, autocommit=autocommit)
    except exc.DBAPIError:
        return None
    return None if row is None else (row[0],)
