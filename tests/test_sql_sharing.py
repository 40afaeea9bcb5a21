"""One SQL database shared by several store objects, OS processes and a foreign writer.

Every test runs on SQLite (a fresh migrated file) and on PostgreSQL (the run's database,
emptied per test). The foreign writer appends rows the way the Rust reference adapter does:
straight into ``agent_pool_records`` with ``seq = MAX(seq) + 1``, through the raw driver
(``sqlite3`` / ``psycopg``), knowing nothing of the store's own tables.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent_pool_store import (
    RECORD_PAYLOAD,
    AgentError,
    AgentErrorKind,
    AgentPoolMember,
    AgentPoolStoreConfig,
    AgentPoolStoreCursor,
    AgentPoolStoredMessage,
    AgentPoolStoredWake,
    AgentPoolStoreRecord,
    AgentPoolStoreRecordPayload,
    MemberJoined,
    MemberLeft,
    MessageReceipt,
    MessageStatus,
    PoolCreated,
    PoolOpened,
    PoolState,
    RetryClassification,
    RunMessageRecorded,
    SqlAgentPoolStore,
    WakeRecorded,
    WakeRegistration,
    WakeRegistrationStatus,
    open_store,
)
from tests.factories import (
    ConfigFactory,
    MemberFactory,
    PolicyRefFactory,
    message_pair,
    wake_triple,
)
from tests.reliability.workers import Database

ROOT = Path(__file__).resolve().parent.parent
POOL = "pool.shared"
CHILD_TIMEOUT = 120


# --- databases -------------------------------------------------------------------------------


class ForeignWriter:
    """Another implementation of the wire format writing into the same database."""

    def __init__(self, database: Database) -> None:
        self.dialect = database.dialect
        self.conflicts = 0
        if self.dialect == "sqlite":
            self.sqlite = sqlite3.connect(
                database.raw_target, timeout=10, isolation_level=None, check_same_thread=False
            )
        else:
            self.pg = psycopg.connect(database.raw_target)

    def close(self) -> None:
        if self.dialect == "sqlite":
            self.sqlite.close()
        else:
            self.pg.close()

    def append(self, pool_id: str, payload: AgentPoolStoreRecordPayload) -> int:
        """Append ``payload`` at ``MAX(seq) + 1`` of the pool; return that sequence."""
        kind, payload_json = payload.type, payload.model_dump_json()
        if self.dialect == "sqlite":
            self.sqlite.execute("BEGIN IMMEDIATE")
            try:
                (seq,) = self.sqlite.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM agent_pool_records WHERE pool_id = ?",
                    (pool_id,),
                ).fetchone()
                self.sqlite.execute(
                    "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
                    " VALUES (?, ?, ?, ?)",
                    (pool_id, seq, kind, payload_json),
                )
            except BaseException:
                self.sqlite.execute("ROLLBACK")
                raise
            self.sqlite.execute("COMMIT")
            return int(seq)
        while True:
            try:
                with self.pg.transaction():
                    row = self.pg.execute(
                        "SELECT COALESCE(MAX(seq), 0) + 1 FROM agent_pool_records"
                        " WHERE pool_id = %s",
                        (pool_id,),
                    ).fetchone()
                    assert row is not None
                    seq = row[0]
                    self.pg.execute(
                        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
                        " VALUES (%s, %s, %s, %s)",
                        (pool_id, seq, kind, payload_json),
                    )
                return int(seq)
            except psycopg.errors.UniqueViolation:
                self.conflicts += 1  # a concurrent writer took that seq: read MAX again

    def next_event_sequence(self, pool_id: str) -> int:
        """Advance the pool's counter in ``agent_pool_event_seq`` as the reference does."""
        statement = (
            "INSERT INTO agent_pool_event_seq (pool_id, seq) VALUES ({p}, 1)"
            " ON CONFLICT (pool_id) DO UPDATE SET seq = agent_pool_event_seq.seq + 1"
            " RETURNING seq"
        )
        if self.dialect == "sqlite":
            self.sqlite.execute("BEGIN IMMEDIATE")
            (seq,) = self.sqlite.execute(statement.format(p="?"), (pool_id,)).fetchone()
            self.sqlite.execute("COMMIT")
            return int(seq)
        with self.pg.transaction():
            row = self.pg.execute(statement.format(p="%s"), (pool_id,)).fetchone()
        assert row is not None
        return int(row[0])

    def rows(self, pool_id: str) -> list[tuple[int, str, str]]:
        """``(seq, kind, payload_json)`` of the pool's rows, in order."""
        query = "SELECT seq, kind, payload_json FROM agent_pool_records WHERE pool_id = {p}"
        query += " ORDER BY seq"
        if self.dialect == "sqlite":
            return [tuple(row) for row in self.sqlite.execute(query.format(p="?"), (pool_id,))]
        with self.pg.transaction():
            return [tuple(row) for row in self.pg.execute(query.format(p="%s"), (pool_id,))]


