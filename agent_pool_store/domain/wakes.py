"""Wake conditions, their registrations, and a stored wake."""

from __future__ import annotations

from agent_pool_store.domain.base import U64, WireModel, omitted_when_empty, omitted_when_null
from agent_pool_store.domain.enums import ResumeInputPolicy, WakeRegistrationStatus
from agent_pool_store.domain.filters import CompiledEventFilter, EventFilter
from agent_pool_store.domain.identifiers import (
    IdempotencyKey,
    JournalCursor,
    RunId,
    WakeConditionId,
)
from agent_pool_store.domain.refs import PolicyRef


class WakeCondition(WireModel):
    """A condition under which a run wants to be woken."""

    condition_id: WakeConditionId
    run_id: RunId
    filter: EventFilter
    timeout_millis: U64 | None = omitted_when_null()
    resume_with: ResumeInputPolicy
    idempotency_key: IdempotencyKey
    policy_refs: tuple[PolicyRef, ...] = omitted_when_empty()


class WakeRegistration(WireModel):
    """The state of a wake condition's registration."""

    condition_id: WakeConditionId
    run_id: RunId
    status: WakeRegistrationStatus
    journal_cursor: JournalCursor | None = omitted_when_null()


class AgentPoolStoredWake(WireModel):
    """A wake as stored in a pool: condition, compiled filter and registration."""

    condition: WakeCondition
    compiled_filter: CompiledEventFilter
    registration: WakeRegistration
