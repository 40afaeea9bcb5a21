"""``store.bind(connection_or_session)``: the store inside a host application's transaction.

Each test runs on SQLite (a fresh migrated file) and PostgreSQL (the run's database,
emptied), with a host table of the test's own next to the store's tables.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, String, create_engine, func, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from agent_pool_store import (
    AgentError,
    AgentErrorKind,
    AgentPoolStore,
    AgentPoolStoreConfig,
    RetryClassification,
    SqlAgentPoolStore,
    open_store,
)
from tests.databases import sqlite_url
from tests.factories import PolicyRefFactory, message_pair

POOL = "pool.host"
OTHER_CONFIG = AgentPoolStoreConfig(policy_refs=(PolicyRefFactory(),))


class HostBase(DeclarativeBase):
    pass


class Task(HostBase):
    """The host application's own model, in the same database as the store."""

    __tablename__ = "host_binding_tasks"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ]
)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The host's engine, with its own table created, on each dialect."""
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_file")
        made = create_engine(sqlite_url(path))
    else:
        made = create_engine(request.getfixturevalue("pg_url"))
    HostBase.metadata.create_all(made)
    try:
        yield made
    finally:
        HostBase.metadata.drop_all(made)
        made.dispose()


@pytest.fixture
def store(engine: Engine) -> Iterator[SqlAgentPoolStore]:
    """The store opened on the host's engine."""
    with open_store(engine, lock_timeout=5) as opened:
        yield opened


def tasks(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(Task.id).order_by(Task.id)))


def messages(store: AgentPoolStore) -> list[str]:
    return sorted(stored.message.message_id for stored in store.snapshot(POOL).messages)


def sequences(store: AgentPoolStore) -> list[int]:
    return [record.cursor.sequence for record in store.watch(POOL)]


def test_a_bound_view_satisfies_the_contract(store: SqlAgentPoolStore, engine: Engine) -> None:
    with Session(engine) as session:
        assert isinstance(store.bind(session), AgentPoolStore)


def test_commit_keeps_the_host_row_and_the_records(
    store: SqlAgentPoolStore, engine: Engine
) -> None:
    with Session(engine) as session, session.begin():
        session.add(Task(id="task.1"))
        bound = store.bind(session)
        bound.open_pool(POOL, AgentPoolStoreConfig())
        cursor = bound.record_message(POOL, *message_pair("message.1"))
        assert cursor.sequence == 2
        assert messages(bound) == ["message.1"]  # the view sees its own transaction
    assert tasks(engine) == ["task.1"]
    assert messages(store) == ["message.1"]
    with open_store(engine) as another:  # a store object that never saw the view
        assert messages(another) == ["message.1"]
        assert sequences(another) == [1, 2]


def test_the_store_never_commits_for_the_host(store: SqlAgentPoolStore, engine: Engine) -> None:
    with engine.connect() as connection:
        store.bind(connection).open_pool(POOL, AgentPoolStoreConfig())
        assert connection.in_transaction()
        with pytest.raises(AgentError) as raised:  # not committed: another store sees nothing
            store.snapshot(POOL)
        assert raised.value.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED  # not opened
        connection.commit()
    assert sequences(store) == [1]


@pytest.mark.parametrize("how", ["rollback", "exception"])
def test_rollback_keeps_neither(store: SqlAgentPoolStore, engine: Engine, how: str) -> None:
    store.open_pool(POOL, AgentPoolStoreConfig())
    store.record_message(POOL, *message_pair("message.before"))  # the store's config cache

    class HostFailureError(Exception):
        pass

    with Session(engine) as session:
        try:
            with session.begin():
                session.add(Task(id="task.rolled-back"))
                bound = store.bind(session)
                bound.record_message(POOL, *message_pair("message.rolled-back"))
                bound.next_event_sequence(POOL)
                session.flush()
                if how == "exception":
                    raise HostFailureError
                session.rollback()
        except HostFailureError:
            pass
    assert tasks(engine) == []
    assert messages(store) == ["message.before"]
    assert sequences(store) == [1, 2]
    # the next operation outside the block sees the log as it is: no gap, no repeat
    assert store.record_message(POOL, *message_pair("message.after")).sequence == 3
    assert store.next_event_sequence(POOL) == 1
    assert sequences(store) == [1, 2, 3]
    assert store.verify(POOL).ok


def test_a_pool_opened_in_a_rolled_back_transaction_is_not_remembered(
    store: SqlAgentPoolStore, engine: Engine
) -> None:
    with engine.connect() as connection:
        bound = store.bind(connection)
        bound.open_pool(POOL, AgentPoolStoreConfig())
        bound.record_message(POOL, *message_pair("message.1"))
        connection.rollback()
    with pytest.raises(AgentError) as raised:
        store.record_message(POOL, *message_pair("message.2"))
    assert raised.value.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED  # not opened
    assert store.count_records(POOL) == 0


def test_a_rolled_back_savepoint_undoes_only_its_records(
    store: SqlAgentPoolStore, engine: Engine
) -> None:
    with Session(engine) as session, session.begin():
        bound = store.bind(session)
        bound.open_pool(POOL, AgentPoolStoreConfig())
        bound.record_message(POOL, *message_pair("message.kept"))
        savepoint = session.begin_nested()
        session.add(Task(id="task.undone"))
        bound.record_message(POOL, *message_pair("message.undone"))
        savepoint.rollback()
        session.add(Task(id="task.kept"))
        assert bound.record_message(POOL, *message_pair("message.later")).sequence == 3
    assert tasks(engine) == ["task.kept"]
    assert messages(store) == ["message.kept", "message.later"]
    assert sequences(store) == [1, 2, 3]
    assert store.verify(POOL).ok


