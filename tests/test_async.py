"""The asyncio store: what the contract suite (rerun on it in ``tests/contract``) cannot show.

Cancellation at random points, the host's ``AsyncConnection`` / ``AsyncSession``
transaction, drivers, follow and its cancellation, and that operations do not block the
event loop. SQLite (aiosqlite, a fresh file) and PostgreSQL (psycopg's async connection, the
run's database emptied) each.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import String, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from agent_pool_store import (
    AgentError,
    AgentErrorKind,
    AgentPoolMember,
    AgentPoolStoreConfig,
    AsyncAgentPoolStore,
    AsyncInMemoryAgentPoolStore,
    AsyncSqlAgentPoolStore,
    RetryClassification,
    open_async_store,
)
from agent_pool_store.asyncio_bridge import run_in_thread
from tests.factories import message_pair

pytestmark = pytest.mark.asyncio

POOL = "pool.async"


class HostBase(DeclarativeBase):
    pass


class Task(HostBase):
    __tablename__ = "host_async_tasks"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ]
)
def url(request: pytest.FixtureRequest) -> str:
    """An asyncio URL of a fresh, migrated database of each dialect."""
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_file")
        return f"sqlite+aiosqlite:///{path}"
    pg = request.getfixturevalue("pg_url")
    return str(pg.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))


@pytest_asyncio.fixture
async def store(url: str) -> AsyncIterator[AsyncSqlAgentPoolStore]:
    opened = await open_async_store(url, lock_timeout=5)
    try:
        yield opened
    finally:
        await opened.close()


async def sequences(store: AsyncAgentPoolStore, pool: str = POOL) -> list[int]:
    return [record.cursor.sequence async for record in store.watch(pool)]


async def test_the_stores_satisfy_the_async_contract(store: AsyncSqlAgentPoolStore) -> None:
    assert isinstance(store, AsyncAgentPoolStore)
    assert isinstance(AsyncInMemoryAgentPoolStore(), AsyncAgentPoolStore)


async def test_cancelled_callers_leave_whole_operations_and_a_usable_store(
    store: AsyncSqlAgentPoolStore,
) -> None:
    """Callers cancelled at random points: each operation happened whole, or not at all,
    and the store (its connections) goes on working."""
    await store.open_pool(POOL, AgentPoolStoreConfig())
    rng = random.Random(7)
    keys = [f"message.{index}" for index in range(60)]

    async def record(key: str) -> None:
        await store.record_message(POOL, *message_pair(key))

    tasks = [asyncio.create_task(record(key)) for key in keys]
    for task in tasks:
        await asyncio.sleep(rng.uniform(0, 0.004))
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert any(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
    snapshot = await store.snapshot(POOL)
    recorded = {stored.message.message_id for stored in snapshot.messages}
    for key in keys:  # whole: a message in the log has its receipt, and the reverse
        receipt = await store.message_receipt(POOL, f"idem.{key}")
        assert (receipt is not None) == (key in recorded)
    log = await sequences(store)
    assert log == list(range(1, len(recorded) + 2))  # no gap, no repeat
    assert (await store.verify(POOL)).ok
    # the store (and its connections) go on working
    cursor = await store.record_message(POOL, *message_pair("message.after"))
    assert cursor.sequence == len(log) + 1


async def test_operations_run_concurrently_on_one_loop(store: AsyncSqlAgentPoolStore) -> None:
    pools = [f"pool.concurrent.{index}" for index in range(4)]
    await asyncio.gather(*(store.open_pool(pool, AgentPoolStoreConfig()) for pool in pools))
    members = [
        store.join_member(pool, AgentPoolMember(run_id=f"run.{index}", agent_id="agent.a"))
        for pool in pools
        for index in range(10)
    ]
    await asyncio.gather(*members)
    for pool in pools:
        assert await sequences(store, pool) == list(range(1, 12))


async def test_bind_an_async_session(store: AsyncSqlAgentPoolStore, url: str) -> None:
    engine = store.engine
    async with engine.begin() as connection:
        await connection.run_sync(HostBase.metadata.create_all)
    try:
        async with AsyncSession(engine) as session, session.begin():
            session.add(Task(id="task.kept"))
            bound = store.bind(session)
            await bound.open_pool(POOL, AgentPoolStoreConfig())
            await bound.record_message(POOL, *message_pair("message.kept"))
            assert [r.cursor.sequence async for r in bound.watch(POOL)] == [1, 2]
        async with AsyncSession(engine) as session:
            try:
                async with session.begin():
                    session.add(Task(id="task.undone"))
                    await store.bind(session).record_message(POOL, *message_pair("message.x"))
                    raise RuntimeError("the host changes its mind")
            except RuntimeError:
                pass
        async with engine.connect() as connection:
            await connection.begin()
            await store.bind(connection).record_message(POOL, *message_pair("message.conn"))
            await connection.rollback()
        async with AsyncSession(engine) as session:
            assert list(await session.scalars(select(Task.id))) == ["task.kept"]
        assert await sequences(store) == [1, 2]
        assert await store.message_receipt(POOL, "idem.message.x") is None
        with pytest.raises(AgentError) as raised:
            store.bind("not a session")  # type: ignore[arg-type]
        assert raised.value.retry is RetryClassification.NOT_RETRYABLE
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(HostBase.metadata.drop_all)


async def test_follow_yields_commits_and_ends_on_cancellation(
    store: AsyncSqlAgentPoolStore, url: str
) -> None:
    await store.open_pool(POOL, AgentPoolStoreConfig())
    got: list[int] = []
    followed = asyncio.Event()

    async def follow() -> None:
        async for record in store.follow(POOL):
            got.append(record.cursor.sequence)
            followed.set()

    follower = asyncio.create_task(follow())
    await asyncio.wait_for(followed.wait(), 10)
    other = await open_async_store(url)  # another store object (another "process")
    try:
        for index in range(3):
            await other.join_member(POOL, AgentPoolMember(run_id=f"run.{index}", agent_id="a.a"))
        async with asyncio.timeout(10):
            while len(got) < 4:
                await asyncio.sleep(0.01)
    finally:
        await other.close()
    follower.cancel()
    with pytest.raises(asyncio.CancelledError):
        await follower
    assert got == [1, 2, 3, 4]
    if store.engine.dialect.name == "postgresql":  # its listening connection said goodbye
        async with store.engine.connect() as connection:
            rows = await connection.execute(text("SELECT count(*) FROM agent_pool_store_followers"))
            assert rows.scalar_one() == 0
    # a timeout ends it too
    assert [r.cursor.sequence async for r in store.follow(POOL, 4, timeout=0.2)] == []


async def test_a_lock_wait_is_bounded(url: str) -> None:
    first = await open_async_store(url, lock_timeout=0.3)
    try:
        await first.open_pool(POOL, AgentPoolStoreConfig())
        async with first.engine.connect() as holder:
            await holder.begin()
            await first.bind(holder).join_member(
                POOL, AgentPoolMember(run_id="run.holder", agent_id="agent.a")
            )
            with pytest.raises(AgentError) as raised:
                await first.join_member(POOL, AgentPoolMember(run_id="run.w", agent_id="a.a"))
            assert raised.value.kind is AgentErrorKind.TIMEOUT
            assert raised.value.retry is RetryClassification.RETRYABLE
            await holder.rollback()
        assert await sequences(first) == [1]
    finally:
        await first.close()


@pytest.mark.postgresql
async def test_asyncpg_is_refused_clearly(pg_url: object) -> None:
    for given in ("postgresql+asyncpg://user:secret@127.0.0.1/db", "sqlite+pysqlite:///x.db"):
        with pytest.raises(AgentError) as raised:
            await open_async_store(given)
        assert raised.value.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED
        assert "sqlite+aiosqlite" in raised.value.message
        assert "postgresql+psycopg" in raised.value.message
        assert "secret" not in str(raised.value)


@pytest.mark.sqlite
async def test_a_given_async_engine_stays_its_owners(sqlite_file: Path) -> None:
    engine: AsyncEngine = create_async_engine(f"sqlite+aiosqlite:///{sqlite_file}")
    try:
        async with await open_async_store(engine) as store:
            await store.open_pool(POOL, AgentPoolStoreConfig())
        async with engine.connect() as connection:  # not disposed by the store
            found = await connection.execute(text("SELECT count(*) FROM agent_pool_records"))
            assert found.scalar_one() == 1
        with pytest.raises(AgentError) as raised:
            await store.snapshot(POOL)
        assert raised.value.retry is RetryClassification.NOT_RETRYABLE  # closed
    finally:
        await engine.dispose()


async def test_the_in_memory_async_store_follows_without_blocking() -> None:
    store = AsyncInMemoryAgentPoolStore()
    await store.open_pool(POOL, AgentPoolStoreConfig())
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    other = store.another_handle()

    async def later() -> None:
        await asyncio.sleep(0.2)
        await other.join_member(POOL, AgentPoolMember(run_id="run.a", agent_id="agent.a"))

    writer = asyncio.create_task(later())
    got = [record.cursor.sequence async for record in store.follow(POOL, timeout=0.5)]
    await writer
    beating.cancel()
    assert got == [1, 2]
    assert ticks >= 10  # the loop kept running while the follower waited
    await store.close()


async def test_a_write_in_a_thread_is_settled_before_its_cancelled_caller_goes_on() -> None:
    """``run_in_thread``: a call that started runs to its end before the caller sees the
    cancellation; a call that had not started never runs."""
    executor = ThreadPoolExecutor(1)
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(10)
        ran.append("slow")

    try:
        running = asyncio.create_task(run_in_thread(executor, slow))
        queued = asyncio.create_task(run_in_thread(executor, ran.append, "queued"))
        await asyncio.to_thread(started.wait, 10)
        running.cancel()
        queued.cancel()
        await asyncio.sleep(0.05)
        assert not running.done()  # still waiting for its thread
        release.set()
        for task in (running, queued):
            with pytest.raises(asyncio.CancelledError):
                await task
        assert ran == ["slow"]  # the started call ended first; the queued one never ran
    finally:
        release.set()
        executor.shutdown(wait=True)
