"""The write path of the SQL store: batched projection writes, catch-up, stale connections.

- Every append the store makes stores ``payload.model_dump_json()`` verbatim under the
  payload's ``kind``, at seq 1..N, and projection rows (JSON and the seq of the record that
  last wrote them) that equal a replay of the log; ``verify`` accepts them.
- Records appended by a foreign writer (raw SQL) are caught up in batches of a thousand,
  rows written many times within one batch included: snapshot and every look-up then equal
  an in-memory store fed the same payloads, and so do the projection rows.
- ``watch`` over a log with an unreadable record at seq k yields records 1..k-1, then fails
  with RepairNeeded; watching from cursor k yields the rest.
- PostgreSQL: pooled connections closed by the server are replaced, for reads, writes and
  concurrent writers alike (no pre-ping: the unit's first statement is retried).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from agent_pool_store import (
    AgentError,
    AgentErrorKind,
    AgentPoolMember,
    AgentPoolStoreConfig,
    AgentPoolStoreCursor,
    AgentPoolStoredMessage,
    AgentPoolStoredWake,
    AgentPoolStoreRecord,
    AgentPoolStoreRecordPayload,
    InMemoryAgentPoolStore,
    MemberJoined,
    MemberLeft,
    MessageReceipt,
    MessageStatus,
    PolicyKind,
    PolicyRef,
    PoolCreated,
    PoolOpened,
    RetryClassification,
    RunMessageRecorded,
    SqlAgentPoolStore,
    WakeRecorded,
    WakeRegistration,
    WakeRegistrationStatus,
    apply_payload,
    open_store,
)
from agent_pool_store.sql.dialects import driver as driver_execution
from agent_pool_store.sql.dialects.postgresql_statements import append_statement
from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.schema import PROJECTION_TABLES, key_and_json
from tests.reliability.workers import EQUAL_CONFIG, Database, Raw, message_pair, wake_triple
from tests.replay import apply_through_operations

T = TypeVar("T")

POOL = "pool.write"
OTHER = "pool.write.other"
CATCH_UP_BATCH = 1000
"""``agent_pool_store.sql.store.CATCH_UP_BATCH`` (and ``WATCH_BATCH``), restated."""

NASTY = "\"quoted\" 'single' \\ ünïcödé 🐍 \u2028 %s ? :x"
"""Characters a JSON or SQL layer could mangle (all valid in an identifier)."""

PROJECTIONS = {table.name: key_and_json(table) for table in PROJECTION_TABLES}
"""Projection tables: key column and JSON column."""

Rows = dict[str, dict[str, tuple[str, int]]]
"""Per projection table, per key: the row's JSON and the seq of the record that wrote it."""


# --- payloads and their expected projections --------------------------------------------------


def member(run_id: str, *topics: str) -> AgentPoolMember:
    return AgentPoolMember(
        run_id=run_id, agent_id=run_id.replace("run.", "agent.", 1), topics=topics
    )


def message(message_id: str, status: MessageStatus) -> RunMessageRecorded:
    sent, receipt = message_pair(message_id)
    receipt = receipt.model_copy(update={"status": status})
    return RunMessageRecorded(stored=AgentPoolStoredMessage(message=sent, receipt=receipt))


def wake(condition_id: str, status: WakeRegistrationStatus) -> WakeRecorded:
    condition, compiled, registration = wake_triple(condition_id)
    registration = registration.model_copy(update={"status": status})
    return WakeRecorded(
        stored=AgentPoolStoredWake(
            condition=condition, compiled_filter=compiled, registration=registration
        )
    )


class LastWrites:
    """A projection sink keeping, per row, the JSON and seq of the last record writing it."""

    def __init__(self) -> None:
        self.seq = 0
        self.rows: Rows = {table: {} for table in PROJECTIONS}
        self.config: AgentPoolStoreConfig | None = None
        self.created = False

    @classmethod
    def of(cls, payloads: list[AgentPoolStoreRecordPayload]) -> LastWrites:
        sink = cls()
        for seq, payload in enumerate(payloads, start=1):
            sink.seq = seq
            apply_payload(sink, payload)
        return sink

    def _put(self, table: str, key: str, json: str) -> None:
        self.rows[f"agent_pool_store_{table}"][key] = (json, self.seq)

    def set_config(self, config: AgentPoolStoreConfig) -> None:
        self.config = config

    def mark_created(self) -> None:
        self.created = True

    def put_member(self, member: AgentPoolMember) -> None:
        self._put("members", member.run_id, member.model_dump_json())

    def remove_member(self, run_id: str) -> None:
        self.rows["agent_pool_store_members"].pop(run_id, None)

    def put_message(self, stored: AgentPoolStoredMessage) -> None:
        self._put("messages", stored.message.message_id, stored.model_dump_json())

    def put_message_receipt(self, idempotency_key: str, receipt: MessageReceipt) -> None:
        self._put("message_receipts", idempotency_key, receipt.model_dump_json())

    def put_wake(self, stored: AgentPoolStoredWake) -> None:
        self._put("wakes", stored.condition.condition_id, stored.model_dump_json())

    def put_wake_registration(self, idempotency_key: str, registration: WakeRegistration) -> None:
        self._put("wake_registrations", idempotency_key, registration.model_dump_json())


