"""The main job: a short, realistic pool scenario, then the snapshot and the record stream.

Run with ``make run`` (or ``python -m agent_pool_store.demo [URL]``). The database is the URL
given, else ``AGENT_POOL_STORE_URL``, else the embedded default ``sqlite:///agent-pool.sqlite``.
Each run plays one more round in the same pool, so running it again continues the pool.
"""

from __future__ import annotations

import os
import sys

from agent_pool_store.contract import AgentPoolStore
from agent_pool_store.domain import (
    AgentPoolMember,
    AgentPoolStoreConfig,
    EventFamily,
    EventFilter,
    EventKind,
    MessageReceipt,
    MessageStatus,
    ResumeInputPolicy,
    RunAddress,
    RunMessage,
    WakeCondition,
    WakeRegistration,
    WakeRegistrationStatus,
)
from agent_pool_store.errors import AgentError, AgentErrorKind
from agent_pool_store.render import records_text, snapshot_text
from agent_pool_store.sql.settings import DEFAULT_URL
from agent_pool_store.sql.store import open_store

POOL_ID = "pool.demo.newsroom"


def send(store: AgentPoolStore, message: RunMessage, delivered_to: str) -> str:
    """Record a message unless its idempotency key was seen; return what happened."""
    if store.message_receipt(POOL_ID, message.idempotency_key) is not None:
        return f"{message.message_id}: retry deduplicated by key {message.idempotency_key}"
    store.record_message(
        POOL_ID, message, MessageReceipt(message_id=message.message_id, status="accepted")
    )
    store.record_message(
        POOL_ID,
        message,
        MessageReceipt(
            message_id=message.message_id,
            status=MessageStatus.DELIVERED,
            delivered_to=[delivered_to],
        ),
    )
    return f"{message.message_id}: delivered to {delivered_to}"


def play_round(store: AgentPoolStore) -> list[str]:
    """One round: two runs join, talk (with a retried send), a wake fires, one run leaves."""
    log: list[str] = []
    snapshot = store.open_pool(POOL_ID, AgentPoolStoreConfig())
    if not snapshot.created:
        store.record_pool_created(POOL_ID)
    round_no = store.next_event_sequence(POOL_ID)
    planner, writer = f"run.planner.{round_no}", f"run.writer.{round_no}"
    log.append(f"round {round_no}: {planner} and {writer} join {POOL_ID}")
    store.join_member(POOL_ID, AgentPoolMember(run_id=planner, agent_id="agent.planner"))
    store.join_member(
        POOL_ID, AgentPoolMember(run_id=writer, agent_id="agent.writer", topics=["topic.drafts"])
    )

    brief = RunMessage(
        message_id=f"message.brief.{round_no}",
        from_=planner,
        to=RunAddress.run(writer),
        content_ref=f"content.brief.{round_no}",
        idempotency_key=f"idem.brief.{round_no}",
    )
    log.append(send(store, brief, writer))
    log.append(send(store, brief, writer))  # the planner retries: deduplicated

    condition = WakeCondition(
        condition_id=f"wake.writer.review.{round_no}",
        run_id=writer,
        filter=EventFilter(
            run_ids=[planner],
            families=[EventFamily.AGENT_POOL],
            kinds=[EventKind.RUN_MESSAGE_DELIVERED],
        ),
        resume_with=ResumeInputPolicy.MATCHING_EVENT_REFS,
        idempotency_key=f"idem.wake.review.{round_no}",
    )
    compiled = condition.filter.compile()
    store.record_wake(
        POOL_ID,
        condition,
        compiled,
        WakeRegistration(condition_id=condition.condition_id, run_id=writer, status="registered"),
    )
    log.append(f"{writer} sleeps on {condition.condition_id} ({compiled.filter_id[:19]}…)")

    review = RunMessage(
        message_id=f"message.review.{round_no}",
        from_=planner,
        to=RunAddress.topic("topic.drafts"),
        content_ref=f"content.review.{round_no}",
        idempotency_key=f"idem.review.{round_no}",
    )
    log.append(send(store, review, writer))
    store.record_wake(
        POOL_ID,
        condition,
        compiled,
        WakeRegistration(
            condition_id=condition.condition_id,
            run_id=writer,
            status=WakeRegistrationStatus.TRIGGERED,
            journal_cursor=f"journal.{review.message_id}",
        ),
    )
    log.append(f"{condition.condition_id} triggered by {review.message_id}")
    left, _ = store.leave_member(POOL_ID, planner)
    log.append(f"{left.run_id} left the pool")
    return log


def main(argv: list[str] | None = None) -> int:
    """Play a round on the store at the given URL; print the snapshot and this round's records."""
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else os.environ.get("AGENT_POOL_STORE_URL", DEFAULT_URL)
    try:
        with open_store(url) as store:
            earlier = _last_sequence(store)
            print(f"store: {store!r}")
            for line in play_round(store):
                print(line)
            print()
            print(snapshot_text(store.snapshot(POOL_ID)))
            print()
            print(f"records of this round ({earlier} earlier records not shown):")
            print(records_text(store.watch(POOL_ID, earlier)))
    except AgentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _last_sequence(store: AgentPoolStore) -> int:
    """The pool's last cursor before this round (0 before the first run)."""
    try:
        cursor = store.snapshot(POOL_ID).cursor
    except AgentError as error:
        if error.kind is not AgentErrorKind.HOST_CONFIGURATION_NEEDED:
            raise
        return 0
    return cursor.sequence if cursor else 0


if __name__ == "__main__":
    sys.exit(main())
