"""Repositories: one per area, each taking the unit of work's connection, never committing.

They read and write rows with Core statements and hand back domain models. The unit of work
owns the transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, Connection, Table, bindparam, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute

from agent_pool_store.domain import (
    RECORD_PAYLOAD,
    AgentPoolMember,
    AgentPoolStoreConfig,
    AgentPoolStoredMessage,
    AgentPoolStoredWake,
    AgentPoolStoreRecordPayload,
    MessageReceipt,
    PoolState,
    WakeRegistration,
)
from agent_pool_store.errors import AgentError
from agent_pool_store.operations import Lookup
from agent_pool_store.sql.batch_statement import batch_statement
from agent_pool_store.sql.driver_execution import execute_many, fetch_one
from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.schema import (
    PROJECTION_TABLES,
    EventSequenceRow,
    MemberRow,
    MessageReceiptRow,
    MessageRow,
    PoolRow,
    RecordRow,
    WakeRegistrationRow,
    WakeRow,
    key_and_json,
    table_of,
)
from agent_pool_store.sql.upsert import (
    increment_statement,
    insert_ignore_statement,
    upsert_statement,
)

M = TypeVar("M", bound=BaseModel)


def _column(attribute: InstrumentedAttribute[str]) -> Column[str]:
    """The Core column behind a mapped attribute."""
    return cast("Column[str]", attribute.expression)


LOOKUPS: dict[Lookup, tuple[Column[str], type[BaseModel]]] = {
    "message_receipt": (_column(MessageReceiptRow.receipt_json), MessageReceipt),
    "wake_registration": (_column(WakeRegistrationRow.registration_json), WakeRegistration),
    "wake": (_column(WakeRow.stored_json), AgentPoolStoredWake),
}
"""Each look-up by key: the projection column it reads and the model stored there."""

_RECORDS_INSERT = table_of(RecordRow).insert()
_ROWS_AFTER = (
    select(RecordRow.seq, RecordRow.payload_json)
    .where(RecordRow.pool_id == bindparam("pool_id"), RecordRow.seq > bindparam("after"))
    .order_by(RecordRow.seq)
    .limit(bindparam("limit"))
)
_LOG_SEQ = (
    select(func.coalesce(func.max(RecordRow.seq), 0))
    .where(RecordRow.pool_id == bindparam("pool_id"))
    .scalar_subquery()
)
_HEAD = select(PoolRow.config_json, PoolRow.created, PoolRow.projected_seq, _LOG_SEQ).where(
    PoolRow.pool_id == bindparam("pool_id")
)
_HEAD_FOR_UPDATE = _HEAD.with_for_update(of=PoolRow)


@functools.cache
def row_by_key(json_column: Column[str]) -> Any:
    """``SELECT json_column WHERE pool_id = :pool_id AND <key> = :key`` for a projection."""
    table = json_column.table
    key_column = next(c for c in table.primary_key.columns if c.name != "pool_id")
    return select(json_column).where(
        table.c.pool_id == bindparam("pool_id"), key_column == bindparam("key")
    )


@functools.cache
def _pool_update(columns: tuple[str, ...]) -> Any:
    """``UPDATE agent_pool_store_pools SET <columns> WHERE pool_id = :pool_id_key``."""
    table = table_of(PoolRow)
    return (
        table.update()
        .where(table.c.pool_id == bindparam("pool_id_key"))
        .values({name: bindparam(name) for name in columns})
    )


@functools.cache
def _pool_rows_statement(json_column: Column[str]) -> Any:
    """``SELECT json_column WHERE pool_id = :pool_id`` for a projection table."""
    return select(json_column).where(json_column.table.c.pool_id == bindparam("pool_id"))


@functools.cache
def _delete_statement(table: Table) -> Any:
    """``DELETE … WHERE pool_id = :pool_id AND <key> = :key`` for a projection table."""
    key = table.c[key_and_json(table)[0]]
    return table.delete().where(table.c.pool_id == bindparam("pool_id"), key == bindparam("key"))


def parse_projection(pool_id: str, model: type[M], json: str, area: str) -> M:
    """A stored projection, or AgentError RepairNeeded naming the pool."""
    try:
        return model.model_validate_json(json)
    except ValidationError as error:
        details = error.errors()
        reason = details[0]["msg"] if details else str(error)
        raise AgentError.damaged_projection(pool_id, area, reason) from None


def parse_payload(pool_id: str, seq: int, payload_json: str) -> AgentPoolStoreRecordPayload:
    """A stored payload, or AgentError RepairNeeded naming the pool and sequence."""
    try:
        # The adapter's own validator: TypeAdapter.validate_json adds about 0.4 µs a call in
        # Python, a few percent of a whole-log watch.
        payload = RECORD_PAYLOAD.validator.validate_json(payload_json)
    except ValidationError as error:
        details = error.errors()
        reason = details[0]["msg"] if details else str(error)
        raise AgentError.unreadable_record(pool_id, seq, reason) from None
    return cast("AgentPoolStoreRecordPayload", payload)


@dataclass(frozen=True)
class PoolHead:
    """A pool's row and the highest sequence in its log, read in one statement."""

    exists: bool
    config_json: str | None
    created: bool
    projected_seq: int
    log_seq: int

    @property
    def behind(self) -> bool:
        """Whether the log has records the projections have not applied."""
        return self.log_seq > self.projected_seq


