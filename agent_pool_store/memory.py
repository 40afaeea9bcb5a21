"""``InMemoryAgentPoolStore``: the contract held in process memory, thread-safe."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from agent_pool_store.async_face import AsyncStoreFace
from agent_pool_store.asyncio_bridge import on_event_loop, pause
from agent_pool_store.domain import (
    AgentPoolMember,
    AgentPoolSnapshot,
    AgentPoolStoreConfig,
    AgentPoolStoreCursor,
    AgentPoolStoredWake,
    AgentPoolStoreRecord,
    AgentPoolStoreRecordPayload,
    MessageReceipt,
    PoolState,
    WakeRegistration,
)
from agent_pool_store.follow_loop import ConditionWaiter, PollingWaiter, Waiter
from agent_pool_store.operations import Lookup, PoolStoreOperations, PoolUnit
from agent_pool_store.telemetry import Telemetry, store_telemetry

T = TypeVar("T")


@dataclass
class _MemoryPool:
    pool_id: str
    state: PoolState = field(default_factory=PoolState)
    records: list[AgentPoolStoreRecord] = field(default_factory=list)
    event_sequence: int = 0

    def config(self) -> AgentPoolStoreConfig | None:
        return self.state.config

    def snapshot(self) -> AgentPoolSnapshot:
        return self.state.snapshot(self.pool_id)

    def snapshot_json(self) -> str:
        return self.snapshot().model_dump_json()

    def member(self, run_id: str) -> AgentPoolMember | None:
        return self.state.members.get(run_id)

    def message_receipt(self, idempotency_key: str) -> MessageReceipt | None:
        return self.state.message_receipts.get(idempotency_key)

    def wake_registration(self, idempotency_key: str) -> WakeRegistration | None:
        return self.state.wake_registrations.get(idempotency_key)

    def wake(self, condition_id: str) -> AgentPoolStoredWake | None:
        return self.state.wakes.get(condition_id)

    def append(
        self, payload: AgentPoolStoreRecordPayload, payload_json: str | None = None
    ) -> AgentPoolStoreCursor:
        cursor = AgentPoolStoreCursor(sequence=len(self.records) + 1)
        self.records.append(
            AgentPoolStoreRecord(pool_id=self.pool_id, cursor=cursor, payload=payload)
        )
        self.state.apply(cursor.sequence, payload)
        return cursor

    def next_event_sequence(self) -> int:
        self.event_sequence += 1
        return self.event_sequence

    def records_after(self, sequence: int, limit: int) -> list[AgentPoolStoreRecord]:
        return self.records[sequence : sequence + limit]


@dataclass
class _Backing:
    lock: threading.RLock = field(default_factory=threading.RLock)
    pools: dict[str, _MemoryPool] = field(default_factory=dict)
    version: int = 0
    """Bumped, with ``appended`` notified, whenever a record is appended (for ``follow``)."""
    appended: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.appended = threading.Condition(self.lock)


class _MemoryRunner:
    """Runs each unit under the backing's one lock; no shorter paths."""

    store_name = "in-memory"

    def __init__(self, backing: _Backing) -> None:
        self.backing = backing

    def run(self, pool_id: str, *, write: bool, work: Callable[[PoolUnit], T]) -> T:
        backing = self.backing
        with backing.lock:
            pool = backing.pools.get(pool_id) or _MemoryPool(pool_id)
            before = len(pool.records)
            result = work(pool)
            if pool.records:
                backing.pools[pool_id] = pool
            if len(pool.records) != before:
                backing.version += 1
                backing.appended.notify_all()
            return result

    def append(
        self,
        pool_id: str,
        payload: AgentPoolStoreRecordPayload,
        payload_json: str,
        work: Callable[[PoolUnit], AgentPoolStoreCursor],
    ) -> AgentPoolStoreCursor:
        return self.run(pool_id, write=True, work=work)

    def look_up(self, pool_id: str, lookup: Lookup, key: str, work: Callable[[PoolUnit], T]) -> T:
        return self.run(pool_id, write=False, work=work)

    def next_event_sequence(self, pool_id: str, work: Callable[[PoolUnit], int]) -> int:
        return self.run(pool_id, write=True, work=work)

    def open_waiter(self, pool_id: str, poll_interval: float) -> Waiter:
        backing = self.backing
        if on_event_loop():  # the asyncio face: poll with asyncio.sleep, never block the loop
            return PollingWaiter(lambda: backing.version, pause, poll_interval)
        return ConditionWaiter(backing.appended, lambda: backing.version)


class InMemoryAgentPoolStore(PoolStoreOperations[_MemoryRunner]):
    """The store contract in process memory.

    Safe to use from many threads: each operation holds one lock for its whole check-and-
    append. :meth:`another_handle` gives a second store object over the same pools, as a
    second connection to one database would.
    """

    def __init__(self, *, telemetry: Telemetry | None = None) -> None:
        """``telemetry``: where its operations report (see :mod:`agent_pool_store.telemetry`)."""
        self._backing = _Backing()
        self._telemetry_given = telemetry
        super().__init__(_MemoryRunner(self._backing), store_telemetry(telemetry, None))

    def another_handle(self) -> InMemoryAgentPoolStore:
        """A new store object that shares this one's pools, records and counters."""
        handle = InMemoryAgentPoolStore(telemetry=self._telemetry_given)
        handle._backing = self._backing
        handle._runner = _MemoryRunner(self._backing)
        return handle

    def close(self) -> None:
        """Nothing to release; present so every store can be closed alike."""

    def __enter__(self) -> InMemoryAgentPoolStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncInMemoryAgentPoolStore(AsyncStoreFace[InMemoryAgentPoolStore]):
    """The in-memory store on asyncio (see :mod:`agent_pool_store.async_face`).

    Its operations never wait; its followers poll with ``asyncio.sleep``.
    """

    def __init__(self, store: InMemoryAgentPoolStore | None = None) -> None:
        super().__init__(InMemoryAgentPoolStore() if store is None else store)

    def another_handle(self) -> AsyncInMemoryAgentPoolStore:
        """A new store object that shares this one's pools, records and counters."""
        return AsyncInMemoryAgentPoolStore(self._store.another_handle())

    async def close(self) -> None:
        """Nothing to release; present so every store can be closed alike."""

    async def __aenter__(self) -> AsyncInMemoryAgentPoolStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