def test_two_hosts_racing_on_one_pool_serialise(store: SqlAgentPoolStore, engine: Engine) -> None:
    store.open_pool(POOL, AgentPoolStoreConfig())
    first_wrote, second_done = threading.Event(), threading.Event()
    release = threading.Event()
    results: dict[str, int] = {}

    def first() -> None:
        with Session(engine) as session, session.begin():
            results["first"] = (
                store.bind(session).record_message(POOL, *message_pair("message.first")).sequence
            )
            first_wrote.set()
            release.wait(30)

    def second() -> None:
        first_wrote.wait(30)
        with Session(engine) as session, session.begin():
            results["second"] = (
                store.bind(session).record_message(POOL, *message_pair("message.second")).sequence
            )
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_wrote.wait(30)
    # the second host waits for the first one's lock, held until the first commits
    assert not second_done.wait(0.5)
    release.set()
    for thread in threads:
        thread.join(30)
    assert results == {"first": 2, "second": 3}
    assert messages(store) == ["message.first", "message.second"]
    assert sequences(store) == [1, 2, 3]


def test_a_failed_operation_leaves_the_host_transaction_usable(
    store: SqlAgentPoolStore, engine: Engine
) -> None:
    store.open_pool(POOL, AgentPoolStoreConfig())
    with Session(engine) as session, session.begin():
        session.add(Task(id="task.1"))
        session.flush()
        bound = store.bind(session)
        with pytest.raises(AgentError) as raised:  # config conflict
            bound.open_pool(POOL, OTHER_CONFIG)
        assert raised.value.retry is RetryClassification.REPAIR_NEEDED
        bound.record_message(POOL, *message_pair("message.1"))
        session.add(Task(id="task.2"))
    assert tasks(engine) == ["task.1", "task.2"]
    assert messages(store) == ["message.1"]


def test_a_lock_wait_is_bounded_and_the_host_can_go_on(engine: Engine) -> None:
    store = open_store(engine, lock_timeout=0.3)
    store.open_pool(POOL, AgentPoolStoreConfig())
    with Session(engine) as holder, holder.begin():
        store.bind(holder).record_message(POOL, *message_pair("message.holder"))
        with engine.connect() as waiter:
            with pytest.raises(AgentError) as raised:
                store.bind(waiter).record_message(POOL, *message_pair("message.waiter"))
            assert raised.value.retry is RetryClassification.RETRYABLE
            assert raised.value.kind is AgentErrorKind.TIMEOUT
            driver_error = raised.value.__cause__  # the driver's own error stays reachable
            if engine.dialect.name == "postgresql":
                assert getattr(driver_error, "sqlstate", None) == "55P03"  # lock_not_available
            else:
                assert isinstance(driver_error, sqlite3.OperationalError)
            # the waiter's transaction is still usable (PostgreSQL: not aborted)
            assert waiter.execute(select(func.count()).select_from(Task)).scalar_one() == 0
            waiter.rollback()
    assert messages(store) == ["message.holder"]
    store.close()


def test_the_host_settings_are_restored(store: SqlAgentPoolStore, engine: Engine) -> None:
    setting = "PRAGMA busy_timeout" if engine.dialect.name == "sqlite" else "SHOW lock_timeout"
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA busy_timeout = 1234")
        else:
            connection.exec_driver_sql("SET LOCAL lock_timeout = '1234ms'")
        before = connection.exec_driver_sql(setting).scalar_one()
        bound = store.bind(connection)
        bound.open_pool(POOL, AgentPoolStoreConfig())
        bound.snapshot(POOL)
        with pytest.raises(AgentError):
            bound.open_pool(POOL, OTHER_CONFIG)
        assert connection.exec_driver_sql(setting).scalar_one() == before
        connection.rollback()


@pytest.mark.sqlite
def test_sqlite_a_host_transaction_that_cannot_write_fails_at_once(sqlite_file: Path) -> None:
    engine = create_engine(sqlite_url(sqlite_file))
    store = open_store(engine, lock_timeout=5)
    store.open_pool(POOL, AgentPoolStoreConfig())
    with engine.connect() as host:
        host.execute(text("SELECT count(*) FROM agent_pool_records")).scalar_one()  # a read
        store.record_message(POOL, *message_pair("message.other"))  # another writer commits
        with pytest.raises(AgentError) as raised:
            store.bind(host).record_message(POOL, *message_pair("message.host"))
        assert raised.value.retry is RetryClassification.RETRYABLE
        assert "write lock" in str(raised.value)
        host.rollback()
        # run again, the transaction writes as its first statement: it works
        store.bind(host).record_message(POOL, *message_pair("message.host"))
        host.commit()
    assert messages(store) == ["message.host", "message.other"]
    store.close()
    engine.dispose()


def test_bind_refuses_what_it_cannot_use(store: SqlAgentPoolStore, engine: Engine) -> None:
    other = create_engine(engine.url)
    try:
        with other.connect() as connection, pytest.raises(AgentError) as raised:
            store.bind(connection).snapshot(POOL)
        assert raised.value.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED
    finally:
        other.dispose()
    with pytest.raises(AgentError) as raised:
        store.bind("not a connection")  # type: ignore[arg-type]
    assert raised.value.retry is RetryClassification.NOT_RETRYABLE
    with engine.connect() as connection:
        with pytest.raises(AgentError, match="call it on the store"):
            next(store.bind(connection).follow(POOL, timeout=0.1))
        store.close()
        with pytest.raises(AgentError) as raised:
            store.bind(connection).snapshot(POOL)
        assert raised.value.retry is RetryClassification.NOT_RETRYABLE
