"""The store contract as coroutines: what every asyncio store implements.

:class:`AsyncAgentPoolStore` has the twelve operations of
:class:`~agent_pool_store.contract.AgentPoolStore`, with the same arguments, results, rules
and errors, as coroutines (``watch`` an async iterator), plus ``follow``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class AsyncAgentPoolStore(Protocol):
    """The store contract on asyncio; see :class:`~agent_pool_store.contract.AgentPoolStore`.

    Cancelling a task that awaits an operation ends the operation at its next wait: it
    committed whole or left nothing, and the task sees ``CancelledError``. Read the pool (a
    look-up by idempotency key, ``watch``) to learn which.
    """

    async def open_pool(self, pool_id: str, config: AgentPoolStoreConfig) -> AgentPoolSnapshot:
        """See :meth:`AgentPoolStore.open_pool`."""
        ...

    async def snapshot(self, pool_id: str) -> AgentPoolSnapshot:
        """See :meth:`AgentPoolStore.snapshot`."""
        ...

    async def record_pool_created(self, pool_id: str) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.record_pool_created`."""
        ...

    async def join_member(self, pool_id: str, member: AgentPoolMember) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.join_member`."""
        ...

    async def leave_member(
        self, pool_id: str, run_id: str
    ) -> tuple[AgentPoolMember, AgentPoolStoreCursor]:
        """See :meth:`AgentPoolStore.leave_member`."""
        ...

    async def message_receipt(self, pool_id: str, idempotency_key: str) -> MessageReceipt | None:
        """See :meth:`AgentPoolStore.message_receipt`."""
        ...

    async def record_message(
        self, pool_id: str, message: RunMessage, receipt: MessageReceipt
    ) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.record_message`."""
        ...

    async def wake_registration(
        self, pool_id: str, idempotency_key: str
    ) -> WakeRegistration | None:
        """See :meth:`AgentPoolStore.wake_registration`."""
        ...

    async def wake(self, pool_id: str, condition_id: str) -> AgentPoolStoredWake | None:
        """See :meth:`AgentPoolStore.wake`."""
        ...

    async def record_wake(
        self,
        pool_id: str,
        condition: WakeCondition,
        compiled_filter: CompiledEventFilter,
        registration: WakeRegistration,
    ) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.record_wake`."""
        ...

    def watch(self, pool_id: str, cursor: CursorArg = None) -> AsyncIterator[AgentPoolStoreRecord]:
        """See :meth:`AgentPoolStore.watch`; arguments are checked when called."""
        ...

    async def next_event_sequence(self, pool_id: str) -> int:
        """See :meth:`AgentPoolStore.next_event_sequence`."""
        ...

    def follow(
        self, pool_id: str, cursor: CursorArg = None, *, timeout: float | None = None
    ) -> AsyncIterator[AgentPoolStoreRecord]:
        """The pool's records after ``cursor`` as they commit, from any process.

        Ends when ``timeout`` seconds pass without a new record, or when the task iterating
        it is cancelled (its connection is closed either way).
        """
        ...
