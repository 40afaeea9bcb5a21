"""Reference types: policies, correlation, sources, destinations and entities."""

from __future__ import annotations

from pydantic import Field

from agent_pool_store.domain.base import (
    DefaultedWireModel,
    WireModel,
    omitted_when_empty,
    omitted_when_null,
)
from agent_pool_store.domain.enums import (
    DestinationKind,
    EntityKind,
    PolicyKind,
    PrivacyClass,
    RetentionClass,
    SourceKind,
    TrustClass,
)
from agent_pool_store.domain.identifiers import CorrelationKey, CorrelationValue, Identifier


class PolicyRef(WireModel):
    """A reference to a policy, optionally pinned to a version."""

    kind: PolicyKind
    id: Identifier
    version: str | None = omitted_when_null()


class CorrelationEntry(WireModel):
    """One key/value pair correlating an event with host state."""

    key: CorrelationKey
    value: CorrelationValue


class EventCorrelation(WireModel):
    """Correlation entries of an event or message; empty serialises as ``{}``."""

    entries: tuple[CorrelationEntry, ...] = omitted_when_empty()


class SourceRef(WireModel):
    """Where something came from."""

    kind: SourceKind
    id: Identifier
    trust: TrustClass
    privacy: PrivacyClass
    correlation: tuple[CorrelationEntry, ...] = omitted_when_empty()
    redacted_summary: str | None = omitted_when_null()


class DestinationRef(DefaultedWireModel):
    """Where something is going."""

    kind: DestinationKind
    id: Identifier
    privacy: PrivacyClass = Field(default=PrivacyClass.CONTENT_REFS_ONLY)
    retention: RetentionClass = Field(default=RetentionClass.HOST_POLICY)
    correlation: tuple[CorrelationEntry, ...] = omitted_when_empty()
    redacted_summary: str | None = omitted_when_null()

    wire_required = ("privacy", "retention")


class EntityRef(DefaultedWireModel):
    """A reference to an entity (run, agent, topic, pool, …)."""

    kind: EntityKind
    id: Identifier
    source: SourceRef | None = omitted_when_null()
    privacy: PrivacyClass = Field(default=PrivacyClass.CONTENT_REFS_ONLY)
    redacted_summary: str | None = omitted_when_null()

    wire_required = ("privacy",)
