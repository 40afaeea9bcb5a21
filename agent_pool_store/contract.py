"""The store contract every agent-pool store implements (see ``shared/spec/CONTRACT.md``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

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

CursorArg = AgentPoolStoreCursor | int | None
"""A watch position: a cursor, its sequence number, or ``None`` for the start."""


@runtime_checkable
class AgentPoolStore(Protocol):
    """Pool-scoped records, snapshots, dedupe look-ups and watch, shared by every handle.

    Every operation except :meth:`watch` fails with ``HostConfigurationNeeded`` on a pool that
    was never opened, and appends nothing. Errors are :class:`~agent_pool_store.AgentError`.
    """

    def open_pool(self, pool_id: str, config: AgentPoolStoreConfig) -> AgentPoolSnapshot:
        """Open a pool; the first call appends ``pool_opened``.

        Re-opening with an equal config appends nothing; a different config fails with
        InvalidStateTransition / RepairNeeded.
        """
        ...

    def snapshot(self, pool_id: str) -> AgentPoolSnapshot:
        """The pool's state derived from its records."""
        ...

    def record_pool_created(self, pool_id: str) -> AgentPoolStoreCursor:
        """Append ``pool_created``."""
        ...

    def join_member(self, pool_id: str, member: AgentPoolMember) -> AgentPoolStoreCursor:
        """Append ``member_joined``; joining again replaces the member."""
        ...

    def leave_member(
        self, pool_id: str, run_id: str
    ) -> tuple[AgentPoolMember, AgentPoolStoreCursor]:
        """Append ``member_left`` with the member as it was; a non-member fails NotRetryable."""
        ...

    def message_receipt(self, pool_id: str, idempotency_key: str) -> MessageReceipt | None:
        """The latest receipt recorded under a message idempotency key."""
        ...

    def record_message(
        self, pool_id: str, message: RunMessage, receipt: MessageReceipt
    ) -> AgentPoolStoreCursor:
        """Append ``run_message`` with the message and its receipt."""
        ...

    def wake_registration(self, pool_id: str, idempotency_key: str) -> WakeRegistration | None:
        """The latest registration recorded under a wake idempotency key."""
        ...

    def wake(self, pool_id: str, condition_id: str) -> AgentPoolStoredWake | None:
        """The latest stored wake of a condition."""
        ...

    def record_wake(
        self,
        pool_id: str,
        condition: WakeCondition,
        compiled_filter: CompiledEventFilter,
        registration: WakeRegistration,
    ) -> AgentPoolStoreCursor:
        """Append ``wake`` with the condition, its compiled filter and registration."""
        ...

    def watch(self, pool_id: str, cursor: CursorArg = None) -> Iterator[AgentPoolStoreRecord]:
        """The pool's records after ``cursor`` in sequence order; nothing for an unopened pool."""
        ...

    def next_event_sequence(self, pool_id: str) -> int:
        """The pool's next event sequence number: 1, 2, 3 … shared by every handle."""
        ...