def stored_rows(raw: Raw, pool: str) -> Rows:
    """The pool's projection rows as stored."""
    return {
        table: {
            key: (json, int(seq))
            for key, json, seq in raw.execute(
                f"SELECT {key_column}, {json_column}, seq FROM {table} WHERE pool_id = ?", (pool,)
            )
        }
        for table, (key_column, json_column) in PROJECTIONS.items()
    }


def stored_pool_row(raw: Raw, pool: str) -> tuple[str | None, bool, int]:
    """The pool's row: config JSON, created flag, projection watermark."""
    ((config_json, created, projected_seq),) = raw.execute(
        "SELECT config_json, created, projected_seq FROM agent_pool_store_pools WHERE pool_id = ?",
        (pool,),
    )
    return config_json, bool(created), int(projected_seq)


def assert_projections_match(
    raw: Raw, pool: str, payloads: list[AgentPoolStoreRecordPayload]
) -> None:
    """The stored projection rows and pool row are exactly what the log implies."""
    expected = LastWrites.of(payloads)
    config_json = expected.config.model_dump_json() if expected.config else None
    assert stored_pool_row(raw, pool) == (config_json, expected.created, len(payloads))
    stored = stored_rows(raw, pool)
    for table in PROJECTIONS:
        assert stored[table] == expected.rows[table], table


def stored_log(raw: Raw, pool: str) -> list[tuple[int, str, str]]:
    return [
        (int(seq), kind, payload_json)
        for seq, kind, payload_json in raw.execute(
            "SELECT seq, kind, payload_json FROM agent_pool_records WHERE pool_id = ? ORDER BY seq",
            (pool,),
        )
    ]


# --- the foreign writer -----------------------------------------------------------------------


@dataclass
class ForeignLog:
    """A log as another implementation writes it: every record type, rows rewritten often.

    Each round joins a member for good and one that leaves two records later, records a
    message and re-records it with a new receipt status, registers a wake and re-records it
    triggered; some rounds rewrite a member's topics, leave a member joined forty rounds
    earlier (a few hundred records back, often in an earlier catch-up batch), leave and
    rejoin a member in a row, or give an older message or wake a new status.
    """

    payloads: list[AgentPoolStoreRecordPayload] = field(default_factory=list)
    members: dict[str, AgentPoolMember] = field(default_factory=dict)
    rounds: int = 0

    def opened(self) -> ForeignLog:
        self.payloads += [PoolOpened(config=EQUAL_CONFIG), PoolCreated()]
        return self

    def join(self, joining: AgentPoolMember) -> None:
        self.members[joining.run_id] = joining
        self.payloads.append(MemberJoined(member=joining))

    def leave(self, run_id: str) -> None:
        self.payloads.append(MemberLeft(member=self.members.pop(run_id)))

    def add_rounds(self, count: int) -> ForeignLog:
        for _ in range(count):
            self.add_round()
        return self

    def add_round(self) -> None:
        i = self.rounds
        self.rounds += 1
        self.join(member(f"run.{i}", f"topic.{i % 7}"))
        self.join(member(f"run.brief.{i}", f"topic.brief.{NASTY}"))
        self.payloads.append(message(f"message.{i}", MessageStatus.ACCEPTED))
        self.leave(f"run.brief.{i}")
        self.payloads.append(message(f"message.{i}", MessageStatus.DELIVERED))
        self.payloads.append(wake(f"wake.{i}", WakeRegistrationStatus.REGISTERED))
        self.payloads.append(wake(f"wake.{i}", WakeRegistrationStatus.TRIGGERED))
        if i % 3 == 0:
            self.join(member(f"run.{i}", f"topic.{i % 7}", f"topic.{NASTY}"))
        if i >= 40 and i % 4 == 1 and f"run.{i - 40}" in self.members:
            self.leave(f"run.{i - 40}")
        if i % 9 == 4 and f"run.{i - 1}" in self.members:
            rejoining = self.members[f"run.{i - 1}"]
            self.leave(rejoining.run_id)
            self.join(rejoining)
        if i >= 10 and i % 5 == 2:
            self.payloads.append(message(f"message.{i - 10}", MessageStatus.RESPONDED))
        if i >= 20 and i % 6 == 3:
            self.payloads.append(wake(f"wake.{i - 20}", WakeRegistrationStatus.CANCELLED))

    def write(self, raw: Raw, pool: str, start: int = 0) -> None:
        """Insert ``payloads[start:]`` from seq ``start + 1``, in one raw transaction."""
        raw.begin()
        for seq, payload in enumerate(self.payloads[start:], start=start + 1):
            raw.insert_record(pool, seq, payload.type, payload.model_dump_json())
        raw.commit()


