"""Our append's own statements on the raw driver: the floor of the store's design.

The raw driver's one-row append (:mod:`benchmarks.raw_driver`) is the floor of any store
that writes one row per record. Ours writes more per append: it reads the pool's head,
inserts the record, updates the pool's watermark and upserts the projection rows (a message
and its receipt for ``record_message``). This module runs exactly those statements, as the
store compiles them, on a plain ``sqlite3`` / psycopg connection with every parameter built
before the timing, so that a benchmark can split an append's cost into the design's (these
statements against one row) and the library's (ours against these statements):

- SQLite: ``BEGIN IMMEDIATE``, the head read, one ``executemany`` per table, ``COMMIT``,
  as :class:`~agent_pool_store.sql.dialects.sqlite.SqliteDialect` runs a unit of work;
- PostgreSQL: the one-statement append
  (:func:`~agent_pool_store.sql.dialects.postgresql_statements.append_statement`), in
  autocommit mode, prepared by psycopg after five runs as the store's is.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL

from agent_pool_store import AgentPoolStoreConfig, RunMessageRecorded, open_store
from agent_pool_store.domain import AgentPoolStoredMessage, apply_payload
from agent_pool_store.sql import statements
from agent_pool_store.sql.dialects.driver import driver_statement
from agent_pool_store.sql.dialects.postgresql_statements import append_statement
from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.upsert import upsert_statement
from benchmarks import payloads
from benchmarks.raw_driver import RawConnection, connect


def _batches() -> Iterator[tuple[str, str, ProjectionBatch]]:
    """``(kind, payload_json, batch)`` of ``record_message`` appends with fresh keys."""
    run = uuid.uuid4().hex[:8]
    for n in itertools.count():
        message, receipt = payloads.small_message(f"raw.{run}.{n}")
        payload = RunMessageRecorded(
            stored=AgentPoolStoredMessage(message=message, receipt=receipt)
        )
        batch = ProjectionBatch()
        apply_payload(batch, payload)
        yield payload.type, payload.model_dump_json(), batch


def _sqlite_append(raw: RawConnection, pool_id: str, appends: int) -> Callable[[], object]:
    dialect = sqlite.dialect()  # type: ignore[no-untyped-call]
    head = driver_statement(statements.HEAD_FOR_UPDATE, dialect)
    insert = driver_statement(statements.RECORDS_INSERT, dialect)
    watermark = driver_statement(statements.pool_update(("projected_seq",)), dialect)
    prepared = [
        (
            kind,
            payload_json,
            [
                (driver_statement(upsert_statement(sqlite.insert, table), dialect), table, changes)
                for table, changes in batch.rows.items()
            ],
        )
        for kind, payload_json, batch in itertools.islice(_batches(), appends)
    ]
    calls = iter(prepared)
    connection: Any = raw.connection
    head_parameters = head.parameters({"pool_id": pool_id})

    def append() -> object:
        kind, payload_json, upserts = next(calls)
        connection.execute("BEGIN IMMEDIATE")
        seq = connection.execute(head.sql, head_parameters).fetchone()[2] + 1
        row = {"pool_id": pool_id, "seq": seq, "kind": kind, "payload_json": payload_json}
        cursor = connection.cursor()
        cursor.executemany(insert.sql, [insert.parameters(row)])
        cursor.executemany(
            watermark.sql, [watermark.parameters({"pool_id_key": pool_id, "projected_seq": seq})]
        )
        for upsert, table, changes in upserts:
            key, json_column = statements.key_and_json(table)
            cursor.executemany(
                upsert.sql,
                [
                    upsert.parameters({"pool_id": pool_id, key: k, json_column: json, "seq": seq})
                    for k, (_, json) in changes.items()
                ],
            )
        connection.execute("COMMIT")
        return seq

    return append


def _postgresql_append(
    raw: RawConnection, pool_id: str, readable_config: str, appends: int
) -> Callable[[], object]:
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    built = []
    for kind, payload_json, batch in itertools.islice(_batches(), appends):
        statement, parameters = append_statement(
            pool_id, readable_config, kind, payload_json, batch, append_token=len(built) + 1
        )
        prepared = driver_statement(statement, dialect)
        built.append((prepared.sql, prepared.parameters(parameters)))
    calls = iter(built)
    connection: Any = raw.connection

    def append() -> object:
        sql, parameters = next(calls)
        return connection.execute(sql, parameters).fetchone()

    return append


def our_statements(url: URL, appends: int) -> tuple[Callable[[], object], Callable[[], None]]:
    """An append of our statements on the raw driver, to a pool opened for it; and a close.

    Every parameter of ``appends`` appends (each a message with a key of its own) is built
    here; calling it more often than that raises StopIteration.
    """
    pool_id = f"pool.bench.raw-statements.{uuid.uuid4().hex[:8]}"
    with open_store(url, auto_upgrade=True) as store:
        store.open_pool(pool_id, AgentPoolStoreConfig())
        readable_config = store._runner.configs.readable(pool_id)
    assert readable_config is not None
    raw = connect(url)
    if raw.dialect == "sqlite":
        return _sqlite_append(raw, pool_id, appends), raw.close
    return _postgresql_append(raw, pool_id, readable_config, appends), raw.close
