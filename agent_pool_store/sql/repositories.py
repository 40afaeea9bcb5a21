"""Repositories: one per area, each taking the unit of work's connection, never committing.

They read and write rows with the dialect-free statements of :mod:`.statements` and hand
back domain models; where a dialect differs (the head read, the batch write, ``ON
CONFLICT``), they ask the unit's dialect (:class:`~.dialects.protocol.SqlDialect`). The unit
of work owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import Column, Connection, delete, exc, select
from sqlalchemy.orm import InstrumentedAttribute

from agent_pool_store.asyncio_bridge import others_may_run
from agent_pool_store.domain import (
    AgentPoolMember,
    AgentPoolStoreConfig,
    AgentPoolStoredMessage,
    AgentPoolStoredWake,
    PoolState,
)
from agent_pool_store.domain.snapshot_json import snapshot_json
from agent_pool_store.errors import AgentError
from agent_pool_store.sql import statements
from agent_pool_store.sql.dialects.driver import fetch_all
from agent_pool_store.sql.dialects.protocol import SqlDialect
from agent_pool_store.sql.parsing import parse_projection
from agent_pool_store.sql.pool_head import PoolHead
from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.schema import (
    PROJECTION_TABLES,
    EventSequenceRow,
    MemberRow,
    MessageRow,
    PoolRow,
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


class RecordRepository:
    """The record log (``agent_pool_records``)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def rows_after(self, pool_id: str, seq: int, limit: int) -> Sequence[tuple[int, str]]:
        """Up to ``limit`` ``(seq, payload_json)`` after ``seq``, in order.

        The rows are as stored: a foreign writer's row may hold other types (see
        :func:`~agent_pool_store.sql.parsing.checked_row`). A payload the driver cannot
        decode (SQLite text that is not UTF-8) is AgentError RepairNeeded naming its seq.
        """
        parameters = {"pool_id": pool_id, "after": seq, "limit": limit}
        try:
            rows = fetch_all(self.connection, statements.ROWS_AFTER, parameters)
        except exc.OperationalError as error:
            if "decode" not in str(error.orig).lower():
                raise
            bad = self.undecodable_seq(pool_id, seq, limit)
            if bad is None:
                raise
            raise AgentError.unreadable_record(
                pool_id, bad, "its payload_json is not valid UTF-8"
            ) from None
        return cast("list[tuple[int, str]]", rows)

    def rows_decoded_here(
        self, pool_id: str, seq: object, limit: int
    ) -> list[tuple[object, str | None]]:
        """:meth:`rows_after`'s rows, with the payloads decoded here.

        ``None`` stands for a payload that is not valid UTF-8 (for reports that go on past
        such a row).
        """
        rows = self.connection.execute(
            statements.ROWS_AFTER_AS_BYTES, {"pool_id": pool_id, "after": seq, "limit": limit}
        )
        decoded: list[tuple[object, str | None]] = []
        for row_seq, payload in rows:
            try:
                decoded.append((row_seq, bytes(payload).decode("utf-8")))
            except UnicodeDecodeError:
                decoded.append((row_seq, None))
        return decoded

    def undecodable_seq(self, pool_id: str, seq: int, limit: int) -> int | None:
        """The first of :meth:`rows_after`'s rows whose payload is not valid UTF-8."""
        for row_seq, payload in self.rows_decoded_here(pool_id, seq, limit):
            if payload is None and isinstance(row_seq, int):
                return row_seq
        return None

    def below_one(self, pool_id: str) -> list[object]:
        """The sequences below 1 in the pool's log (a foreign writer's damage), in order."""
        return list(self.connection.execute(statements.BELOW_ONE, {"pool_id": pool_id}).scalars())

    def unsound_log(self, pool_id: str, projected_seq: int) -> AgentError:
        """Why a pool whose head says its log is not sound cannot be served."""
        below = self.below_one(pool_id)
        if below:
            return AgentError.unreadable_record(pool_id, below[0], "sequences start at 1")
        return AgentError.damaged_projection(
            pool_id,
            "watermark",
            f"it is at seq {projected_seq}, but the log has no record {projected_seq}: "
            "records were removed",
        )

    def last_seq(self, pool_id: str) -> int:
        """The highest sequence in the pool's log (0 when empty).

        RepairNeeded if that is not an integer (SQLite keeps a foreign writer's text there).
        """
        last = self.connection.execute(statements.LAST_SEQ, {"pool_id": pool_id}).scalar_one()
        if not isinstance(last, int):
            raise AgentError.unreadable_record(pool_id, last, "its seq is not an integer")
        return last

    def count(self, pool_id: str | None = None) -> int:
        """How many records one pool (or, with ``None``, every pool) holds."""
        if pool_id is None:
            return int(self.connection.execute(statements.COUNT_RECORDS).scalar_one())
        counted = self.connection.execute(
            statements.count_by_pool(statements.RECORDS), {"pool_id": pool_id}
        )
        return int(counted.scalar_one())


