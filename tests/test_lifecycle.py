"""Pool lifecycle on both dialects, sync and asyncio: listing by last activity, archive,
restore and delete (``agent_pool_store.sql.lifecycle``, ``sql.admin``)."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update

from agent_pool_store import (
    AgentError,
    AgentErrorKind,
    AgentPoolMember,
    AgentPoolStoreConfig,
    RetryClassification,
    open_async_store,
    open_store,
)
from agent_pool_store.sql import admin
from agent_pool_store.sql.archive_file import read_archive
from agent_pool_store.sql.schema import Base, PoolRow
from tests.async_support import STORE_OPERATIONS, SyncOverAsync
from tests.factories import append_every_kind
from tests.reliability.workers import Database

POOLS_TABLE = PoolRow.__table__
LIFECYCLE_OPERATIONS = (*STORE_OPERATIONS, "pools", "archive", "restore", "delete_pool")


@pytest.fixture(params=["sync", "async"])
def store(request: pytest.FixtureRequest, database: Database) -> Iterator[Any]:
    """The sync store, or the asyncio store driven from this thread, on each dialect."""
    if request.param == "sync":
        made: Any = database.open()
        yield made
        return
    url = database.url
    made = SyncOverAsync(lambda: open_async_store(url), LIFECYCLE_OPERATIONS)
    try:
        yield made
    finally:
        made.close()


def fill(store: Any, pool: str) -> None:
    """A pool with every record kind and an event counter that has handed out numbers."""
    append_every_kind(store, pool, f"message.{pool}", f"wake.{pool}")
    store.next_event_sequence(pool)
    store.next_event_sequence(pool)


def small_pool(store: Any, pool: str, members: int = 1) -> None:
    store.open_pool(pool, AgentPoolStoreConfig())
    for index in range(members):
        store.join_member(pool, AgentPoolMember(run_id=f"run.{index}", agent_id="agent"))


def seen(store: Any, pool: str) -> tuple[str, list[str]]:
    """What a reader sees of a pool: its snapshot's wire JSON and its records' JSON."""
    return (
        store.snapshot(pool).model_dump_json(),
        [record.model_dump_json() for record in store.watch(pool)],
    )


def set_last_append(database: Database, pool: str, when: datetime) -> None:
    """Make a pool look idle since ``when`` (as if nothing had been appended since)."""
    engine = create_engine(database.url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(POOLS_TABLE).where(POOLS_TABLE.c.pool_id == pool).values(last_append_at=when)
            )
    finally:
        engine.dispose()


def rows_of(database: Database, pool: str) -> dict[str, int]:
    """How many rows of the pool each table of the store holds."""
    raw = database.raw()
    return {
        table.name: int(raw.scalar(f"SELECT COUNT(*) FROM {table.name} WHERE pool_id = ?", (pool,)))
        for table in Base.metadata.sorted_tables
    }


def assert_gone(store: Any, database: Database, pool: str) -> None:
    assert set(rows_of(database, pool).values()) == {0}
    assert pool not in [summary.pool_id for summary in store.pools()]
    assert list(store.watch(pool)) == []
    with pytest.raises(AgentError) as raised:
        store.snapshot(pool)
    assert raised.value.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED


# --- pools(): counts, last append, pages, idle ---------------------------------------------


def test_pools_lists_counts_cursor_and_last_append(store: Any, database: Database) -> None:
    small_pool(store, "pool.a", members=3)
    small_pool(store, "pool.b", members=1)
    store.next_event_sequence("pool.b")  # not a record
    listed = {summary.pool_id: summary for summary in store.pools()}
    assert [(s.records, s.members, s.cursor, s.opened, s.problem) for s in listed.values()] == [
        (4, 3, 4, True, None),
        (2, 1, 2, True, None),
    ]
    for summary in listed.values():
        assert summary.last_append_at is not None
        assert summary.last_append_at.utcoffset() == timedelta(0)
    long_ago = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
    set_last_append(database, "pool.a", long_ago)
    assert store.pools(limit=1)[0].last_append_at == long_ago
    store.join_member("pool.a", AgentPoolMember(run_id="run.late", agent_id="agent"))
    after_append = store.pools(limit=1)[0]
    assert after_append.cursor == 5
    assert after_append.last_append_at is not None and after_append.last_append_at > long_ago


def test_pools_pages_with_limit_and_after(store: Any) -> None:
    pools = [f"pool.page.{index:02d}" for index in range(23)]
    for pool in pools:
        small_pool(store, pool)
    everything = [summary.pool_id for summary in store.pools()]
    assert everything == pools
    paged: list[str] = []
    after = None
    while True:
        page = store.pools(limit=5, after=after)
        paged += [summary.pool_id for summary in page]
        if len(page) < 5:
            break
        after = page[-1].pool_id
    assert paged == pools
    assert [s.pool_id for s in store.pools(after="pool.page.20")] == pools[21:]
    assert store.pools(after="pool.page.99") == []
    for bad in ({"limit": 0}, {"limit": True}, {"after": ""}, {"idle_for": -1}):
        with pytest.raises(AgentError) as raised:
            store.pools(**bad)
        assert raised.value.retry is RetryClassification.NOT_RETRYABLE


def test_pools_pages_across_many_statements(database: Database) -> None:
    """More pools than one page statement reads (``PAGE``), and a pool with records only."""
    with database.open() as store:
        for index in range(admin.PAGE + 5):
            store.open_pool(f"pool.many.{index:05d}", AgentPoolStoreConfig())
        raw = database.raw()  # another implementation's pool: records, no row of ours
        opened = '{"type":"pool_opened","config":' + AgentPoolStoreConfig().model_dump_json() + "}"
        raw.insert_record("pool.many.foreign", 1, "pool_opened", opened)
        listed = store.pools()
        assert len(listed) == admin.PAGE + 6
        assert [s.pool_id for s in listed] == sorted(s.pool_id for s in listed)
        foreign = next(s for s in listed if s.pool_id == "pool.many.foreign")
        assert (foreign.records, foreign.cursor, foreign.problem) == (1, 1, None)
        assert foreign.opened  # caught up: it has a row of ours now


def test_idle_for_lists_only_pools_without_recent_appends(store: Any, database: Database) -> None:
    for pool in ("pool.idle.a", "pool.idle.b", "pool.busy"):
        small_pool(store, pool)
    forty_days_ago = datetime.now(UTC) - timedelta(days=40)
    set_last_append(database, "pool.idle.a", forty_days_ago)
    set_last_append(database, "pool.idle.b", forty_days_ago)
    idle = [s.pool_id for s in store.pools(idle_for=timedelta(days=30))]
    assert idle == ["pool.idle.a", "pool.idle.b"]
    assert [s.pool_id for s in store.pools(idle_for=30 * 86400, limit=1)] == ["pool.idle.a"]
    assert store.pools(idle_for=timedelta(days=50)) == []
    # an append makes a pool active again
    store.join_member("pool.idle.a", AgentPoolMember(run_id="run.back", agent_id="agent"))
    assert [s.pool_id for s in store.pools(idle_for=timedelta(days=30))] == ["pool.idle.b"]
    # so does another implementation's append, which the listing applies first
    database.raw().insert_record("pool.idle.b", 3, "pool_created", '{"type":"pool_created"}')
    assert store.pools(idle_for=timedelta(days=30)) == []
    caught_up = next(s for s in store.pools() if s.pool_id == "pool.idle.b")
    assert (caught_up.records, caught_up.cursor, caught_up.created) == (3, 3, True)


# --- archive and restore ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pool.jsonl", "pool.jsonl.gz"])
def test_archive_then_restore_gives_identical_snapshot_and_watch(
    store: Any, database: Database, tmp_path: Path, name: str
) -> None:
    fill(store, "pool.arch")
    small_pool(store, "pool.stays")
    before = seen(store, "pool.arch")
    with open_store(database.url) as exporter:
        exported = list(exporter.export_records("pool.arch"))
    destination = tmp_path / name
    report = store.archive("pool.arch", destination)
    assert report.pools == {"pool.arch": 10}
    assert report.event_sequences == {"pool.arch": 2}
    assert read_archive(destination) == exported  # the export format, byte for byte
    if name.endswith(".gz"):
        assert gzip.decompress(destination.read_bytes()).decode("utf-8").count("\n") == 11
    assert not destination.with_name(name + ".partial").exists()
    assert_gone(store, database, "pool.arch")
    assert seen(store, "pool.stays")[1]  # the other pool is untouched

    restored = store.restore(destination)
    assert restored.pools == {"pool.arch": 10}
    assert seen(store, "pool.arch") == before
    assert store.next_event_sequence("pool.arch") == 3  # the counter came back too
    with open_store(database.url) as checker:
        assert checker.verify("pool.arch").ok


def test_archive_of_several_pools_writes_one_file(
    store: Any, database: Database, tmp_path: Path
) -> None:
    for pool in ("pool.x", "pool.y"):
        small_pool(store, pool, members=2)
    before = {pool: seen(store, pool) for pool in ("pool.x", "pool.y")}
    report = store.archive(["pool.y", "pool.x"], tmp_path / "both.jsonl")
    assert report.pools == {"pool.x": 3, "pool.y": 3}
    assert store.pools() == []
    store.restore(tmp_path / "both.jsonl")
    assert {pool: seen(store, pool) for pool in ("pool.x", "pool.y")} == before


def test_archive_refusals_change_nothing(store: Any, database: Database, tmp_path: Path) -> None:
    small_pool(store, "pool.r")
    tmp_path = tmp_path / "archives"
    tmp_path.mkdir()
    existing = tmp_path / "taken.jsonl"
    existing.write_text("keep me\n")
    cases = [
        (("pool.r", existing), "already exists"),
        (("pool.nothing", tmp_path / "n.jsonl"), "has no records"),
        ((["pool.r", "pool.nothing"], tmp_path / "n2.jsonl"), "has no records"),
        (([], tmp_path / "n3.jsonl"), "no pool given"),
        (("", tmp_path / "n4.jsonl"), "invalid pool_id"),
    ]
    for arguments, message in cases:
        with pytest.raises(AgentError) as raised:
            store.archive(*arguments)
        assert message in raised.value.message
    assert existing.read_text() == "keep me\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken.jsonl"]
    assert [s.records for s in store.pools()] == [2]
    # idle_for is checked again once the pool is locked
    with pytest.raises(AgentError) as raised:
        store.archive("pool.r", tmp_path / "busy.jsonl", idle_for=timedelta(days=1))
    assert "is not idle" in raised.value.message
    assert not (tmp_path / "busy.jsonl").exists()
    set_last_append(database, "pool.r", datetime.now(UTC) - timedelta(days=2))
    assert store.archive("pool.r", tmp_path / "idle.jsonl", idle_for=timedelta(days=1)).records


def test_restore_refuses_pools_that_exist(store: Any, database: Database, tmp_path: Path) -> None:
    small_pool(store, "pool.twice")
    store.archive("pool.twice", tmp_path / "a.jsonl.gz")
    store.restore(tmp_path / "a.jsonl.gz")
    before = seen(store, "pool.twice")
    with pytest.raises(AgentError) as raised:
        store.restore(tmp_path / "a.jsonl.gz")
    assert raised.value.retry is RetryClassification.USER_ACTION_NEEDED
    assert "already have records" in raised.value.message
    assert seen(store, "pool.twice") == before
    for bad, message in (
        (tmp_path / "missing.jsonl", "does not exist"),
        (tmp_path / "notgzip.jsonl.gz", "cannot be read"),
    ):
        if bad.name.endswith(".gz"):
            bad.write_text("plain text")
        with pytest.raises(AgentError) as raised:
            store.restore(bad)
        assert message in raised.value.message


# --- delete ------------------------------------------------------------------------------------


def test_delete_pool_removes_every_row_of_that_pool_only(store: Any, database: Database) -> None:
    fill(store, "pool.del")
    fill(store, "pool.keep")
    kept = rows_of(database, "pool.keep")
    assert store.delete_pool("pool.del") == 10
    assert_gone(store, database, "pool.del")
    assert rows_of(database, "pool.keep") == kept
    with pytest.raises(AgentError) as raised:  # an append after the delete fails, clearly
        store.join_member("pool.del", AgentPoolMember(run_id="run.z", agent_id="agent"))
    assert raised.value.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED
    assert set(rows_of(database, "pool.del").values()) == {0}  # and leaves no row behind
    with pytest.raises(AgentError) as raised:
        store.delete_pool("pool.del")
    assert "has no records" in raised.value.message
    store.open_pool("pool.del", AgentPoolStoreConfig())  # the id can be used again
    assert [r.cursor.sequence for r in store.watch("pool.del")] == [1]


def test_concurrent_appends_land_before_the_delete_or_fail(database: Database) -> None:
    pool = "pool.race"
    with database.open() as store, database.open() as writer:
        small_pool(store, pool)
        landed: list[int] = []
        failures: list[AgentError] = []
        stop = threading.Event()

        def append_until_deleted() -> None:
            index = 0
            while not stop.is_set():
                index += 1
                member = AgentPoolMember(run_id=f"run.w{index}", agent_id="agent")
                try:
                    landed.append(writer.join_member(pool, member).sequence)
                except AgentError as error:
                    failures.append(error)
                    return

        thread = threading.Thread(target=append_until_deleted)
        thread.start()
        while len(landed) < 5:
            threading.Event().wait(0.005)
        deleted = store.delete_pool(pool)
        thread.join(30)
        stop.set()
        assert not thread.is_alive()
    assert landed == list(range(3, 3 + len(landed)))  # every acknowledged append ...
    assert max(landed) <= deleted  # ... landed before the delete and was deleted with it
    assert [e.kind for e in failures] == [AgentErrorKind.HOST_CONFIGURATION_NEEDED]
    assert set(rows_of(database, pool).values()) == {0}


def test_a_follower_of_a_deleted_pool_ends_with_an_error(store: Any, database: Database) -> None:
    small_pool(store, "pool.followed")
    with database.open() as follower_store:
        follower = follower_store.follow("pool.followed", timeout=30)
        outcome: dict[str, Any] = {"records": []}

        def follow() -> None:
            try:
                for record in follower:
                    outcome["records"].append(record.cursor.sequence)
            except AgentError as error:
                outcome["error"] = error

        thread = threading.Thread(target=follow)
        thread.start()
        while len(outcome["records"]) < 2:
            threading.Event().wait(0.01)
        store.delete_pool("pool.followed")
        thread.join(60)
        assert not thread.is_alive()
    assert outcome["records"] == [1, 2]
    error = outcome.get("error")
    assert isinstance(error, AgentError), outcome
    assert error.retry is RetryClassification.NOT_RETRYABLE
    assert "was deleted" in error.message and "seq 2" in error.message


def test_migration_0006_starts_existing_pools_at_the_migration(tmp_path: Path) -> None:
    from agent_pool_store import migrations

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    migrations.upgrade(url, revision="0005")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO agent_pool_store_pools (pool_id, projected_seq) VALUES ('p', 0)"
            )
        migrations.upgrade(url)
        with engine.connect() as connection:
            stamped = connection.execute(select(POOLS_TABLE.c.last_append_at)).scalar_one()
        assert isinstance(stamped, datetime)  # the migration's time: not known before
        migrations.downgrade(url, "0005")
        with engine.connect() as connection:
            columns = [
                row[1]
                for row in connection.exec_driver_sql("PRAGMA table_info(agent_pool_store_pools)")
            ]
        assert "last_append_at" not in columns
    finally:
        engine.dispose()


def test_a_damaged_pool_is_not_archived_but_can_be_deleted(
    store: Any, database: Database, tmp_path: Path
) -> None:
    small_pool(store, "pool.damaged")
    database.raw().insert_record("pool.damaged", 3, "member_joined", "{not json")
    rows = rows_of(database, "pool.damaged")
    with pytest.raises(AgentError) as raised:
        store.archive("pool.damaged", tmp_path / "damaged.jsonl")
    assert raised.value.retry is RetryClassification.REPAIR_NEEDED
    assert "seq 3 cannot be read" in raised.value.message
    assert list(tmp_path.glob("damaged*")) == []
    assert rows_of(database, "pool.damaged") == rows
    assert store.delete_pool("pool.damaged") == 3  # erasure does not need a readable log
    assert set(rows_of(database, "pool.damaged").values()) == {0}


@pytest.mark.postgresql
def test_lifecycle_in_a_schema_of_its_own(pg_schema_url: Any, tmp_path: Path) -> None:
    from tests.databases import PG_SCHEMA

    with open_store(pg_schema_url, schema=PG_SCHEMA) as store:
        fill(store, "pool.schema")
        before = seen(store, "pool.schema")
        old = datetime.now(UTC) - timedelta(days=9)
        with store.engine.begin() as connection:
            connection.exec_driver_sql(f'SET LOCAL search_path = "{PG_SCHEMA}"')
            connection.execute(update(POOLS_TABLE).values(last_append_at=old))
        assert [s.pool_id for s in store.pools(idle_for=timedelta(days=8))] == ["pool.schema"]
        store.archive("pool.schema", tmp_path / "schema.jsonl.gz", idle_for=timedelta(days=8))
        assert store.pools() == []
        store.restore(tmp_path / "schema.jsonl.gz")
        assert seen(store, "pool.schema") == before
        assert store.delete_pool("pool.schema") == 10
        assert store.pools() == []
