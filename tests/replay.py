"""Apply reference record payloads through a store's public operations."""

from __future__ import annotations

from agent_pool_store import (
    RECORD_PAYLOAD,
    AgentPoolStore,
    AgentPoolStoreCursor,
    MemberJoined,
    MemberLeft,
    PoolCreated,
    PoolOpened,
    RunMessageRecorded,
    WakeRecorded,
)


def apply_through_operations(store: AgentPoolStore, pool_id: str, payload_json: str) -> int:
    """Perform the operation that appends this payload; return the new record's sequence."""
    payload = RECORD_PAYLOAD.validate_json(payload_json)
    cursor: AgentPoolStoreCursor
    match payload:
        case PoolOpened(config=config):
            snapshot = store.open_pool(pool_id, config)
            assert snapshot.cursor is not None
            cursor = snapshot.cursor
        case PoolCreated():
            cursor = store.record_pool_created(pool_id)
        case MemberJoined(member=member):
            cursor = store.join_member(pool_id, member)
        case MemberLeft(member=member):
            left, cursor = store.leave_member(pool_id, member.run_id)
            assert left == member
        case RunMessageRecorded(stored=stored):
            cursor = store.record_message(pool_id, stored.message, stored.receipt)
        case WakeRecorded(stored=stored):
            cursor = store.record_wake(
                pool_id, stored.condition, stored.compiled_filter, stored.registration
            )
    return cursor.sequence