@pytest.fixture
def writer(database: Database) -> Iterator[ForeignWriter]:
    """Another implementation writing into this test's database."""
    made = ForeignWriter(database)
    try:
        yield made
    finally:
        made.close()


# --- helpers ---------------------------------------------------------------------------------


def sequences(
    store: SqlAgentPoolStore, pool_id: str = POOL, cursor: int | None = None
) -> list[int]:
    return [record.cursor.sequence for record in store.watch(pool_id, cursor)]


def replayed(payloads: list[AgentPoolStoreRecordPayload]) -> PoolState:
    return PoolState.replay(enumerate(payloads, start=1))


def as_records(pool_id: str, payloads: list[AgentPoolStoreRecordPayload]) -> list[Any]:
    return [
        AgentPoolStoreRecord(
            pool_id=pool_id, cursor=AgentPoolStoreCursor(sequence=seq), payload=payload
        )
        for seq, payload in enumerate(payloads, start=1)
    ]


def assert_matches_rows(store: SqlAgentPoolStore, writer: ForeignWriter, pool_id: str) -> None:
    """The store's snapshot and watch equal a fresh replay of the raw rows."""
    rows = writer.rows(pool_id)
    assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1))
    payloads = [RECORD_PAYLOAD.validate_json(payload_json) for _, _, payload_json in rows]
    assert [kind for _, kind, _ in rows] == [payload.type for payload in payloads]
    state = replayed(payloads)
    assert store.snapshot(pool_id) == state.snapshot(pool_id)
    assert list(store.watch(pool_id)) == as_records(pool_id, payloads)
    for key, receipt in state.message_receipts.items():
        assert store.message_receipt(pool_id, key) == receipt
    for key, registration in state.wake_registrations.items():
        assert store.wake_registration(pool_id, key) == registration
    for condition_id, stored in state.wakes.items():
        assert store.wake(pool_id, condition_id) == stored


