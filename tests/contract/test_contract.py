"""The store contract (shared/spec/CONTRACT.md), run against every backend."""

from __future__ import annotations

import threading

import pytest

from agent_pool_store import (
    AgentError,
    AgentErrorKind,
    AgentPoolMember,
    AgentPoolStore,
    AgentPoolStoreConfig,
    AgentPoolStoreCursor,
    AgentPoolStoreRecord,
    MemberJoined,
    MessageStatus,
    PoolOpened,
    RetryClassification,
    RunAddress,
    WakeRegistrationStatus,
)
from tests.conftest import Backend, compact_reference_json, reference_rows
from tests.factories import (
    ConfigFactory,
    MemberFactory,
    PolicyRefFactory,
    message_pair,
    wake_triple,
)
from tests.replay import apply_through_operations

POOL = "pool.contract"


def opened(store: AgentPoolStore, pool_id: str = POOL) -> AgentPoolStore:
    store.open_pool(pool_id, ConfigFactory())
    return store


def records(store: AgentPoolStore, pool_id: str = POOL, cursor: object = None) -> list[int]:
    return [record.cursor.sequence for record in store.watch(pool_id, cursor)]  # type: ignore[arg-type]


# --- open_pool -------------------------------------------------------------------------------


def test_first_open_appends_pool_opened(store: AgentPoolStore) -> None:
    config = AgentPoolStoreConfig(policy_refs=[PolicyRefFactory()])
    snapshot = store.open_pool(POOL, config)
    assert snapshot.cursor == AgentPoolStoreCursor(sequence=1)
    assert snapshot.policy_refs == config.policy_refs
    assert snapshot.created is False
    [record] = store.watch(POOL)
    assert record.payload == PoolOpened(config=config)


def test_reopen_with_equal_config_appends_nothing(store: AgentPoolStore) -> None:
    store.open_pool(POOL, ConfigFactory())
    snapshot = store.open_pool(POOL, AgentPoolStoreConfig())
    assert snapshot.cursor == AgentPoolStoreCursor(sequence=1)
    assert records(store) == [1]


def test_reopen_with_other_config_conflicts(store: AgentPoolStore) -> None:
    store.open_pool(POOL, ConfigFactory())
    other = AgentPoolStoreConfig(policy_refs=[PolicyRefFactory()])
    with pytest.raises(AgentError) as caught:
        store.open_pool(POOL, other)
    assert caught.value.kind is AgentErrorKind.INVALID_STATE_TRANSITION
    assert caught.value.retry is RetryClassification.REPAIR_NEEDED
    assert caught.value.message.endswith("config conflicts with existing pool")
    assert_names_the_pool(caught.value)
    assert records(store) == [1]


def assert_names_the_pool(error: AgentError) -> None:
    """The error names the pool (``pool_id``, and in its text) and keeps the reference's
    message as it is."""
    assert error.pool_id == POOL
    assert str(error) == f"{error.kind.value}: {error.message} (pool {POOL!r})"
    assert POOL not in error.message


# --- fail closed on unopened pools -----------------------------------------------------------

UNOPENED_CALLS = {
    "snapshot": lambda s: s.snapshot(POOL),
    "record_pool_created": lambda s: s.record_pool_created(POOL),
    "join_member": lambda s: s.join_member(POOL, MemberFactory()),
    "leave_member": lambda s: s.leave_member(POOL, "run.x"),
    "message_receipt": lambda s: s.message_receipt(POOL, "idem.x"),
    "record_message": lambda s: s.record_message(POOL, *message_pair()),
    "wake_registration": lambda s: s.wake_registration(POOL, "idem.x"),
    "wake": lambda s: s.wake(POOL, "wake.x"),
    "record_wake": lambda s: s.record_wake(POOL, *wake_triple()),
    "next_event_sequence": lambda s: s.next_event_sequence(POOL),
}


