"""Hypothesis strategies for identifiers and every wire model of the domain.

Every strategy here is public and may be reused by other test modules (the contract tests
draw ``record_payloads()`` and the model strategies). Lists are kept short (at most
``MAX_LIST`` items, nested lists at most ``MAX_NESTED_LIST``) so that examples stay small
and the suites stay fast.

Generated values are valid: identifiers satisfy ``validate_identifier`` and numbers fit the
wire ranges. Values are *not* mutually consistent unless stated (e.g. a generated snapshot
is not necessarily the replay of any record log).
"""

from __future__ import annotations

import functools
from typing import TypeVar

from hypothesis import strategies as st

from agent_pool_store.domain import (
    MAX_IDENTIFIER_BYTES,
    AgentPoolMember,
    AgentPoolMessagePolicy,
    AgentPoolSnapshot,
    AgentPoolStoreConfig,
    AgentPoolStoreCursor,
    AgentPoolStoredMessage,
    AgentPoolStoredWake,
    AgentPoolStoreRecord,
    AgentPoolWakePolicy,
    AgentTarget,
    CompiledEventFilter,
    CorrelationEntry,
    DestinationKind,
    DestinationRef,
    EntityKind,
    EntityRef,
    EventCorrelation,
    EventDeliverySemantics,
    EventFamily,
    EventFilter,
    EventKind,
    FilterSet,
    MemberJoined,
    MemberLeft,
    MessageReceipt,
    MessageResponseContract,
    MessageStatus,
    PayloadAccessMode,
    PolicyKind,
    PolicyRef,
    PoolCreated,
    PoolOpened,
    PoolTarget,
    PrivacyClass,
    ResumeInputPolicy,
    RetentionClass,
    RunAddress,
    RunMessage,
    RunMessageRecorded,
    RunTarget,
    SourceKind,
    SourceRef,
    SubscriberOverflowPolicy,
    SubscriberQueue,
    TopicTarget,
    TrustClass,
    WakeCondition,
    WakeRecorded,
    WakeRegistration,
    WakeRegistrationStatus,
)

__all__ = [
    "IDENTIFIER_CHARACTERS",
    "MAX_LIST",
    "MAX_NESTED_LIST",
    "U32_MAX",
    "U64_MAX",
    "agent_pool_members",
    "agent_pool_message_policies",
    "agent_pool_snapshots",
    "agent_pool_store_configs",
    "agent_pool_store_cursors",
    "agent_pool_store_records",
    "agent_pool_stored_messages",
    "agent_pool_stored_wakes",
    "agent_pool_wake_policies",
    "compiled_event_filters",
    "control_characters",
    "correlation_entries",
    "destination_refs",
    "entity_refs",
    "event_correlations",
    "event_filters",
    "filter_sets",
    "identifiers",
    "long_identifiers",
    "message_receipts",
    "message_response_contracts",
    "plain_text",
    "policy_refs",
    "record_payloads",
    "run_address_targets",
    "run_addresses",
    "run_messages",
    "short_identifiers",
    "source_refs",
    "subscriber_queues",
    "u32s",
    "u64s",
    "wake_conditions",
    "wake_registrations",
]

MAX_LIST = 3
"""Largest top-level list a strategy generates (members, messages, policy refs, …)."""
MAX_NESTED_LIST = 2
"""Largest list nested inside another generated list's items (correlation, related refs)."""

T = TypeVar("T")

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1

IDENTIFIER_CHARACTERS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
"""Any character allowed in an identifier: every code point but control characters (Cc)
and surrogates (which are not encodable in UTF-8)."""


_NAME_PARTS = ("run", "agent", "topic", "pool", "msg", "wake", "idem", "a", "b", "1", "x_y", "é")


@functools.cache
def u32s() -> st.SearchStrategy[int]:
    """Unsigned 32-bit integers, biased towards the bounds."""
    return st.one_of(st.sampled_from([0, 1, U32_MAX]), st.integers(0, U32_MAX))


@functools.cache
def u64s() -> st.SearchStrategy[int]:
    """Unsigned 64-bit integers, biased towards the bounds."""
    return st.one_of(st.sampled_from([0, 1, U32_MAX + 1, U64_MAX]), st.integers(0, U64_MAX))


@functools.cache
def plain_text(max_size: int = 8) -> st.SearchStrategy[str]:
    """Unvalidated strings (versions, summaries, tags): anything UTF-8 encodable, even empty
    or with control characters."""
    return st.text(st.characters(codec="utf-8"), max_size=max_size)


@functools.cache
def control_characters() -> st.SearchStrategy[str]:
    """The characters an identifier may not contain: U+0000-U+001F and U+007F-U+009F."""
    return st.sampled_from([chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))])