def run_child(code: str, *args: str, stdin: str = "") -> dict[str, Any]:
    """Run ``code`` in a new Python process at the repo root; return its last stdout line."""
    completed = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=child_environment(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


def child_environment() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


# --- two store objects -----------------------------------------------------------------------


def test_two_store_objects_see_each_others_writes(database: Database) -> None:
    first, second = database.open(), database.open()
    config = AgentPoolStoreConfig(policy_refs=[PolicyRefFactory()])
    assert first.open_pool(POOL, config).cursor == AgentPoolStoreCursor(sequence=1)
    # equal config through the other object appends nothing; another config conflicts
    assert second.open_pool(POOL, config).cursor == AgentPoolStoreCursor(sequence=1)
    with pytest.raises(AgentError) as caught:
        second.open_pool(POOL, AgentPoolStoreConfig())
    assert caught.value.retry is RetryClassification.REPAIR_NEEDED

    # members
    alice = MemberFactory(run_id="run.alice", topics=["t.b", "t.a"])
    assert first.join_member(POOL, alice).sequence == 2
    assert second.snapshot(POOL).members == (alice,)
    bob = MemberFactory(run_id="run.bob", topics=["t.c"])
    assert second.join_member(POOL, bob).sequence == 3
    assert first.snapshot(POOL).topics == ("t.a", "t.b", "t.c")
    rejoined = MemberFactory(run_id="run.alice", topics=["t.z"])
    assert second.join_member(POOL, rejoined).sequence == 4
    assert first.snapshot(POOL).members == (rejoined, bob)
    assert first.leave_member(POOL, "run.bob") == (bob, AgentPoolStoreCursor(sequence=5))
    with pytest.raises(AgentError) as caught:
        second.leave_member(POOL, "run.bob")
    assert caught.value.retry is RetryClassification.NOT_RETRYABLE

    # messages and receipts by idempotency key
    message, receipt = message_pair("message.1")
    assert second.record_message(POOL, message, receipt).sequence == 6
    assert first.message_receipt(POOL, message.idempotency_key) == receipt
    delivered = receipt.model_copy(update={"status": MessageStatus.DELIVERED})
    assert first.record_message(POOL, message, delivered).sequence == 7
    assert second.message_receipt(POOL, message.idempotency_key) == delivered

    # wakes and registrations
    condition, compiled, registration = wake_triple("wake.1")
    assert first.record_wake(POOL, condition, compiled, registration).sequence == 8
    stored = second.wake(POOL, "wake.1")
    assert stored == AgentPoolStoredWake(
        condition=condition, compiled_filter=compiled, registration=registration
    )
    assert second.wake_registration(POOL, condition.idempotency_key) == registration
    triggered = registration.model_copy(update={"status": WakeRegistrationStatus.TRIGGERED})
    assert second.record_wake(POOL, condition, compiled, triggered).sequence == 9
    assert first.wake_registration(POOL, condition.idempotency_key) == triggered

    # cursors: one log, watched from anywhere through either object
    assert sequences(first) == sequences(second) == list(range(1, 10))
    assert list(first.watch(POOL, 4)) == list(second.watch(POOL, 4))
    assert sequences(second, cursor=7) == [8, 9]

    # event sequences interleave
    assert [
        first.next_event_sequence(POOL),
        second.next_event_sequence(POOL),
        first.next_event_sequence(POOL),
        second.next_event_sequence(POOL),
    ] == [1, 2, 3, 4]
    assert first.snapshot(POOL) == second.snapshot(POOL)
    assert first.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=9)


# --- OS processes ----------------------------------------------------------------------------

WRITER_CHILD = textwrap.dedent(
    """
    import json
    import sys

    from agent_pool_store import open_store
    from tests.factories import ConfigFactory, MemberFactory, message_pair, wake_triple

    url, pool, tag, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = open_store(url)
    store.open_pool(f"pool.warm.{tag}", ConfigFactory())  # first-use costs before the race
    store.join_member(f"pool.warm.{tag}", MemberFactory())
    store.next_event_sequence(f"pool.warm.{tag}")
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    store.open_pool(pool, ConfigFactory())
    cursors, events, receipts, registrations = [], [], {}, {}
    for index in range(count):
        member = MemberFactory(run_id=f"run.{tag}.{index}", topics=[f"t.{tag}"])
        cursors.append(store.join_member(pool, member).sequence)
        message, receipt = message_pair(f"message.{tag}.{index}")
        cursors.append(store.record_message(pool, message, receipt).sequence)
        receipts[message.idempotency_key] = receipt.model_dump_json()
        condition, compiled, registration = wake_triple(f"wake.{tag}.{index}")
        cursors.append(store.record_wake(pool, condition, compiled, registration).sequence)
        registrations[condition.idempotency_key] = registration.model_dump_json()
        events.append(store.next_event_sequence(pool))
    left, cursor = store.leave_member(pool, f"run.{tag}.0")
    cursors.append(cursor.sequence)
    store.close()
    print(json.dumps({
        "cursors": cursors, "events": events, "receipts": receipts,
        "registrations": registrations, "left": left.run_id,
    }))
    """
)

