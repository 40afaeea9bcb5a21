"""Run addresses: who a message is for, with its destination and related entities."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from agent_pool_store.domain.base import WireModel, omitted_when_empty
from agent_pool_store.domain.enums import DestinationKind, EntityKind
from agent_pool_store.domain.identifiers import AgentId, AgentPoolId, RunId, TopicId
from agent_pool_store.domain.refs import DestinationRef, EntityRef


class RunTarget(WireModel):
    """Address one run."""

    type: Literal["run"] = "run"
    run_id: RunId


class AgentTarget(WireModel):
    """Address an agent."""

    type: Literal["agent"] = "agent"
    agent_id: AgentId


class TopicTarget(WireModel):
    """Address every member listening to a topic."""

    type: Literal["topic"] = "topic"
    topic_id: TopicId


class PoolTarget(WireModel):
    """Address the whole pool."""

    type: Literal["pool"] = "pool"
    pool_id: AgentPoolId


RunAddressTarget = Annotated[
    RunTarget | AgentTarget | TopicTarget | PoolTarget, Field(discriminator="type")
]
"""The target of a :class:`RunAddress`, tagged by ``type``."""


class RunAddress(WireModel):
    """Where a message goes.

    Build one with :meth:`run`, :meth:`agent`, :meth:`topic` or :meth:`pool`.
    """

    target: RunAddressTarget
    destination_ref: DestinationRef
    related_refs: tuple[EntityRef, ...] = omitted_when_empty()

    @classmethod
    def run(cls, run_id: str) -> RunAddress:
        """Address one run (destination kind ``agent``, related run entity)."""
        return cls(
            target=RunTarget(run_id=run_id),
            destination_ref=DestinationRef(kind=DestinationKind.AGENT, id=run_id),
            related_refs=(EntityRef(kind=EntityKind.RUN, id=run_id),),
        )

    @classmethod
    def agent(cls, agent_id: str) -> RunAddress:
        """Address an agent (destination kind ``agent``, related agent entity)."""
        return cls(
            target=AgentTarget(agent_id=agent_id),
            destination_ref=DestinationRef(kind=DestinationKind.AGENT, id=agent_id),
            related_refs=(EntityRef(kind=EntityKind.AGENT, id=agent_id),),
        )

    @classmethod
    def topic(cls, topic_id: str) -> RunAddress:
        """Address a topic (destination kind ``topic``, related topic entity)."""
        return cls(
            target=TopicTarget(topic_id=topic_id),
            destination_ref=DestinationRef(kind=DestinationKind.TOPIC, id=topic_id),
            related_refs=(EntityRef(kind=EntityKind.TOPIC, id=topic_id),),
        )

    @classmethod
    def pool(cls, pool_id: str) -> RunAddress:
        """Address a whole pool (destination kind ``agent_pool``, related pool entity)."""
        return cls(
            target=PoolTarget(pool_id=pool_id),
            destination_ref=DestinationRef(kind=DestinationKind.AGENT_POOL, id=pool_id),
            related_refs=(EntityRef(kind=EntityKind.AGENT_POOL, id=pool_id),),
        )
