"""How a pool's state derives from its records: one fold, written once.

:func:`apply_payload` is the only place that knows what each record type does to the state.
It drives a :class:`ProjectionSink`; :class:`PoolState` is the in-memory sink (used by the
in-memory store and by verification), and the SQL store's ``ProjectionBatch`` is another
(it collects the last change per projection row, which the projection repository writes).
:meth:`PoolState.snapshot` is the only place a snapshot is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from agent_pool_store.domain.messages import AgentPoolStoredMessage, MessageReceipt
from agent_pool_store.domain.pool import AgentPoolMember, AgentPoolStoreConfig
from agent_pool_store.domain.records import (
    AgentPoolSnapshot,
    AgentPoolStoreCursor,
    AgentPoolStoreRecordPayload,
    MemberJoined,
    MemberLeft,
    PoolCreated,
    PoolOpened,
    RunMessageRecorded,
    WakeRecorded,
)
from agent_pool_store.domain.wakes import AgentPoolStoredWake, WakeRegistration


class ProjectionSink(Protocol):
    """Receives the state changes of one pool, record by record."""

    def set_config(self, config: AgentPoolStoreConfig) -> None:
        """The pool's config (from ``pool_opened``; the latest one wins)."""

    def mark_created(self) -> None:
        """A ``pool_created`` record exists."""

    def put_member(self, member: AgentPoolMember) -> None:
        """Insert or replace the member with this run id."""

    def remove_member(self, run_id: str) -> None:
        """Remove the member with this run id, if present."""

    def put_message(self, stored: AgentPoolStoredMessage) -> None:
        """Latest stored message for ``stored.message.message_id``."""

    def put_message_receipt(self, idempotency_key: str, receipt: MessageReceipt) -> None:
        """Latest receipt under a message idempotency key."""

    def put_wake(self, stored: AgentPoolStoredWake) -> None:
        """Latest stored wake for ``stored.condition.condition_id``."""

    def put_wake_registration(self, idempotency_key: str, registration: WakeRegistration) -> None:
        """Latest registration under a wake idempotency key."""


def apply_payload(sink: ProjectionSink, payload: AgentPoolStoreRecordPayload) -> None:
    """Apply one record's payload to ``sink``: the snapshot rules of the contract."""
    match payload:
        case PoolOpened(config=config):
            sink.set_config(config)
        case PoolCreated():
            sink.mark_created()
        case MemberJoined(member=member):
            sink.put_member(member)
        case MemberLeft(member=member):
            sink.remove_member(member.run_id)
        case RunMessageRecorded(stored=stored):
            sink.put_message(stored)
            sink.put_message_receipt(stored.message.idempotency_key, stored.receipt)
        case WakeRecorded(stored=stored):
            sink.put_wake(stored)
            sink.put_wake_registration(stored.condition.idempotency_key, stored.registration)


@dataclass
class PoolState:
    """The derived state of one pool, held in memory. Implements :class:`ProjectionSink`."""

    config: AgentPoolStoreConfig | None = None
    created: bool = False
    members: dict[str, AgentPoolMember] = field(default_factory=dict)
    messages: dict[str, AgentPoolStoredMessage] = field(default_factory=dict)
    wakes: dict[str, AgentPoolStoredWake] = field(default_factory=dict)
    message_receipts: dict[str, MessageReceipt] = field(default_factory=dict)
    wake_registrations: dict[str, WakeRegistration] = field(default_factory=dict)
    last_sequence: int = 0

    @classmethod
    def replay(cls, payloads: Iterable[tuple[int, AgentPoolStoreRecordPayload]]) -> PoolState:
        """Fold ``(sequence, payload)`` pairs, in order, into a fresh state."""
        state = cls()
        for sequence, payload in payloads:
            state.apply(sequence, payload)
        return state

    def apply(self, sequence: int, payload: AgentPoolStoreRecordPayload) -> None:
        """Apply the record at ``sequence``."""
        apply_payload(self, payload)
        self.last_sequence = sequence

    def set_config(self, config: AgentPoolStoreConfig) -> None:
        self.config = config

    def mark_created(self) -> None:
        self.created = True

    def put_member(self, member: AgentPoolMember) -> None:
        self.members[member.run_id] = member

    def remove_member(self, run_id: str) -> None:
        self.members.pop(run_id, None)

    def put_message(self, stored: AgentPoolStoredMessage) -> None:
        self.messages[stored.message.message_id] = stored

    def put_message_receipt(self, idempotency_key: str, receipt: MessageReceipt) -> None:
        self.message_receipts[idempotency_key] = receipt

    def put_wake(self, stored: AgentPoolStoredWake) -> None:
        self.wakes[stored.condition.condition_id] = stored

    def put_wake_registration(self, idempotency_key: str, registration: WakeRegistration) -> None:
        self.wake_registrations[idempotency_key] = registration

    @property
    def opened(self) -> bool:
        """Whether a ``pool_opened`` record has been applied."""
        return self.config is not None

    def snapshot(self, pool_id: str) -> AgentPoolSnapshot:
        """The contract's snapshot of this state (the pool must be opened)."""
        if self.config is None:
            raise ValueError("a pool that was never opened has no snapshot")
        members = tuple(self.members[run_id] for run_id in sorted(self.members))
        topics = tuple(sorted({topic for member in members for topic in member.topics}))
        return AgentPoolSnapshot(
            pool_id=pool_id,
            created=self.created,
            members=members,
            topics=topics,
            message_policy=self.config.message_policy,
            wake_policy=self.config.wake_policy,
            policy_refs=self.config.policy_refs,
            messages=tuple(self.messages[key] for key in sorted(self.messages)),
            wakes=tuple(self.wakes[key] for key in sorted(self.wakes)),
            cursor=AgentPoolStoreCursor(sequence=self.last_sequence)
            if self.last_sequence
            else None,
        )
