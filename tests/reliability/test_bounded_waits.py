"""Waits for another writer are bounded: Timeout / Retryable, then success once released.

Another connection holds the pool's write lock past the store's ``lock_timeout`` (0.5 s):
on SQLite a raw ``sqlite3`` connection inside ``BEGIN IMMEDIATE``; on PostgreSQL a raw
``psycopg`` connection holding the pool's row ``FOR UPDATE``. A second holder is a foreign
writer (as the reference adapter appends) whose ``MAX(seq) + 1`` row is written but not
committed. Every write operation must fail with AgentError Timeout / Retryable instead of
hanging (pytest-timeout guards; no duration is asserted), reads must keep working meanwhile,
and the same operation must succeed once the lock is released.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from agent_pool_store import (
    AgentError,
    AgentErrorKind,
    AgentPoolMember,
    AgentPoolStoreCursor,
    MemberJoined,
    RetryClassification,
    SqlAgentPoolStore,
    open_store,
)
from tests.factories import message_pair, wake_triple
from tests.reliability.workers import EQUAL_CONFIG, Database, Raw

POOL = "pool.locked"
ELSEWHERE = "pool.elsewhere"
LOCK_TIMEOUT = 0.5
MESSAGE, RECEIPT = message_pair("message.1")
CONDITION, COMPILED, REGISTRATION = wake_triple("wake.1")
FOREIGN = MemberJoined(member=AgentPoolMember(run_id="run.foreign", agent_id="agent.f"))

pytestmark = pytest.mark.timeout(120)

WRITES: dict[str, Callable[[SqlAgentPoolStore], Any]] = {
    "open_pool": lambda s: s.open_pool(POOL, EQUAL_CONFIG),
    "record_pool_created": lambda s: s.record_pool_created(POOL),
    "join_member": lambda s: s.join_member(
        POOL, AgentPoolMember(run_id="run.new", agent_id="agent.new")
    ),
    "leave_member": lambda s: s.leave_member(POOL, "run.a"),
    "record_message": lambda s: s.record_message(POOL, *message_pair("message.2")),
    "record_wake": lambda s: s.record_wake(POOL, *wake_triple("wake.2")),
    "next_event_sequence": lambda s: s.next_event_sequence(POOL),
    "rebuild": lambda s: s.rebuild(POOL),
}
APPENDS = ["record_pool_created", "join_member", "leave_member", "record_message", "record_wake"]
"""The writes that append a record (only these collide with an uncommitted foreign append
on PostgreSQL; on SQLite the foreign writer holds the file's write lock)."""


RECORDS = 4
"""Records :func:`populate` writes."""


def populate(store: SqlAgentPoolStore, pool: str) -> None:
    store.open_pool(pool, EQUAL_CONFIG)
    store.join_member(pool, AgentPoolMember(run_id="run.a", agent_id="agent.a"))
    store.record_message(pool, MESSAGE, RECEIPT)
    store.record_wake(pool, CONDITION, COMPILED, REGISTRATION)
    store.next_event_sequence(pool)


def reads(store: SqlAgentPoolStore) -> dict[str, Any]:
    return {
        "snapshot": store.snapshot(POOL),
        "watch": list(store.watch(POOL)),
        "message_receipt": store.message_receipt(POOL, MESSAGE.idempotency_key),
        "wake_registration": store.wake_registration(POOL, CONDITION.idempotency_key),
        "wake": store.wake(POOL, CONDITION.condition_id),
        "verify": str(store.verify(POOL)),
    }


def hold_write_lock(database: Database, raw: Raw) -> None:
    raw.begin()
    if database.dialect == "postgresql":
        rows = raw.execute(
            "SELECT pool_id FROM agent_pool_store_pools WHERE pool_id = ? FOR UPDATE", (POOL,)
        )
        assert rows == [(POOL,)]


def hold_foreign_append(database: Database, raw: Raw) -> None:
    raw.begin()
    raw.append_record(POOL, FOREIGN.type, FOREIGN.model_dump_json())


HOLDERS = {"write lock": hold_write_lock, "uncommitted foreign append": hold_foreign_append}


def assert_timeout(error: AgentError) -> None:
    assert (error.kind, error.retry) == (AgentErrorKind.TIMEOUT, RetryClassification.RETRYABLE)
    assert str(error).startswith("Timeout: ")


@pytest.mark.parametrize("holder", list(HOLDERS))
def test_writes_time_out_then_succeed(database: Database, holder: str) -> None:
    # an uncommitted foreign append blocks only appends on PostgreSQL, every write on SQLite
    operations = list(WRITES) if holder == "write lock" else ["join_member", "record_wake"]
    store = database.open(lock_timeout=LOCK_TIMEOUT)
    populate(store, POOL)
    before = reads(store)
    raw = database.raw()
    HOLDERS[holder](database, raw)
    outcomes: dict[str, object] = {}
    try:
        for name in operations:
            try:
                WRITES[name](store)
                outcomes[name] = "succeeded while the lock was held"
            except AgentError as error:
                outcomes[name] = (error.kind, error.retry, str(error).split(":")[0])
            assert reads(store) == before, f"after {name}"  # readers do not wait for writers
    finally:
        raw.commit()
    timeout = (AgentErrorKind.TIMEOUT, RetryClassification.RETRYABLE, "Timeout")
    assert outcomes == dict.fromkeys(operations, timeout)

    foreign = 1 if holder == "uncommitted foreign append" else 0
    for name in operations:  # the same operations succeed once the lock is released
        result = WRITES[name](store)
        if name in APPENDS:
            cursor = result[1] if name == "leave_member" else result
            assert cursor == AgentPoolStoreCursor(sequence=store.snapshot(POOL).cursor.sequence)
    log = [record.cursor.sequence for record in store.watch(POOL)]
    appended = sum(name in APPENDS for name in operations)
    assert log == list(range(1, RECORDS + foreign + appended + 1))
    assert store.verify().ok


def test_other_pools_while_one_pool_is_locked(database: Database) -> None:
    """PostgreSQL locks one pool's row; SQLite has one write lock for the whole file."""
    store = database.open(lock_timeout=LOCK_TIMEOUT)
    populate(store, POOL)
    populate(store, ELSEWHERE)
    raw = database.raw()
    hold_write_lock(database, raw)
    member = AgentPoolMember(run_id="run.other", agent_id="agent.o")
    try:
        if database.dialect == "postgresql":
            assert store.join_member(ELSEWHERE, member).sequence == RECORDS + 1
            assert store.next_event_sequence(ELSEWHERE) == 2
        else:
            with pytest.raises(AgentError) as caught:
                store.join_member(ELSEWHERE, member)
            assert_timeout(caught.value)
        assert store.snapshot(ELSEWHERE).cursor is not None
    finally:
        raw.rollback()
    assert store.join_member(ELSEWHERE, member).sequence == RECORDS + 1 + (
        database.dialect == "postgresql"
    )
    assert store.verify().ok


def test_timeout_leaves_other_store_objects_and_threads_working(database: Database) -> None:
    """After a Timeout the store object (and its connection pool) is still usable."""
    store = database.open(lock_timeout=LOCK_TIMEOUT)
    populate(store, POOL)
    raw = database.raw()
    for _ in range(2):
        hold_write_lock(database, raw)
        try:
            with pytest.raises(AgentError) as caught:
                store.next_event_sequence(POOL)
            assert_timeout(caught.value)
        finally:
            raw.rollback()
    assert store.next_event_sequence(POOL) == 2  # the timed-out attempts consumed nothing
    assert store.verify().ok


# --- waits outside the pool's lock ------------------------------------------------------------


def test_no_free_pooled_connection_is_a_timeout(database: Database) -> None:
    """Every pooled connection is checked out: a call waits at most ``lock_timeout`` for
    one, then fails with Timeout / Retryable (not the pool's raw 30 s TimeoutError), and
    works again once a connection is returned."""
    store = database.open(lock_timeout=LOCK_TIMEOUT)
    store.open_pool(POOL, EQUAL_CONFIG)
    held = []
    try:
        while True:  # take every connection the pool will give (its size and overflow)
            try:
                held.append(store.engine.connect())
            except Exception as error:  # the pool's own checkout timeout
                assert type(error).__name__ == "TimeoutError"
                break
        for call in (
            lambda: store.join_member(POOL, AgentPoolMember(run_id="run.x", agent_id="a")),
            lambda: store.message_receipt(POOL, MESSAGE.idempotency_key),
            lambda: store.snapshot(POOL),
        ):
            with pytest.raises(AgentError) as caught:
                call()
            assert caught.value.kind is AgentErrorKind.TIMEOUT
            assert caught.value.retry is RetryClassification.RETRYABLE
    finally:
        for connection in held:
            connection.close()
    assert store.join_member(POOL, AgentPoolMember(run_id="run.x", agent_id="a")).sequence == 2


@pytest.mark.postgresql
def test_follow_waits_for_the_followers_table_no_longer_than_lock_timeout(pg_url: URL) -> None:
    store = open_store(pg_url, lock_timeout=LOCK_TIMEOUT)
    raw = Raw("postgresql", pg_url.set(drivername="postgresql").render_as_string(False))
    try:
        store.open_pool(POOL, EQUAL_CONFIG)
        raw.begin()
        raw.execute("LOCK TABLE agent_pool_store_followers IN ACCESS EXCLUSIVE MODE")
        follower = store.follow(POOL, timeout=1)
        with pytest.raises(AgentError) as caught:
            next(follower)
        assert caught.value.retry is RetryClassification.RETRYABLE
        assert "lock" in caught.value.message
        raw.rollback()
        assert [r.cursor.sequence for r in store.follow(POOL, timeout=0)] == [1]
    finally:
        raw.close()
        store.close()


@pytest.mark.sqlite
def test_opening_a_migrated_sqlite_file_does_not_wait_for_its_writer(sqlite_file: Path) -> None:
    """Another connection holds the file's write lock: opening the (migrated) file and
    reading it work at once; only a write waits, and times out."""
    url = f"sqlite:///{sqlite_file}"
    with open_store(url) as first:
        first.open_pool(POOL, EQUAL_CONFIG)
    raw = Raw("sqlite", str(sqlite_file))
    try:
        raw.begin()  # BEGIN IMMEDIATE: the file's write lock
        with open_store(url, lock_timeout=LOCK_TIMEOUT) as store:
            assert store.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=1)
            assert [summary.pool_id for summary in store.pools()] == [POOL]
            with pytest.raises(AgentError) as caught:
                store.record_pool_created(POOL)
            assert caught.value.kind is AgentErrorKind.TIMEOUT
            raw.rollback()
            assert store.record_pool_created(POOL).sequence == 2
    finally:
        raw.close()


