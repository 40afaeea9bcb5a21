"""factory-boy factories for the domain models used by the tests."""

from __future__ import annotations

from typing import ClassVar

import factory

from agent_pool_store import (
    AgentPoolMember,
    AgentPoolStore,
    AgentPoolStoreConfig,
    EventFilter,
    MessageReceipt,
    MessageStatus,
    PolicyKind,
    PolicyRef,
    ResumeInputPolicy,
    RunAddress,
    RunMessage,
    WakeCondition,
    WakeRegistration,
    WakeRegistrationStatus,
)


class PolicyRefFactory(factory.Factory):
    class Meta:
        model = PolicyRef

    kind = PolicyKind.PERMISSION
    id = factory.Sequence(lambda n: f"policy.{n}")


class ConfigFactory(factory.Factory):
    class Meta:
        model = AgentPoolStoreConfig


class MemberFactory(factory.Factory):
    class Meta:
        model = AgentPoolMember

    run_id = factory.Sequence(lambda n: f"run.{n}")
    agent_id = factory.LazyAttribute(lambda o: o.run_id.replace("run.", "agent.", 1))
    topics = ()


class RunMessageFactory(factory.Factory):
    class Meta:
        model = RunMessage
        rename: ClassVar[dict[str, str]] = {"sender": "from_"}

    message_id = factory.Sequence(lambda n: f"message.{n}")
    sender = "run.sender"
    to = factory.LazyFunction(lambda: RunAddress.run("run.receiver"))
    content_ref = factory.LazyAttribute(lambda o: f"content.{o.message_id}")
    idempotency_key = factory.LazyAttribute(lambda o: f"idem.{o.message_id}")


class ReceiptFactory(factory.Factory):
    class Meta:
        model = MessageReceipt

    message_id = factory.Sequence(lambda n: f"message.{n}")
    status = MessageStatus.ACCEPTED


class WakeConditionFactory(factory.Factory):
    class Meta:
        model = WakeCondition

    condition_id = factory.Sequence(lambda n: f"wake.{n}")
    run_id = "run.sleeper"
    filter = factory.LazyFunction(EventFilter)
    resume_with = ResumeInputPolicy.MATCHING_EVENT_REFS
    idempotency_key = factory.LazyAttribute(lambda o: f"idem.{o.condition_id}")


class RegistrationFactory(factory.Factory):
    class Meta:
        model = WakeRegistration

    condition_id = factory.Sequence(lambda n: f"wake.{n}")
    run_id = "run.sleeper"
    status = WakeRegistrationStatus.REGISTERED


def message_pair(
    message_id: str | None = None, status: MessageStatus = MessageStatus.ACCEPTED, **message: object
) -> tuple[RunMessage, MessageReceipt]:
    """A message and a receipt for it."""
    built = RunMessageFactory(**({"message_id": message_id} if message_id else {}), **message)
    return built, ReceiptFactory(message_id=built.message_id, status=status)


def wake_triple(
    condition_id: str | None = None,
    status: WakeRegistrationStatus = WakeRegistrationStatus.REGISTERED,
    **condition: object,
) -> tuple[WakeCondition, object, WakeRegistration]:
    """A wake condition, its compiled filter and a registration for it."""
    built = WakeConditionFactory(
        **({"condition_id": condition_id} if condition_id else {}), **condition
    )
    registration = RegistrationFactory(
        condition_id=built.condition_id, run_id=built.run_id, status=status
    )
    return built, built.filter.compile(), registration


def append_every_kind(
    store: AgentPoolStore, pool: str, message_id: str = "message.1", condition_id: str = "wake.1"
) -> None:
    """Open ``pool`` and append every record kind.

    Members (non-ASCII ids, one who left), a message and its delivery, a wake and its
    trigger.
    """
    store.open_pool(pool, AgentPoolStoreConfig(policy_refs=[PolicyRefFactory()]))
    store.record_pool_created(pool)
    store.join_member(pool, MemberFactory(run_id="run.a", topics=["t.zeta", "t.alpha"]))
    store.join_member(pool, MemberFactory(run_id="run.é\u2028b", agent_id="agent.ü"))
    store.join_member(pool, MemberFactory(run_id="run.c"))
    store.leave_member(pool, "run.c")
    message, receipt = message_pair(message_id)
    store.record_message(pool, message, receipt)
    delivered = receipt.model_copy(
        update={"status": MessageStatus.DELIVERED, "delivered_to": ("run.a",)}
    )
    store.record_message(pool, message, delivered)
    condition, compiled, registration = wake_triple(condition_id)
    store.record_wake(pool, condition, compiled, registration)
    triggered = registration.model_copy(update={"status": WakeRegistrationStatus.TRIGGERED})
    store.record_wake(pool, condition, compiled, triggered)
