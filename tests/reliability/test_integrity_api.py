"""``verify`` and ``rebuild`` on databases damaged on purpose with raw SQL.

Each damage is made behind the store's back on one pool of a database with two pools.
``verify`` must list each difference (pool, check, seq) and leave the healthy pool clean;
``rebuild`` must repair projection damage and pending records (then ``verify`` is ok and the
snapshot equals a fresh in-memory replay of the raw log), and must refuse, changing nothing,
a pool whose log holds a record it cannot read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from agent_pool_store import (
    RECORD_PAYLOAD,
    AgentError,
    AgentErrorKind,
    AgentPoolMember,
    InMemoryAgentPoolStore,
    MemberJoined,
    MessageReceipt,
    MessageStatus,
    RetryClassification,
    SqlAgentPoolStore,
    WakeRegistrationStatus,
)
from tests.factories import message_pair, wake_triple
from tests.reliability.workers import EQUAL_CONFIG, Database, Raw
from tests.replay import apply_through_operations

POOL = "pool.damaged"
OTHER = "pool.healthy"
LAST = 11
"""Records :func:`populate` writes."""


def populate(store: SqlAgentPoolStore, pool: str) -> None:
    store.open_pool(pool, EQUAL_CONFIG)  # 1
    store.record_pool_created(pool)  # 2
    for run in ("a", "b", "c"):  # 3, 4, 5
        store.join_member(pool, AgentPoolMember(run_id=f"run.{run}", agent_id=f"agent.{run}"))
    store.leave_member(pool, "run.b")  # 6
    message, receipt = message_pair("message.1")
    store.record_message(pool, message, receipt)  # 7 (superseded by 8)
    delivered = receipt.model_copy(update={"status": MessageStatus.DELIVERED})
    store.record_message(pool, message, delivered)  # 8
    store.record_message(pool, *message_pair("message.2"))  # 9
    condition, compiled, registration = wake_triple("wake.1")
    store.record_wake(pool, condition, compiled, registration)  # 10
    triggered = registration.model_copy(update={"status": WakeRegistrationStatus.TRIGGERED})
    store.record_wake(pool, condition, compiled, triggered)  # 11
    store.next_event_sequence(pool)


def set_payload(raw: Raw, seq: int, payload_json: str) -> None:
    raw.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?",
        (payload_json, POOL, seq),
    )


REJECTED = MessageReceipt(message_id="message.2", status=MessageStatus.FAILED)
LATE_MEMBER = MemberJoined(member=AgentPoolMember(run_id="run.d", agent_id="agent.d"))


@dataclass(frozen=True)
class Damage:
    apply: Callable[[Raw], None]
    expected: list[tuple[str, int | None]]
    """``(check, seq)`` of every difference verify must report, sorted."""
    detail: str
    """Text in the first difference's detail."""
    repairable: bool


