"""OpenTelemetry (the ``otel`` extra): spans, events and metrics of the sync and async stores.

Each test gives its stores an SDK tracer provider and meter provider of its own
(``tests/telemetry_support.py``), read in memory, so that no test touches OpenTelemetry's
global providers (which can be set once per process) and the tests run in any order. What
the global providers do, and the store without OpenTelemetry installed, run in child
processes (``tests/test_telemetry_install.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.engine import make_url

from agent_pool_store import (
    AgentError,
    AgentErrorKind,
    AgentPoolMember,
    AgentPoolStoreConfig,
    InMemoryAgentPoolStore,
    MemberJoined,
    RetryClassification,
    open_async_store,
    open_store,
)
from agent_pool_store import telemetry_names as names
from tests.async_support import STORE_OPERATIONS, SyncOverAsync
from tests.factories import message_pair
from tests.reliability.workers import Database
from tests.telemetry_support import Collected, attribute_text

POOL = "pool.traced"

FLAVORS = ["sync", "async"]


def member(n: int) -> AgentPoolMember:
    return AgentPoolMember(run_id=f"run.{n}", agent_id="agent.a")


def open_flavored(flavor: str, database: Database, collected: Collected, **options: Any) -> Any:
    """The sync store, or the async one driven through the sync contract, on ``database``."""
    if flavor == "sync":
        return database.open(telemetry=collected.telemetry, **options)
    return SyncOverAsync(
        lambda: open_async_store(database.url, telemetry=collected.telemetry, **options),
        (*STORE_OPERATIONS, "verify"),
    )


@pytest.fixture(params=FLAVORS)
def flavored(
    request: pytest.FixtureRequest, database: Database, collected: Collected
) -> Iterator[Any]:
    """The sync or the async store on this test's database, reporting to ``collected``."""
    store = open_flavored(request.param, database, collected)
    try:
        yield store
    finally:
        if request.param == "async":
            store.close()


def operation_spans(collected: Collected) -> list[ReadableSpan]:
    return [span for span in collected.spans() if span.name.startswith("agent_pool_store.")]


def assert_statements_under(collected: Collected, operation: ReadableSpan, system: str) -> None:
    """The operation has driver-level statement spans, one of them the record's insert, whose
    text has placeholders where the values go (the pool id is in no statement's text)."""
    statements = [s for s in collected.children(operation) if s.kind is SpanKind.CLIENT]
    assert statements, operation.name
    texts = []
    for statement in statements:
        attributes = statement.attributes or {}
        assert attributes[names.DB_SYSTEM_NAME] == system
        assert attributes[names.DB_OPERATION_NAME] == statement.name
        texts.append(str(attributes[names.DB_QUERY_TEXT]))
    [insert] = [text for text in texts if "INSERT INTO agent_pool_records" in text]
    assert "?" in insert or "%(" in insert
    assert not [text for text in texts if POOL in text or "pool.task" in text]


# --- spans of the sync store ------------------------------------------------------------------