class RecordRepository:
    """The record log (``agent_pool_records``)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def rows_after(self, pool_id: str, seq: int, limit: int) -> Sequence[tuple[int, str]]:
        """Up to ``limit`` ``(seq, payload_json)`` after ``seq``, in order."""
        rows = self.connection.execute(
            _ROWS_AFTER, {"pool_id": pool_id, "after": seq, "limit": limit}
        )
        return cast("list[tuple[int, str]]", rows.all())  # a Row is a tuple

    def last_seq(self, pool_id: str) -> int:
        """The highest sequence in the pool's log (0 when empty)."""
        return self.connection.execute(
            select(func.coalesce(func.max(RecordRow.seq), 0)).where(RecordRow.pool_id == pool_id)
        ).scalar_one()


class PoolRepository:
    """The per-pool row: config, created flag and projection watermark."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def head(self, pool_id: str, *, lock: bool) -> PoolHead | None:
        """The pool's row (locked ``FOR UPDATE`` when asked) and its log's last sequence."""
        statement = _HEAD_FOR_UPDATE if lock else _HEAD
        row: Any
        if self.connection.dialect.name == "sqlite":  # see agent_pool_store.sql.driver_execution
            row = fetch_one(self.connection, statement, {"pool_id": pool_id})
        else:
            row = self.connection.execute(statement, {"pool_id": pool_id}).one_or_none()
        if row is None:
            return None
        return PoolHead(True, row[0], bool(row[1]), row[2], row[3])

    def create(self, pool_id: str) -> None:
        """Insert the pool's row if it does not exist yet."""
        self.connection.execute(
            insert_ignore_statement(self.connection.dialect.name, table_of(PoolRow)),
            {"pool_id": pool_id},
        )

    def update(self, pool_id: str, **values: object) -> None:
        """Set columns of the pool's row (``projected_seq``, ``config_json``, ``created``)."""
        self.connection.execute(
            _pool_update(tuple(sorted(values))), {"pool_id_key": pool_id, **values}
        )

    def pool_ids(self) -> list[str]:
        """Every pool id that has records or a pool row, sorted."""
        ids = select(RecordRow.pool_id).union(select(PoolRow.pool_id))
        return sorted(self.connection.execute(ids).scalars())


class EventSequenceRepository:
    """Per-pool event counters (``agent_pool_event_seq``, shared with the reference)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def next(self, pool_id: str) -> int:
        """Advance the pool's counter and return the new value (1 first)."""
        statement = increment_statement(
            self.connection.dialect.name, table_of(EventSequenceRow), "seq"
        )
        return int(self.connection.execute(statement, {"pool_id": pool_id, "seq": 1}).scalar_one())