READER_CHILD = textwrap.dedent(
    """
    import json
    import sys

    from agent_pool_store import open_store

    url, pool = sys.argv[1], sys.argv[2]
    expected = json.loads(sys.stdin.read())
    store = open_store(url)
    snapshot = store.snapshot(pool)
    watched = [record.model_dump_json() for record in store.watch(pool)]
    receipts = {
        key: store.message_receipt(pool, key).model_dump_json() for key in expected["receipts"]
    }
    registrations = {
        key: store.wake_registration(pool, key).model_dump_json()
        for key in expected["registrations"]
    }
    wakes = {
        condition_id: store.wake(pool, condition_id).model_dump_json()
        for condition_id in expected["conditions"]
    }
    event = store.next_event_sequence(pool)
    member = store.snapshot(pool).members[0]
    left, cursor = store.leave_member(pool, member.run_id)
    store.close()
    print(json.dumps({
        "snapshot": snapshot.model_dump_json(), "watched": watched, "receipts": receipts,
        "registrations": registrations, "wakes": wakes, "event": event,
        "left": left.run_id, "cursor": cursor.sequence,
    }))
    """
)


@pytest.mark.slow
def test_two_processes_share_one_database(database: Database) -> None:
    count = 12
    store = database.open()
    store.open_pool("pool.warm.parent", ConfigFactory())  # first-use costs before the race
    store.join_member("pool.warm.parent", MemberFactory())
    store.next_event_sequence("pool.warm.parent")
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER_CHILD, database.url, POOL, "child", str(count)],
        cwd=ROOT,
        env=child_environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr and child.stderr.read()
        # The parent writes while the child does: both open the pool with equal configs.
        child.stdin.write("go\n")
        child.stdin.flush()
        store.open_pool(POOL, ConfigFactory())
        cursors, events, receipts, registrations = [], [], {}, {}
        for index in range(count):
            member = MemberFactory(run_id=f"run.parent.{index}", topics=["t.parent"])
            cursors.append(store.join_member(POOL, member).sequence)
            message, receipt = message_pair(f"message.parent.{index}")
            cursors.append(store.record_message(POOL, message, receipt).sequence)
            receipts[message.idempotency_key] = receipt
            condition, compiled, registration = wake_triple(f"wake.parent.{index}")
            cursors.append(store.record_wake(POOL, condition, compiled, registration).sequence)
            registrations[condition.idempotency_key] = registration
            events.append(store.next_event_sequence(POOL))
        cursors.append(store.leave_member(POOL, "run.parent.0")[1].sequence)
        out, err = child.communicate(timeout=CHILD_TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    written = json.loads(out.splitlines()[-1])

    # One pool_opened; each side's cursors increase; together they are 2..N without a gap.
    total = 1 + 2 * (3 * count + 1)
    records = list(store.watch(POOL))
    assert [record.cursor.sequence for record in records] == list(range(1, total + 1))
    assert [r.payload.type for r in records].count("pool_opened") == 1
    assert cursors == sorted(cursors)
    assert written["cursors"] == sorted(written["cursors"])
    assert sorted(cursors + written["cursors"]) == list(range(2, total + 1))
    assert sorted(events + written["events"]) == list(range(1, 2 * count + 1))

    # The parent sees the child's writes.
    snapshot = store.snapshot(POOL)
    assert snapshot.cursor == AgentPoolStoreCursor(sequence=total)
    run_ids = {member.run_id for member in snapshot.members}
    assert run_ids == {f"run.{tag}.{i}" for tag in ("child", "parent") for i in range(1, count)}
    assert snapshot.topics == ("t.child", "t.parent")
    assert len(snapshot.messages) == len(snapshot.wakes) == 2 * count
    for key, receipt_json in written["receipts"].items():
        assert store.message_receipt(POOL, key) == MessageReceipt.model_validate_json(receipt_json)
    for key, registration_json in written["registrations"].items():
        assert store.wake_registration(POOL, key) == WakeRegistration.model_validate_json(
            registration_json
        )
    wakes = {stored.condition.condition_id: stored for stored in snapshot.wakes}
    assert store.wake(POOL, "wake.child.3") == wakes["wake.child.3"]

    # A second child sees the parent's writes, then continues events and cursors.
    expected = {
        "receipts": sorted(receipts),
        "registrations": sorted(registrations),
        "conditions": [f"wake.parent.{i}" for i in range(count)],
    }
    seen = run_child(READER_CHILD, database.url, POOL, stdin=json.dumps(expected))
    assert seen["snapshot"] == snapshot.model_dump_json()
    assert seen["watched"] == [record.model_dump_json() for record in records]
    assert {k: MessageReceipt.model_validate_json(v) for k, v in seen["receipts"].items()} == (
        receipts
    )
    assert {
        k: WakeRegistration.model_validate_json(v) for k, v in seen["registrations"].items()
    } == registrations
    for condition_id, wake_json in seen["wakes"].items():
        assert store.wake(POOL, condition_id) == AgentPoolStoredWake.model_validate_json(wake_json)
    assert seen["event"] == 2 * count + 1
    assert seen["left"] == "run.child.1"
    assert seen["cursor"] == total + 1
    assert store.next_event_sequence(POOL) == 2 * count + 2
    assert sequences(store, cursor=total) == [total + 1]
    assert "run.child.1" not in {member.run_id for member in store.snapshot(POOL).members}


# --- close and reopen ------------------------------------------------------------------------


def test_close_and_reopen_keeps_everything(database: Database) -> None:
    store = open_store(database.url)
    config = AgentPoolStoreConfig(policy_refs=[PolicyRefFactory()])
    store.open_pool(POOL, config)
    store.open_pool("pool.other", ConfigFactory())
    store.record_pool_created(POOL)
    store.join_member(POOL, MemberFactory(run_id="run.a", topics=["t.a"]))
    store.join_member(POOL, MemberFactory(run_id="run.b", topics=["t.b"]))
    store.leave_member(POOL, "run.b")
    message, receipt = message_pair("message.1")
    store.record_message(POOL, message, receipt)
    condition, compiled, registration = wake_triple("wake.1")
    store.record_wake(POOL, condition, compiled, registration)
    store.join_member("pool.other", MemberFactory(run_id="run.o"))
    assert [store.next_event_sequence(POOL) for _ in range(3)] == [1, 2, 3]
    assert store.next_event_sequence("pool.other") == 1
    before = {
        pool_id: (store.snapshot(pool_id), list(store.watch(pool_id)))
        for pool_id in (POOL, "pool.other")
    }
    store.close()

    reopened = database.open()
    for pool_id, (snapshot, watched) in before.items():
        assert reopened.snapshot(pool_id) == snapshot
        assert list(reopened.watch(pool_id)) == watched
    assert reopened.message_receipt(POOL, message.idempotency_key) == receipt
    assert reopened.wake_registration(POOL, condition.idempotency_key) == registration
    assert reopened.wake(POOL, "wake.1") == AgentPoolStoredWake(
        condition=condition, compiled_filter=compiled, registration=registration
    )
    assert reopened.open_pool(POOL, config).cursor == AgentPoolStoreCursor(sequence=7)
    with pytest.raises(AgentError):
        reopened.open_pool(POOL, AgentPoolStoreConfig())
    with pytest.raises(AgentError):
        reopened.leave_member(POOL, "run.b")
    assert reopened.leave_member(POOL, "run.a")[1] == AgentPoolStoreCursor(sequence=8)
    assert reopened.join_member("pool.other", MemberFactory()).sequence == 3
    assert reopened.next_event_sequence(POOL) == 4
    assert reopened.next_event_sequence("pool.other") == 2
    assert sequences(reopened, cursor=6) == [7, 8]
    reopened.close()

    again = database.open()
    assert again.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=8)
    assert again.snapshot(POOL).members == ()
    assert again.next_event_sequence(POOL) == 5


