"""A :class:`~agent_pool_store.domain.ProjectionSink` that collects projection changes.

The fold is applied to a batch, which keeps only the last change per projection row;
:meth:`ProjectionRepository.write` then writes each row once, together with the records the
batch appends and the pool's new watermark (on PostgreSQL in one statement, on SQLite one
``executemany`` per table). One appended record makes a batch of one record, carrying that
record; catch-up and rebuild fold a thousand records per batch (already in the log), so a
row rewritten by many records is written once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Table

from agent_pool_store.domain import (
    AgentPoolMember,
    AgentPoolStoreConfig,
    AgentPoolStoredMessage,
    AgentPoolStoredWake,
    MessageReceipt,
    WakeRegistration,
)
from agent_pool_store.sql.schema import (
    MemberRow,
    MessageReceiptRow,
    MessageRow,
    WakeRegistrationRow,
    WakeRow,
    table_of,
)

MEMBERS = table_of(MemberRow)
MESSAGES = table_of(MessageRow)
MESSAGE_RECEIPTS = table_of(MessageReceiptRow)
WAKES = table_of(WakeRow)
WAKE_REGISTRATIONS = table_of(WakeRegistrationRow)


@dataclass
class ProjectionBatch:
    """The last change per projection row over a run of records of one pool."""

    seq: int = 0
    """The sequence of the record being applied (after the run: the last one)."""
    config_json: str | None = None
    created: bool = False
    rows: dict[Table, dict[str, tuple[int, str | None]]] = field(default_factory=dict)
    """Per table, per key: the sequence that last wrote the row and its JSON (None: delete)."""
    records: list[tuple[int, str, str]] = field(default_factory=list)
    """Records to append with these changes: ``(seq, kind, payload_json)``."""

    def at(self, seq: int) -> ProjectionBatch:
        """Record the following changes as made by the record at ``seq``."""
        self.seq = seq
        return self

    def _put(self, table: Table, key: str, json: str | None) -> None:
        self.rows.setdefault(table, {})[key] = (self.seq, json)

    def set_config(self, config: AgentPoolStoreConfig) -> None:
        self.config_json = config.model_dump_json()

    def mark_created(self) -> None:
        self.created = True

    def put_member(self, member: AgentPoolMember) -> None:
        self._put(MEMBERS, member.run_id, member.model_dump_json())

    def remove_member(self, run_id: str) -> None:
        self._put(MEMBERS, run_id, None)

    def put_message(self, stored: AgentPoolStoredMessage) -> None:
        self._put(MESSAGES, stored.message.message_id, stored.model_dump_json())

    def put_message_receipt(self, idempotency_key: str, receipt: MessageReceipt) -> None:
        self._put(MESSAGE_RECEIPTS, idempotency_key, receipt.model_dump_json())

    def put_wake(self, stored: AgentPoolStoredWake) -> None:
        self._put(WAKES, stored.condition.condition_id, stored.model_dump_json())

    def put_wake_registration(self, idempotency_key: str, registration: WakeRegistration) -> None:
        self._put(WAKE_REGISTRATIONS, idempotency_key, registration.model_dump_json())