def straddle(
    payloads: list[AgentPoolStoreRecordPayload], seq: int, pair: list[AgentPoolStoreRecordPayload]
) -> None:
    """Insert ``pair`` so that its records land at ``seq`` and ``seq + 1``."""
    payloads[seq - 1 : seq - 1] = pair


def lookup_keys(payloads: list[AgentPoolStoreRecordPayload]) -> tuple[set[str], set[str], set[str]]:
    """Message idempotency keys, wake idempotency keys and wake condition ids in a log."""
    message_keys, wake_keys, conditions = {"idem.none"}, {"idem.none"}, {"wake.none"}
    for payload in payloads:
        if isinstance(payload, RunMessageRecorded):
            message_keys.add(payload.stored.message.idempotency_key)
        elif isinstance(payload, WakeRecorded):
            wake_keys.add(payload.stored.condition.idempotency_key)
            conditions.add(payload.stored.condition.condition_id)
    return message_keys, wake_keys, conditions


def assert_same_as_memory(
    store: SqlAgentPoolStore,
    memory: InMemoryAgentPoolStore,
    payloads: list[AgentPoolStoreRecordPayload],
) -> None:
    assert store.snapshot(POOL) == memory.snapshot(POOL)
    message_keys, wake_keys, conditions = lookup_keys(payloads)
    for key in sorted(message_keys):
        assert store.message_receipt(POOL, key) == memory.message_receipt(POOL, key), key
    for key in sorted(wake_keys):
        assert store.wake_registration(POOL, key) == memory.wake_registration(POOL, key), key
    for condition_id in sorted(conditions):
        assert store.wake(POOL, condition_id) == memory.wake(POOL, condition_id), condition_id


def feed(
    memory: InMemoryAgentPoolStore, payloads: list[AgentPoolStoreRecordPayload], start: int
) -> None:
    """Apply ``payloads[start:]`` to the in-memory store through its operations."""
    for seq, payload in enumerate(payloads[start:], start=start + 1):
        assert apply_through_operations(memory, POOL, payload.model_dump_json()) == seq


# --- appends made by the store ----------------------------------------------------------------

CONFIG = AgentPoolStoreConfig(policy_refs=[PolicyRef(kind=PolicyKind.PERMISSION, id=f"p.{NASTY}")])


def store_operations(
    pool: str,
) -> list[tuple[AgentPoolStoreRecordPayload, Callable[[SqlAgentPoolStore], AgentPoolStoreCursor]]]:
    """Every appending operation (some twice, rewriting a row), with the payload it appends."""
    first = member(f"run.{NASTY}", f"topic.{NASTY}", "topic.plain")
    second = member("run.second")
    moved = member("run.second", "topic.moved")
    sent = message(f"message.{NASTY}", MessageStatus.ACCEPTED)
    delivered = message(f"message.{NASTY}", MessageStatus.DELIVERED)
    registered = wake(f"wake.{NASTY}", WakeRegistrationStatus.REGISTERED)
    triggered = wake(f"wake.{NASTY}", WakeRegistrationStatus.TRIGGERED)

    def opening(store: SqlAgentPoolStore) -> AgentPoolStoreCursor:
        cursor = store.open_pool(pool, CONFIG).cursor
        assert cursor is not None
        return cursor

    def leaving(store: SqlAgentPoolStore) -> AgentPoolStoreCursor:
        left, cursor = store.leave_member(pool, first.run_id)
        assert left == first
        return cursor

    def recording(
        payload: RunMessageRecorded,
    ) -> Callable[[SqlAgentPoolStore], AgentPoolStoreCursor]:
        return lambda s: s.record_message(pool, payload.stored.message, payload.stored.receipt)

    def waking(payload: WakeRecorded) -> Callable[[SqlAgentPoolStore], AgentPoolStoreCursor]:
        stored = payload.stored
        return lambda s: s.record_wake(
            pool, stored.condition, stored.compiled_filter, stored.registration
        )

    return [
        (PoolOpened(config=CONFIG), opening),
        (PoolCreated(), lambda s: s.record_pool_created(pool)),
        (MemberJoined(member=first), lambda s: s.join_member(pool, first)),
        (MemberJoined(member=second), lambda s: s.join_member(pool, second)),
        (sent, recording(sent)),
        (registered, waking(registered)),
        (MemberLeft(member=first), leaving),
        (delivered, recording(delivered)),
        (triggered, waking(triggered)),
        (MemberJoined(member=moved), lambda s: s.join_member(pool, moved)),
        (MemberJoined(member=first), lambda s: s.join_member(pool, first)),
        (PoolCreated(), lambda s: s.record_pool_created(pool)),
    ]


