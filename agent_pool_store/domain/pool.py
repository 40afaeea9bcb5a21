"""Pool configuration and members."""

from __future__ import annotations

from pydantic import Field

from agent_pool_store.domain.base import DefaultedWireModel, WireModel, omitted_when_empty
from agent_pool_store.domain.identifiers import AgentId, RunId, TopicId
from agent_pool_store.domain.refs import PolicyRef


class AgentPoolMessagePolicy(DefaultedWireModel):
    """Message rules of a pool: policies every message must carry, broadcast loopback."""

    required_policy_refs: tuple[PolicyRef, ...] = omitted_when_empty()
    include_sender_in_pool_broadcast: bool = False

    wire_required = ("include_sender_in_pool_broadcast",)

    @classmethod
    def bounded_defaults(cls) -> AgentPoolMessagePolicy:
        """No required policies and no self-delivery on broadcast."""
        return cls()


class AgentPoolWakePolicy(DefaultedWireModel):
    """Wake rules of a pool: whether wakes see only event envelopes."""

    envelope_only: bool = True

    wire_required = ("envelope_only",)

    @classmethod
    def safe_defaults(cls) -> AgentPoolWakePolicy:
        """Envelope-only wakes."""
        return cls()


class AgentPoolStoreConfig(DefaultedWireModel):
    """The configuration a pool is opened with; ``AgentPoolStoreConfig()`` is the default."""

    message_policy: AgentPoolMessagePolicy = Field(
        default_factory=AgentPoolMessagePolicy.bounded_defaults
    )
    wake_policy: AgentPoolWakePolicy = Field(default_factory=AgentPoolWakePolicy.safe_defaults)
    policy_refs: tuple[PolicyRef, ...] = omitted_when_empty()

    wire_required = ("message_policy", "wake_policy")


class AgentPoolMember(WireModel):
    """A run that is a member of a pool, with the topics it listens to (order kept)."""

    run_id: RunId
    agent_id: AgentId
    policy_refs: tuple[PolicyRef, ...] = omitted_when_empty()
    topics: tuple[TopicId, ...] = omitted_when_empty()