class ProjectionRepository:
    """Projections of one pool: written from a :class:`ProjectionBatch`, read by key."""

    def __init__(self, connection: Connection, pool_id: str) -> None:
        self.connection = connection
        self.pool_id = pool_id
        self.pools = PoolRepository(connection)

    def write(self, batch: ProjectionBatch) -> None:
        """Append the batch's records, write its changes, advance the watermark to ``seq``.

        PostgreSQL: one statement (see :mod:`agent_pool_store.sql.batch_statement`). SQLite,
        where a statement costs no round trip: one ``executemany`` per table, on the driver
        connection (see :mod:`agent_pool_store.sql.driver_execution`).
        """
        if self.connection.dialect.name == "postgresql":
            self.connection.execute(*batch_statement(self.pool_id, batch))
            return
        if batch.records:
            execute_many(
                self.connection,
                _RECORDS_INSERT,
                [
                    {"pool_id": self.pool_id, "seq": seq, "kind": kind, "payload_json": json}
                    for seq, kind, json in batch.records
                ],
            )
        pool_values: dict[str, object] = {"projected_seq": batch.seq}
        if batch.config_json is not None:
            pool_values["config_json"] = batch.config_json
        if batch.created:
            pool_values["created"] = True
        execute_many(
            self.connection,
            _pool_update(tuple(sorted(pool_values))),
            [{"pool_id_key": self.pool_id, **pool_values}],
        )
        for table, changes in batch.rows.items():
            key, json_column = key_and_json(table)
            upserts = [
                {"pool_id": self.pool_id, key: k, json_column: json, "seq": seq}
                for k, (seq, json) in changes.items()
                if json is not None
            ]
            deletes = [
                {"pool_id": self.pool_id, "key": k}
                for k, (_, json) in changes.items()
                if json is None
            ]
            if upserts:
                execute_many(self.connection, upsert_statement("sqlite", table), upserts)
            if deletes:
                execute_many(self.connection, _delete_statement(table), deletes)

    def look_up(self, lookup: Lookup, key: str) -> BaseModel | None:
        """The model a look-up by key finds (see :data:`LOOKUPS`)."""
        json_column, model = LOOKUPS[lookup]
        return self._get(json_column, model, key)

    def _get(self, json_column: Column[str], model: type[M], key: str) -> M | None:
        """The model in ``json_column`` of the row keyed by this pool and ``key``."""
        json = self.connection.execute(
            row_by_key(json_column), {"pool_id": self.pool_id, "key": key}
        ).scalar_one_or_none()
        if json is None:
            return None
        return parse_projection(self.pool_id, model, json, json_column.table.name)

    # look-ups

    def member(self, run_id: str) -> AgentPoolMember | None:
        """The current member with this run id."""
        return self._get(_column(MemberRow.member_json), AgentPoolMember, run_id)

    def message_receipt(self, idempotency_key: str) -> MessageReceipt | None:
        """The latest receipt under a message idempotency key."""
        return cast("MessageReceipt | None", self.look_up("message_receipt", idempotency_key))

    def wake_registration(self, idempotency_key: str) -> WakeRegistration | None:
        """The latest registration under a wake idempotency key."""
        return cast("WakeRegistration | None", self.look_up("wake_registration", idempotency_key))

    def wake(self, condition_id: str) -> AgentPoolStoredWake | None:
        """The latest stored wake of a condition."""
        return cast("AgentPoolStoredWake | None", self.look_up("wake", condition_id))

    def _all(self, attribute: InstrumentedAttribute[str], model: type[M]) -> Iterator[M]:
        column = _column(attribute)
        rows = self.connection.execute(_pool_rows_statement(column), {"pool_id": self.pool_id})
        for (json,) in rows:
            yield parse_projection(self.pool_id, model, json, column.table.name)

    def load_state(self, head: PoolHead) -> PoolState:
        """The pool's current state (members, messages, wakes), for a snapshot."""
        state = PoolState(
            config=None
            if head.config_json is None
            else parse_projection(self.pool_id, AgentPoolStoreConfig, head.config_json, "config"),
            created=head.created,
            last_sequence=head.projected_seq,
        )
        for member in self._all(MemberRow.member_json, AgentPoolMember):
            state.put_member(member)
        for message in self._all(MessageRow.stored_json, AgentPoolStoredMessage):
            state.put_message(message)
        for wake in self._all(WakeRow.stored_json, AgentPoolStoredWake):
            state.put_wake(wake)
        return state

    def raw(self, head: PoolHead) -> dict[str, dict[str, str]]:
        """Every projection of the pool as stored: ``{area: {key: json}}`` (for verify)."""
        areas: dict[str, dict[str, str]] = {
            "config": {"": head.config_json} if head.config_json is not None else {},
            "created": {"": "true"} if head.created else {},
        }
        for name, table in zip(
            ("member", "message", "message receipt", "wake", "wake registration"),
            PROJECTION_TABLES,
            strict=True,
        ):
            key, json = (table.c[name] for name in key_and_json(table))
            rows = self.connection.execute(select(key, json).where(table.c.pool_id == self.pool_id))
            areas[name] = {row[0]: row[1] for row in rows}
        return areas

    def clear(self) -> None:
        """Delete every projection row of the pool (before a rebuild)."""
        for table in PROJECTION_TABLES:
            self.connection.execute(delete(table).where(table.c.pool_id == self.pool_id))
