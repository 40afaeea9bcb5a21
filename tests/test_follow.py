"""``follow``: records as they commit, across threads and OS processes, on every store.

SQL followers run against SQLite (``PRAGMA data_version`` polling) and PostgreSQL (``LISTEN``
on the NOTIFY trigger); a child process appends at random small intervals while the parent
follows. The in-memory store follows through a condition variable, with threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from agent_pool_store import (
    AgentError,
    AgentPoolStoreConfig,
    AgentPoolStoreRecord,
    InMemoryAgentPoolStore,
    PoolCreated,
    SqlAgentPoolStore,
    open_store,
)
from agent_pool_store.sql.dialects.postgresql_waiter import CHANNEL, RECHECK_SECONDS
from tests.databases import sqlite_url
from tests.factories import MemberFactory

ROOT = Path(__file__).resolve().parent.parent
POOL = "pool.follow"
CHILD_TIMEOUT = 120
SAFETY = 30.0
"""Idle timeout of the followers under test: a hang fails the test instead of blocking."""

WRITER = textwrap.dedent(
    """
    import random
    import sys
    import time

    from agent_pool_store import open_store
    from tests.factories import MemberFactory

    url, pool, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    with open_store(url) as store:
        print("ready", flush=True)
        assert sys.stdin.readline().strip() == "go"
        for index in range(count):
            time.sleep(rng.uniform(0, 0.015))
            store.join_member(pool, MemberFactory(run_id=f"run.child.{index}"))
    print("done", flush=True)
    """
)


def child_environment() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


class Writer:
    """A child process that appends ``count`` members to a pool once told to go."""

    def __init__(self, url: str, pool: str, count: int, seed: int = 7) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, pool, str(count), str(seed)],
            cwd=ROOT,
            env=child_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().strip()
        assert ready == "ready", self.process.stderr and self.process.stderr.read()

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self) -> None:
        out, err = self.process.communicate(timeout=CHILD_TIMEOUT)
        assert self.process.returncode == 0, err
        assert out.strip().endswith("done")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ]
)
def url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database of each dialect, as a URL with any password in clear."""
    if request.param == "sqlite":
        return sqlite_url(request.getfixturevalue("sqlite_file"))
    pg: URL = request.getfixturevalue("pg_url")
    return pg.render_as_string(hide_password=False)


@pytest.fixture
def store(url: str) -> Iterator[SqlAgentPoolStore]:
    with open_store(url) as opened:
        yield opened


def take(records: Iterator[AgentPoolStoreRecord], last: int) -> list[int]:
    """Sequences from ``records`` up to and including ``last``; then close the follower."""
    seen: list[int] = []
    try:
        for record in records:
            seen.append(record.cursor.sequence)
            if record.cursor.sequence >= last:
                break
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()
    return seen


def listening_connections(url: str, expected: int) -> int:
    """Live backends of this database registered as followers (PostgreSQL: each follower's
    listening connection registers its pid), once that number is ``expected`` or 5 s have
    passed (a closed backend leaves asynchronously)."""
    engine = create_engine(url)
    deadline = time.monotonic() + 5
    try:
        while True:
            with engine.connect() as connection:
                found = int(
                    connection.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity AS a"
                            " JOIN agent_pool_store_followers AS f ON f.backend_pid = a.pid"
                            " WHERE a.datname = current_database()"
                        )
                    ).scalar_one()
                )
            if found == expected or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)
    finally:
        engine.dispose()


# --- across processes ------------------------------------------------------------------------


@pytest.mark.slow
def test_follow_gets_every_record_of_another_process_in_order(
    url: str, store: SqlAgentPoolStore
) -> None:
    count = 40
    store.open_pool(POOL, AgentPoolStoreConfig())  # record 1
    for index in range(4):  # records 2..5
        store.join_member(POOL, MemberFactory(run_id=f"run.parent.{index}"))
    last = 5 + count
    writer = Writer(url, POOL, count)
    results: dict[str, list[int]] = {}

    def follow_into(name: str, cursor: int | None) -> None:
        with open_store(url) as own:
            results[name] = take(own.follow(POOL, cursor, timeout=SAFETY), last)

    followers = [
        threading.Thread(target=follow_into, args=("from start", None)),
        threading.Thread(target=follow_into, args=("from middle", 3)),
    ]
    try:
        for follower in followers:
            follower.start()
        writer.go()
        # this thread follows too, on the store the parent wrote with
        from_five = take(store.follow(POOL, 5, timeout=SAFETY), last)
        writer.finish()
    finally:
        writer.kill()
        for follower in followers:
            follower.join(timeout=CHILD_TIMEOUT)
    assert results["from start"] == list(range(1, last + 1))
    assert results["from middle"] == list(range(4, last + 1))
    assert from_five == list(range(6, last + 1))
    assert [r.cursor.sequence for r in store.watch(POOL)] == list(range(1, last + 1))


