"""Event filters, their filter sets, subscriber queues and the compiled form."""

from __future__ import annotations

import hashlib
from typing import Any, Generic, TypeVar

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from agent_pool_store.domain.base import DefaultedWireModel, WireModel
from agent_pool_store.domain.enums import (
    DestinationKind,
    EntityKind,
    EventDeliverySemantics,
    EventFamily,
    EventIndexField,
    EventKind,
    PayloadAccessMode,
    PrivacyClass,
    SourceKind,
    SubscriberOverflowPolicy,
)
from agent_pool_store.domain.identifiers import (
    AgentId,
    CorrelationKey,
    EventFilterFingerprint,
    EventFilterId,
    EventTag,
    RunId,
    SessionId,
    TurnId,
)

T = TypeVar("T")


class FilterSet(WireModel, Generic[T]):
    """Either any value (wire ``"any"``) or only the listed ones (``{"include":[…]}``).

    Construct with ``FilterSet()`` for any, ``FilterSet(include=[…])``, or pass a plain list
    where a filter set is expected. The list keeps its order; nothing is sorted or merged.
    """

    include: tuple[T, ...] | None = None

    @property
    def is_any(self) -> bool:
        """Whether this set matches every value."""
        return self.include is None

    @model_validator(mode="before")
    @classmethod
    def _from_wire(cls, data: Any, info: ValidationInfo) -> Any:
        if data in ("any", {"any": None}):
            return {"include": None}
        if isinstance(data, (list, tuple)):
            return {"include": data}
        if info.mode == "json" and isinstance(data, dict) and "include" not in data:
            raise ValueError('a filter set is "any" or {"include": [...]}')
        return data

    @model_serializer(mode="wrap")
    def _to_wire(self, handler: SerializerFunctionWrapHandler) -> Any:
        if self.include is None:
            return "any"
        return {"include": handler(self)["include"]}


def _any() -> Any:
    return Field(default_factory=FilterSet)


class SubscriberQueue(DefaultedWireModel):
    """The bounded queue of a subscriber: capacity, reserve for terminal events, overflow."""

    capacity: int = Field(default=64, ge=1)
    terminal_reserve: int = Field(default=1, ge=1)
    overflow: SubscriberOverflowPolicy = SubscriberOverflowPolicy.DROP_NON_TERMINAL

    wire_required = ("capacity", "terminal_reserve", "overflow")


_FILTER_SET_FIELDS: tuple[tuple[str, EventIndexField], ...] = (
    ("run_ids", EventIndexField.RUN_ID),
    ("session_ids", EventIndexField.SESSION_ID),
    ("agent_ids", EventIndexField.AGENT_ID),
    ("turn_ids", EventIndexField.TURN_ID),
    ("families", EventIndexField.EVENT_FAMILY),
    ("kinds", EventIndexField.EVENT_KIND),
    ("source_kinds", EventIndexField.SOURCE),
    ("destination_kinds", EventIndexField.DESTINATION),
    ("subject_kinds", EventIndexField.SUBJECT_KIND),
    ("related_entity_kinds", EventIndexField.RELATED_ENTITY_KIND),
    ("correlation_keys", EventIndexField.CORRELATION_KEY),
    ("tags", EventIndexField.TAG),
    ("privacy_classes", EventIndexField.PRIVACY),
    ("delivery_semantics", EventIndexField.DELIVERY_SEMANTICS),
)


class EventFilter(DefaultedWireModel):
    """Which events wake a condition. ``EventFilter()`` is the reference's default filter.

    All 17 fields are required in wire JSON; in Python, omitted ones take their defaults.
    """

    run_ids: FilterSet[RunId] = _any()
    session_ids: FilterSet[SessionId] = _any()
    agent_ids: FilterSet[AgentId] = _any()
    turn_ids: FilterSet[TurnId] = _any()
    families: FilterSet[EventFamily] = _any()
    kinds: FilterSet[EventKind] = _any()
    source_kinds: FilterSet[SourceKind] = _any()
    destination_kinds: FilterSet[DestinationKind] = _any()
    subject_kinds: FilterSet[EntityKind] = _any()
    related_entity_kinds: FilterSet[EntityKind] = _any()
    correlation_keys: FilterSet[CorrelationKey] = _any()
    tags: FilterSet[EventTag] = _any()
    privacy_classes: FilterSet[PrivacyClass] = _any()
    delivery_semantics: FilterSet[EventDeliverySemantics] = _any()
    terminal_only: bool = False
    payload_access: PayloadAccessMode = PayloadAccessMode.ENVELOPE_ONLY
    queue: SubscriberQueue = Field(default_factory=SubscriberQueue)

    wire_required = (
        *(name for name, _ in _FILTER_SET_FIELDS),
        "terminal_only",
        "payload_access",
        "queue",
    )

    def compile(self) -> CompiledEventFilter:
        """Compile as the reference does: fingerprint, id and indexed fields."""
        fingerprint = "sha256:" + hashlib.sha256(self.model_dump_json().encode()).hexdigest()
        filter_id = "filter." + hashlib.sha256(fingerprint.encode()).hexdigest()
        indexed = tuple(
            field for name, field in _FILTER_SET_FIELDS if not getattr(self, name).is_any
        )
        return CompiledEventFilter(
            filter_id=filter_id,
            filter_fingerprint=fingerprint,
            indexed_fields=indexed,
            payload_access=self.payload_access,
            queue=self.queue,
            criteria=self,
        )


class CompiledEventFilter(WireModel):
    """An :class:`EventFilter` with its id, fingerprint and indexed fields.

    A stored compiled filter is taken as it is: it is not re-checked against its criteria.
    """

    filter_id: EventFilterId
    filter_fingerprint: EventFilterFingerprint
    indexed_fields: tuple[EventIndexField, ...]
    payload_access: PayloadAccessMode
    queue: SubscriberQueue
    criteria: EventFilter