def test_store_appends_store_each_payload_verbatim(database: Database) -> None:
    store = database.open()
    raw = database.raw()
    pools = [POOL, f"pool.{NASTY}"]
    steps = {pool: store_operations(pool) for pool in pools}
    for index in range(len(steps[POOL])):
        for pool in pools:  # interleaved: each pool's batch must land in its own rows
            _, call = steps[pool][index]
            assert call(store).sequence == index + 1

    for pool in pools:
        payloads = [payload for payload, _ in steps[pool]]
        expected = [
            (seq, payload.type, payload.model_dump_json())
            for seq, payload in enumerate(payloads, start=1)
        ]
        assert stored_log(raw, pool) == expected
        assert_projections_match(raw, pool, payloads)
        assert [r.payload for r in store.watch(pool)] == payloads
        memory = InMemoryAgentPoolStore()
        for payload in payloads:
            apply_through_operations(memory, pool, payload.model_dump_json())
        assert store.snapshot(pool) == memory.snapshot(pool)
    report = store.verify()
    assert report.ok, str(report)
    assert sorted(report.pools) == sorted(pools)
    assert report.records == 2 * len(steps[POOL])


# --- catch-up of a foreign writer's log -------------------------------------------------------


def test_catch_up_of_a_long_foreign_log(database: Database) -> None:
    store = database.open()
    store.open_pool(OTHER, EQUAL_CONFIG)
    store.join_member(OTHER, member("run.other"))
    raw = database.raw()

    log = ForeignLog().opened().add_rounds(300)
    payloads = log.payloads
    # a member joining at the end of catch-up batch 1 and leaving at the start of batch 2;
    # a message recorded at the end of batch 2 and re-recorded at the start of batch 3
    boundary = member(f"run.boundary.{NASTY}", "topic.boundary")
    straddle(payloads, CATCH_UP_BATCH, [MemberJoined(member=boundary), MemberLeft(member=boundary)])
    straddle(
        payloads,
        2 * CATCH_UP_BATCH,
        [
            message("message.boundary", MessageStatus.ACCEPTED),
            message("message.boundary", MessageStatus.FAILED),
        ],
    )
    assert len(payloads) > 2 * CATCH_UP_BATCH + 100
    assert {payload.type for payload in payloads} == {
        "pool_opened",
        "pool_created",
        "member_joined",
        "member_left",
        "run_message",
        "wake",
    }
    log.write(raw, POOL)
    pending = store.verify(POOL)
    assert pending.ok and [d.check for d in pending.pending] == ["pending"]

    memory = InMemoryAgentPoolStore()
    feed(memory, payloads, 0)
    assert_same_as_memory(store, memory, payloads)  # the snapshot catches up first
    assert_projections_match(raw, POOL, payloads)
    report = store.verify()
    assert report.ok, str(report)
    assert report.records == len(payloads) + 2

    # the store appends, then the foreign writer again: catch-up from a watermark that is
    # no multiple of the batch, over rows the first catch-up wrote
    late = member("run.late", "topic.late")
    assert store.join_member(POOL, late).sequence == len(payloads) + 1
    log.join(late)
    memory.join_member(POOL, late)
    start = len(payloads)
    log.add_rounds(150)
    assert len(payloads) - start > CATCH_UP_BATCH
    log.write(raw, POOL, start)
    feed(memory, payloads, start)
    assert store.message_receipt(POOL, "idem.message.0") == memory.message_receipt(
        POOL, "idem.message.0"
    )  # a look-up catches up too
    assert_same_as_memory(store, memory, payloads)
    assert_projections_match(raw, POOL, payloads)
    assert stored_log(raw, POOL) == [
        (seq, payload.type, payload.model_dump_json())
        for seq, payload in enumerate(payloads, start=1)
    ]
    report = store.verify()
    assert report.ok, str(report)
    assert report.records == len(payloads) + 2
    assert store.join_member(POOL, member("run.last")).sequence == len(payloads) + 1
    assert store.snapshot(OTHER).members == (member("run.other"),)


# --- watch over a damaged record --------------------------------------------------------------

DAMAGED_PAYLOAD = '{"type":"member_joined"}'