# --- foreign writer --------------------------------------------------------------------------

FOREIGN_POOL = "pool.foreign"
FOREIGN_CONFIG = AgentPoolStoreConfig(policy_refs=[PolicyRefFactory(id="policy.foreign")])
ALICE = AgentPoolMember(run_id="run.alice", agent_id="agent.alice", topics=("t.x", "t.a"))
BOB = AgentPoolMember(run_id="run.bob", agent_id="agent.bob", topics=("t.b",))
CAROL = AgentPoolMember(run_id="run.carol", agent_id="agent.carol")


def foreign_payloads() -> list[AgentPoolStoreRecordPayload]:
    """A brand-new pool as another implementation would write it."""
    message_1, receipt_1 = message_pair("message.1", idempotency_key="idem.shared")
    message_2, receipt_2 = message_pair(
        "message.2", idempotency_key="idem.shared", status=MessageStatus.RESPONDED
    )
    message_3, receipt_3 = message_pair("message.3")
    condition_1, compiled_1, registration_1 = wake_triple("wake.1")
    triggered = registration_1.model_copy(update={"status": WakeRegistrationStatus.TRIGGERED})
    condition_2, compiled_2, registration_2 = wake_triple("wake.2", run_id="run.bob")
    return [
        PoolOpened(config=FOREIGN_CONFIG),
        PoolCreated(),
        MemberJoined(member=ALICE),
        MemberJoined(member=BOB),
        MemberJoined(member=CAROL),
        RunMessageRecorded(stored=AgentPoolStoredMessage(message=message_1, receipt=receipt_1)),
        RunMessageRecorded(stored=AgentPoolStoredMessage(message=message_2, receipt=receipt_2)),
        RunMessageRecorded(stored=AgentPoolStoredMessage(message=message_3, receipt=receipt_3)),
        WakeRecorded(
            stored=AgentPoolStoredWake(
                condition=condition_1, compiled_filter=compiled_1, registration=registration_1
            )
        ),
        WakeRecorded(
            stored=AgentPoolStoredWake(
                condition=condition_2, compiled_filter=compiled_2, registration=registration_2
            )
        ),
        WakeRecorded(
            stored=AgentPoolStoredWake(
                condition=condition_1, compiled_filter=compiled_1, registration=triggered
            )
        ),
        MemberLeft(member=CAROL),
    ]