@pytest.mark.parametrize("operation", sorted(UNOPENED_CALLS))
def test_unopened_pool_fails_closed(store: AgentPoolStore, operation: str) -> None:
    with pytest.raises(AgentError) as caught:
        UNOPENED_CALLS[operation](store)
    assert caught.value.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED
    assert caught.value.retry is RetryClassification.HOST_CONFIGURATION_NEEDED
    assert caught.value.message.endswith("has not opened this pool")
    assert_names_the_pool(caught.value)
    assert list(store.watch(POOL)) == []
    assert store.open_pool(POOL, ConfigFactory()).cursor == AgentPoolStoreCursor(sequence=1)
    assert store.next_event_sequence(POOL) == 1


def test_watch_of_unopened_pool_yields_nothing(store: AgentPoolStore) -> None:
    assert list(store.watch("pool.never")) == []
    assert list(store.watch("pool.never", 5)) == []


# --- appends and cursors ---------------------------------------------------------------------


def test_appends_return_contiguous_cursors(store: AgentPoolStore) -> None:
    opened(store)
    cursors = [
        store.record_pool_created(POOL),
        store.join_member(POOL, MemberFactory(run_id="run.a")),
        store.record_message(POOL, *message_pair()),
        store.record_wake(POOL, *wake_triple()),
        store.leave_member(POOL, "run.a")[1],
    ]
    assert [c.sequence for c in cursors] == [2, 3, 4, 5, 6]
    assert records(store) == [1, 2, 3, 4, 5, 6]
    assert store.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=6)


def test_pool_created_sets_created(store: AgentPoolStore) -> None:
    opened(store)
    assert store.snapshot(POOL).created is False
    assert store.record_pool_created(POOL) == AgentPoolStoreCursor(sequence=2)
    assert store.snapshot(POOL).created is True


def test_pools_are_independent(store: AgentPoolStore) -> None:
    opened(store, "pool.one")
    opened(store, "pool.two")
    store.join_member("pool.one", MemberFactory(run_id="run.a"))
    assert store.join_member("pool.two", MemberFactory(run_id="run.b")).sequence == 2
    assert [m.run_id for m in store.snapshot("pool.one").members] == ["run.a"]
    assert [m.run_id for m in store.snapshot("pool.two").members] == ["run.b"]


# --- members and topics ----------------------------------------------------------------------


def test_rejoin_replaces_member_and_topics(store: AgentPoolStore) -> None:
    opened(store)
    store.join_member(POOL, MemberFactory(run_id="run.a", topics=["t.zeta", "t.alpha"]))
    policy = PolicyRefFactory()
    store.join_member(POOL, MemberFactory(run_id="run.a", topics=["t.beta"], policy_refs=[policy]))
    snapshot = store.snapshot(POOL)
    [member] = snapshot.members
    assert member.topics == ("t.beta",)
    assert member.policy_refs == (policy,)
    assert snapshot.topics == ("t.beta",)


def test_members_sorted_and_topics_union_sorted(store: AgentPoolStore) -> None:
    opened(store)
    store.join_member(POOL, MemberFactory(run_id="run.b", topics=["t.z", "t.a"]))
    store.join_member(POOL, MemberFactory(run_id="run.a", topics=["t.a", "t.m"]))
    snapshot = store.snapshot(POOL)
    assert [m.run_id for m in snapshot.members] == ["run.a", "run.b"]
    assert snapshot.members[1].topics == ("t.z", "t.a")  # member keeps its order
    assert snapshot.topics == ("t.a", "t.m", "t.z")


def test_topic_dropped_when_last_holder_leaves(store: AgentPoolStore) -> None:
    opened(store)
    store.join_member(POOL, MemberFactory(run_id="run.a", topics=["t.shared", "t.a"]))
    store.join_member(POOL, MemberFactory(run_id="run.b", topics=["t.shared"]))
    store.leave_member(POOL, "run.a")
    assert store.snapshot(POOL).topics == ("t.shared",)
    store.leave_member(POOL, "run.b")
    snapshot = store.snapshot(POOL)
    assert snapshot.topics == ()
    assert snapshot.members == ()


