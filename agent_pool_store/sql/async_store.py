"""``AsyncSqlAgentPoolStore``, the SQL store on asyncio, and ``open_async_store``.

The async store is the sync :class:`~agent_pool_store.sql.store.SqlAgentPoolStore` behind
the asyncio face of :mod:`agent_pool_store.async_face`: the same runner, dialects,
statements, fold, retries, lost-reply settling and error translation. See ``docs/async.md``.

The sync store runs on the asyncio engine's sync facade (``AsyncEngine.sync_engine``), in
a greenlet whose statements await the event loop (psycopg's ``AsyncConnection``; aiosqlite).

On **a SQLite file the store opens by URL**, writes take another way. aiosqlite hops to a
thread of its own for every call (about 100 µs a hop on a 2-core machine, and an append
makes five), so each write runs whole on a second sync store, on ``sqlite3`` (same file,
same settings), in a writer thread of its own: one hop, with the ``fsync`` of its ``COMMIT``
and any wait for the write lock in it (one thread: SQLite lets one writer in at a time).
Reads, ``watch`` and ``follow`` stay on aiosqlite, whose threads do their waiting while the
loop parses what they read, yielding to other tasks.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from agent_pool_store.async_face import AsyncStoreFace
from agent_pool_store.asyncio_bridge import run_in_greenlet
from agent_pool_store.errors import AgentError
from agent_pool_store.operations import PoolStoreOperations
from agent_pool_store.sql.admin import PoolSummary
from agent_pool_store.sql.binding import BoundAgentPoolStore
from agent_pool_store.sql.dialects.registry import engine_for_url
from agent_pool_store.sql.dialects.sqlite import SqliteDialect
from agent_pool_store.sql.engine import build_async_engine
from agent_pool_store.sql.integrity import VerificationReport
from agent_pool_store.sql.lifecycle import ArchiveReport
from agent_pool_store.sql.settings import (
    DEFAULT_ASYNC_URL,
    EngineSettings,
    SqliteSynchronous,
    safe_url,
)
from agent_pool_store.sql.store import SqlAgentPoolStore, open_store
from agent_pool_store.sql.transfer import ImportReport
from agent_pool_store.telemetry import Telemetry


def _sql(store: PoolStoreOperations[Any]) -> SqlAgentPoolStore:
    """The store a write runs on (the face's store, or its SQLite writer): a SQL store."""
    assert isinstance(store, SqlAgentPoolStore)
    return store


class AsyncBoundAgentPoolStore(AsyncStoreFace[BoundAgentPoolStore]):
    """The twelve operations in a host's ``AsyncConnection`` or ``AsyncSession`` transaction.

    Made by :meth:`AsyncSqlAgentPoolStore.bind`; the sync
    :class:`~agent_pool_store.sql.binding.BoundAgentPoolStore`'s rules hold (a savepoint per
    operation, nothing committed, no retries). A cancelled operation rolls its savepoint back
    before the host goes on.
    """


class AsyncSqlAgentPoolStore(AsyncStoreFace[SqlAgentPoolStore]):
    """The store contract on SQLite (aiosqlite) or PostgreSQL (psycopg), on asyncio.

    Build one with :func:`open_async_store`. Everything the sync store does and guarantees
    holds (see :class:`~agent_pool_store.sql.store.SqlAgentPoolStore`); its calls never
    block the event loop. A cancelled operation committed whole or left nothing (see
    :mod:`agent_pool_store.async_face`).
    """

    def __init__(
        self,
        store: SqlAgentPoolStore,
        engine: AsyncEngine,
        *,
        owns_engine: bool,
        writer: SqlAgentPoolStore | None = None,
    ) -> None:
        super().__init__(
            store,
            writes_in=None
            if writer is None
            else (writer, ThreadPoolExecutor(1, thread_name_prefix="agent-pool-store-writer")),
        )
        self.engine = engine
        """The asyncio engine (render its URL with ``hide_password=True`` before showing it)."""
        self._owns_engine = owns_engine

    def __repr__(self) -> str:
        return f"AsyncSqlAgentPoolStore({safe_url(self.engine.url)!r})"

    @property
    def url(self) -> URL:
        """The database URL (render it with ``hide_password=True`` before showing it)."""
        return self.engine.url

    @property
    def settings(self) -> EngineSettings:
        """How the store talks to its database."""
        return self._store.settings

    async def verify(self, pool_id: str | None = None) -> VerificationReport:
        """See :meth:`SqlAgentPoolStore.verify`."""
        return await self._call(self._store.verify, pool_id)

    async def rebuild(self, pool_id: str) -> int:
        """See :meth:`SqlAgentPoolStore.rebuild`."""
        return await self._call(self._store.rebuild, pool_id)

    async def pools(
        self,
        *,
        idle_for: timedelta | float | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[PoolSummary]:
        """See :meth:`SqlAgentPoolStore.pools`."""
        return await self._call(
            functools.partial(self._store.pools, idle_for=idle_for, limit=limit, after=after)
        )

    async def archive(
        self,
        pool_id: str | Iterable[str],
        destination: str | os.PathLike[str],
        *,
        idle_for: timedelta | float | None = None,
    ) -> ArchiveReport:
        """See :meth:`SqlAgentPoolStore.archive`.

        Runs as a write (on a SQLite file, in the writer thread); the file is written and
        read back in the same place, so on PostgreSQL that file I/O runs on the loop's
        thread: archive from a task that may take that long.
        """
        return await self._write(
            lambda store: functools.partial(_sql(store).archive, idle_for=idle_for),
            pool_id,
            destination,
        )

    async def restore(self, source: str | os.PathLike[str]) -> ImportReport:
        """See :meth:`SqlAgentPoolStore.restore` (a write, like :meth:`archive`)."""
        return await self._write(lambda store: _sql(store).restore, source)

    async def delete_pool(self, pool_id: str) -> int:
        """See :meth:`SqlAgentPoolStore.delete_pool`."""
        return await self._write(lambda store: _sql(store).delete_pool, pool_id)

    def bind(self, host: AsyncConnection | AsyncSession) -> AsyncBoundAgentPoolStore:
        """The twelve operations in the host's transaction (see :meth:`SqlAgentPoolStore.bind`).

        ``host`` is an ``AsyncConnection`` (begun, e.g. ``async with engine.begin()``) or an
        ``AsyncSession`` of this store's engine::

            async with AsyncSession(store.engine) as session, session.begin():
                session.add(task)
                await store.bind(session).record_message(pool_id, message, receipt)
        """
        sync_host: Connection | Session
        if isinstance(host, AsyncSession):
            sync_host = host.sync_session
        elif isinstance(host, AsyncConnection):
            if host.sync_connection is None:
                raise AgentError.invalid_argument(
                    "bind() needs a started AsyncConnection (async with engine.connect() …)"
                )
            sync_host = host.sync_connection
        else:
            raise AgentError.invalid_argument(
                "bind() takes a sqlalchemy AsyncConnection or AsyncSession, "
                f"not {type(host).__name__}"
            )
        return AsyncBoundAgentPoolStore(self._store.bind(sync_host))

    async def close(self) -> None:
        """Close the store: later calls fail with AgentError NotRetryable.

        Disposes of the engine if this store created it (an engine you passed in stays
        yours). Closing again does nothing. ``async with await open_async_store(…) as
        store:`` closes it at the end.
        """
        self._store.close()
        if self._writes_in is not None:
            writer, executor = self._writes_in
            _sql(writer).close()  # disposes of its engine
            executor.shutdown(wait=False)  # no write is running: each was awaited
        if self._owns_engine:
            await self.engine.dispose()

    async def __aenter__(self) -> AsyncSqlAgentPoolStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def open_async_store(
    url_or_engine: str | URL | AsyncEngine = DEFAULT_ASYNC_URL,
    *,
    lock_timeout: float = 10.0,
    sqlite_synchronous: SqliteSynchronous = "FULL",
    auto_upgrade: bool | None = None,
    postgresql_one_statement: bool = True,
    schema: str | None = None,
    telemetry: Telemetry | None = None,
) -> AsyncSqlAgentPoolStore:
    """Open the SQL store on asyncio, on a database URL or an existing ``AsyncEngine``.

    ``sqlite+aiosqlite:///…`` (the default, ``sqlite+aiosqlite:///agent-pool.sqlite``, migrated
    on open) or ``postgresql+psycopg://…`` (psycopg's ``AsyncConnection``; migrated
    beforehand unless ``auto_upgrade=True``); ``sqlite://`` and ``postgresql://`` stand for
    those drivers. Other drivers, ``postgresql+asyncpg`` among them, are refused with
    HostConfigurationNeeded. The options are :func:`~agent_pool_store.sql.store.open_store`'s;
    the spans of an operation nest under the awaiting task's current span.
    """
    settings = EngineSettings(
        lock_timeout=lock_timeout,
        sqlite_synchronous=sqlite_synchronous,
        postgresql_one_statement=postgresql_one_statement,
        schema=schema,
    )
    owns_engine = not isinstance(url_or_engine, AsyncEngine)
    engine = build_async_engine(url_or_engine, settings)
    opening = functools.partial(
        open_store,
        engine.sync_engine,
        lock_timeout=lock_timeout,
        sqlite_synchronous=sqlite_synchronous,
        auto_upgrade=auto_upgrade,
        postgresql_one_statement=postgresql_one_statement,
        schema=schema,
        telemetry=telemetry,
    )
    try:
        store: SqlAgentPoolStore = await run_in_greenlet(opening)
    except BaseException:
        if owns_engine:
            await engine.dispose()
        raise
    writer = None
    if owns_engine and SqliteDialect.is_file(engine.url):
        sqlite3_url = engine.url.set(drivername="sqlite")
        writer = SqlAgentPoolStore(
            engine_for_url(sqlite3_url, settings),
            settings=settings,
            owns_engine=True,
            telemetry=telemetry,
        )
    return AsyncSqlAgentPoolStore(store, engine, owns_engine=owns_engine, writer=writer)