FIRST_OPERATIONS: dict[str, Callable[[SqlAgentPoolStore, PoolState], None]] = {
    "snapshot": lambda s, state: _check(s.snapshot(FOREIGN_POOL) == state.snapshot(FOREIGN_POOL)),
    "open_pool": lambda s, state: _check(
        s.open_pool(FOREIGN_POOL, FOREIGN_CONFIG) == state.snapshot(FOREIGN_POOL)
    ),
    "message_receipt": lambda s, state: _check(
        s.message_receipt(FOREIGN_POOL, "idem.shared") == state.message_receipts["idem.shared"]
    ),
    "wake_registration": lambda s, state: _check(
        s.wake_registration(FOREIGN_POOL, "idem.wake.1") == state.wake_registrations["idem.wake.1"]
    ),
    "wake": lambda s, state: _check(s.wake(FOREIGN_POOL, "wake.1") == state.wakes["wake.1"]),
    "watch": lambda s, state: _check(
        [r.cursor.sequence for r in s.watch(FOREIGN_POOL, 10)] == [11, 12]
    ),
    "leave_member": lambda s, state: _check(
        s.leave_member(FOREIGN_POOL, "run.bob") == (BOB, AgentPoolStoreCursor(sequence=13))
    ),
    "join_member": lambda s, state: _check(s.join_member(FOREIGN_POOL, CAROL).sequence == 13),
    "next_event_sequence": lambda s, state: _check(s.next_event_sequence(FOREIGN_POOL) == 1),
}


def _check(condition: bool) -> None:
    assert condition


