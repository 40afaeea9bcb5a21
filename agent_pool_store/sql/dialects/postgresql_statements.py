"""PostgreSQL's statements: a batch written by one statement; an append and a look-up in one.

Every round trip to the server costs more than the statement it carries, so on PostgreSQL
a :class:`ProjectionBatch` (records, projection rows, pool watermark) is written by a single
``UPDATE`` of the pool row with data-modifying CTEs: one ``INSERT … SELECT FROM
json_to_recordset(…)`` per table the batch touches (``ON CONFLICT DO UPDATE`` for
projections), one ``DELETE`` per table it deletes from. Rows travel as one JSON parameter
per table (serialised by the C ``json`` encoder; text arrays would be escaped character by
character in Python), so the statement depends only on which tables the batch touches, not
on how many rows; each such shape is built once and psycopg prepares it.

:func:`write_batch_statement` writes a batch inside a unit of work that already holds the pool's
lock and knows the sequences. :func:`append_statement` is the whole append of one record in
one autocommit statement: a ``head`` CTE locks the pool's row ``FOR UPDATE`` and yields
watermark + 1 only if the pool's config is one the caller can read and nothing follows the
watermark in the log (:func:`agent_pool_store.sql.statements.current_with_config`, the rule
a unit of work applies too); every write takes its sequence from ``head``, so an empty ``head``
writes nothing. After waiting for the lock, PostgreSQL re-reads the locked row (READ
COMMITTED), so ``head`` sees the watermark of the writer it waited for.

A batch holds at most one change per row, so no CTE touches a row twice, as PostgreSQL
requires of one statement.

:func:`agent_pool_store.sql.statements.lookup_statement` is the read side, which SQLite
runs too: a look-up by key in one autocommit statement, under the same conditions as
:func:`append_statement`.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import BigInteger, Table, Text, bindparam, column, exists, func, select
from sqlalchemy.dialects import postgresql

from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.schema import key_and_json
from agent_pool_store.sql.statements import POOLS, RECORDS, current_with_config

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
    return RECORDS.insert().from_select(
        ["pool_id", "seq", "kind", "payload_json"],
        select(_POOL_ID, rows.c.seq, rows.c.kind, rows.c.payload_json),
    )


def _upsert(table: Table, head: Any = None) -> Any:
    """Upsert the table's rows; each row's ``seq`` is its own, or ``head.seq`` if given."""
    key, json = key_and_json(table)
    if head is None:
        rows = _rows(f"{table.name}_rows", ("key", Text), ("json", Text), ("seq", BigInteger))
        seq = rows.c.seq
    else:
        rows = _rows(f"{table.name}_rows", ("key", Text), ("json", Text))
        seq = select(head.c.seq).scalar_subquery()
    chosen = select(_POOL_ID, rows.c.key, rows.c.json, seq)
    if head is not None:
        chosen = chosen.where(exists(select(head.c.seq)))
    insert = postgresql.insert(table).from_select(["pool_id", key, json, "seq"], chosen)
    return insert.on_conflict_do_update(
        index_elements=["pool_id", key],
        set_={json: insert.excluded[json], "seq": insert.excluded.seq},
    )


def _delete(table: Table) -> Any:
    """Delete the table's rows named in the batch."""
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
        POOLS.update()
        .where(POOLS.c.pool_id == _POOL_ID)
        .values(
            projected_seq=bindparam("batch_seq", type_=BigInteger),
            config_json=func.coalesce(
                bindparam("batch_config_json", type_=Text), POOLS.c.config_json
            ),
            created=POOLS.c.created | bindparam("batch_created"),
            last_append_at=func.now(),
        )
    )
    return update.add_cte(*ctes) if ctes else update


def _row_params(
    batch: ProjectionBatch, params: dict[str, Any], *, with_seq: bool
) -> tuple[tuple[Table, ...], tuple[Table, ...]]:
    """Put the batch's rows into ``params``; the tables upserted into and deleted from."""
    upserted, deleted = [], []
    for table, changes in batch.rows.items():
        kept = [(key, seq, json) for key, (seq, json) in changes.items() if json is not None]
        gone = [key for key, (_, json) in changes.items() if json is None]
        if kept:
            upserted.append(table)
            params[f"{table.name}_rows"] = [
                {"key": key, "json": json, "seq": seq} if with_seq else {"key": key, "json": json}
                for key, seq, json in kept
            ]
        if gone:
            deleted.append(table)
            params[f"{table.name}_deleted"] = gone
    return tuple(upserted), tuple(deleted)


def write_batch_statement(pool_id: str, batch: ProjectionBatch) -> tuple[Any, dict[str, Any]]:
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
    upserted, deleted = _row_params(batch, params, with_seq=True)
    return _statement((bool(batch.records), upserted, deleted)), params


def append_statement(
    pool_id: str,
    readable_config: str,
    kind: str,
    payload_json: str,
    batch: ProjectionBatch,
    *,
    append_token: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """One record and its projection changes (``batch``, without sequences), in one statement.

    The statement locks the pool's row and appends at its watermark + 1 only if the pool's
    stored config is exactly ``readable_config`` (opened, with a config the caller knows it
    can read) and no record follows the watermark (no foreign records to catch up with); it
    returns the new sequence, or no row when it did nothing. ``batch`` must not set a
    config (``pool_opened`` compares configs first, in a unit of work) nor delete rows
    (``member_left`` looks the member up first, in a unit of work): a delete in a statement
    that waited for the pool's lock would not see rows committed while it waited. The record
    carries ``append_token``, by which a lost reply is settled.
    """
    params: dict[str, Any] = {
        "append_token": append_token,
        "batch_pool_id": pool_id,
        "batch_created": batch.created,
        "readable_config": readable_config,
        "record_kind": kind,
        "record_payload": payload_json,
    }
    upserted, deleted = _row_params(batch, params, with_seq=False)
    if batch.config_json is not None or deleted:
        raise ValueError("append_statement: the batch sets a config or deletes rows")
    return _append_statement(upserted), params


@functools.cache
def _append_statement(upserted: tuple[Table, ...]) -> Any:
    """One record appended to an opened, caught-up pool, or nothing; returns the new seq."""
    head = (
        select((POOLS.c.projected_seq + 1).label("seq"))
        .where(*current_with_config(_POOL_ID))
        .with_for_update(of=POOLS)
        .cte("head")
    )
    record = RECORDS.insert().from_select(
        ["pool_id", "seq", "kind", "payload_json", "append_token"],
        select(
            _POOL_ID,
            head.c.seq,
            bindparam("record_kind", type_=Text),
            bindparam("record_payload", type_=Text),
            bindparam("append_token", type_=BigInteger),
        ),
    )
    ctes = [head, record.cte("insert_record")]
    ctes += [_upsert(table, head).cte(f"upsert_{table.name}") for table in upserted]
    update = (
        POOLS.update()
        .where(POOLS.c.pool_id == _POOL_ID, exists(select(head.c.seq)))
        .values(
            projected_seq=select(head.c.seq).scalar_subquery(),
            created=POOLS.c.created | bindparam("batch_created"),
            last_append_at=func.now(),
        )
        .returning(POOLS.c.projected_seq)
    )
    return update.add_cte(*ctes)
