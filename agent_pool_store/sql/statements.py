"""The store's Core statements that every dialect runs as they are (no dialect constructs).

Each is built once with bind parameters, so SQLAlchemy compiles it once per dialect. The
dialect-specific statements live with their dialect (``sql/dialects/``): upserts take the
dialect's ``insert`` construct (:mod:`agent_pool_store.sql.upsert`), and PostgreSQL's
one-statement paths are in :mod:`agent_pool_store.sql.dialects.postgresql_statements`.

One rule is stated here, once, for both paths that serve a pool: a pool's projections are
*current* when no record of its log follows the watermark (:func:`first_unprojected`) and the
log holds the record at the watermark (:func:`watermark_in_log`). A unit of work reads both
with the pool's head (:data:`HEAD`): it catches up when records follow, and reports the pool
RepairNeeded when the watermark's record is gone; the one-statement paths (PostgreSQL's
append, both dialects' look-up, :func:`lookup_statement`) require both, with the config text
the store has parsed (:func:`current_with_config`), and otherwise leave the call to a unit
of work.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import (
    Column,
    LargeBinary,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import InstrumentedAttribute

from agent_pool_store.domain import AgentPoolStoredWake, MessageReceipt, WakeRegistration
from agent_pool_store.sql.schema import (
    EventSequenceRow,
    MessageReceiptRow,
    PoolRow,
    RecordRow,
    WakeRegistrationRow,
    WakeRow,
    key_and_json,
    table_of,
)
from agent_pool_store.sql.upsert import InsertConstruct

POOLS = table_of(PoolRow)
RECORDS = table_of(RecordRow)


def column_of(attribute: InstrumentedAttribute[str]) -> Column[str]:
    """The Core column behind a mapped attribute."""
    return cast("Column[str]", attribute.expression)


LOOKUPS: dict[str, tuple[Column[str], type[BaseModel]]] = {
    "message_receipt": (column_of(MessageReceiptRow.receipt_json), MessageReceipt),
    "wake_registration": (column_of(WakeRegistrationRow.registration_json), WakeRegistration),
    "wake": (column_of(WakeRow.stored_json), AgentPoolStoredWake),
}
"""Each look-up by key the contract names (``operations.Lookup``): the projection column it
reads and the model stored there."""


def first_unprojected(pool_id: Any) -> Any:
    """The first record of the pool past its row's watermark, or NULL when it is current.

    A correlated ``LIMIT 1`` subquery: one probe of the log's primary key whatever the
    statistics say. (Written as ``NOT EXISTS``, PostgreSQL's planner turned it into an anti
    join and, when its statistics underestimated the pool's records, scanned every record of
    the pool.)
    """
    return (
        select(RECORDS.c.seq)
        .where(RECORDS.c.pool_id == pool_id, RECORDS.c.seq > POOLS.c.projected_seq)
        .order_by(RECORDS.c.seq)
        .limit(1)
        .scalar_subquery()
    )


def watermark_in_log(pool_id: Any) -> Any:
    """Whether the log holds the record at the pool's watermark (or nothing is projected).

    False when records up to the watermark were removed from the log behind the store's
    back: appending at watermark + 1 would then leave a gap, so the pool is RepairNeeded
    until ``rebuild``. One probe of the log's primary key.

    The watermark is read from the statement's snapshot (an uncorrelated subquery), not from
    the row a ``FOR UPDATE`` locks: after waiting for the lock, PostgreSQL re-reads the
    locked row in its newest version, whose watermark is a record committed after the
    statement's snapshot, which the probe could not see.
    """
    pool = POOLS.alias("watermark_pool")
    watermark = select(pool.c.projected_seq).where(pool.c.pool_id == pool_id).scalar_subquery()
    at_watermark = (
        select(RECORDS.c.seq)
        .where(RECORDS.c.pool_id == pool_id, RECORDS.c.seq == watermark)
        .exists()
    )
    return or_(watermark == 0, at_watermark)


def log_is_sound(pool_id: Any) -> Any:
    """Whether the log is sound: the two things a unit checks before it serves the pool.

    The log holds the record at the watermark (:func:`watermark_in_log`) and no record with
    a sequence below 1. Both are index probes; which one failed is found out only when one did
    (``RecordRepository.unsound_log``).
    """
    below_one = select(RECORDS.c.seq).where(RECORDS.c.pool_id == pool_id, RECORDS.c.seq < 1)
    return and_(watermark_in_log(pool_id), ~below_one.exists())


def current_with_config(pool_id: Any) -> tuple[Any, ...]:
    """WHERE clauses: the pool's row, its config is ``:readable_config``, and it is current.

    ``:readable_config`` is the config text the store has already parsed for the pool, so a
    statement under these clauses serves only a pool that a unit of work would serve
    without parsing, catching up or reporting anything.
    """
    return (
        POOLS.c.pool_id == pool_id,
        POOLS.c.config_json == bindparam("readable_config", type_=Text),
        first_unprojected(pool_id).is_(None),
        log_is_sound(pool_id),
    )


_POOL_ID = bindparam("pool_id", type_=Text)

RECORDS_INSERT = RECORDS.insert().values(
    {name: bindparam(name) for name in ("pool_id", "seq", "kind", "payload_json")}
)
"""Insert records (``pool_id``, ``seq``, ``kind``, ``payload_json``; no append token)."""

ROWS_AFTER = (
    select(RECORDS.c.seq, RECORDS.c.payload_json)
    .where(RECORDS.c.pool_id == _POOL_ID, RECORDS.c.seq > bindparam("after"))
    .order_by(RECORDS.c.seq)
    .limit(bindparam("limit"))
)
"""Up to ``:limit`` ``(seq, payload_json)`` of the pool after ``:after``, in order."""

BELOW_ONE = (
    select(RECORDS.c.seq)
    .where(RECORDS.c.pool_id == _POOL_ID, RECORDS.c.seq < 1)
    .order_by(RECORDS.c.seq)
)
"""The pool's records with a sequence below 1 (none a valid writer leaves)."""