class PoolRepository:
    """The per-pool row: config, created flag and projection watermark."""

    def __init__(self, connection: Connection, dialect: SqlDialect) -> None:
        self.connection = connection
        self.dialect = dialect

    def head(self, pool_id: str, *, lock: bool) -> PoolHead | None:
        """The pool's row (locked ``FOR UPDATE`` when asked) and whether it is current."""
        return self.dialect.read_head(self.connection, pool_id, lock=lock)

    def create(self, pool_id: str) -> None:
        """Insert the pool's row if it does not exist yet."""
        self.connection.execute(
            insert_ignore_statement(self.dialect.insert, table_of(PoolRow)), {"pool_id": pool_id}
        )

    def update(self, pool_id: str, **values: object) -> None:
        """Set columns of the pool's row (``projected_seq``, ``config_json``, ``created``)."""
        self.connection.execute(
            statements.pool_update(tuple(sorted(values))), {"pool_id_key": pool_id, **values}
        )

    def pool_ids(self) -> list[str]:
        """Every pool id that has records or a pool row, sorted."""
        return sorted(self.connection.execute(statements.POOL_IDS).scalars())


class EventSequenceRepository:
    """Per-pool event counters (``agent_pool_event_seq``, shared with the reference)."""

    def __init__(self, connection: Connection, dialect: SqlDialect) -> None:
        self.connection = connection
        self.dialect = dialect

    def next(self, pool_id: str) -> int:
        """Advance the pool's counter and return the new value (1 first)."""
        statement = increment_statement(self.dialect.insert, table_of(EventSequenceRow), "seq")
        return int(self.connection.execute(statement, {"pool_id": pool_id, "seq": 1}).scalar_one())

    def current(self, pool_id: str) -> int:
        """The last value handed out for the pool (0: none yet)."""
        value = self.connection.execute(
            select(EventSequenceRow.seq).where(EventSequenceRow.pool_id == pool_id)
        ).scalar_one_or_none()
        return 0 if value is None else int(value)

    def set(self, pool_id: str, seq: int) -> None:
        """Make ``seq`` the last value handed out for the pool (import)."""
        statement = upsert_statement(self.dialect.insert, table_of(EventSequenceRow))
        self.connection.execute(statement, {"pool_id": pool_id, "seq": seq})


ROWS_BETWEEN_TURNS = 8
"""On an asyncio engine, a snapshot lets the event loop run other tasks after parsing this
many projection rows (about 0.7 ms of work), so that a large snapshot never holds the loop
for long (see :func:`agent_pool_store.asyncio_bridge.others_may_run`)."""


ROWS_PER_FETCH = 500
"""On an asyncio engine, a snapshot fetches its projection rows this many at a time (a
server-side cursor on PostgreSQL), so that no single fetch holds the event loop for long."""


