"""Plain-text rendering of snapshots and records for people (the demo and the CLI)."""

from __future__ import annotations

from collections.abc import Iterable

from agent_pool_store.domain import (
    AgentPoolSnapshot,
    AgentPoolStoreRecord,
    MemberJoined,
    MemberLeft,
    PoolCreated,
    PoolOpened,
    RunAddress,
    RunMessageRecorded,
    WakeRecorded,
)


def address_text(address: RunAddress) -> str:
    """``run:run.a``, ``topic:t.x`` …: the target of an address."""
    target = address.target
    value = next(iter(target.model_dump(exclude={"type"}).values()))
    return f"{target.type}:{value}"


def record_text(record: AgentPoolStoreRecord) -> str:
    """One line describing a record."""
    payload = record.payload
    match payload:
        case PoolOpened(config=config):
            detail = f"policies={len(config.policy_refs)}"
        case PoolCreated():
            detail = ""
        case MemberJoined(member=member):
            detail = f"{member.run_id} ({member.agent_id}) topics={list(member.topics)}"
        case MemberLeft(member=member):
            detail = f"{member.run_id} ({member.agent_id})"
        case RunMessageRecorded(stored=stored):
            message, receipt = stored.message, stored.receipt
            detail = (
                f"{message.message_id} {message.from_} -> {address_text(message.to)} "
                f"[{receipt.status.value}] key={message.idempotency_key}"
            )
        case WakeRecorded(stored=stored):
            condition, registration = stored.condition, stored.registration
            detail = (
                f"{condition.condition_id} for {condition.run_id} "
                f"[{registration.status.value}] key={condition.idempotency_key}"
            )
    return f"#{record.cursor.sequence:<5} {payload.type:<13} {detail}".rstrip()


def records_text(records: Iterable[AgentPoolStoreRecord]) -> str:
    """One line per record."""
    return "\n".join(record_text(record) for record in records)


def snapshot_text(snapshot: AgentPoolSnapshot) -> str:
    """A readable multi-line summary of a snapshot."""
    cursor = snapshot.cursor.sequence if snapshot.cursor else 0
    lines = [
        f"pool {snapshot.pool_id}  created={snapshot.created}  cursor={cursor}",
        f"topics: {', '.join(snapshot.topics) or '-'}",
        f"members ({len(snapshot.members)}):",
        *(
            f"  {m.run_id:<24} agent={m.agent_id:<20} topics={', '.join(m.topics) or '-'}"
            for m in snapshot.members
        ),
        f"messages ({len(snapshot.messages)}):",
        *(
            f"  {s.message.message_id:<24} {s.message.from_} -> {address_text(s.message.to)}"
            f"  status={s.receipt.status.value}"
            f"  delivered_to={', '.join(s.receipt.delivered_to) or '-'}"
            for s in snapshot.messages
        ),
        f"wakes ({len(snapshot.wakes)}):",
        *(
            f"  {w.condition.condition_id:<24} run={w.condition.run_id}"
            f"  status={w.registration.status.value}  filter={w.compiled_filter.filter_id[:19]}…"
            for w in snapshot.wakes
        ),
    ]
    return "\n".join(lines)
