"""Realistic record payloads, built with the domain models.

A pool's history is a bounded working set written over and over: a few members that join and
leave, a fixed set of messages whose receipts are re-recorded as their status moves on, and a
fixed set of wake conditions re-registered. So the pool's state (its snapshot) stays the same
size however long the history grows, and only the log does.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from agent_pool_store import (
    RECORD_PAYLOAD,
    AgentPoolMember,
    AgentPoolStoredMessage,
    AgentPoolStoredWake,
    AgentPoolStoreRecordPayload,
    CorrelationEntry,
    EventCorrelation,
    EventFamily,
    EventFilter,
    EventKind,
    FilterSet,
    MemberJoined,
    MemberLeft,
    MessageReceipt,
    MessageResponseContract,
    MessageStatus,
    PolicyKind,
    PolicyRef,
    PoolCreated,
    PoolOpened,
    ResumeInputPolicy,
    RunAddress,
    RunMessage,
    RunMessageRecorded,
    WakeCondition,
    WakeRecorded,
    WakeRegistration,
    WakeRegistrationStatus,
)
from agent_pool_store import AgentPoolStoreConfig as Config

MESSAGE_STATUSES = (
    MessageStatus.ACCEPTED,
    MessageStatus.DELIVERED,
    MessageStatus.RESPONDED,
)
WAKE_STATUSES = (WakeRegistrationStatus.REGISTERED, WakeRegistrationStatus.TRIGGERED)
TOPICS = ("topic.plan", "topic.review", "topic.tools", "topic.status")


def config() -> Config:
    """A pool config with a policy reference, as a host would open a pool with."""
    return Config(policy_refs=(PolicyRef(kind=PolicyKind.PERMISSION, id="policy.pool.default"),))


def member(index: int) -> AgentPoolMember:
    """Member ``index``: a run listening to two topics, under one policy."""
    return AgentPoolMember(
        run_id=f"run.worker.{index}",
        agent_id=f"agent.worker.{index % 4}",
        policy_refs=(PolicyRef(kind=PolicyKind.SANDBOX, id="policy.sandbox.default"),),
        topics=(TOPICS[index % len(TOPICS)], TOPICS[(index + 1) % len(TOPICS)]),
    )


def message(message_id: str, sender: int, receiver: int) -> RunMessage:
    """A run-to-run message expecting one response, with correlation entries."""
    return RunMessage(
        message_id=message_id,
        from_=f"run.worker.{sender}",
        to=RunAddress.run(f"run.worker.{receiver}"),
        content_ref=f"content.{message_id}",
        correlation=EventCorrelation(
            entries=(
                CorrelationEntry(key="task", value=f"task.{message_id}"),
                CorrelationEntry(key="trace", value=f"trace.{sender}.{receiver}"),
            )
        ),
        response_contract=MessageResponseContract(expected_responses=1, timeout_millis=30_000),
        idempotency_key=f"idem.{message_id}",
    )


def small_message(label: str) -> tuple[RunMessage, MessageReceipt]:
    """A small message between two runs and its ``accepted`` receipt (one append's worth)."""
    run_message = RunMessage(
        message_id=f"m.{label}",
        from_="run.a",
        to=RunAddress.run("run.b"),
        content_ref=f"content.{label}",
        idempotency_key=f"idem.{label}",
    )
    return run_message, MessageReceipt(message_id=run_message.message_id, status="accepted")


def receipt(run_message: RunMessage, status: MessageStatus, step: int) -> MessageReceipt:
    """The receipt of ``run_message`` at ``status``."""
    target = run_message.to.target
    delivered = () if status is MessageStatus.ACCEPTED else (getattr(target, "run_id", ""),)
    return MessageReceipt(
        message_id=run_message.message_id,
        status=status,
        delivered_to=delivered,
        journal_cursor=f"journal.{step}",
    )


def stored_message(message_id: str, status: MessageStatus, step: int) -> RunMessageRecorded:
    """A ``run_message`` payload for ``message_id`` at ``status``."""
    index = int(message_id.rsplit(".", 1)[1])
    built = message(message_id, index % 8, (index + 3) % 8)
    return RunMessageRecorded(
        stored=AgentPoolStoredMessage(message=built, receipt=receipt(built, status, step))
    )


def stored_wake(condition_id: str, status: WakeRegistrationStatus, step: int) -> WakeRecorded:
    """A ``wake`` payload: a condition on message deliveries, compiled, and its registration."""
    index = int(condition_id.rsplit(".", 1)[1])
    run_id = f"run.worker.{index % 8}"
    condition = WakeCondition(
        condition_id=condition_id,
        run_id=run_id,
        filter=EventFilter(
            run_ids=FilterSet(include=(f"run.worker.{(index + 1) % 8}",)),
            families=FilterSet(include=(EventFamily.AGENT_POOL,)),
            kinds=FilterSet(include=(EventKind.RUN_MESSAGE_DELIVERED,)),
        ),
        timeout_millis=60_000,
        resume_with=ResumeInputPolicy.MATCHING_EVENT_REFS,
        idempotency_key=f"idem.{condition_id}",
    )
    registration = WakeRegistration(
        condition_id=condition_id, run_id=run_id, status=status, journal_cursor=f"journal.{step}"
    )
    return WakeRecorded(
        stored=AgentPoolStoredWake(
            condition=condition,
            compiled_filter=condition.filter.compile(),
            registration=registration,
        )
    )


@dataclass
class HistoryShape:
    """The bounded working set a history cycles through."""

    members: int = 8
    spare_members: int = 4
    messages: int = 32
    wakes: int = 8
    message_share: float = 0.75
    wake_share: float = 0.15


LOOKUPS = ("message_receipt", "wake", "wake_registration")
"""The look-up operations, each keyed by one kind of key a history records."""


@dataclass
class History:
    """A pool's records in order (kind and wire JSON) and the keys its look-ups can hit."""

    kinds: list[str] = field(default_factory=list)
    json: list[str] = field(default_factory=list)
    first_seen: dict[str, dict[str, int]] = field(
        default_factory=lambda: {lookup: {} for lookup in LOOKUPS}
    )

    def __len__(self) -> int:
        return len(self.json)

    def add(self, payload: AgentPoolStoreRecordPayload) -> None:
        index = len(self.json)
        keys: list[tuple[str, str]] = []
        if isinstance(payload, RunMessageRecorded):
            keys.append(("message_receipt", payload.stored.message.idempotency_key))
        elif isinstance(payload, WakeRecorded):
            keys.append(("wake", payload.stored.condition.condition_id))
            keys.append(("wake_registration", payload.stored.condition.idempotency_key))
        for lookup, key in keys:
            self.first_seen[lookup].setdefault(key, index)
        self.kinds.append(payload.type)
        self.json.append(payload.model_dump_json())

    def keys(self, lookup: str, length: int) -> list[str]:
        """The keys of ``lookup`` recorded within the first ``length`` records."""
        return sorted(key for key, index in self.first_seen[lookup].items() if index < length)

    def rows(self, pool_id: str, length: int | None = None) -> list[tuple[str, int, str, str]]:
        """``(pool_id, seq, kind, payload_json)`` rows of the first ``length`` records."""
        count = len(self.json) if length is None else length
        return [(pool_id, index + 1, self.kinds[index], self.json[index]) for index in range(count)]

    def payloads(self, length: int | None = None) -> Iterator[AgentPoolStoreRecordPayload]:
        """The first ``length`` payloads as models, read back from their JSON."""
        for text in self.json[:length]:
            yield RECORD_PAYLOAD.validate_json(text)


def _mixed(shape: HistoryShape, rng: random.Random) -> Iterator[AgentPoolStoreRecordPayload]:
    """The endless part of a history after the pool is opened and its members joined."""
    present = set(range(shape.members))
    message_turns = [0] * shape.messages
    wake_turns = [0] * shape.wakes
    next_message = next_wake = 0
    step = 0
    while True:
        step += 1
        draw = rng.random()
        if draw < shape.message_share:
            index = next_message
            next_message = (next_message + 1) % shape.messages
            message_status = MESSAGE_STATUSES[message_turns[index] % len(MESSAGE_STATUSES)]
            message_turns[index] += 1
            yield stored_message(f"message.{index}", message_status, step)
        elif draw < shape.message_share + shape.wake_share:
            index = next_wake
            next_wake = (next_wake + 1) % shape.wakes
            wake_status = WAKE_STATUSES[wake_turns[index] % len(WAKE_STATUSES)]
            wake_turns[index] += 1
            yield stored_wake(f"wake.{index}", wake_status, step)
        else:
            index = rng.randrange(shape.members + shape.spare_members)
            if index in present:
                present.discard(index)
                yield MemberLeft(member=member(index))
            else:
                present.add(index)
                yield MemberJoined(member=member(index))


def build_history(length: int, shape: HistoryShape | None = None, seed: int = 7) -> History:
    """The first ``length`` records of a pool's history (``length`` ≥ 2)."""
    shape = shape or HistoryShape()
    history = History()
    history.add(PoolOpened(config=config()))
    history.add(PoolCreated())
    for index in range(shape.members):
        if len(history) >= length:
            break
        history.add(MemberJoined(member=member(index)))
    mixed = _mixed(shape, random.Random(seed))
    while len(history) < length:
        history.add(next(mixed))
    return history


def status_history(messages: int, statuses_per_message: int) -> History:
    """A pool of ``messages`` messages, each re-recorded ``statuses_per_message`` times.

    The receipts are interleaved (every message's first status, then every message's
    second, …), as concurrent conversations would write them.
    """
    history = History()
    history.add(PoolOpened(config=config()))
    history.add(PoolCreated())
    step = 0
    for turn in range(statuses_per_message):
        for index in range(messages):
            step += 1
            status = MESSAGE_STATUSES[min(turn, len(MESSAGE_STATUSES) - 1)]
            history.add(stored_message(f"message.{index}", status, step))
    return history