@pytest.mark.parametrize(
    ("length", "damaged"),
    [
        (14, 1),
        (14, 6),
        (14, 14),
        (1300, CATCH_UP_BATCH),  # the last record of watch's first batch
        (1300, CATCH_UP_BATCH + 1),  # the first of its second batch
        (2200, 2 * CATCH_UP_BATCH + 7),
    ],
)
def test_watch_yields_the_records_before_an_unreadable_one(
    database: Database, length: int, damaged: int
) -> None:
    store = database.open()
    raw = database.raw()
    log = ForeignLog().opened()
    while len(log.payloads) < length:
        log.add_round()
    payloads = log.payloads = log.payloads[:length]
    log.write(raw, POOL)
    assert store.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=length)  # caught up
    assert store.verify().ok
    raw.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?",
        (DAMAGED_PAYLOAD, POOL, damaged),
    )

    seen: list[AgentPoolStoreRecord] = []
    with pytest.raises(AgentError) as caught:
        for record in store.watch(POOL):
            seen.append(record)
    assert [r.cursor.sequence for r in seen] == list(range(1, damaged))
    assert [r.payload for r in seen] == payloads[: damaged - 1]
    assert all(r.pool_id == POOL for r in seen)
    error = caught.value
    assert (error.kind, error.retry) == (
        AgentErrorKind.INVALID_STATE_TRANSITION,
        RetryClassification.REPAIR_NEEDED,
    )
    assert f"agent pool {POOL!r} record seq {damaged} cannot be read" in error.message

    with pytest.raises(AgentError) as again:
        next(store.watch(POOL, damaged - 1))
    assert f"record seq {damaged} cannot be read" in again.value.message

    after = list(store.watch(POOL, damaged))
    assert [r.cursor.sequence for r in after] == list(range(damaged + 1, length + 1))
    assert [r.payload for r in after] == payloads[damaged:]
    assert [d.seq for d in store.verify(POOL).differences if d.check == "payload"] == [damaged]


# --- PostgreSQL: pooled connections closed by the server --------------------------------------

HELD = 4
"""Connections put in the store's pool before each round of terminations."""