def test_each_operation_is_a_span_under_the_callers_span(
    database: Database, collected: Collected
) -> None:
    store = database.open(telemetry=collected.telemetry)
    message, receipt = message_pair()
    with collected.tracer.start_as_current_span("request") as request:
        store.open_pool(POOL, AgentPoolStoreConfig())
        joined = store.join_member(POOL, member(1))
        recorded = store.record_message(POOL, message, receipt)
        assert store.message_receipt(POOL, message.idempotency_key) == receipt
        store.snapshot(POOL)
        assert [r.cursor.sequence for r in store.watch(POOL)] == [1, 2, 3]
        store.leave_member(POOL, "run.1")
        assert store.next_event_sequence(POOL) == 1

    spans = operation_spans(collected)
    assert [span.name for span in spans] == [
        "agent_pool_store.open_pool",
        "agent_pool_store.join_member",
        "agent_pool_store.record_message",
        "agent_pool_store.message_receipt",
        "agent_pool_store.snapshot",
        "agent_pool_store.watch",
        "agent_pool_store.leave_member",
        "agent_pool_store.next_event_sequence",
    ]
    for span in spans:
        assert span.parent is not None and span.parent.span_id == request.get_span_context().span_id
        assert span.kind is SpanKind.INTERNAL
        assert span.status.status_code is StatusCode.UNSET
        attributes = span.attributes or {}
        assert attributes[names.DB_SYSTEM_NAME] == database.dialect
        assert attributes[names.POOL_ID] == POOL
        assert attributes[names.OPERATION] == span.name.removeprefix("agent_pool_store.")
    by_name = {span.name: span.attributes or {} for span in spans}
    assert by_name["agent_pool_store.open_pool"][names.RECORD_KIND] == "pool_opened"
    assert by_name["agent_pool_store.open_pool"][names.CURSOR] == 1
    assert by_name["agent_pool_store.join_member"][names.RECORD_KIND] == "member_joined"
    assert by_name["agent_pool_store.join_member"][names.CURSOR] == joined.sequence == 2
    assert by_name["agent_pool_store.record_message"][names.RECORD_KIND] == "run_message"
    assert by_name["agent_pool_store.record_message"][names.CURSOR] == recorded.sequence == 3
    assert by_name["agent_pool_store.leave_member"][names.RECORD_KIND] == "member_left"
    assert by_name["agent_pool_store.leave_member"][names.CURSOR] == 4
    assert by_name["agent_pool_store.watch"][names.RECORDS] == 3
    assert by_name["agent_pool_store.watch"][names.CURSOR] == 3
    assert names.RECORD_KIND not in by_name["agent_pool_store.snapshot"]

    # a pool the store has read: the append takes its shortest path (PostgreSQL: one
    # statement), still with its statements as child spans
    assert_statements_under(
        collected, collected.one("agent_pool_store.record_message"), database.dialect
    )

    assert collected.total(names.RECORDS_APPENDED, db__system__name=database.dialect) == 4
    assert (
        collected.total(names.RECORDS_APPENDED, agent_pool_store__record__kind="run_message") == 1
    )
    for operation in ("open_pool", "join_member", "watch", "snapshot", "next_event_sequence"):
        assert (
            collected.total(
                names.OPERATION_DURATION,
                agent_pool_store__operation=operation,
                db__system__name=database.dialect,
            )
            == 1
        ), operation
    durations = collected.points(names.OPERATION_DURATION)
    assert all(point.sum > 0 for point in durations)
    assert collected.total(names.RETRIES) == collected.total(names.LOCK_WAIT_TIMEOUTS) == 0


def test_reopening_a_pool_appends_nothing_and_says_so(
    database: Database, collected: Collected
) -> None:
    store = database.open(telemetry=collected.telemetry)
    store.open_pool(POOL, AgentPoolStoreConfig())
    store.open_pool(POOL, AgentPoolStoreConfig())
    first, again = collected.named("agent_pool_store.open_pool")
    assert (first.attributes or {})[names.RECORD_KIND] == "pool_opened"
    assert names.RECORD_KIND not in (again.attributes or {})
    assert collected.total(names.RECORDS_APPENDED) == 1


# --- errors -----------------------------------------------------------------------------------


