"""The asyncio face of a sync store: the same operations, run in a greenlet, as coroutines.

:class:`AsyncStoreFace` turns a store built on
:class:`~agent_pool_store.operations.PoolStoreOperations` into an
:class:`~agent_pool_store.async_contract.AsyncAgentPoolStore`. Nothing of the contract is
written again: each coroutine runs the sync store's operation in a greenlet
(:func:`~agent_pool_store.asyncio_bridge.run_in_greenlet`), where the store's statements
and waits await the event loop. The in-memory store's operations never wait; the SQL
store's run on an asyncio engine (aiosqlite, psycopg's ``AsyncConnection``).

**Writes in threads.** A face may be given a second, sync store and an executor for its
writes (the SQL store on a SQLite file: :mod:`agent_pool_store.sql.async_store`). Each write
then runs whole in one of the executor's threads
(:func:`~agent_pool_store.asyncio_bridge.run_in_thread`), where the ``fsync`` of its
``COMMIT`` and its wait for the write lock block that thread, not the loop; reads, ``watch``
and ``follow`` still run on the face's store, in a greenlet.

**Cancellation.** An operation runs in its caller's task. Cancelling the task raises
``CancelledError`` inside the operation at its next wait for the database, and the operation
ends there; a write in a thread that had started runs to its end first. Every operation is
one transaction (or one autocommit statement), so it either committed whole or left
nothing. Which of the two is not reported: a ``COMMIT`` already on its way may land.
SQLAlchemy drops the connection it was using, and the store stays usable. ``follow`` closes
its connection when its consumer is cancelled.

Each operation is not run in a task of its own shielded from the caller (``asyncio.shield``).
Measured, that took concurrency on one loop from 2,400-3,300 to 1,200-1,300 look-ups a second
with 8 tasks.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import Any, Generic, TypeVar

from agent_pool_store.asyncio_bridge import run_in_greenlet, run_in_thread
from agent_pool_store.contract import CursorArg
from agent_pool_store.domain import (
    AgentPoolMember,
    AgentPoolSnapshot,
    AgentPoolStoreConfig,
    AgentPoolStoreCursor,
    AgentPoolStoredWake,
    AgentPoolStoreRecord,
    CompiledEventFilter,
    MessageReceipt,
    RunMessage,
    WakeCondition,
    WakeRegistration,
)
from agent_pool_store.follow_loop import DEFAULT_POLL_INTERVAL, Follower
from agent_pool_store.operations import WATCH_BATCH, PoolStoreOperations

T = TypeVar("T")
S = TypeVar("S", bound=PoolStoreOperations[Any])


def _take(records: Iterator[AgentPoolStoreRecord], count: int) -> list[AgentPoolStoreRecord]:
    return list(itertools.islice(records, count))


class AsyncStoreFace(Generic[S]):
    """The contract's twelve operations and ``follow`` as coroutines over a sync store."""

    def __init__(
        self,
        store: S,
        *,
        writes_in: tuple[PoolStoreOperations[Any], Executor] | None = None,
    ) -> None:
        self._store = store
        self._writes_in = writes_in

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a greenlet of the calling task."""
        return await run_in_greenlet(function, *args)

    async def _write(
        self, operation: Callable[[PoolStoreOperations[Any]], Callable[..., T]], *args: Any
    ) -> T:
        """A write: ``operation(store)(*args)``, in a thread if the face writes in threads."""
        if self._writes_in is None:
            return await run_in_greenlet(operation(self._store), *args)
        store, executor = self._writes_in
        return await run_in_thread(executor, operation(store), *args)

    async def open_pool(self, pool_id: str, config: AgentPoolStoreConfig) -> AgentPoolSnapshot:
        """See :meth:`AgentPoolStore.open_pool`."""
        return await self._write(lambda store: store.open_pool, pool_id, config)

    async def snapshot(self, pool_id: str) -> AgentPoolSnapshot:
        """See :meth:`AgentPoolStore.snapshot`."""
        return await self._call(self._store.snapshot, pool_id)

    async def snapshot_json(self, pool_id: str) -> str:
        """See :meth:`~agent_pool_store.operations.PoolStoreOperations.snapshot_json`."""
        return await self._call(self._store.snapshot_json, pool_id)

    async def record_pool_created(self, pool_id: str) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.record_pool_created`."""
        return await self._write(lambda store: store.record_pool_created, pool_id)

    async def join_member(self, pool_id: str, member: AgentPoolMember) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.join_member`."""
        return await self._write(lambda store: store.join_member, pool_id, member)

    async def leave_member(
        self, pool_id: str, run_id: str
    ) -> tuple[AgentPoolMember, AgentPoolStoreCursor]:
        """See :meth:`AgentPoolStore.leave_member`."""
        return await self._write(lambda store: store.leave_member, pool_id, run_id)

    async def message_receipt(self, pool_id: str, idempotency_key: str) -> MessageReceipt | None:
        """See :meth:`AgentPoolStore.message_receipt`."""
        return await self._call(self._store.message_receipt, pool_id, idempotency_key)

    async def record_message(
        self, pool_id: str, message: RunMessage, receipt: MessageReceipt
    ) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.record_message`."""
        return await self._write(lambda store: store.record_message, pool_id, message, receipt)

    async def wake_registration(
        self, pool_id: str, idempotency_key: str
    ) -> WakeRegistration | None:
        """See :meth:`AgentPoolStore.wake_registration`."""
        return await self._call(self._store.wake_registration, pool_id, idempotency_key)

    async def wake(self, pool_id: str, condition_id: str) -> AgentPoolStoredWake | None:
        """See :meth:`AgentPoolStore.wake`."""
        return await self._call(self._store.wake, pool_id, condition_id)

    async def record_wake(
        self,
        pool_id: str,
        condition: WakeCondition,
        compiled_filter: CompiledEventFilter,
        registration: WakeRegistration,
    ) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.record_wake`."""
        return await self._write(
            lambda store: store.record_wake, pool_id, condition, compiled_filter, registration
        )

    async def next_event_sequence(self, pool_id: str) -> int:
        """See :meth:`AgentPoolStore.next_event_sequence`."""
        return await self._write(lambda store: store.next_event_sequence, pool_id)

    def watch(self, pool_id: str, cursor: CursorArg = None) -> AsyncIterator[AgentPoolStoreRecord]:
        """See :meth:`AgentPoolStore.watch`.

        Arguments are checked when called; records are read lazily, a batch per transaction.
        """
        return self._batches(self._store.watch(pool_id, cursor))

    async def _batches(
        self, records: Iterator[AgentPoolStoreRecord]
    ) -> AsyncIterator[AgentPoolStoreRecord]:
        while True:
            batch = await self._call(_take, records, WATCH_BATCH)
            for record in batch:
                yield record
            if len(batch) < WATCH_BATCH:
                return

    def follow(
        self,
        pool_id: str,
        cursor: CursorArg = None,
        *,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> AsyncIterator[AgentPoolStoreRecord]:
        """Yield the pool's records after ``cursor`` as they commit, from any process.

        The sync store's follow loop, stepped in a greenlet: what is already there first,
        then each record as it commits (PostgreSQL: ``LISTEN`` through psycopg's async
        notifications, with a re-read every 2 s; SQLite and memory: polled every
        ``poll_interval`` seconds with ``asyncio.sleep``). It ends when ``timeout`` seconds
        pass without a new record, or when the task iterating it is cancelled; its connection
        is closed either way. Arguments are checked when called.
        """
        records = self._store.follow(pool_id, cursor, timeout=timeout, poll_interval=poll_interval)
        return self._following(records)

    async def _following(self, records: Follower) -> AsyncIterator[AgentPoolStoreRecord]:
        # a cancelled consumer's CancelledError reaches the follow loop in its
        # greenlet, which closes its waiter (and connection) on the way out
        end = object()
        try:
            while True:
                record = await run_in_greenlet(next, records, end)
                if record is end:
                    return
                assert isinstance(record, AgentPoolStoreRecord)
                yield record
        finally:
            await run_in_greenlet(records.close)