def test_leave_returns_member_as_it_was(store: AgentPoolStore) -> None:
    opened(store)
    member = MemberFactory(run_id="run.a", topics=["t.one"])
    store.join_member(POOL, member)
    left, cursor = store.leave_member(POOL, "run.a")
    assert left == member
    assert cursor == AgentPoolStoreCursor(sequence=3)


def test_leave_of_non_member_fails_and_appends_nothing(store: AgentPoolStore) -> None:
    opened(store)
    store.join_member(POOL, MemberFactory(run_id="run.a"))
    store.leave_member(POOL, "run.a")
    for run_id in ("run.a", "run.never"):
        with pytest.raises(AgentError) as caught:
            store.leave_member(POOL, run_id)
        assert caught.value.kind is AgentErrorKind.INVALID_STATE_TRANSITION
        assert caught.value.retry is RetryClassification.NOT_RETRYABLE
        assert caught.value.message == "run is not a member of this agent pool"
        assert_names_the_pool(caught.value)
    assert records(store) == [1, 2, 3]


# --- messages and dedupe ---------------------------------------------------------------------


def test_latest_message_per_id_and_dedupe_keeps_latest(store: AgentPoolStore) -> None:
    opened(store)
    message, accepted = message_pair("message.1")
    store.record_message(POOL, message, accepted)
    delivered = accepted.model_copy(
        update={"status": MessageStatus.DELIVERED, "delivered_to": ("run.b",)}
    )
    store.record_message(POOL, message, delivered)
    other, other_receipt = message_pair("message.0", status=MessageStatus.FAILED)
    store.record_message(POOL, other, other_receipt)

    assert store.message_receipt(POOL, message.idempotency_key) == delivered
    assert store.message_receipt(POOL, other.idempotency_key) == other_receipt
    assert store.message_receipt(POOL, "idem.unknown") is None
    snapshot = store.snapshot(POOL)
    assert [(s.message.message_id, s.receipt.status) for s in snapshot.messages] == [
        ("message.0", MessageStatus.FAILED),
        ("message.1", MessageStatus.DELIVERED),
    ]


def test_dedupe_key_shared_by_two_messages_keeps_latest_receipt(store: AgentPoolStore) -> None:
    opened(store)
    first, first_receipt = message_pair("message.a", idempotency_key="idem.shared")
    second, second_receipt = message_pair(
        "message.b", idempotency_key="idem.shared", status=MessageStatus.RESPONDED
    )
    store.record_message(POOL, first, first_receipt)
    store.record_message(POOL, second, second_receipt)
    assert store.message_receipt(POOL, "idem.shared") == second_receipt
    assert len(store.snapshot(POOL).messages) == 2


def test_message_to_every_address_kind_round_trips(store: AgentPoolStore) -> None:
    opened(store)
    for index, address in enumerate(
        [
            RunAddress.run("run.b"),
            RunAddress.agent("agent.b"),
            RunAddress.topic("t.x"),
            RunAddress.pool(POOL),
        ]
    ):
        store.record_message(POOL, *message_pair(f"message.{index}", to=address))
    assert [s.message.to for s in store.snapshot(POOL).messages] == [
        RunAddress.run("run.b"),
        RunAddress.agent("agent.b"),
        RunAddress.topic("t.x"),
        RunAddress.pool(POOL),
    ]


# --- wakes -----------------------------------------------------------------------------------


