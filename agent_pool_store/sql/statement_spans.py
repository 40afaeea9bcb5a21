"""Spans for the statements the store runs on the driver connection (see ``dialects/driver``).

Those statements bypass ``Connection.execute``, so SQLAlchemy's instrumentation never sees
them; :func:`statement_span` makes each call of the driver (but transaction control:
:data:`UNTRACED`) a child span of the traced store operation, with the database semantic
conventions: ``db.system.name``, ``db.query.text`` (the statements' SQL, with placeholders:
values are never in it), ``db.operation.name``, ``db.operation.batch.size``,
``db.namespace``, ``server.address`` and ``server.port`` (never the URL, which may hold a
password). Outside a traced operation it does nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection

from agent_pool_store import telemetry_hooks, telemetry_names

DriverSteps = Sequence[tuple[str, Any, bool]]
"""What the driver runs in one call: ``(sql, parameters, many)`` per statement."""

UNTRACED = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "PRAGMA"})
"""Statement keywords that get no span of their own: a unit's ``BEGIN`` / ``COMMIT`` and
SQLite's settings carry no data (SQLAlchemy's instrumentation does not trace transaction
control either), and an SDK span costs 30 to 50 µs, a tenth of an append. SQLite's
``BEGIN IMMEDIATE`` keeps its span: it is where a writer waits for the file's lock."""


@functools.lru_cache(maxsize=256)
def _operation(sql: str) -> str:
    """The statement's first keyword (``INSERT``, ``WITH``, ``BEGIN``, …)."""
    words = sql.split(None, 1)
    return words[0].upper() if words else ""


def _name(steps: DriverSteps) -> str:
    """``db.operation.name``: one statement's keyword; ``BATCH [keyword]`` for several."""
    if len(steps) == 1 and not steps[0][2]:
        return _operation(steps[0][0])
    operations = {_operation(sql) for sql, _, _ in steps}
    return f"BATCH {operations.pop()}" if len(operations) == 1 else "BATCH"


def _attributes(connection: Connection, steps: DriverSteps, name: str) -> Mapping[str, str | int]:
    url = connection.engine.url
    executions = sum(len(parameters) if many else 1 for _, parameters, many in steps)
    attributes: dict[str, str | int] = {
        telemetry_names.DB_QUERY_TEXT: "; ".join(sql for sql, _, _ in steps),
        telemetry_names.DB_OPERATION_NAME: name,
    }
    if executions > 1:
        attributes[telemetry_names.DB_OPERATION_BATCH_SIZE] = executions
    if url.database:
        attributes[telemetry_names.DB_NAMESPACE] = url.database
    if url.host:
        attributes[telemetry_names.SERVER_ADDRESS] = url.host
        if url.port is not None:
            attributes[telemetry_names.SERVER_PORT] = url.port
    return attributes


def statement_span(connection: Connection, steps: DriverSteps) -> AbstractContextManager[object]:
    """A span around one call of the driver running ``steps``, if an operation is traced."""
    if telemetry_hooks.active() is None:
        return telemetry_hooks.NOT_RECORDED
    name = _name(steps)
    if name in UNTRACED and steps[0][0] != "BEGIN IMMEDIATE":
        return telemetry_hooks.NOT_RECORDED
    return telemetry_hooks.statement(
        connection.dialect.name, name, lambda: _attributes(connection, steps, name)
    )
