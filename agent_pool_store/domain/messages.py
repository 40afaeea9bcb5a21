"""Run messages, their receipts, and a stored message (message and latest receipt)."""

from __future__ import annotations

from pydantic import Field

from agent_pool_store.domain.addresses import RunAddress
from agent_pool_store.domain.base import (
    U32,
    U64,
    DefaultedWireModel,
    WireModel,
    omitted_when_empty,
    omitted_when_null,
)
from agent_pool_store.domain.enums import MessageStatus
from agent_pool_store.domain.identifiers import (
    ContentRef,
    IdempotencyKey,
    JournalCursor,
    MessageId,
    RunId,
)
from agent_pool_store.domain.refs import EventCorrelation, PolicyRef


class MessageResponseContract(WireModel):
    """How many responses a message expects, and within how long."""

    expected_responses: U32
    timeout_millis: U64 | None = omitted_when_null()


class RunMessage(DefaultedWireModel):
    """A message from one run to an address. ``from`` is spelt ``from_`` in Python."""

    message_id: MessageId
    from_: RunId = Field(alias="from")
    to: RunAddress
    content_ref: ContentRef
    correlation: EventCorrelation = Field(default_factory=EventCorrelation)
    reply_to: MessageId | None = omitted_when_null()
    response_contract: MessageResponseContract | None = omitted_when_null()
    expires_at_millis: U64 | None = omitted_when_null()
    idempotency_key: IdempotencyKey
    policy_refs: tuple[PolicyRef, ...] = omitted_when_empty()

    wire_required = ("correlation",)


class MessageReceipt(WireModel):
    """What became of a message: its status, who it reached, its journal cursor."""

    message_id: MessageId
    status: MessageStatus
    delivered_to: tuple[RunId, ...] = omitted_when_empty()
    journal_cursor: JournalCursor | None = omitted_when_null()


class AgentPoolStoredMessage(WireModel):
    """A message as stored in a pool, with the receipt recorded with it."""

    message: RunMessage
    receipt: MessageReceipt