class ProjectionRepository:
    """Projections of one pool: written from a :class:`ProjectionBatch`, read by key."""

    def __init__(self, connection: Connection, dialect: SqlDialect, pool_id: str) -> None:
        self.connection = connection
        self.dialect = dialect
        self.pool_id = pool_id

    def write(self, batch: ProjectionBatch) -> None:
        """Append the batch's records, write its changes, advance the watermark to ``seq``.

        How is the dialect's: PostgreSQL one statement, SQLite one ``executemany`` per table.
        """
        self.dialect.write_batch(self.connection, self.pool_id, batch)

    def member_count(self) -> int:
        """How many runs are currently members of the pool."""
        counted = self.connection.execute(
            statements.count_by_pool(table_of(MemberRow)), {"pool_id": self.pool_id}
        )
        return int(counted.scalar_one())

    def look_up(self, lookup: str, key: str) -> BaseModel | None:
        """The model a look-up by key finds (see :data:`.statements.LOOKUPS`)."""
        json_column, model = statements.LOOKUPS[lookup]
        return self.get(json_column, model, key)

    def get(self, json_column: Column[str], model: type[M], key: str) -> M | None:
        """The model in ``json_column`` of the row keyed by this pool and ``key``."""
        json = self.connection.execute(
            statements.row_by_key(json_column), {"pool_id": self.pool_id, "key": key}
        ).scalar_one_or_none()
        return None if json is None else self.parse(json_column, model, json)

    def parse(self, json_column: Column[str], model: type[M], json: str) -> M:
        """A projection row's JSON as its model (RepairNeeded if it cannot be read)."""
        return parse_projection(self.pool_id, model, json, json_column.table.name)

    def member(self, run_id: str) -> AgentPoolMember | None:
        """The current member with this run id."""
        return self.get(statements.column_of(MemberRow.member_json), AgentPoolMember, run_id)

    def _all(self, attribute: InstrumentedAttribute[str], model: type[M]) -> Iterator[M]:
        return self._parsed(attribute, model, self._rows(attribute))

    def _rows(self, attribute: InstrumentedAttribute[str]) -> list[tuple[str, str]]:
        """Every row of a projection as ``(key, json)``."""
        column = statements.column_of(attribute)
        rows = self.connection.execute(
            statements.keyed_pool_rows(column),
            {"pool_id": self.pool_id},
            # on the event loop, fetched a batch per await, not all in one
            execution_options={} if others_may_run() is None else {"yield_per": ROWS_PER_FETCH},
        )
        return [(key, json) for key, json in rows]

    def _parsed(
        self, attribute: InstrumentedAttribute[str], model: type[M], rows: list[tuple[str, str]]
    ) -> Iterator[M]:
        """Each row's JSON as its model (RepairNeeded if it cannot be read), in row order.

        On the event loop, other tasks run after every :data:`ROWS_BETWEEN_TURNS` rows.
        """
        column = statements.column_of(attribute)
        let_others_run = others_may_run()
        for index, (_, json) in enumerate(rows, 1):
            yield self.parse(column, model, json)
            if let_others_run is not None and index % ROWS_BETWEEN_TURNS == 0:
                let_others_run()

    def snapshot_json(self, head: PoolHead) -> str:
        """The pool's snapshot as wire JSON, assembled from the projections' JSON.

        Byte for byte ``load_state(head).snapshot(pool_id).model_dump_json()``; see
        :func:`agent_pool_store.domain.snapshot_json.snapshot_json`. Each row is parsed, so
        that a damaged one fails as it does in a snapshot, and dropped at once (members, for
        their topics, are kept).
        """
        assert head.config_json is not None  # an opened pool
        config = parse_projection(self.pool_id, AgentPoolStoreConfig, head.config_json, "config")
        fragments: dict[str, list[str]] = {}
        for name, attribute, model in (
            ("messages", MessageRow.stored_json, AgentPoolStoredMessage),
            ("wakes", WakeRow.stored_json, AgentPoolStoredWake),
        ):
            rows = sorted(self._rows(attribute))  # the snapshot's order (code points)
            for _ in self._parsed(attribute, model, rows):
                pass
            fragments[name] = [json for _, json in rows]
        rows = sorted(self._rows(MemberRow.member_json))
        parsed = self._parsed(MemberRow.member_json, AgentPoolMember, rows)
        members = list(zip(parsed, (json for _, json in rows), strict=True))
        return snapshot_json(
            self.pool_id,
            head.created,
            config,
            members=members,
            messages=fragments["messages"],
            wakes=fragments["wakes"],
            last_sequence=head.projected_seq,
        )

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