def test_latest_wake_per_condition_and_registration_per_key(store: AgentPoolStore) -> None:
    opened(store)
    condition, compiled, registered = wake_triple("wake.1")
    store.record_wake(POOL, condition, compiled, registered)
    triggered = registered.model_copy(
        update={"status": WakeRegistrationStatus.TRIGGERED, "journal_cursor": "journal.9"}
    )
    store.record_wake(POOL, condition, compiled, triggered)
    store.record_wake(POOL, *wake_triple("wake.0", status=WakeRegistrationStatus.CANCELLED))

    stored = store.wake(POOL, "wake.1")
    assert stored is not None
    assert stored.registration == triggered
    assert stored.condition == condition
    assert stored.compiled_filter == compiled
    assert store.wake_registration(POOL, condition.idempotency_key) == triggered
    assert store.wake(POOL, "wake.unknown") is None
    assert store.wake_registration(POOL, "idem.unknown") is None
    assert [w.condition.condition_id for w in store.snapshot(POOL).wakes] == [
        "wake.0",
        "wake.1",
    ]


# --- watch -----------------------------------------------------------------------------------


def test_watch_positions(store: AgentPoolStore) -> None:
    opened(store)
    for index in range(4):
        store.join_member(POOL, MemberFactory(run_id=f"run.{index}"))
    assert records(store) == [1, 2, 3, 4, 5]
    assert records(store, POOL, 0) == [1, 2, 3, 4, 5]
    assert records(store, POOL, AgentPoolStoreCursor.start()) == [1, 2, 3, 4, 5]
    assert records(store, POOL, 2) == [3, 4, 5]
    assert records(store, POOL, AgentPoolStoreCursor(sequence=3)) == [4, 5]
    assert records(store, POOL, 5) == []
    assert records(store, POOL, 99) == []


def test_watch_yields_full_records(store: AgentPoolStore) -> None:
    opened(store)
    member = MemberFactory(run_id="run.a")
    store.join_member(POOL, member)
    [record] = store.watch(POOL, 1)
    assert record == AgentPoolStoreRecord(
        pool_id=POOL, cursor=AgentPoolStoreCursor(sequence=2), payload=MemberJoined(member=member)
    )


def test_watch_rejects_bad_cursor_when_called(store: AgentPoolStore) -> None:
    opened(store)
    for bad in (-1, "3", 1.5, True):
        with pytest.raises(AgentError) as caught:
            store.watch(POOL, bad)  # type: ignore[arg-type]
        assert "cursor" in caught.value.message


# --- event sequences -------------------------------------------------------------------------


def test_event_sequence_per_pool_independent_of_records(store: AgentPoolStore) -> None:
    opened(store, "pool.one")
    opened(store, "pool.two")
    assert [store.next_event_sequence("pool.one") for _ in range(3)] == [1, 2, 3]
    assert store.next_event_sequence("pool.two") == 1
    assert records(store, "pool.one") == [1]


# --- handles ---------------------------------------------------------------------------------


def test_two_handles_share_everything(backend: Backend) -> None:
    first = backend.open()
    second = backend.open()
    opened(first)
    second.join_member(POOL, MemberFactory(run_id="run.a", topics=["t.a"]))
    message, receipt = message_pair("message.1")
    first.record_message(POOL, message, receipt)
    condition, compiled, registration = wake_triple("wake.1")
    second.record_wake(POOL, condition, compiled, registration)
    assert first.next_event_sequence(POOL) == 1
    assert second.next_event_sequence(POOL) == 2

    assert first.snapshot(POOL) == second.snapshot(POOL)
    assert second.message_receipt(POOL, message.idempotency_key) == receipt
    assert first.wake_registration(POOL, condition.idempotency_key) == registration
    assert first.wake(POOL, "wake.1") == second.wake(POOL, "wake.1")
    assert list(first.watch(POOL)) == list(second.watch(POOL))
    assert second.open_pool(POOL, ConfigFactory()).cursor == AgentPoolStoreCursor(sequence=4)
    with pytest.raises(AgentError):
        first.leave_member(POOL, "run.b")
    assert second.leave_member(POOL, "run.a")[1].sequence == 5


