"""SQLite's hot path: Core statements compiled once, executed on the driver connection.

An append on SQLite is six statements in one transaction and no round trip; SQLAlchemy's
per-statement execution (parameter processing, execution context, result set-up) cost more
than SQLite's own work: profiled, about half the client time of an append. So on SQLite the
statements of every unit's first steps and of every write (``BEGIN``, the pool head, the
record, the watermark and the projection rows) are still built with Core and compiled by
SQLAlchemy (once per dialect), but are handed to the ``sqlite3`` connection inside the unit of
work's transaction. Driver errors are wrapped in SQLAlchemy's own ``DBAPIError`` classes, so
the store's retry and translation treat them exactly as errors from ``Connection.execute``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect


@dataclass(frozen=True)
class DriverStatement:
    """A statement's SQL for one dialect and how to order its parameters."""

    sql: str
    names: tuple[str, ...]
    """Bind parameter names in positional order."""
    defaults: Mapping[str, Any]
    """Values of the binds that are not required (literals the statement carries)."""

    def parameters(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """``row`` as the positional tuple the driver takes (KeyError if a bind is missing)."""
        return tuple(row[name] if name in row else self.defaults[name] for name in self.names)


@functools.cache
def driver_statement(statement: Any, dialect: Dialect) -> DriverStatement:
    """Compile ``statement`` for ``dialect`` once; it must use positional parameters."""
    compiled = statement.compile(dialect=dialect)
    if not compiled.positional:
        raise ValueError(f"{dialect.name} does not use positional parameters")
    defaults = {name: bind.effective_value for name, bind in compiled.binds.items()}
    required = {name for name, bind in compiled.binds.items() if bind.required}
    return DriverStatement(
        str(compiled),
        tuple(compiled.positiontup or ()),
        {name: value for name, value in defaults.items() if name not in required},
    )


def _run(connection: Connection, sql: str, parameters: Any, *, many: bool) -> Any:
    """Run SQL on the driver connection; driver errors become SQLAlchemy's ``DBAPIError``."""
    dbapi = connection.dialect.loaded_dbapi
    driver = connection.connection.driver_connection
    assert driver is not None  # a checked-out connection
    try:
        return (driver.executemany if many else driver.execute)(sql, parameters)
    except dbapi.Error as error:
        raise exc.DBAPIError.instance(sql, parameters, error, dbapi.Error) from None


def execute_sql(connection: Connection, sql: str) -> None:
    """Run a parameterless statement (``BEGIN IMMEDIATE``) on the driver connection."""
    _run(connection, sql, (), many=False)


def execute_many(connection: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run ``statement`` once per row on the driver connection, in the current transaction."""
    prepared = driver_statement(statement, connection.dialect)
    _run(connection, prepared.sql, [prepared.parameters(row) for row in rows], many=True)


def fetch_one(
    connection: Connection, statement: Any, parameters: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """The first row ``statement`` returns (as the driver gives it), or ``None``."""
    prepared = driver_statement(statement, connection.dialect)
    row: tuple[Any, ...] | None = _run(
        connection, prepared.sql, prepared.parameters(parameters), many=False
    ).fetchone()
    return row