@pytest.mark.slow
def test_follow_sees_records_of_a_foreign_writer(url: str, store: SqlAgentPoolStore) -> None:
    """Rows inserted straight into agent_pool_records (as the Rust reference does)."""
    store.open_pool(POOL, AgentPoolStoreConfig())
    engine = create_engine(url)
    payload = PoolCreated()

    def foreign_appends() -> None:
        for _ in range(5):
            time.sleep(0.02)
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
                        " SELECT :pool, COALESCE(MAX(seq), 0) + 1, :kind, :payload"
                        " FROM agent_pool_records WHERE pool_id = :pool"
                    ),
                    {"pool": POOL, "kind": payload.type, "payload": payload.model_dump_json()},
                )

    writer = threading.Thread(target=foreign_appends)
    writer.start()
    try:
        records = store.follow(POOL, timeout=SAFETY)
        assert take(records, 6) == [1, 2, 3, 4, 5, 6]
    finally:
        writer.join()
        engine.dispose()
    assert store.snapshot(POOL).created


# --- ending: stop, timeout, close ------------------------------------------------------------


def test_stop_event_ends_follow_cleanly(url: str, store: SqlAgentPoolStore) -> None:
    store.open_pool(POOL, AgentPoolStoreConfig())
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    started = time.monotonic()
    seen = [r.cursor.sequence for r in store.follow(POOL, stop=stop, poll_interval=0.02)]
    elapsed = time.monotonic() - started
    timer.join()
    assert seen == [1]
    assert 0.25 <= elapsed < 5
    if url.startswith("postgresql"):
        assert listening_connections(url, 0) == 0


def test_stop_already_set_yields_nothing(store: SqlAgentPoolStore) -> None:
    store.open_pool(POOL, AgentPoolStoreConfig())
    stop = threading.Event()
    stop.set()
    assert list(store.follow(POOL, stop=stop)) == []


def test_timeout_counts_from_the_last_record(url: str, store: SqlAgentPoolStore) -> None:
    store.open_pool(POOL, AgentPoolStoreConfig())

    def late_append() -> None:
        time.sleep(0.3)
        store.join_member(POOL, MemberFactory(run_id="run.late"))

    appender = threading.Thread(target=late_append)
    started = time.monotonic()
    appender.start()
    seen = [r.cursor.sequence for r in store.follow(POOL, timeout=0.6)]
    elapsed = time.monotonic() - started
    appender.join()
    assert seen == [1, 2]  # the record at 0.3 s came within the timeout and restarted it
    assert 0.85 <= elapsed < 5
    started = time.monotonic()
    assert list(store.follow(POOL, 2, timeout=0.2)) == []
    assert 0.15 <= time.monotonic() - started < 5
    if url.startswith("postgresql"):
        assert listening_connections(url, 0) == 0


def test_closing_the_iterator_releases_the_connection(url: str, store: SqlAgentPoolStore) -> None:
    store.open_pool(POOL, AgentPoolStoreConfig())
    records = store.follow(POOL)
    assert next(records).cursor.sequence == 1
    if url.startswith("postgresql"):
        assert listening_connections(url, 1) == 1
    records.close()
    if url.startswith("postgresql"):
        assert listening_connections(url, 0) == 0


def test_follow_waits_for_a_pool_not_opened_yet(store: SqlAgentPoolStore) -> None:
    def open_later() -> None:
        time.sleep(0.2)
        store.open_pool(POOL, AgentPoolStoreConfig())

    opener = threading.Thread(target=open_later)
    opener.start()
    try:
        assert take(store.follow(POOL, timeout=SAFETY), 1) == [1]
    finally:
        opener.join()
    assert list(store.follow("pool.never", timeout=0.1)) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"pool_id": ""}, "invalid pool_id"),
        ({"cursor": -1}, "cursor must not be negative"),
        ({"timeout": -1}, "timeout must be None or >= 0"),
        ({"poll_interval": 0}, "poll_interval must be > 0"),
    ],
)
def test_follow_checks_arguments_when_called(
    arguments: dict[str, object], message: str, sqlite_file: Path
) -> None:
    stores = [InMemoryAgentPoolStore(), open_store(sqlite_url(sqlite_file))]
    for each in stores:
        call = {"pool_id": POOL, **arguments}
        with pytest.raises(AgentError) as caught:
            each.follow(**call)  # type: ignore[arg-type]
        assert message in caught.value.message
        each.close()


# --- in memory -------------------------------------------------------------------------------


def test_in_memory_follow_with_threads() -> None:
    store = InMemoryAgentPoolStore()
    other = store.another_handle()
    store.open_pool(POOL, AgentPoolStoreConfig())
    count = 200
    ready = threading.Barrier(3)

    def append(tag: str) -> None:
        ready.wait()
        for index in range(count):
            other.join_member(POOL, MemberFactory(run_id=f"run.{tag}.{index}"))
            if index % 50 == 0:
                time.sleep(0.005)

    writers = [threading.Thread(target=append, args=(tag,)) for tag in ("a", "b")]
    for writer in writers:
        writer.start()
    ready.wait()
    seen = take(store.follow(POOL, timeout=SAFETY), 1 + 2 * count)
    for writer in writers:
        writer.join()
    assert seen == list(range(1, 2 + 2 * count))
    assert take(store.follow(POOL, 150, timeout=SAFETY), 1 + 2 * count) == list(
        range(151, 2 + 2 * count)
    )