DAMAGES = {
    "projection row deleted": Damage(
        lambda raw: raw.execute(
            "DELETE FROM agent_pool_store_members WHERE pool_id = ? AND run_id = ?",
            (POOL, "run.a"),
        ),
        [("projection", None)],
        "member 'run.a' missing from the projection",
        repairable=True,
    ),
    "projection row altered": Damage(
        lambda raw: raw.execute(
            "UPDATE agent_pool_store_message_receipts SET receipt_json = ?"
            " WHERE pool_id = ? AND idempotency_key = ?",
            (REJECTED.model_dump_json(), POOL, "idem.message.2"),
        ),
        [("projection", None)],
        "message receipt 'idem.message.2' differs from the log",
        repairable=True,
    ),
    "projection row added": Damage(
        lambda raw: raw.execute(
            "INSERT INTO agent_pool_store_members (pool_id, run_id, member_json, seq)"
            " VALUES (?, ?, ?, ?)",
            (POOL, "run.ghost", LATE_MEMBER.member.model_dump_json(), 3),
        ),
        [("projection", None)],
        "member 'run.ghost' in the projection but not in the log",
        repairable=True,
    ),
    "watermark past the log": Damage(
        lambda raw: raw.execute(
            "UPDATE agent_pool_store_pools SET projected_seq = ? WHERE pool_id = ?",
            (LAST + 5, POOL),
        ),
        [("projection", None)],
        f"watermark {LAST + 5} is past the log's end {LAST}",
        repairable=True,
    ),
    "malformed payload": Damage(
        lambda raw: set_payload(raw, 5, "{bad"),
        [("payload", 5), ("projection", None)],  # and run.c is then not in the replay
        f"agent pool {POOL!r} record seq 5 cannot be read",
        repairable=False,
    ),
    "invalid identifier in a payload": Damage(
        lambda raw: set_payload(
            raw, 5, '{"type":"member_joined","member":{"run_id":"","agent_id":"agent.c"}}'
        ),
        [("payload", 5), ("projection", None)],
        "identifier is empty",
        repairable=False,
    ),
    "cursor gap": Damage(
        lambda raw: raw.execute(
            "DELETE FROM agent_pool_records WHERE pool_id = ? AND seq = 7", (POOL,)
        ),  # record 8 supersedes it: the replay is unchanged, only the gap is wrong
        [("cursor", 8)],
        "expected seq 7, found 8",
        repairable=False,
    ),
}


def in_memory_replay(raw: Raw) -> InMemoryAgentPoolStore:
    """A fresh in-memory store fed the damaged pool's raw log through its operations."""
    memory = InMemoryAgentPoolStore()
    rows = raw.execute(
        "SELECT payload_json FROM agent_pool_records WHERE pool_id = ? ORDER BY seq", (POOL,)
    )
    for (payload_json,) in rows:
        apply_through_operations(memory, POOL, payload_json)
    return memory


def assert_same_as(store: SqlAgentPoolStore, memory: InMemoryAgentPoolStore) -> None:
    assert store.snapshot(POOL) == memory.snapshot(POOL)
    for key in ("idem.message.1", "idem.message.2", "idem.none"):
        assert store.message_receipt(POOL, key) == memory.message_receipt(POOL, key)
    assert store.wake_registration(POOL, "idem.wake.1") == memory.wake_registration(
        POOL, "idem.wake.1"
    )
    assert store.wake(POOL, "wake.1") == memory.wake(POOL, "wake.1")


@pytest.mark.parametrize("name", list(DAMAGES))
def test_verify_reports_and_rebuild_repairs(database: Database, name: str) -> None:
    damage = DAMAGES[name]
    store = database.open()
    populate(store, POOL)
    populate(store, OTHER)
    clean = store.verify()
    assert clean.ok and clean.pools == sorted([POOL, OTHER]) and clean.records == 2 * LAST
    raw = database.raw()

    damage.apply(raw)

    report = store.verify()
    assert not report.ok
    assert report.pools == sorted([POOL, OTHER])
    assert report.records == raw.count("agent_pool_records")
    found = sorted(
        ((d.check, d.seq) for d in report.differences), key=lambda pair: (pair[0], pair[1] or 0)
    )
    assert found == damage.expected, str(report)
    assert {difference.pool_id for difference in report.differences} == {POOL}
    assert damage.detail in (report.differences[0].detail + str(report))
    assert str(report).splitlines()[0].endswith(f"{len(damage.expected)} difference(s)")
    assert store.verify(OTHER).ok
    assert [(d.check, d.seq) for d in store.verify(POOL).differences] == [
        (d.check, d.seq) for d in report.differences
    ]

    log_before = raw.execute("SELECT * FROM agent_pool_records ORDER BY pool_id, seq")
    if damage.repairable:
        assert store.rebuild(POOL) == raw.last_seq(POOL)
        assert store.verify().ok
        assert_same_as(store, in_memory_replay(raw))
        member = AgentPoolMember(run_id="run.after", agent_id="agent.after")
        assert store.join_member(POOL, member).sequence == raw.last_seq(POOL)
        assert store.verify().ok
    elif damage.expected[0][0] == "cursor":
        # the log itself is wrong: rebuild replays what is there, the gap stays reported
        assert store.rebuild(POOL) == LAST
        assert [(d.check, d.seq) for d in store.verify().differences] == damage.expected
        log_after = raw.execute("SELECT * FROM agent_pool_records ORDER BY pool_id, seq")
        assert log_after == log_before
    else:
        before = raw.dump()
        with pytest.raises(AgentError) as caught:
            store.rebuild(POOL)
        error = caught.value
        assert (error.kind, error.retry) == (
            AgentErrorKind.INVALID_STATE_TRANSITION,
            RetryClassification.REPAIR_NEEDED,
        )
        assert f"agent pool {POOL!r} record seq 5 cannot be read" in error.message
        assert raw.dump() == before  # nothing changed, projections included
        assert [(d.check, d.seq) for d in store.verify(POOL).differences] == [
            (d.check, d.seq) for d in report.differences
        ]
    assert store.verify(OTHER).ok
    assert store.join_member(OTHER, AgentPoolMember(run_id="run.z", agent_id="a")).sequence == (
        LAST + 1
    )


