"""The pool record log: payloads, records, cursors, and the snapshot derived from them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from agent_pool_store.domain.base import (
    U64,
    DefaultedWireModel,
    WireModel,
    omitted_when_empty,
    omitted_when_null,
)
from agent_pool_store.domain.identifiers import AgentPoolId, TopicId
from agent_pool_store.domain.messages import AgentPoolStoredMessage
from agent_pool_store.domain.pool import (
    AgentPoolMember,
    AgentPoolMessagePolicy,
    AgentPoolStoreConfig,
    AgentPoolWakePolicy,
)
from agent_pool_store.domain.refs import PolicyRef
from agent_pool_store.domain.wakes import AgentPoolStoredWake


class PoolOpened(WireModel):
    """The pool was opened with this config (always the first record)."""

    type: Literal["pool_opened"] = "pool_opened"
    config: AgentPoolStoreConfig


class PoolCreated(WireModel):
    """The host finished creating the pool."""

    type: Literal["pool_created"] = "pool_created"


class MemberJoined(WireModel):
    """A run joined (or re-joined, replacing its topics and policies)."""

    type: Literal["member_joined"] = "member_joined"
    member: AgentPoolMember


class MemberLeft(WireModel):
    """A run left; ``member`` is the member as it was."""

    type: Literal["member_left"] = "member_left"
    member: AgentPoolMember


class RunMessageRecorded(WireModel):
    """A message and its receipt were recorded."""

    type: Literal["run_message"] = "run_message"
    stored: AgentPoolStoredMessage


class WakeRecorded(WireModel):
    """A wake condition, its compiled filter and registration were recorded."""

    type: Literal["wake"] = "wake"
    stored: AgentPoolStoredWake


AgentPoolStoreRecordPayload = Annotated[
    PoolOpened | PoolCreated | MemberJoined | MemberLeft | RunMessageRecorded | WakeRecorded,
    Field(discriminator="type"),
]
"""A record payload, tagged by ``type``; the ``kind`` column of a row holds the same name."""

RECORD_PAYLOAD: TypeAdapter[AgentPoolStoreRecordPayload] = TypeAdapter(AgentPoolStoreRecordPayload)
"""Reads a payload: ``RECORD_PAYLOAD.validate_json(text)``; each variant writes itself with
``model_dump_json()``."""


class AgentPoolStoreCursor(WireModel):
    """A position in a pool's record log; sequence 0 is the start, before every record."""

    sequence: U64

    @classmethod
    def start(cls) -> AgentPoolStoreCursor:
        """The cursor before the first record."""
        return cls(sequence=0)


class AgentPoolStoreRecord(WireModel):
    """One record of a pool's log, as ``watch`` yields it."""

    pool_id: AgentPoolId
    cursor: AgentPoolStoreCursor
    payload: AgentPoolStoreRecordPayload


class AgentPoolSnapshot(DefaultedWireModel):
    """The state of a pool derived from its records (see ``docs/overview.md``)."""

    pool_id: AgentPoolId
    created: bool
    members: tuple[AgentPoolMember, ...] = ()
    topics: tuple[TopicId, ...] = ()
    message_policy: AgentPoolMessagePolicy
    wake_policy: AgentPoolWakePolicy
    policy_refs: tuple[PolicyRef, ...] = omitted_when_empty()
    messages: tuple[AgentPoolStoredMessage, ...] = omitted_when_empty()
    wakes: tuple[AgentPoolStoredWake, ...] = omitted_when_empty()
    cursor: AgentPoolStoreCursor | None = omitted_when_null()

    wire_required = ("members", "topics")