def test_in_memory_follow_stop_and_timeout() -> None:
    store = InMemoryAgentPoolStore()
    store.open_pool(POOL, AgentPoolStoreConfig())
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    started = time.monotonic()
    assert [r.cursor.sequence for r in store.follow(POOL, stop=stop)] == [1]
    assert 0.15 <= time.monotonic() - started < 5
    timer.join()
    started = time.monotonic()
    assert list(store.follow(POOL, 1, timeout=0.2)) == []
    assert 0.15 <= time.monotonic() - started < 5


def test_in_memory_follow_wakes_on_append_without_polling() -> None:
    store = InMemoryAgentPoolStore()
    store.open_pool(POOL, AgentPoolStoreConfig())
    appended_at: list[float] = []

    def append() -> None:
        time.sleep(0.1)
        appended_at.append(time.monotonic())
        store.record_pool_created(POOL)

    appender = threading.Thread(target=append)
    appender.start()
    records = store.follow(POOL, 1, poll_interval=10.0, timeout=SAFETY)
    record = next(records)
    woke = time.monotonic()
    records.close()
    appender.join()
    assert record.cursor.sequence == 2
    assert woke - appended_at[0] < 1.0


# --- PostgreSQL: only followed pools are notified (migration 0003) ---------------------------


def _raw_listener(url: URL) -> psycopg.Connection[Any]:
    """A plain psycopg connection listening on the store's channel, registered for nothing."""
    connection = psycopg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    )
    connection.execute(f"LISTEN {CHANNEL}")
    return connection


def _heard(listener: psycopg.Connection[Any], seconds: float) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=seconds, stop_after=1)]


@pytest.mark.postgresql
def test_appends_notify_only_pools_that_have_a_follower(pg_url: URL) -> None:
    store = open_store(pg_url)
    listener = _raw_listener(pg_url)
    try:
        store.open_pool(POOL, AgentPoolStoreConfig())
        store.open_pool("pool.unfollowed", AgentPoolStoreConfig())
        store.join_member(POOL, MemberFactory(run_id="run.before"))
        assert _heard(listener, 0.3) == []  # nobody follows: no notification at all
        records = store.follow(POOL, 2)
        got: list[int] = []
        reader = threading.Thread(target=lambda: got.append(next(records).cursor.sequence))
        reader.start()
        assert listening_connections(pg_url.render_as_string(False), 1) == 1
        store.join_member("pool.unfollowed", MemberFactory(run_id="run.other"))
        assert _heard(listener, 0.3) == []  # another pool's follower does not count
        store.join_member(POOL, MemberFactory(run_id="run.followed"))
        assert _heard(listener, 5) == [POOL]
        reader.join(5)
        assert got == [3]
        records.close()
        assert listening_connections(pg_url.render_as_string(False), 0) == 0
        store.join_member(POOL, MemberFactory(run_id="run.after"))
        assert _heard(listener, 0.3) == []  # the follower unregistered when it closed
    finally:
        listener.close()
        store.close()


@pytest.mark.postgresql
def test_a_record_appended_without_notification_is_still_followed(pg_url: URL) -> None:
    """A commit that sent nothing (here: a writer with triggers off, as an append racing a
    follower's registration would) is seen within the waiter's periodic re-read."""
    store = open_store(pg_url)
    try:
        store.open_pool(POOL, AgentPoolStoreConfig())
        records = store.follow(POOL, 1)  # no timeout: only a re-read can find the record
        got: list[int] = []
        reader = threading.Thread(target=lambda: got.append(next(records).cursor.sequence))
        reader.start()
        assert listening_connections(pg_url.render_as_string(False), 1) == 1
        quiet = psycopg.connect(
            pg_url.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        )
        try:
            quiet.execute("SET session_replication_role = replica")  # no triggers
            quiet.execute(
                "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
                " VALUES (%s, 2, 'pool_created', %s)",
                (POOL, PoolCreated().model_dump_json()),
            )
        finally:
            quiet.close()
        reader.join(5 * RECHECK_SECONDS)
        assert got == [2]
        records.close()
    finally:
        store.close()


@pytest.mark.postgresql
def test_registrations_of_vanished_followers_are_removed(pg_url: URL) -> None:
    engine = create_engine(pg_url)
    store = open_store(pg_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO agent_pool_store_followers VALUES (:pool, :pid)"),
                {"pool": POOL, "pid": 2_000_000_000},  # no such backend
            )
        store.open_pool(POOL, AgentPoolStoreConfig())
        records = store.follow(POOL)
        assert next(records).cursor.sequence == 1
        with engine.connect() as connection:
            pids = connection.execute(
                text("SELECT backend_pid FROM agent_pool_store_followers")
            ).scalars()
            registered = list(pids)
        assert 2_000_000_000 not in registered
        assert len(registered) == 1
        records.close()
    finally:
        store.close()
        engine.dispose()
