"""``agent_pool_store.sql.dialects.driver``: Core statements run on the sqlite3 connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import bindparam, create_engine, exc, func, select

from agent_pool_store import (
    AgentError,
    AgentPoolMember,
    AgentPoolStoreConfig,
    open_store,
)
from agent_pool_store.sql.dialects.driver import (
    driver_statement,
    execute_many,
    execute_sql,
    fetch_one,
)
from agent_pool_store.sql.runner import SqlPoolUnit
from agent_pool_store.sql.schema import PoolRow, RecordRow, table_of
from agent_pool_store.sql.statements import RECORDS_INSERT
from tests.databases import sqlite_url

RECORDS = table_of(RecordRow)
POOLS = table_of(PoolRow)


def test_rows_are_written_in_the_units_transaction(sqlite_file: Path) -> None:
    engine = create_engine(sqlite_url(sqlite_file))
    rows = [{"pool_id": "pool.a", "seq": s, "kind": "k", "payload_json": f"{s}"} for s in (1, 2)]
    with engine.connect() as connection:
        execute_many(connection, RECORDS_INSERT, rows)
        connection.rollback()
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(RECORDS)).scalar_one() == 0
        execute_many(connection, RECORDS_INSERT, rows)
        connection.commit()
    with engine.connect() as connection:
        stored = connection.execute(select(RECORDS.c.seq, RECORDS.c.payload_json)).all()
    assert sorted(stored) == [(1, "1"), (2, "2")]
    engine.dispose()


def test_driver_errors_arrive_as_sqlalchemy_errors(sqlite_file: Path) -> None:
    engine = create_engine(sqlite_url(sqlite_file))
    row = {"pool_id": "pool.a", "seq": 1, "kind": "k", "payload_json": "{}"}
    with engine.connect() as connection:
        execute_many(connection, RECORDS_INSERT, [row])
        with pytest.raises(exc.IntegrityError) as caught:
            execute_many(connection, RECORDS_INSERT, [row])
        assert "UNIQUE" in str(caught.value.orig)
        assert "agent_pool_records" in str(caught.value.orig)
    engine.dispose()


def test_parameters_follow_the_compiled_order_and_literals_are_kept(sqlite_file: Path) -> None:
    engine = create_engine(sqlite_url(sqlite_file))
    update = (
        POOLS.update()
        .where(POOLS.c.pool_id == bindparam("key"))
        .values(projected_seq=bindparam("seq") + 10, created=True)
    )
    prepared = driver_statement(update, engine.dialect)
    assert prepared.parameters({"seq": 5, "key": "pool.a"})[-1] == "pool.a"
    with pytest.raises(KeyError):
        prepared.parameters({"seq": 5})  # a required bind is never filled in silently
    with engine.connect() as connection:
        connection.execute(POOLS.insert().values(pool_id="pool.a"))
        execute_many(connection, update, [{"seq": 5, "key": "pool.a"}])
        connection.commit()
        stored = connection.execute(select(POOLS.c.projected_seq, POOLS.c.created)).one()
    assert tuple(stored) == (15, True)
    engine.dispose()


def test_fetch_one_and_a_busy_begin(sqlite_file: Path) -> None:
    engine = create_engine(sqlite_url(sqlite_file), connect_args={"timeout": 0.05})
    with engine.connect() as connection:
        connection.execute(POOLS.insert().values(pool_id="pool.a", projected_seq=3))
        connection.commit()
        query = select(POOLS.c.projected_seq, func.coalesce(None, 7)).where(
            POOLS.c.pool_id == bindparam("pool_id")
        )
        assert fetch_one(connection, query, {"pool_id": "pool.a"}) == (3, 7)
        assert fetch_one(connection, query, {"pool_id": "pool.b"}) is None
        connection.rollback()
    holder = sqlite3.connect(sqlite_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
    try:
        with engine.connect() as connection, pytest.raises(exc.OperationalError) as caught:
            execute_sql(connection, "BEGIN IMMEDIATE")
        assert "locked" in str(caught.value.orig)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()


def _write_lock_is_free(path: Path) -> bool:
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


@pytest.mark.parametrize("reset_on_return", ["rollback", None])
def test_a_failed_unit_leaves_no_transaction_whatever_the_pool_does(
    sqlite_file: Path, reset_on_return: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite unit begins on the driver (SQLAlchemy's transaction is not begun) and rolls
    back itself: the write lock is free after a unit fails, even on an engine whose pool does
    not reset returned connections, and the pooled connection serves the next unit."""
    engine = create_engine(sqlite_url(sqlite_file), pool_reset_on_return=reset_on_return)
    store = open_store(engine)
    store.open_pool("pool.a", AgentPoolStoreConfig())

    def fails(*args: object) -> None:
        raise RuntimeError("the unit fails after its driver-level BEGIN IMMEDIATE and head")

    with monkeypatch.context() as patch:
        patch.setattr(SqlPoolUnit, "append", fails)
        with pytest.raises(RuntimeError):
            store.join_member("pool.a", AgentPoolMember(run_id="run.x", agent_id="a"))
    assert _write_lock_is_free(sqlite_file)
    with pytest.raises(AgentError):
        store.leave_member("pool.a", "run.absent")  # fails after a Core read in the unit
    assert _write_lock_is_free(sqlite_file)
    assert store.join_member("pool.a", AgentPoolMember(run_id="run.a", agent_id="a")).sequence == 2
    assert [m.run_id for m in store.snapshot("pool.a").members] == ["run.a"]
    assert _write_lock_is_free(sqlite_file)
    store.close()
    engine.dispose()


def test_a_unit_that_runs_core_statements_commits_once(sqlite_file: Path) -> None:
    """A unit's Core statement makes SQLAlchemy begin inside the driver's transaction (its
    ``begin`` event sends nothing), and the unit's commit is SQLAlchemy's then."""
    store = open_store(sqlite_url(sqlite_file))
    store.open_pool("pool.a", AgentPoolStoreConfig())
    store.join_member("pool.a", AgentPoolMember(run_id="run.a", agent_id="a"))
    left, cursor = store.leave_member("pool.a", "run.a")  # reads the member with Core
    assert (left.run_id, cursor.sequence) == ("run.a", 3)
    assert store.snapshot("pool.a").members == ()
    assert _write_lock_is_free(sqlite_file)
    assert store.verify().ok
    store.close()
