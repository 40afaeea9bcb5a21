"""PostgreSQL: a whole :class:`ProjectionBatch` written by one statement.

Every round trip to the server costs more than the statement it carries, so on PostgreSQL
an append (record, projection rows, pool watermark) is a single ``UPDATE`` of the pool row
with data-modifying CTEs: one ``INSERT … SELECT FROM json_to_recordset(…)`` per table the
batch touches (``ON CONFLICT DO UPDATE`` for projections), one ``DELETE`` per table it
deletes from. Rows travel as one JSON parameter per table (serialised by the C ``json``
encoder; text arrays would be escaped character by character in Python), so the statement
depends only on which tables the batch touches, not on how many rows; each such shape is
built once and psycopg prepares it.

A batch holds at most one change per row, so no CTE touches a row twice, as PostgreSQL
requires of one statement.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import BigInteger, Table, Text, bindparam, column, func, select
from sqlalchemy.dialects import postgresql

from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.schema import PoolRow, RecordRow, key_and_json, table_of

_POOLS = table_of(PoolRow)
_RECORDS = table_of(RecordRow)
_POOL_ID = bindparam("batch_pool_id", type_=Text)

Shape = tuple[bool, tuple[Table, ...], tuple[Table, ...]]
"""Whether records are inserted, the tables upserted into and the tables deleted from."""


def _rows(name: str, *columns: tuple[str, Any]) -> Any:
    """``json_to_recordset(:name) AS (column type, …)``: rows sent as one JSON array."""
    return (
        func.json_to_recordset(bindparam(name, type_=postgresql.JSON))
        .table_valued(*(column(label, type_) for label, type_ in columns))
        .render_derived(with_types=True)
    )


def _insert_records() -> Any:
    rows = _rows("records", ("seq", BigInteger), ("kind", Text), ("payload_json", Text))
    return _RECORDS.insert().from_select(
        ["pool_id", "seq", "kind", "payload_json"],
        select(_POOL_ID, rows.c.seq, rows.c.kind, rows.c.payload_json),
    )


def _upsert(table: Table) -> Any:
    key, json = key_and_json(table)
    rows = _rows(f"{table.name}_rows", ("key", Text), ("json", Text), ("seq", BigInteger))
    insert = postgresql.insert(table).from_select(
        ["pool_id", key, json, "seq"], select(_POOL_ID, rows.c.key, rows.c.json, rows.c.seq)
    )
    return insert.on_conflict_do_update(
        index_elements=["pool_id", key],
        set_={json: insert.excluded[json], "seq": insert.excluded.seq},
    )


def _delete(table: Table) -> Any:
    key, _ = key_and_json(table)
    keys = func.json_array_elements_text(
        bindparam(f"{table.name}_deleted", type_=postgresql.JSON)
    ).table_valued("value")
    return table.delete().where(table.c.pool_id == _POOL_ID, table.c[key].in_(select(keys.c.value)))


@functools.cache
def _statement(shape: Shape) -> Any:
    """The pool-row update carrying the shape's CTEs."""
    with_records, upserted, deleted = shape
    ctes = [_insert_records().cte("insert_records")] if with_records else []
    ctes += [_upsert(table).cte(f"upsert_{table.name}") for table in upserted]
    ctes += [_delete(table).cte(f"delete_{table.name}") for table in deleted]
    update = (
        _POOLS.update()
        .where(_POOLS.c.pool_id == _POOL_ID)
        .values(
            projected_seq=bindparam("batch_seq", type_=BigInteger),
            config_json=func.coalesce(
                bindparam("batch_config_json", type_=Text), _POOLS.c.config_json
            ),
            created=_POOLS.c.created | bindparam("batch_created"),
        )
    )
    return update.add_cte(*ctes) if ctes else update


def batch_statement(pool_id: str, batch: ProjectionBatch) -> tuple[Any, dict[str, Any]]:
    """The statement writing ``batch`` to ``pool_id`` and its parameters."""
    params: dict[str, Any] = {
        "batch_pool_id": pool_id,
        "batch_seq": batch.seq,
        "batch_config_json": batch.config_json,
        "batch_created": batch.created,
    }
    if batch.records:
        params["records"] = [
            {"seq": seq, "kind": kind, "payload_json": json} for seq, kind, json in batch.records
        ]
    upserted, deleted = [], []
    for table, changes in batch.rows.items():
        kept = [(key, seq, json) for key, (seq, json) in changes.items() if json is not None]
        gone = [key for key, (_, json) in changes.items() if json is None]
        if kept:
            upserted.append(table)
            params[f"{table.name}_rows"] = [
                {"key": key, "json": json, "seq": seq} for key, seq, json in kept
            ]
        if gone:
            deleted.append(table)
            params[f"{table.name}_deleted"] = gone
    shape = (bool(batch.records), tuple(upserted), tuple(deleted))
    return _statement(shape), params