ROWS_AFTER_AS_BYTES = (
    select(RECORDS.c.seq, sql_cast(RECORDS.c.payload_json, LargeBinary))
    .where(RECORDS.c.pool_id == _POOL_ID, RECORDS.c.seq > bindparam("after"))
    .order_by(RECORDS.c.seq)
    .limit(bindparam("limit"))
)
""":data:`ROWS_AFTER` with the payloads as bytes (to find one that is not valid UTF-8)."""

LAST_SEQ = select(func.coalesce(func.max(RECORDS.c.seq), 0)).where(RECORDS.c.pool_id == _POOL_ID)
"""The highest sequence in the pool's log (0 when empty)."""

HEAD = select(
    POOLS.c.config_json,
    POOLS.c.created,
    POOLS.c.projected_seq,
    first_unprojected(_POOL_ID),
    log_is_sound(_POOL_ID),
).where(POOLS.c.pool_id == _POOL_ID)
"""The pool's row, its first unprojected record and whether its log is sound (see
:meth:`PoolHead.of_row`)."""

HEAD_FOR_UPDATE = HEAD.with_for_update(of=POOLS)
""":data:`HEAD`, locking the pool's row (PostgreSQL; SQLite's unit holds the file's lock)."""

COUNT_RECORDS = select(func.count()).select_from(RECORDS)
"""How many records every pool's log holds in all."""

POOL_IDS = select(RECORDS.c.pool_id).union(select(POOLS.c.pool_id))
"""Every pool id with records or a pool row."""


def _key_column(table: Table) -> Column[str]:
    """A projection table's key column (its primary key beside ``pool_id``)."""
    return cast("Column[str]", table.c[key_and_json(table)[0]])


@functools.cache
def row_by_key(json_column: Column[str]) -> Any:
    """``SELECT json_column WHERE pool_id = :pool_id AND <key> = :key`` for a projection."""
    table = json_column.table
    return select(json_column).where(
        table.c.pool_id == bindparam("pool_id"), _key_column(table) == bindparam("key")
    )


@functools.cache
def lookup_statement(row_by_key: Any) -> Any:
    """``row_by_key`` read with the pool's row, in one statement outside a transaction.

    ``row_by_key`` selects a projection row's JSON by ``:pool_id`` and ``:key``. The
    statement returns one row, holding the JSON or NULL (no such key), only if the pool's
    stored config is ``:readable_config`` and no record follows the watermark; otherwise no
    row, and the look-up is left to a unit of work (which catches up first). One statement
    reads one snapshot, so the row and the watermark agree.
    """
    return select(row_by_key.scalar_subquery()).where(
        *current_with_config(bindparam("pool_id", type_=Text))
    )


@functools.cache
def count_up_statement(insert: InsertConstruct) -> Any:
    """The pool's event counter advanced by one, in one statement outside a transaction.

    It returns the new value (1 first) only if the pool is current with
    ``:readable_config`` (:func:`current_with_config`: opened, with a config the store has
    parsed); otherwise no row, and a unit of work answers (which catches up or reports).
    """
    table = table_of(EventSequenceRow)
    pool_id = bindparam("pool_id", type_=Text)
    opened = exists(select(POOLS.c.pool_id).where(*current_with_config(pool_id)))
    statement = insert(table).from_select(
        ["pool_id", "seq"], select(pool_id, literal(1)).where(opened)
    )
    return statement.on_conflict_do_update(
        index_elements=["pool_id"], set_={"seq": table.c.seq + 1}
    ).returning(table.c.seq)


@functools.cache
def keyed_pool_rows(json_column: Column[str]) -> Any:
    """``SELECT <key>, json_column WHERE pool_id = :pool_id`` for a projection table."""
    table = json_column.table
    return select(_key_column(table), json_column).where(table.c.pool_id == bindparam("pool_id"))


@functools.cache
def pool_update(columns: tuple[str, ...]) -> Any:
    """``UPDATE agent_pool_store_pools SET <columns> WHERE pool_id = :pool_id_key``."""
    return (
        POOLS.update()
        .where(POOLS.c.pool_id == bindparam("pool_id_key"))
        .values({name: bindparam(name) for name in columns})
    )


@functools.cache
def delete_by_key(table: Table) -> Any:
    """``DELETE … WHERE pool_id = :pool_id AND <key> = :key`` for a projection table."""
    return table.delete().where(
        table.c.pool_id == bindparam("pool_id"), _key_column(table) == bindparam("key")
    )


@functools.cache
def count_by_pool(table: Table) -> Any:
    """``SELECT count(*) FROM table WHERE pool_id = :pool_id``."""
    return select(func.count()).select_from(table).where(table.c.pool_id == _POOL_ID)