def test_verify_and_rebuild_arguments(database: Database) -> None:
    store = database.open()
    populate(store, POOL)
    for bad in ("", "pool\x00", "p" * 513, 7, b"pool"):
        with pytest.raises(AgentError) as caught:
            store.verify(bad)  # type: ignore[arg-type]
        assert caught.value.retry is RetryClassification.NOT_RETRYABLE
    for bad in ("", "pool\x00", None, 7):
        with pytest.raises(AgentError) as caught:
            store.rebuild(bad)  # type: ignore[arg-type]
        assert caught.value.retry is RetryClassification.NOT_RETRYABLE
    report = store.verify("pool.never.opened")
    assert report.ok and report.pools == ["pool.never.opened"] and report.records == 0
    assert store.verify().pools == [POOL]  # verify of an unknown pool created nothing


def test_rebuild_of_a_healthy_pool_changes_nothing(database: Database) -> None:
    store = database.open()
    populate(store, POOL)
    raw = database.raw()
    before = raw.dump()
    assert store.rebuild(POOL) == LAST
    assert raw.dump() == before
    assert store.verify().ok
    assert_same_as(store, in_memory_replay(raw))


def test_rebuild_catches_up_a_pool_written_only_by_another_implementation(
    database: Database,
) -> None:
    raw = database.raw()
    rows = [
        ("pool_opened", f'{{"type":"pool_opened","config":{EQUAL_CONFIG.model_dump_json()}}}'),
        (LATE_MEMBER.type, LATE_MEMBER.model_dump_json()),
    ]
    for kind, payload_json in rows:
        raw.append_record(POOL, kind, payload_json)
    assert RECORD_PAYLOAD.validate_json(rows[0][1]).type == "pool_opened"
    store = database.open()
    report = store.verify()
    assert report.ok and [(d.pool_id, d.check) for d in report.pending] == [(POOL, "pending")]
    assert store.rebuild(POOL) == 2
    assert store.verify().ok
    assert_same_as(store, in_memory_replay(raw))


def test_records_another_writer_appended_are_pending_not_damage(database: Database) -> None:
    """A record appended behind the store's back (as the reference does) is reported as
    pending, as information: the report is ok; the next operation applies it."""
    store = database.open()
    populate(store, POOL)
    raw = database.raw()
    raw.insert_record(POOL, LAST + 1, LATE_MEMBER.type, LATE_MEMBER.model_dump_json())
    report = store.verify()
    assert report.ok and report.differences == []
    assert [(d.pool_id, d.check) for d in report.pending] == [(POOL, "pending")]
    assert f"records {LAST + 1}..{LAST + 1} are not in the projections yet" in str(report)
    assert str(report).splitlines()[0].endswith(": ok")
    assert store.snapshot(POOL).cursor.sequence == LAST + 1  # caught up
    after = store.verify()
    assert after.ok and after.pending == []