def test_errors_are_recorded_with_kind_and_retry_classification(
    flavored: Any, database: Database, collected: Collected
) -> None:
    with pytest.raises(AgentError) as unopened:
        flavored.snapshot("pool.never.opened")
    flavored.open_pool(POOL, AgentPoolStoreConfig())
    with pytest.raises(AgentError) as not_member:
        flavored.leave_member(POOL, "run.nobody")

    expected = [
        ("agent_pool_store.snapshot", unopened.value),
        ("agent_pool_store.leave_member", not_member.value),
    ]
    assert unopened.value.retry is RetryClassification.HOST_CONFIGURATION_NEEDED
    assert not_member.value.retry is RetryClassification.NOT_RETRYABLE
    for name, error in expected:
        span = collected.one(name)
        attributes = span.attributes or {}
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == str(error)
        assert attributes[names.ERROR_TYPE] == error.kind.value
        assert attributes[names.ERROR_KIND] == error.kind.value
        assert attributes[names.ERROR_RETRY] == error.retry.value
        assert attributes[names.ERROR_OUTCOME_UNKNOWN] is False
        [event] = [event for event in span.events if event.name == "exception"]
        assert (event.attributes or {})["exception.message"] == str(error)
        assert (
            collected.total(
                names.OPERATION_DURATION,
                agent_pool_store__operation=name.removeprefix("agent_pool_store."),
                error__type=error.kind.value,
            )
            == 1
        )
    assert collected.total(names.RECORDS_APPENDED) == 1  # the pool_opened only


def test_a_lock_wait_that_runs_out_is_a_timeout_and_counted(
    database: Database, collected: Collected
) -> None:
    store = database.open(telemetry=collected.telemetry, lock_timeout=0.3)
    store.open_pool(POOL, AgentPoolStoreConfig())
    holder = database.raw()
    holder.begin()  # SQLite: BEGIN IMMEDIATE, the write lock
    if database.dialect == "postgresql":
        holder.execute("SELECT 1 FROM agent_pool_store_pools WHERE pool_id = ? FOR UPDATE", (POOL,))
    try:
        with pytest.raises(AgentError) as raised:
            store.join_member(POOL, member(1))
    finally:
        holder.rollback()
    assert raised.value.kind is AgentErrorKind.TIMEOUT
    span = collected.one("agent_pool_store.join_member")
    assert (span.attributes or {})[names.ERROR_KIND] == "Timeout"
    assert (span.attributes or {})[names.ERROR_RETRY] == "Retryable"
    assert (
        collected.total(
            names.LOCK_WAIT_TIMEOUTS,
            agent_pool_store__operation="join_member",
            db__system__name=database.dialect,
        )
        == 1
    )
    # the statement that waited is a failed child span, with the database's own error code
    failed = [
        s
        for s in collected.children(span)
        if s.kind is SpanKind.CLIENT and s.status.status_code is StatusCode.ERROR
    ]
    assert failed
    code = (failed[-1].attributes or {})[names.DB_RESPONSE_STATUS_CODE]
    assert code in ({"SQLITE_BUSY"} if database.dialect == "sqlite" else {"55P03"})
    assert str((failed[-1].attributes or {})[names.ERROR_TYPE]).split(".")[0] in {
        "sqlite3",
        "psycopg",
    }
    store.join_member(POOL, member(1))  # the store goes on
    assert collected.total(names.LOCK_WAIT_TIMEOUTS) == 1


# --- retries and catch-ups --------------------------------------------------------------------


def test_catch_up_and_its_rerun_are_span_events(
    flavored: Any, database: Database, collected: Collected
) -> None:
    flavored.open_pool(POOL, AgentPoolStoreConfig())
    flavored.join_member(POOL, member(1))
    foreign = database.raw()
    for seq in (3, 4):
        payload = MemberJoined(member=member(seq))
        foreign.execute(
            "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json) VALUES (?, ?, ?, ?)",
            (POOL, seq, payload.type, payload.model_dump_json()),
        )

    members = flavored.snapshot(POOL).members
    assert sorted(m.run_id for m in members) == ["run.1", "run.3", "run.4"]

    span = collected.one("agent_pool_store.snapshot")
    events = [(event.name, dict(event.attributes or {})) for event in span.events]
    assert events == [
        (names.RETRY_EVENT, {names.RETRY_REASON: "records to catch up: running again as a write"}),
        (names.CATCH_UP_EVENT, {names.CATCH_UP_FIRST: 3, names.CATCH_UP_LAST: 4}),
    ]
    assert collected.total(names.RECORDS_CAUGHT_UP, db__system__name=database.dialect) == 2
    assert collected.total(names.RETRIES, agent_pool_store__operation="snapshot") == 1
    flavored.snapshot(POOL)  # caught up: nothing more
    assert collected.total(names.RECORDS_CAUGHT_UP) == 2
    assert collected.total(names.RETRIES) == 1