def test_concurrent_threads_get_contiguous_cursors(backend: Backend) -> None:
    opened(backend.open())
    handles = [backend.open() for _ in range(4)]
    errors: list[BaseException] = []

    def work(handle: AgentPoolStore, index: int) -> None:
        try:
            for step in range(10):
                handle.join_member(POOL, MemberFactory(run_id=f"run.{index}.{step}"))
                handle.next_event_sequence(POOL)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(h, i)) for i, h in enumerate(handles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert records(handles[0]) == list(range(1, 42))
    assert handles[0].next_event_sequence(POOL) == 41
    assert len(handles[1].snapshot(POOL).members) == 40


# --- invalid arguments -----------------------------------------------------------------------

BAD_CALLS = {
    "empty pool id": lambda s: s.snapshot(""),
    "control char pool id": lambda s: s.open_pool("pool\x00", AgentPoolStoreConfig()),
    "long pool id": lambda s: s.record_pool_created("p" * 513),
    "non-string pool id": lambda s: s.snapshot(42),
    "dict member": lambda s: s.join_member(POOL, {"run_id": "r", "agent_id": "a"}),
    "bad run id": lambda s: s.leave_member(POOL, ""),
    "bad idempotency key": lambda s: s.message_receipt(POOL, "a\nb"),
    "bad condition id": lambda s: s.wake(POOL, ""),
    "receipt swapped": lambda s: s.record_message(POOL, message_pair()[1], message_pair()[0]),
    "config not a model": lambda s: s.open_pool("pool.other", None),
    "bad watch pool": lambda s: s.watch(""),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_invalid_arguments_fail_before_writing(store: AgentPoolStore, case: str) -> None:
    opened(store)
    with pytest.raises(AgentError) as caught:
        BAD_CALLS[case](store)
    assert caught.value.retry is RetryClassification.NOT_RETRYABLE
    assert records(store) == [1]
    assert list(store.watch("pool.other")) == []


def test_identifiers_with_sql_metacharacters_are_stored_verbatim(store: AgentPoolStore) -> None:
    pool_id = "pool'; DROP TABLE agent_pool_records; --"
    run_id = 'run" OR 1=1 -- %_\\'
    opened(store, pool_id)
    store.join_member(pool_id, AgentPoolMember(run_id=run_id, agent_id="agent.é✓"))
    [member] = store.snapshot(pool_id).members
    assert member.run_id == run_id
    assert member.agent_id == "agent.é✓"
    assert store.leave_member(pool_id, run_id)[0].run_id == run_id


# --- the reference pools ---------------------------------------------------------------------


def _replay_reference(store: AgentPoolStore) -> dict[str, list[int]]:
    sequences: dict[str, list[int]] = {}
    for row in reference_rows():
        sequence = apply_through_operations(store, row.pool_id, row.payload_json)
        sequences.setdefault(row.pool_id, []).append(sequence)
        if row.pool_id == "pool.fixture.direct" and row.seq == 1:
            assert store.snapshot(row.pool_id).model_dump_json() == compact_reference_json(
                "direct-snapshot-after-open.json"
            )
    return sequences


def test_reference_pools_replayed_through_operations(store: AgentPoolStore) -> None:
    sequences = _replay_reference(store)
    assert sequences["pool.fixture.coordinator"] == list(range(1, 17))
    assert sequences["pool.fixture.direct"] == list(range(1, 14))
    assert store.snapshot("pool.fixture.coordinator").model_dump_json() == (
        compact_reference_json("coordinator-snapshot-final.json")
    )
    assert store.snapshot("pool.fixture.direct").model_dump_json() == compact_reference_json(
        "direct-snapshot-final.json"
    )
    watched = "[" + ",".join(r.model_dump_json() for r in store.watch("pool.fixture.direct")) + "]"
    assert watched == compact_reference_json("direct-watch-records.json")
    assert [r.payload.model_dump_json() for r in store.watch("pool.fixture.coordinator")] == [
        row.payload_json for row in reference_rows() if row.pool_id == "pool.fixture.coordinator"
    ]
    after_five = list(store.watch("pool.fixture.direct", 5))
    assert after_five[0].cursor.sequence == 6
    assert len(after_five) == 8