@functools.cache
def short_identifiers(max_chars: int = 12) -> st.SearchStrategy[str]:
    """Short valid identifiers: dotted ASCII names like the reference's, or arbitrary
    non-control text (non-ASCII, astral, whitespace, U+00A0 …)."""
    return st.one_of(
        st.lists(st.sampled_from(_NAME_PARTS), min_size=1, max_size=3).map(".".join),
        st.text(IDENTIFIER_CHARACTERS, min_size=1, max_size=max_chars),
    )


def _fill_to_max_bytes(seed: str) -> str:
    repeated = seed * (MAX_IDENTIFIER_BYTES // len(seed.encode("utf-8")) + 1)
    # Cut at the byte limit; a multi-byte character cut in half is dropped.
    return repeated.encode("utf-8")[:MAX_IDENTIFIER_BYTES].decode("utf-8", errors="ignore")


@functools.cache
def long_identifiers() -> st.SearchStrategy[str]:
    """Valid identifiers of 509 to 512 UTF-8 bytes (the limit is in bytes, not characters)."""
    return st.text(IDENTIFIER_CHARACTERS, min_size=1, max_size=4).map(_fill_to_max_bytes)


@functools.cache
def identifiers() -> st.SearchStrategy[str]:
    """Valid identifiers: non-empty, at most 512 UTF-8 bytes, no control character.

    Mostly short; occasionally right at the 512-byte limit.
    """
    return st.one_of(
        short_identifiers(), short_identifiers(), short_identifiers(), long_identifiers()
    )


def _optional(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.one_of(st.none(), strategy)


def _lists(strategy: st.SearchStrategy[T], max_size: int = MAX_LIST) -> st.SearchStrategy[list[T]]:
    return st.lists(strategy, max_size=max_size)


# --- reference types -----------------------------------------------------------------------


@functools.cache
def policy_refs() -> st.SearchStrategy[PolicyRef]:
    """A PolicyRef of any kind, with or without a version."""
    return st.builds(
        PolicyRef,
        kind=st.sampled_from(PolicyKind),
        id=identifiers(),
        version=_optional(plain_text()),
    )


@functools.cache
def correlation_entries() -> st.SearchStrategy[CorrelationEntry]:
    """A correlation key/value pair."""
    return st.builds(CorrelationEntry, key=identifiers(), value=identifiers())


@functools.cache
def event_correlations() -> st.SearchStrategy[EventCorrelation]:
    """An EventCorrelation, often empty (wire ``{}``)."""
    return st.builds(EventCorrelation, entries=_lists(correlation_entries(), MAX_NESTED_LIST))


@functools.cache
def source_refs() -> st.SearchStrategy[SourceRef]:
    """A SourceRef with every optional field sometimes set."""
    return st.builds(
        SourceRef,
        kind=st.sampled_from(SourceKind),
        id=identifiers(),
        trust=st.sampled_from(TrustClass),
        privacy=st.sampled_from(PrivacyClass),
        correlation=_lists(correlation_entries(), MAX_NESTED_LIST),
        redacted_summary=_optional(plain_text()),
    )


@functools.cache
def destination_refs() -> st.SearchStrategy[DestinationRef]:
    """A DestinationRef of any kind, privacy and retention."""
    return st.builds(
        DestinationRef,
        kind=st.sampled_from(DestinationKind),
        id=identifiers(),
        privacy=st.sampled_from(PrivacyClass),
        retention=st.sampled_from(RetentionClass),
        correlation=_lists(correlation_entries(), MAX_NESTED_LIST),
        redacted_summary=_optional(plain_text()),
    )


@functools.cache
def entity_refs() -> st.SearchStrategy[EntityRef]:
    """An EntityRef of any kind, sometimes with a source and a summary."""
    return st.builds(
        EntityRef,
        kind=st.sampled_from(EntityKind),
        id=identifiers(),
        source=_optional(source_refs()),
        privacy=st.sampled_from(PrivacyClass),
        redacted_summary=_optional(plain_text()),
    )


# --- pool types ----------------------------------------------------------------------------


@functools.cache
def agent_pool_message_policies() -> st.SearchStrategy[AgentPoolMessagePolicy]:
    """A pool's message policy."""
    return st.builds(
        AgentPoolMessagePolicy,
        required_policy_refs=_lists(policy_refs()),
        include_sender_in_pool_broadcast=st.booleans(),
    )


@functools.cache
def agent_pool_wake_policies() -> st.SearchStrategy[AgentPoolWakePolicy]:
    """A pool's wake policy."""
    return st.builds(AgentPoolWakePolicy, envelope_only=st.booleans())


@functools.cache
def agent_pool_store_configs() -> st.SearchStrategy[AgentPoolStoreConfig]:
    """A pool config, including the default one."""
    return st.one_of(
        st.just(AgentPoolStoreConfig()),
        st.builds(
            AgentPoolStoreConfig,
            message_policy=agent_pool_message_policies(),
            wake_policy=agent_pool_wake_policies(),
            policy_refs=_lists(policy_refs()),
        ),
    )


@functools.cache
def agent_pool_members(
    run_ids: st.SearchStrategy[str] | None = None,
    topics: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[AgentPoolMember]:
    """A member; pass ``run_ids`` / ``topics`` to draw from a small shared set (the topics
    list keeps order and may repeat a topic)."""
    return st.builds(
        AgentPoolMember,
        run_id=run_ids if run_ids is not None else identifiers(),
        agent_id=identifiers(),
        policy_refs=_lists(policy_refs()),
        topics=_lists(topics if topics is not None else identifiers()),
    )


@functools.cache
def run_address_targets() -> st.SearchStrategy[RunTarget | AgentTarget | TopicTarget | PoolTarget]:
    """Any of the four address targets."""
    return st.one_of(
        st.builds(RunTarget, run_id=identifiers()),
        st.builds(AgentTarget, agent_id=identifiers()),
        st.builds(TopicTarget, topic_id=identifiers()),
        st.builds(PoolTarget, pool_id=identifiers()),
    )


@functools.cache
def run_addresses() -> st.SearchStrategy[RunAddress]:
    """An address: from the four constructors, or arbitrary target/destination/related refs."""
    return st.one_of(
        st.builds(RunAddress.run, identifiers()),
        st.builds(RunAddress.agent, identifiers()),
        st.builds(RunAddress.topic, identifiers()),
        st.builds(RunAddress.pool, identifiers()),
        st.builds(
            RunAddress,
            target=run_address_targets(),
            destination_ref=destination_refs(),
            related_refs=_lists(entity_refs(), MAX_NESTED_LIST),
        ),
    )


@functools.cache
def message_response_contracts() -> st.SearchStrategy[MessageResponseContract]:
    """A response contract, with or without a timeout."""
    return st.builds(
        MessageResponseContract, expected_responses=u32s(), timeout_millis=_optional(u64s())
    )


@functools.cache
def run_messages(
    message_ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[RunMessage]:
    """A run message with every optional field sometimes set."""
    return st.builds(
        RunMessage,
        message_id=message_ids if message_ids is not None else identifiers(),
        from_=identifiers(),
        to=run_addresses(),
        content_ref=identifiers(),
        correlation=event_correlations(),
        reply_to=_optional(identifiers()),
        response_contract=_optional(message_response_contracts()),
        expires_at_millis=_optional(u64s()),
        idempotency_key=identifiers(),
        policy_refs=_lists(policy_refs()),
    )


@functools.cache
def message_receipts(
    message_ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[MessageReceipt]:
    """A receipt of any status, sometimes with deliveries and a journal cursor."""
    return st.builds(
        MessageReceipt,
        message_id=message_ids if message_ids is not None else identifiers(),
        status=st.sampled_from(MessageStatus),
        delivered_to=_lists(identifiers()),
        journal_cursor=_optional(identifiers()),
    )


@functools.cache
@st.composite
def agent_pool_stored_messages(draw: st.DrawFn) -> AgentPoolStoredMessage:
    """A stored message whose receipt has the message's id."""
    message = draw(run_messages())
    receipt = draw(message_receipts(st.just(message.message_id)))
    return AgentPoolStoredMessage(message=message, receipt=receipt)


# --- filters and wakes ---------------------------------------------------------------------


@functools.cache
def filter_sets(elements: st.SearchStrategy[T]) -> st.SearchStrategy[FilterSet[T]]:
    """``any`` or ``include`` of up to three elements (possibly none, possibly repeated)."""
    return st.one_of(
        st.just(FilterSet()),
        _lists(elements).map(lambda values: FilterSet(include=tuple(values))),
    )


@functools.cache
def subscriber_queues() -> st.SearchStrategy[SubscriberQueue]:
    """A subscriber queue (capacity and reserve at least 1), including the default."""
    return st.one_of(
        st.just(SubscriberQueue()),
        st.builds(
            SubscriberQueue,
            capacity=st.integers(1, U32_MAX),
            terminal_reserve=st.integers(1, U32_MAX),
            overflow=st.sampled_from(SubscriberOverflowPolicy),
        ),
    )


@functools.cache
def event_filters() -> st.SearchStrategy[EventFilter]:
    """An event filter; each of the 14 sets is ``any`` or a short include list.

    Tags are unvalidated strings (may be empty or contain control characters).
    """
    return st.one_of(
        st.just(EventFilter()),
        st.builds(
            EventFilter,
            run_ids=filter_sets(identifiers()),
            session_ids=filter_sets(identifiers()),
            agent_ids=filter_sets(identifiers()),
            turn_ids=filter_sets(identifiers()),
            families=filter_sets(st.sampled_from(EventFamily)),
            kinds=filter_sets(st.sampled_from(EventKind)),
            source_kinds=filter_sets(st.sampled_from(SourceKind)),
            destination_kinds=filter_sets(st.sampled_from(DestinationKind)),
            subject_kinds=filter_sets(st.sampled_from(EntityKind)),
            related_entity_kinds=filter_sets(st.sampled_from(EntityKind)),
            correlation_keys=filter_sets(identifiers()),
            tags=filter_sets(plain_text()),
            privacy_classes=filter_sets(st.sampled_from(PrivacyClass)),
            delivery_semantics=filter_sets(st.sampled_from(EventDeliverySemantics)),
            terminal_only=st.booleans(),
            payload_access=st.sampled_from(PayloadAccessMode),
            queue=subscriber_queues(),
        ),
    )


@functools.cache
def compiled_event_filters() -> st.SearchStrategy[CompiledEventFilter]:
    """A compiled filter, made by ``EventFilter.compile()``."""
    return event_filters().map(EventFilter.compile)


@functools.cache
def wake_conditions(
    condition_ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[WakeCondition]:
    """A wake condition with every optional field sometimes set."""
    return st.builds(
        WakeCondition,
        condition_id=condition_ids if condition_ids is not None else identifiers(),
        run_id=identifiers(),
        filter=event_filters(),
        timeout_millis=_optional(u64s()),
        resume_with=st.sampled_from(ResumeInputPolicy),
        idempotency_key=identifiers(),
        policy_refs=_lists(policy_refs()),
    )


@functools.cache
def wake_registrations() -> st.SearchStrategy[WakeRegistration]:
    """A registration of any status, with or without a journal cursor."""
    return st.builds(
        WakeRegistration,
        condition_id=identifiers(),
        run_id=identifiers(),
        status=st.sampled_from(WakeRegistrationStatus),
        journal_cursor=_optional(identifiers()),
    )


@functools.cache
@st.composite
def agent_pool_stored_wakes(draw: st.DrawFn) -> AgentPoolStoredWake:
    """A stored wake whose registration names the condition's id and run.

    The compiled filter is usually the condition's filter compiled, but sometimes another
    one: the reference stores whatever compiled filter the host passes (its coordinator
    narrows ``run_ids`` and ``payload_access`` before compiling).
    """
    condition = draw(wake_conditions())
    compiled = draw(st.one_of(st.just(condition.filter.compile()), compiled_event_filters()))
    status = draw(st.sampled_from(WakeRegistrationStatus))
    cursor = draw(_optional(identifiers()))
    registration = WakeRegistration(
        condition_id=condition.condition_id,
        run_id=condition.run_id,
        status=status,
        journal_cursor=cursor,
    )
    return AgentPoolStoredWake(
        condition=condition, compiled_filter=compiled, registration=registration
    )


# --- records and snapshots -----------------------------------------------------------------


@functools.cache
def record_payloads() -> st.SearchStrategy[
    PoolOpened | PoolCreated | MemberJoined | MemberLeft | RunMessageRecorded | WakeRecorded
]:
    """Any of the six record payload variants."""
    return st.one_of(
        st.builds(PoolOpened, config=agent_pool_store_configs()),
        st.just(PoolCreated()),
        st.builds(MemberJoined, member=agent_pool_members()),
        st.builds(MemberLeft, member=agent_pool_members()),
        st.builds(RunMessageRecorded, stored=agent_pool_stored_messages()),
        st.builds(WakeRecorded, stored=agent_pool_stored_wakes()),
    )


@functools.cache
def agent_pool_store_cursors() -> st.SearchStrategy[AgentPoolStoreCursor]:
    """A record cursor (sequence 0 is the start)."""
    return st.builds(AgentPoolStoreCursor, sequence=u64s())


@functools.cache
def agent_pool_store_records() -> st.SearchStrategy[AgentPoolStoreRecord]:
    """A watch item: pool id, cursor and payload."""
    return st.builds(
        AgentPoolStoreRecord,
        pool_id=identifiers(),
        cursor=agent_pool_store_cursors(),
        payload=record_payloads(),
    )


@functools.cache
def agent_pool_snapshots() -> st.SearchStrategy[AgentPoolSnapshot]:
    """A snapshot with arbitrary (not replay-consistent) contents."""
    return st.builds(
        AgentPoolSnapshot,
        pool_id=identifiers(),
        created=st.booleans(),
        members=_lists(agent_pool_members()),
        topics=_lists(identifiers()),
        message_policy=agent_pool_message_policies(),
        wake_policy=agent_pool_wake_policies(),
        policy_refs=_lists(policy_refs()),
        messages=_lists(agent_pool_stored_messages(), MAX_NESTED_LIST),
        wakes=_lists(agent_pool_stored_wakes(), MAX_NESTED_LIST),
        cursor=_optional(agent_pool_store_cursors()),
    )