@pytest.mark.postgresql
def test_a_foreign_writers_colliding_record_is_a_retry_then_a_catch_up(
    pg_url: Any, collected: Collected
) -> None:
    """A foreign writer inserts the sequence the store's unit is about to write, and commits
    while the unit waits on it: the unit fails (unique violation), runs again, catches up
    and appends after it. (On SQLite the write lock keeps whole transactions apart.)"""
    url = pg_url.render_as_string(hide_password=False)
    store = open_store(url, telemetry=collected.telemetry, postgresql_one_statement=False)
    store.open_pool(POOL, AgentPoolStoreConfig())
    raw_database = Database(
        "postgresql", url, pg_url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    foreign, watcher = raw_database.raw(), raw_database.raw()
    foreign.begin()
    payload = MemberJoined(member=member(7))
    foreign.execute(
        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json) VALUES (?, ?, ?, ?)",
        (POOL, 2, payload.type, payload.model_dump_json()),
    )
    joined: list[int] = []
    appending = threading.Thread(
        target=lambda: joined.append(store.join_member(POOL, member(1)).sequence)
    )
    appending.start()
    deadline = time.monotonic() + 30
    while not watcher.scalar(  # until the unit waits on the uncommitted row's key
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    foreign.commit()
    appending.join(30)
    raw_database.close()
    store.close()
    assert joined == [3]
    span = collected.one("agent_pool_store.join_member")
    events = [(event.name, dict(event.attributes or {})) for event in span.events]
    assert [name for name, _ in events] == [names.RETRY_EVENT, names.CATCH_UP_EVENT]
    assert "duplicate key" in str(events[0][1][names.RETRY_REASON])
    assert events[1][1] == {names.CATCH_UP_FIRST: 2, names.CATCH_UP_LAST: 2}
    assert (span.attributes or {})[names.CURSOR] == 3
    assert collected.total(names.RETRIES, agent_pool_store__operation="join_member") == 1
    assert collected.total(names.RECORDS_CAUGHT_UP) == 1


# --- the asyncio store ------------------------------------------------------------------------


def test_async_operations_nest_under_each_awaiting_tasks_span(
    database: Database, collected: Collected
) -> None:
    """Concurrent tasks, each in a span of its own: each operation lands under its caller's,
    whether it ran in a greenlet on the loop or in the SQLite writer thread."""

    async def main() -> dict[str, int]:
        store = await open_async_store(database.url, telemetry=collected.telemetry)
        try:

            async def task(n: int) -> int:
                pool = f"pool.task.{n}"
                with collected.tracer.start_as_current_span(f"request.{n}") as request:
                    await store.open_pool(pool, AgentPoolStoreConfig())
                    for k in range(3):
                        await store.join_member(pool, member(k))
                        await asyncio.sleep(0)
                    await store.snapshot(pool)
                    assert len([r async for r in store.watch(pool)]) == 4
                    return request.get_span_context().span_id

            ids = await asyncio.gather(*(task(n) for n in range(3)))
            return {f"pool.task.{n}": span_id for n, span_id in enumerate(ids)}
        finally:
            await store.close()

    requests = asyncio.run(main())
    spans = operation_spans(collected)
    assert len(spans) == 3 * 6
    for span in spans:
        pool = (span.attributes or {})[names.POOL_ID]
        assert span.parent is not None and span.parent.span_id == requests[str(pool)], span.name
        assert (span.attributes or {})[names.DB_SYSTEM_NAME] == database.dialect
    cursors = sorted(
        (s.attributes or {})[names.CURSOR] for s in collected.named("agent_pool_store.join_member")
    )
    assert cursors == [2, 2, 2, 3, 3, 3, 4, 4, 4]
    for span in collected.named("agent_pool_store.join_member")[-3:]:
        assert_statements_under(collected, span, database.dialect)
    assert collected.total(names.RECORDS_APPENDED) == 12
    assert collected.total(names.OPERATION_DURATION, agent_pool_store__operation="join_member") == 9


# --- follow -----------------------------------------------------------------------------------


async def _follow_async(store: Any, after: int, wanted: int) -> list[int]:
    seen = []
    async with contextlib.aclosing(store.follow(POOL, after, timeout=20)) as records:
        async for record in records:
            seen.append(record.cursor.sequence)
            if len(seen) == wanted:
                break
    return seen


@pytest.mark.parametrize("flavor", FLAVORS)
def test_follow_is_a_span_with_its_reads_and_lag(
    flavor: str, database: Database, collected: Collected
) -> None:
    writer = database.open()
    writer.open_pool(POOL, AgentPoolStoreConfig())
    writer.join_member(POOL, member(1))

    def append_later() -> None:
        time.sleep(0.3)
        writer.join_member(POOL, member(2))
        writer.join_member(POOL, member(3))

    later = threading.Thread(target=append_later)
    with collected.tracer.start_as_current_span("consumer") as consumer:
        later.start()
        if flavor == "sync":
            store = database.open(telemetry=collected.telemetry)
            follower = store.follow(POOL, timeout=10)
            seen = []
            for record in follower:
                seen.append(record.cursor.sequence)
                if len(seen) == 4:
                    break
            follower.close()
        else:

            async def main() -> list[int]:
                store = await open_async_store(database.url, telemetry=collected.telemetry)
                try:
                    return await _follow_async(store, 0, 4)
                finally:
                    await store.close()

            seen = asyncio.run(main())
    later.join()
    assert seen == [1, 2, 3, 4]

    follow = collected.one("agent_pool_store.follow")
    assert follow.parent is not None
    assert follow.parent.span_id == consumer.get_span_context().span_id
    attributes = follow.attributes or {}
    assert attributes[names.POOL_ID] == POOL
    assert attributes[names.DB_SYSTEM_NAME] == database.dialect
    assert attributes[names.RECORDS] == 4
    assert follow.status.status_code is StatusCode.UNSET  # closed by its consumer: no error
    reads = [s for s in collected.children(follow) if s.name == "agent_pool_store.watch"]
    assert sum((s.attributes or {})[names.RECORDS] for s in reads) >= 4
    assert len(reads) >= 2  # what was there, then what came
    lag = collected.points(names.FOLLOW_LAG_RECORDS)
    assert sum(point.sum for point in lag) == 4
    assert collected.total(names.FOLLOW_LAG_DURATION, db__system__name=database.dialect) == 4


@pytest.mark.postgresql
@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_follower_reconnecting_is_an_event(
    flavor: str, pg_url: Any, collected: Collected
) -> None:
    """PostgreSQL's follower listens on a connection of its own: ended by the server, it
    listens again (SQLite's follower polls a file and has no connection to lose)."""
    url = pg_url.render_as_string(hide_password=False)
    writer = open_store(url)
    writer.open_pool(POOL, AgentPoolStoreConfig())

    def end_the_listener_then_append() -> None:
        raw = open_store(url)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with raw.engine.connect() as connection:
                    ended = connection.exec_driver_sql(
                        "SELECT pg_terminate_backend(backend_pid) FROM agent_pool_store_followers"
                    ).fetchall()
                if ended:
                    break
                time.sleep(0.05)
            time.sleep(0.3)
            writer.join_member(POOL, member(1))
        finally:
            raw.close()

    killer = threading.Thread(target=end_the_listener_then_append)
    killer.start()
    try:
        if flavor == "sync":
            store = open_store(url, telemetry=collected.telemetry)
            follower = store.follow(POOL, 1, timeout=20)
            seen = [next(follower).cursor.sequence]
            follower.close()
            store.close()
        else:

            async def main() -> list[int]:
                store = await open_async_store(url, telemetry=collected.telemetry)
                try:
                    return await _follow_async(store, 1, 1)
                finally:
                    await store.close()

            seen = asyncio.run(main())
    finally:
        killer.join()
        writer.close()
    assert seen == [2]
    follow = collected.one("agent_pool_store.follow")
    reconnects = [event for event in follow.events if event.name == names.RECONNECT_EVENT]
    assert len(reconnects) == 1
    assert (reconnects[0].attributes or {})[names.RECONNECT_REASON]
    assert collected.total(names.FOLLOW_RECONNECTS, db__system__name="postgresql") == 1


# --- bound views, the in-memory store ---------------------------------------------------------


def test_a_bound_view_reports_as_its_store(database: Database, collected: Collected) -> None:
    store = database.open(telemetry=collected.telemetry)
    with store.engine.begin() as connection:
        bound = store.bind(connection)
        bound.open_pool(POOL, AgentPoolStoreConfig())
        bound.join_member(POOL, member(1))
    joined = collected.one("agent_pool_store.join_member")
    assert (joined.attributes or {})[names.CURSOR] == 2
    assert (joined.attributes or {})[names.DB_SYSTEM_NAME] == database.dialect
    assert collected.total(names.RECORDS_APPENDED) == 2


def test_the_in_memory_store_reports_without_a_database_system(collected: Collected) -> None:
    store = InMemoryAgentPoolStore(telemetry=collected.telemetry)
    other = store.another_handle()
    store.open_pool(POOL, AgentPoolStoreConfig())
    other.join_member(POOL, member(1))
    spans = operation_spans(collected)
    assert [span.name for span in spans] == [
        "agent_pool_store.open_pool",
        "agent_pool_store.join_member",
    ]
    assert all(names.DB_SYSTEM_NAME not in (span.attributes or {}) for span in spans)
    assert (spans[1].attributes or {})[names.CURSOR] == 2
    assert not [span for span in collected.spans() if span.kind is SpanKind.CLIENT]


# --- secrets ----------------------------------------------------------------------------------


@pytest.mark.postgresql
def test_a_password_in_the_url_is_never_reported(
    pg_url: Any, collected: Collected, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cret-Pa55word"  # the test server trusts every local connection
    url = make_url(pg_url).set(password=secret).render_as_string(hide_password=False)
    caplog.set_level(logging.DEBUG, logger="agent_pool_store")

    async def main() -> list[str]:
        store = await open_async_store(url, telemetry=collected.telemetry)
        try:
            await store.open_pool(POOL, AgentPoolStoreConfig())
            with pytest.raises(AgentError):
                await store.leave_member(POOL, "run.nobody")
            return [repr(store), str(store.url)]
        finally:
            await store.close()

    shown = asyncio.run(main())
    store = open_store(url, telemetry=collected.telemetry)
    store.open_pool(POOL, AgentPoolStoreConfig())
    store.join_member(POOL, member(1))
    with pytest.raises(AgentError) as failed:
        store.snapshot("pool.never.opened")
    follower = store.follow(POOL, timeout=0.2)
    assert len(list(follower)) == 2
    shown += [repr(store), str(failed.value), repr(failed.value)]
    store.close()

    spans = collected.spans()
    assert any(span.kind is SpanKind.CLIENT for span in spans)
    assert any((s.attributes or {}).get(names.SERVER_ADDRESS) for s in spans)
    reported = attribute_text(spans)
    metrics = collected.reader.get_metrics_data()
    assert metrics is not None
    reported += metrics.to_json()
    reported += "\n".join(record.getMessage() for record in caplog.records)
    reported += "\n".join(shown)
    assert secret not in reported