def concurrently(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls on as many threads, released together."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as executor:
        return list(executor.map(run, calls))


def fill_pool(store: SqlAgentPoolStore) -> None:
    """Leave at least :data:`HELD` open connections in the store's connection pool."""
    pool = store.engine.pool
    assert isinstance(pool, QueuePool)
    held = [store.engine.connect() for _ in range(HELD)]
    for connection in held:
        connection.execute(text("SELECT 1"))
    for connection in held:
        connection.close()
    assert pool.checkedin() >= HELD


def terminate_others(url: URL) -> int:
    """Terminate every other backend of the database; wait until they are gone."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    others = (
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        with admin.connect() as connection:
            pids = list(connection.execute(text(others)).scalars())
            for pid in pids:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while connection.execute(text(others)).first() is not None:
                assert time.monotonic() < deadline, "terminated backends did not exit"
                time.sleep(0.01)
        return len(pids)
    finally:
        admin.dispose()


@pytest.mark.postgresql
def test_stale_pooled_connections_are_replaced(
    pg_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(pg_url) as store:
        disconnects: list[str] = []

        @event.listens_for(store.engine, "handle_error")
        def on_error(context: ExceptionContext) -> None:
            if context.is_disconnect:
                disconnects.append(context.statement or "")

        driver_run = driver_execution._run  # the one-statement append runs on the driver

        def counted(connection: Connection, steps: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return driver_run(connection, steps, *args, **kwargs)
            except DBAPIError as error:
                if error.connection_invalidated:
                    disconnects.append(str(error.statement))
                raise

        monkeypatch.setattr(driver_execution, "_run", counted)

        store.open_pool(POOL, EQUAL_CONFIG)
        for run in ("a", "b", "c"):
            store.join_member(POOL, member(f"run.{run}"))
        before = store.snapshot(POOL)
        assert before.cursor == AgentPoolStoreCursor(sequence=4)

        # a read on a stale connection
        fill_pool(store)
        assert terminate_others(pg_url) >= HELD
        assert store.snapshot(POOL) == before
        assert len(disconnects) >= 1

        # a write on a stale connection
        fill_pool(store)
        assert terminate_others(pg_url) >= HELD
        seen = len(disconnects)
        assert store.join_member(POOL, member("run.d")).sequence == 5
        assert len(disconnects) > seen

        # a message and a look-up, each after its own terminations
        sent, receipt = message_pair("message.stale")
        fill_pool(store)
        assert terminate_others(pg_url) >= HELD
        assert store.record_message(POOL, sent, receipt).sequence == 6
        fill_pool(store)
        assert terminate_others(pg_url) >= HELD
        assert store.message_receipt(POOL, sent.idempotency_key) == receipt

        # concurrent writers, each likely on its own stale connection
        fill_pool(store)
        assert terminate_others(pg_url) >= HELD
        seen = len(disconnects)
        joins = [member(f"run.thread.{n}") for n in range(HELD)]
        cursors = concurrently([functools.partial(store.join_member, POOL, j) for j in joins])
        assert sorted(cursor.sequence for cursor in cursors) == list(range(7, 7 + HELD))
        assert len(disconnects) > seen

        snapshot = store.snapshot(POOL)
        assert snapshot.cursor == AgentPoolStoreCursor(sequence=6 + HELD)
        assert sorted(m.run_id for m in snapshot.members) == sorted(
            ["run.a", "run.b", "run.c", "run.d", *(m.run_id for m in joins)]
        )
        assert [r.cursor.sequence for r in store.watch(POOL)] == list(range(1, 7 + HELD))
        report = store.verify()
        assert report.ok, str(report)
        assert report.records == 6 + HELD


# --- PostgreSQL: appends in one statement ----------------------------------------------------


@dataclass
class StatementLog:
    """Every statement a store sends, in order: through SQLAlchemy or on the driver."""

    statements: list[str] = field(default_factory=list)

    def __call__(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        self.statements.append(statement)

    def clear(self) -> list[str]:
        sent, self.statements = self.statements, []
        return sent

    @classmethod
    def of(cls, store: SqlAgentPoolStore, monkeypatch: pytest.MonkeyPatch) -> StatementLog:
        """A log of ``store``'s statements (SQLAlchemy events, and the driver-level runner)."""
        log = cls()
        event.listen(store.engine, "before_cursor_execute", log)
        run = driver_execution._run

        def logged(connection: Connection, steps: Any, *args: Any, **kwargs: Any) -> Any:
            if connection.engine is store.engine:
                log.statements += [sql for sql, _, _ in steps]
            return run(connection, steps, *args, **kwargs)

        monkeypatch.setattr(driver_execution, "_run", logged)
        return log


@pytest.mark.postgresql
def test_appends_to_a_known_pool_are_one_statement(
    pg_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """record_pool_created, join_member, record_message and record_wake: one statement each
    once the store has read the pool's config; the first append, an append after foreign
    records and an append to a pool whose config was damaged take the unit of work."""
    store = open_store(pg_url)
    log = StatementLog.of(store, monkeypatch)
    raw = Raw("postgresql", pg_url.set(drivername="postgresql").render_as_string(False))
    try:
        store.open_pool(POOL, EQUAL_CONFIG)  # this store wrote the config: it can read it
        log.clear()
        assert store.record_pool_created(POOL).sequence == 2
        assert len(log.clear()) == 1
        condition, compiled, registration = wake_triple("wake.direct")
        appends: list[Callable[[], AgentPoolStoreCursor]] = [
            lambda: store.join_member(POOL, member("run.direct")),
            lambda: store.record_message(POOL, *message_pair("message.direct")),
            lambda: store.record_wake(POOL, condition, compiled, registration),
        ]
        for expected, append in enumerate(appends, start=3):
            assert append().sequence == expected
            assert len(log.clear()) == 1

        # A second store object on the same database: its first append reads the config.
        other = open_store(pg_url)
        other_log = StatementLog.of(other, monkeypatch)
        assert other.join_member(POOL, member("run.other")).sequence == 6
        assert len(other_log.clear()) > 1
        assert other.join_member(POOL, member("run.other.2")).sequence == 7
        assert len(other_log.clear()) == 1
        other.close()

        # Foreign records past the watermark: the statement does nothing, a unit catches up.
        foreign = MemberJoined(member=member("run.foreign"))
        raw.append_record(POOL, foreign.type, foreign.model_dump_json())  # seq 8
        assert store.join_member(POOL, member("run.after")).sequence == 9
        assert len(log.clear()) > 1
        assert {m.run_id for m in store.snapshot(POOL).members} >= {"run.foreign", "run.after"}

        # A damaged config projection: the append fails as on SQLite, and writes nothing.
        raw.execute(
            "UPDATE agent_pool_store_pools SET config_json = ? WHERE pool_id = ?",
            ('{"unexpected": true}', POOL),
        )
        with pytest.raises(AgentError) as caught:
            store.join_member(POOL, member("run.refused"))
        assert caught.value.retry is RetryClassification.REPAIR_NEEDED
        assert raw.last_seq(POOL) == 9
        assert store.rebuild(POOL) == 9
        assert store.verify().ok
        assert [r.cursor.sequence for r in store.watch(POOL)] == list(range(1, 10))
    finally:
        raw.close()
        store.close()


@pytest.mark.postgresql
def test_one_statement_paths_turned_off_run_units_of_work(
    pg_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``postgresql_one_statement=False`` an append to, and a look-up in, a pool the
    store knows are units of work (more than one statement each), and answer the same."""
    store = open_store(pg_url, postgresql_one_statement=False)
    log = StatementLog.of(store, monkeypatch)
    try:
        store.open_pool(POOL, EQUAL_CONFIG)
        sent, receipt = message_pair("message.units")
        log.clear()
        assert store.record_message(POOL, sent, receipt).sequence == 2
        assert len(log.clear()) > 1
        assert store.join_member(POOL, member("run.units")).sequence == 3
        assert len(log.clear()) > 1
        assert store.message_receipt(POOL, sent.idempotency_key) == receipt
        assert len(log.clear()) > 1
        assert store.wake(POOL, "wake.missing") is None
        assert len(log.clear()) > 1
        assert store.verify().ok
    finally:
        store.close()


def repair_needed_after(raw: Raw, table: str, column: str, call: Callable[[], object]) -> bool:
    """Damage ``column`` of the pool's rows in ``table``; whether ``call`` then fails with
    RepairNeeded."""
    raw.execute(
        f"UPDATE {table} SET {column} = ? WHERE pool_id = ?", ('{"unexpected": true}', POOL)
    )
    try:
        call()
    except AgentError as error:
        return error.retry is RetryClassification.REPAIR_NEEDED
    return False


@pytest.mark.postgresql
def test_look_ups_of_a_known_pool_are_one_statement(
    pg_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """message_receipt, wake_registration and wake: one statement each once the store has
    read the pool's config, found or not; with foreign records past the watermark, a
    damaged row or a damaged config they answer as the unit of work does."""
    store = open_store(pg_url)
    log = StatementLog.of(store, monkeypatch)
    raw = Raw("postgresql", pg_url.set(drivername="postgresql").render_as_string(False))
    try:
        store.open_pool(POOL, EQUAL_CONFIG)
        sent, receipt = message_pair("message.look")
        store.record_message(POOL, sent, receipt)
        condition, compiled, registration = wake_triple("wake.look")
        store.record_wake(POOL, condition, compiled, registration)
        log.clear()
        assert store.message_receipt(POOL, sent.idempotency_key) == receipt
        assert store.wake_registration(POOL, condition.idempotency_key) == registration
        stored_wake = store.wake(POOL, condition.condition_id)
        assert stored_wake is not None and stored_wake.registration == registration
        assert store.message_receipt(POOL, "idem.missing") is None
        assert store.wake(POOL, "wake.missing") is None
        assert len(log.clear()) == 5

        # A foreign record past the watermark: the statement answers nothing, a unit catches
        # up, and the look-up sees the foreign receipt.
        delivered = receipt.model_copy(update={"status": MessageStatus.DELIVERED})
        foreign = RunMessageRecorded(stored=AgentPoolStoredMessage(message=sent, receipt=delivered))
        raw.append_record(POOL, foreign.type, foreign.model_dump_json())
        key = sent.idempotency_key
        assert store.message_receipt(POOL, key) == delivered
        assert len(log.clear()) > 1
        assert store.message_receipt(POOL, key) == delivered
        assert len(log.clear()) == 1  # caught up: one statement again

        # A damaged projection row: RepairNeeded, as from a unit of work.
        damaged = ("agent_pool_store_message_receipts", "receipt_json")
        assert repair_needed_after(raw, *damaged, lambda: store.message_receipt(POOL, key))
        assert len(log.clear()) == 1

        # A damaged config: the statement answers nothing; the unit reports RepairNeeded.
        damaged = ("agent_pool_store_pools", "config_json")
        assert repair_needed_after(raw, *damaged, lambda: store.wake(POOL, "wake.look"))
        assert len(log.clear()) > 1
    finally:
        raw.close()
        store.close()


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [node]
    for child in node.get("Plans", []):
        nodes += _plan_nodes(child)
    return nodes


@pytest.mark.postgresql
def test_one_statement_append_reads_the_log_by_an_index_probe(pg_url: URL) -> None:
    """The append statement's checks of the log (records past the watermark, the record at
    the watermark, records below seq 1) are index probes on (pool_id, seq), not scans of the
    pool's records, even before the table is analyzed: an append costs the same at any
    history length."""
    store = open_store(pg_url)
    try:
        store.open_pool(POOL, EQUAL_CONFIG)
        for index in range(200):
            store.join_member(POOL, member(f"run.{index}"))
        payload = MemberJoined(member=member("run.explained"))
        batch = ProjectionBatch()
        apply_payload(batch, payload)
        with store.engine.connect() as connection:
            config_json = connection.execute(
                text("SELECT config_json FROM agent_pool_store_pools WHERE pool_id = :pool"),
                {"pool": POOL},
            ).scalar_one()
            statement, params = append_statement(
                POOL, config_json, payload.type, payload.model_dump_json(), batch
            )
            prepared = driver_execution.driver_statement(statement, connection.dialect)
            driver = connection.connection.driver_connection
            assert driver is not None
            (plan,) = driver.execute(
                "EXPLAIN (FORMAT JSON) " + prepared.sql, prepared.parameters(params)
            ).fetchone()
            connection.rollback()
        record_reads = [
            node
            for node in _plan_nodes(plan[0]["Plan"])
            if node.get("Relation Name") == "agent_pool_records" and "Scan" in node["Node Type"]
        ]
        assert record_reads, plan
        for node in record_reads:
            assert node["Node Type"] in {"Index Scan", "Index Only Scan"}, node
            assert any(op in node["Index Cond"] for op in ("seq >", "seq =", "seq <")), node
            assert "Filter" not in node, node
    finally:
        store.close()


@pytest.mark.postgresql
def test_one_statement_appends_from_many_threads_keep_the_log_gapless(pg_url: URL) -> None:
    """Threads appending to one pool through the one-statement path, with a second store
    object and a foreign writer interleaved: cursors 1..N once each, and verify is ok."""
    stores = [open_store(pg_url), open_store(pg_url)]
    raw = Raw("postgresql", pg_url.set(drivername="postgresql").render_as_string(False))
    try:
        for store in stores:
            store.open_pool(POOL, EQUAL_CONFIG)  # the second call reads the stored config
        calls: list[Callable[[], AgentPoolStoreCursor]] = [
            functools.partial(stores[i % 2].join_member, POOL, member(f"run.{i}"))
            for i in range(60)
        ]
        calls += [
            functools.partial(stores[i % 2].record_message, POOL, *message_pair(f"m.{i}"))
            for i in range(60)
        ]
        foreign = MemberJoined(member=member("run.foreign"))
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(call) for call in calls]
            while True:  # a foreign writer takes MAX(seq) + 1 and retries on a collision
                try:
                    raw.append_record(POOL, foreign.type, foreign.model_dump_json())
                    break
                except Exception as error:  # the driver's unique violation
                    assert "duplicate key" in str(error)
            cursors = [future.result().sequence for future in futures]
        assert len(set(cursors)) == len(cursors) == 120
        (foreign_seq,) = set(range(2, 123)) - set(cursors)  # 1 is pool_opened
        records = list(stores[0].watch(POOL))
        assert [r.cursor.sequence for r in records] == list(range(1, 123))
        assert records[foreign_seq - 1].payload == foreign
        assert len(stores[1].snapshot(POOL).members) == 61
        assert stores[0].verify().ok
    finally:
        raw.close()
        for store in stores:
            store.close()


@pytest.mark.postgresql
def test_a_pooled_connection_the_driver_knows_is_closed_is_replaced(pg_url: URL) -> None:
    """The one-statement append on a pooled connection psycopg has already marked closed: the
    append still lands once, on a fresh connection, and no driver exception escapes."""
    store = open_store(pg_url)
    try:
        store.open_pool(POOL, EQUAL_CONFIG)

        def close_on_checkout(dbapi_connection: Any, record: object, proxy: object) -> None:
            dbapi_connection.close()  # the next connection handed out is closed

        event.listen(store.engine, "checkout", close_on_checkout, once=True)
        assert store.join_member(POOL, member("run.after.close")).sequence == 2
        assert [r.cursor.sequence for r in store.watch(POOL)] == [1, 2]
        assert store.verify().ok
    finally:
        store.close()


def test_an_append_never_leaves_a_gap_after_removed_records(database: Database) -> None:
    """The last records removed by hand (the watermark is past the log's end): the pool is
    RepairNeeded, naming it, and nothing is appended (on PostgreSQL through either path);
    verify names the problem; after rebuild, appends continue at the log's end + 1."""
    store = database.open()
    raw = database.raw()
    store.open_pool(POOL, EQUAL_CONFIG)  # on PostgreSQL appends now take one statement
    for run in ("a", "b", "c", "d"):
        store.join_member(POOL, member(f"run.{run}"))
    raw.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > 3", (POOL,))
    for call in (
        lambda: store.join_member(POOL, member("run.e")),
        lambda: store.record_pool_created(POOL),
        lambda: store.leave_member(POOL, "run.a"),
        lambda: store.next_event_sequence(POOL),
        lambda: store.snapshot(POOL),
    ):
        with pytest.raises(AgentError) as caught:
            call()
        assert caught.value.retry is RetryClassification.REPAIR_NEEDED
        assert POOL in caught.value.message
    assert raw.last_seq(POOL) == 3
    report = store.verify()
    assert not report.ok
    assert any("watermark 5 is past the log's end 3" in str(d) for d in report.differences)
    assert store.rebuild(POOL) == 3
    assert store.join_member(POOL, member("run.e")).sequence == 4
    assert [r.cursor.sequence for r in store.watch(POOL)] == [1, 2, 3, 4]
    assert store.verify().ok


@pytest.mark.postgresql
def test_admin_reads_replace_a_stale_pooled_connection(pg_url: URL) -> None:
    """verify, pools, pool_ids, count_records and export run again on a fresh connection when
    their pooled one was closed by the server, as every other operation does."""
    with open_store(pg_url) as store:
        store.open_pool(POOL, EQUAL_CONFIG)
        store.join_member(POOL, member("run.a"))
        calls: list[Callable[[], object]] = [
            lambda: store.verify().ok,
            lambda: [summary.records for summary in store.pools()],
            store.pool_ids,
            store.count_records,
            lambda: len(list(store.export_records())),
        ]
        expected = [True, [2], [POOL], 2, 2]
        for call, answer in zip(calls, expected, strict=True):
            fill_pool(store)
            assert terminate_others(pg_url) >= HELD
            assert call() == answer