@pytest.mark.postgresql
def test_a_fallback_after_a_wait_keeps_to_one_lock_timeout(
    pg_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-statement append waits for the pool's row, then finds the next seq taken by
    another writer and falls back to a unit of work, which finds the row locked again. The
    unit may wait only for what is left of ``lock_timeout`` (``SET LOCAL lock_timeout`` below
    it), so the call as a whole keeps to one ``lock_timeout``; it fails with Timeout."""
    from tests.reliability.test_write_path import StatementLog

    target = pg_url.set(drivername="postgresql").render_as_string(False)
    store = open_store(pg_url, lock_timeout=1.0)
    holder, queued, monitor = (
        Raw("postgresql", target),
        Raw("postgresql", target),
        Raw("postgresql", target),
    )
    lock_row = "SELECT pool_id FROM agent_pool_store_pools WHERE pool_id = ? FOR UPDATE"

    def waiting() -> int:
        return int(
            monitor.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
        )

    def until(count: int) -> None:
        for _ in range(2000):
            if waiting() >= count:
                return
            time.sleep(0.005)
        raise AssertionError(f"fewer than {count} sessions waiting for the pool's row")

    try:
        store.open_pool(POOL, EQUAL_CONFIG)  # the store knows the pool: one-statement appends
        log = StatementLog.of(store, monkeypatch)
        holder.begin()
        holder.execute(lock_row, (POOL,))
        holder.insert_record(POOL, 2, FOREIGN.type, FOREIGN.model_dump_json())
        outcome: dict[str, BaseException] = {}

        def append() -> None:
            try:
                store.join_member(POOL, AgentPoolMember(run_id="run.late", agent_id="a"))
            except BaseException as error:  # reported below
                outcome["error"] = error

        def queue() -> None:
            queued.begin()
            queued.execute(lock_row, (POOL,))  # gets the row after the store's statement

        appender = threading.Thread(target=append)
        appender.start()
        until(1)  # the one-statement append waits for the row
        second = threading.Thread(target=queue)
        second.start()
        until(2)  # and the other writer waits behind it
        time.sleep(0.3)  # the append has now used a good part of its lock_timeout waiting
        holder.commit()
        appender.join(timeout=30)
        second.join(timeout=30)
        error = outcome.get("error")
        assert isinstance(error, AgentError), error
        assert error.kind is AgentErrorKind.TIMEOUT
        assert error.retry is RetryClassification.RETRYABLE
        limits = [
            int(statement.rsplit("=", 1)[1])
            for statement in log.statements
            if statement.startswith("SET LOCAL lock_timeout")
        ]
        assert limits and all(0 < limit < 1000 for limit in limits), log.statements
        queued.rollback()
        assert store.join_member(POOL, AgentPoolMember(run_id="run.late", agent_id="a"))
    finally:
        for raw in (holder, queued, monitor):
            raw.close()
        store.close()


@pytest.mark.sqlite
def test_a_sqlite_unit_with_a_shorter_wait_sets_and_restores_the_busy_timeout(
    sqlite_file: Path,
) -> None:
    """A unit that may wait less than ``lock_timeout`` sets SQLite's busy timeout to that
    before ``BEGIN``; the next unit on the same connection has the full one again."""
    from agent_pool_store.sql.unit_of_work import SqlUnitOfWork

    with open_store(f"sqlite:///{sqlite_file}", lock_timeout=2) as store:
        store.engine.pool.dispose()

        def busy_timeout(wait_limit: float | None) -> int:
            unit = SqlUnitOfWork(store.engine, store.dialect, write=True, wait_limit=wait_limit)
            with unit as uow:
                return int(uow.connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one())

        assert busy_timeout(None) == 2000
        assert busy_timeout(0.25) == 250
        assert busy_timeout(None) == 2000


@pytest.mark.postgresql
def test_a_shared_engine_gets_the_lock_timeout_per_transaction(pg_url: URL) -> None:
    """An engine the host built carries no ``lock_timeout``: the store sets it for each of
    its transactions (``SET LOCAL``), so a held pool row still ends in Timeout, and the
    host's own connections of that engine keep the server's setting."""
    from sqlalchemy import create_engine

    engine = create_engine(pg_url)
    raw = Raw("postgresql", pg_url.set(drivername="postgresql").render_as_string(False))
    try:
        store = open_store(engine, lock_timeout=LOCK_TIMEOUT)
        store.open_pool(POOL, EQUAL_CONFIG)
        raw.begin()
        raw.execute(
            "SELECT pool_id FROM agent_pool_store_pools WHERE pool_id = ? FOR UPDATE", (POOL,)
        )
        with pytest.raises(AgentError) as caught:
            store.join_member(POOL, AgentPoolMember(run_id="run.s", agent_id="a"))
        assert caught.value.kind is AgentErrorKind.TIMEOUT
        assert store.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=1)  # reads go on
        raw.rollback()
        assert store.join_member(POOL, AgentPoolMember(run_id="run.s", agent_id="a")).sequence == 2
        with engine.connect() as connection:  # the setting did not leak into the host's work
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "0"
    finally:
        raw.close()
        engine.dispose()


@pytest.mark.postgresql
def test_a_follower_connects_as_the_shared_engine_does(pg_url: URL) -> None:
    """The host's engine reaches the store's tables only through its ``search_path`` (they
    live in a schema of their own, in a database where ``public`` has none): the follower's
    connection is made by that engine, so it reaches them too."""
    from sqlalchemy import create_engine, text

    from agent_pool_store import migrations
    from tests.databases import new_pg_database

    with new_pg_database("aps_host") as url:
        setup = create_engine(url)
        with setup.begin() as connection:
            connection.execute(text("CREATE SCHEMA host_app"))
        setup.dispose()
        engine = create_engine(url, connect_args={"options": "-c search_path=host_app"})
        try:
            migrations.upgrade(engine)
            with open_store(engine) as store:
                store.open_pool(POOL, EQUAL_CONFIG)
                assert [r.cursor.sequence for r in store.follow(POOL, timeout=0)] == [1]
        finally:
            engine.dispose()