@pytest.mark.parametrize("first_operation", sorted(FIRST_OPERATIONS))
def test_foreign_pool_is_seen_by_every_operation(
    database: Database, writer: ForeignWriter, first_operation: str
) -> None:
    payloads = foreign_payloads()
    assert [writer.append(FOREIGN_POOL, payload) for payload in payloads] == list(
        range(1, len(payloads) + 1)
    )
    state = replayed(payloads)
    store = database.open()

    FIRST_OPERATIONS[first_operation](store, state)  # the first thing the store does

    assert_matches_rows(store, writer, FOREIGN_POOL)
    snapshot = store.snapshot(FOREIGN_POOL)
    assert snapshot.created is True
    assert snapshot.policy_refs == FOREIGN_CONFIG.policy_refs
    assert (
        store.message_receipt(FOREIGN_POOL, "idem.shared") == state.message_receipts["idem.shared"]
    )
    assert store.message_receipt(FOREIGN_POOL, "idem.shared").status is MessageStatus.RESPONDED  # type: ignore[union-attr]
    assert store.wake(FOREIGN_POOL, "wake.1").registration.status is (  # type: ignore[union-attr]
        WakeRegistrationStatus.TRIGGERED
    )
    # a foreign-joined member can leave through the store; a foreign-left one cannot
    with pytest.raises(AgentError) as caught:
        store.leave_member(
            FOREIGN_POOL, "run.carol" if first_operation != "join_member" else "run.nobody"
        )
    assert caught.value.kind is AgentErrorKind.INVALID_STATE_TRANSITION
    left, cursor = store.leave_member(FOREIGN_POOL, "run.alice")
    assert left == ALICE
    last = sequences(store, FOREIGN_POOL)[-1]
    assert cursor.sequence == last
    # the foreign writer continues after the store's records, and the store after it
    assert writer.append(FOREIGN_POOL, MemberJoined(member=ALICE)) == last + 1
    assert store.wake(FOREIGN_POOL, "wake.2") == state.wakes["wake.2"]
    assert ALICE in store.snapshot(FOREIGN_POOL).members
    assert store.record_pool_created(FOREIGN_POOL).sequence == last + 2
    assert_matches_rows(store, writer, FOREIGN_POOL)


def test_foreign_rows_interleaved_with_store_writes(
    database: Database, writer: ForeignWriter
) -> None:
    first, second = database.open(), database.open()
    first.open_pool(POOL, ConfigFactory())
    assert first.join_member(POOL, ALICE).sequence == 2
    assert first.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=2)

    assert writer.append(POOL, MemberJoined(member=BOB)) == 3
    # a pure read sees the foreign record at once
    assert [m.run_id for m in first.snapshot(POOL).members] == ["run.alice", "run.bob"]
    assert first.join_member(POOL, CAROL).sequence == 4

    message, receipt = message_pair("message.f")
    stored = AgentPoolStoredMessage(message=message, receipt=receipt)
    assert writer.append(POOL, RunMessageRecorded(stored=stored)) == 5
    assert second.message_receipt(POOL, message.idempotency_key) == receipt
    condition, compiled, registration = wake_triple("wake.f")
    foreign_wake = AgentPoolStoredWake(
        condition=condition, compiled_filter=compiled, registration=registration
    )
    assert writer.append(POOL, WakeRecorded(stored=foreign_wake)) == 6
    assert first.wake_registration(POOL, condition.idempotency_key) == registration
    assert second.wake(POOL, "wake.f") == foreign_wake
    assert sequences(first, cursor=4) == [5, 6]

    assert writer.append(POOL, MemberLeft(member=BOB)) == 7
    with pytest.raises(AgentError):
        second.leave_member(POOL, "run.bob")
    assert second.leave_member(POOL, "run.carol") == (CAROL, AgentPoolStoreCursor(sequence=8))
    assert writer.append(POOL, PoolCreated()) == 9
    assert first.record_message(POOL, *message_pair("message.s")).sequence == 10
    assert sequences(first) == sequences(second) == list(range(1, 11))
    assert second.snapshot(POOL).created is True
    assert_matches_rows(first, writer, POOL)
    assert_matches_rows(second, writer, POOL)


def test_foreign_event_sequences_interleave(database: Database, writer: ForeignWriter) -> None:
    store = database.open()
    store.open_pool(POOL, ConfigFactory())
    assert store.next_event_sequence(POOL) == 1
    assert writer.next_event_sequence(POOL) == 2
    assert store.next_event_sequence(POOL) == 3
    assert writer.next_event_sequence(POOL) == 4
    writer.append(FOREIGN_POOL, PoolOpened(config=FOREIGN_CONFIG))
    assert writer.next_event_sequence(FOREIGN_POOL) == 1
    assert store.next_event_sequence(FOREIGN_POOL) == 2


def test_foreign_rows_written_while_the_store_is_closed(
    database: Database, writer: ForeignWriter
) -> None:
    store = open_store(database.url)
    store.open_pool(POOL, ConfigFactory())
    store.join_member(POOL, ALICE)
    store.close()
    assert writer.append(POOL, MemberJoined(member=BOB)) == 3
    assert writer.append(FOREIGN_POOL, PoolOpened(config=FOREIGN_CONFIG)) == 1
    reopened = database.open()
    assert reopened.leave_member(POOL, "run.bob") == (BOB, AgentPoolStoreCursor(sequence=4))
    assert reopened.join_member(FOREIGN_POOL, ALICE).sequence == 2
    assert_matches_rows(reopened, writer, POOL)
    assert_matches_rows(reopened, writer, FOREIGN_POOL)


def test_foreign_brand_new_pool_then_store_reopens_with_conflicting_config(
    database: Database, writer: ForeignWriter
) -> None:
    writer.append(FOREIGN_POOL, PoolOpened(config=FOREIGN_CONFIG))
    store = database.open()
    with pytest.raises(AgentError) as caught:
        store.open_pool(FOREIGN_POOL, AgentPoolStoreConfig())
    assert caught.value.message.endswith("config conflicts with existing pool")
    assert sequences(store, FOREIGN_POOL) == [1]
    assert store.open_pool(FOREIGN_POOL, FOREIGN_CONFIG).cursor == AgentPoolStoreCursor(sequence=1)


def test_foreign_writer_racing_the_store(database: Database, writer: ForeignWriter) -> None:
    """Concurrent appends by the store and a foreign writer: no error, one contiguous log."""
    store = database.open()
    store.open_pool(POOL, ConfigFactory())
    count = 40
    failures: list[BaseException] = []

    def foreign() -> None:
        try:
            for index in range(count):
                member = AgentPoolMember(run_id=f"run.foreign.{index}", agent_id="agent.f")
                writer.append(POOL, MemberJoined(member=member))
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    thread = threading.Thread(target=foreign)
    thread.start()
    cursors = []
    for index in range(count):
        member = AgentPoolMember(run_id=f"run.store.{index}", agent_id="agent.s")
        cursors.append(store.join_member(POOL, member).sequence)
        if index % 4 == 0:
            store.snapshot(POOL)
    thread.join()
    assert failures == []
    assert cursors == sorted(cursors)
    assert len(store.snapshot(POOL).members) == 2 * count
    assert_matches_rows(store, writer, POOL)
    assert store.leave_member(POOL, "run.foreign.0")[1].sequence == 2 * count + 2


def test_snapshot_is_consistent_while_another_object_writes(database: Database) -> None:
    """A snapshot is the state at its cursor, even while another store object appends."""
    writer_store, reader_store = database.open(), database.open()
    writer_store.open_pool(POOL, ConfigFactory())
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            index = 0
            while not stop.is_set():
                member = AgentPoolMember(run_id=f"run.{index:05d}", agent_id="agent.w")
                writer_store.join_member(POOL, member)
                index += 1
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    torn = []
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            snapshot = reader_store.snapshot(POOL)
            assert snapshot.cursor is not None
            if len(snapshot.members) != snapshot.cursor.sequence - 1:
                torn.append((snapshot.cursor.sequence, len(snapshot.members)))
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert torn == [], f"(cursor, member count) of torn snapshots: {torn[:5]}"
