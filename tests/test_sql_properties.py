"""Property: the SQL store behaves exactly like the in-memory store, and like its own log.

Random operation sequences over one or two pools, with identifiers drawn from small
alphabets so that re-joins, repeated message ids, shared idempotency keys and repeated wake
conditions happen often, are applied to an ``InMemoryAgentPoolStore`` and to the SQL store
(SQLite file, PostgreSQL), each time through one of two handles. Every operation's result
(cursors, snapshots and their wire JSON from ``snapshot_json``, look-ups, watch streams,
errors' kind and retry) must agree; at the end the SQL store's snapshots (and
``snapshot_json``, byte for byte), look-ups and watch streams must also equal a fresh replay
of its own ``agent_pool_records`` rows, read with Core and folded with ``PoolState.replay``.

Each hypothesis example uses pool ids under a fresh uuid prefix, so examples share the
test's database without seeing each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import column, select, table

from agent_pool_store import (
    RECORD_PAYLOAD,
    AgentError,
    AgentErrorKind,
    AgentPoolStore,
    AgentPoolStoreConfig,
    InMemoryAgentPoolStore,
    PolicyKind,
    PolicyRef,
    PoolState,
    RetryClassification,
    SqlAgentPoolStore,
    WakeRegistration,
    open_store,
)
from tests.databases import sqlite_url
from tests.strategies import (
    agent_pool_members,
    compiled_event_filters,
    message_receipts,
    run_messages,
    wake_conditions,
    wake_registrations,
)

POOLS = ("p0", "p1")
RUN_IDS = ("run.a", "run.b", "run.c")
TOPICS = ("t.a", "t.b", "t.c")
MESSAGE_IDS = ("message.0", "message.1", "message.2")
KEYS = ("idem.0", "idem.1")
CONDITION_IDS = ("wake.0", "wake.1", "wake.2")
CONFIGS = (
    AgentPoolStoreConfig(),
    AgentPoolStoreConfig(policy_refs=(PolicyRef(kind=PolicyKind.PERMISSION, id="policy.x"),)),
)

RECORDS = table(
    "agent_pool_records", column("pool_id"), column("seq"), column("kind"), column("payload_json")
)

EXPECTED_ERRORS = {
    (AgentErrorKind.HOST_CONFIGURATION_NEEDED, RetryClassification.HOST_CONFIGURATION_NEEDED),
    (AgentErrorKind.INVALID_STATE_TRANSITION, RetryClassification.REPAIR_NEEDED),
    (AgentErrorKind.INVALID_STATE_TRANSITION, RetryClassification.NOT_RETRYABLE),
}


# --- operations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One store call on pool ``pool`` (a key of :data:`POOLS`) through handle ``handle``."""

    name: str
    pool: str
    handle: int
    call: Callable[[AgentPoolStore, str], Any]

    def __repr__(self) -> str:
        return f"{self.name}({self.pool}, handle={self.handle})"


def _operation(name: str, call: Callable[[AgentPoolStore, str], Any]) -> Any:
    return st.builds(
        Operation,
        name=st.just(name),
        pool=st.sampled_from(POOLS),
        handle=st.integers(0, 1),
        call=st.just(call),
    )


def _with_call(name: str, make: Callable[..., Callable[[AgentPoolStore, str], Any]]) -> Any:
    def build(pool: str, handle: int, *args: Any) -> Operation:
        return Operation(name, pool, handle, make(*args))

    return build


keys = st.sampled_from(KEYS)
condition_ids = st.sampled_from(CONDITION_IDS)


@st.composite
def messages(draw: st.DrawFn) -> tuple[Any, Any]:
    message = draw(run_messages(st.sampled_from(MESSAGE_IDS)))
    message = message.model_copy(update={"idempotency_key": draw(keys)})
    receipt = draw(message_receipts(st.sampled_from(MESSAGE_IDS)))
    return message, receipt


@st.composite
def wakes(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    condition = draw(wake_conditions(condition_ids))
    condition = condition.model_copy(update={"idempotency_key": draw(keys)})
    compiled = draw(st.one_of(st.just(condition.filter.compile()), compiled_event_filters()))
    registration: WakeRegistration = draw(wake_registrations())
    registration = registration.model_copy(update={"condition_id": condition.condition_id})
    return condition, compiled, registration


def _args(*strategies: Any) -> tuple[Any, ...]:
    return (st.sampled_from(POOLS), st.integers(0, 1), *strategies)


def _open(config: AgentPoolStoreConfig) -> Callable[[AgentPoolStore, str], Any]:
    return lambda store, pool: store.open_pool(pool, config)


def _join(member: Any) -> Callable[[AgentPoolStore, str], Any]:
    return lambda store, pool: store.join_member(pool, member)


def _leave(run_id: str) -> Callable[[AgentPoolStore, str], Any]:
    return lambda store, pool: store.leave_member(pool, run_id)


def _message(pair: tuple[Any, Any]) -> Callable[[AgentPoolStore, str], Any]:
    return lambda store, pool: store.record_message(pool, *pair)


def _wake(triple: tuple[Any, Any, Any]) -> Callable[[AgentPoolStore, str], Any]:
    return lambda store, pool: store.record_wake(pool, *triple)


def _receipt(key: str) -> Callable[[AgentPoolStore, str], Any]:
    return lambda store, pool: store.message_receipt(pool, key)


def _registration(key: str) -> Callable[[AgentPoolStore, str], Any]:
    return lambda store, pool: store.wake_registration(pool, key)


def _stored_wake(condition_id: str) -> Callable[[AgentPoolStore, str], Any]:
    return lambda store, pool: store.wake(pool, condition_id)


def _watch(cursor: int | None) -> Callable[[AgentPoolStore, str], Any]:
    return lambda store, pool: list(store.watch(pool, cursor))


members = agent_pool_members(st.sampled_from(RUN_IDS), st.sampled_from(TOPICS))

operations = st.one_of(
    st.builds(_with_call("open_pool", _open), *_args(st.sampled_from(CONFIGS))),
    _operation("record_pool_created", lambda store, pool: store.record_pool_created(pool)),
    st.builds(_with_call("join_member", _join), *_args(members)),
    st.builds(_with_call("join_member", _join), *_args(members)),
    st.builds(_with_call("leave_member", _leave), *_args(st.sampled_from((*RUN_IDS, "run.never")))),
    st.builds(_with_call("record_message", _message), *_args(messages())),
    st.builds(_with_call("record_message", _message), *_args(messages())),
    st.builds(_with_call("record_wake", _wake), *_args(wakes())),
    st.builds(_with_call("record_wake", _wake), *_args(wakes())),
    _operation("next_event_sequence", lambda store, pool: store.next_event_sequence(pool)),
    _operation("snapshot", lambda store, pool: store.snapshot(pool)),
    _operation("snapshot_json", lambda store, pool: cast(Any, store).snapshot_json(pool)),
    st.builds(_with_call("message_receipt", _receipt), *_args(keys)),
    st.builds(_with_call("wake_registration", _registration), *_args(keys)),
    st.builds(_with_call("wake", _stored_wake), *_args(condition_ids)),
    st.builds(_with_call("watch", _watch), *_args(st.one_of(st.none(), st.integers(0, 12)))),
)


def _opening(pool: str) -> Any:
    return st.builds(
        _with_call("open_pool", _open), st.just(pool), st.integers(0, 1), st.sampled_from(CONFIGS)
    )


scenarios = st.tuples(
    _opening("p0"),
    st.lists(_opening("p1"), max_size=1),  # p1 stays unopened in some examples
    st.lists(operations, min_size=10, max_size=25),
).map(lambda parts: [parts[0], *parts[1], *parts[2]])


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """``("ok", result)`` or ``("error", kind, retry)``."""
    try:
        return ("ok", call())
    except AgentError as error:
        assert (error.kind, error.retry) in EXPECTED_ERRORS, error
        return ("error", error.kind, error.retry)


# --- the SQL store ---------------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ]
)
def sql_url(request: pytest.FixtureRequest) -> str:
    """A migrated database of each dialect, as a URL."""
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_file")
        return sqlite_url(path)
    url = request.getfixturevalue("pg_url")
    return str(url.render_as_string(hide_password=False))


@pytest.fixture
def sql_handles(sql_url: str) -> Iterator[tuple[SqlAgentPoolStore, SqlAgentPoolStore]]:
    """Two store objects on the test's database."""
    first, second = open_store(sql_url), open_store(sql_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def replay_rows(store: SqlAgentPoolStore, pool_id: str) -> tuple[list[Any], PoolState | None]:
    """The pool's raw rows and a fresh fold of them (``None`` when there are none)."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(RECORDS.c.seq, RECORDS.c.kind, RECORDS.c.payload_json)
            .where(RECORDS.c.pool_id == pool_id)
            .order_by(RECORDS.c.seq)
        ).all()
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    payloads = [RECORD_PAYLOAD.validate_json(row.payload_json) for row in rows]
    assert [row.kind for row in rows] == [payload.type for payload in payloads]
    if not rows:
        return [], None
    return list(rows), PoolState.replay(zip((row.seq for row in rows), payloads, strict=True))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
def test_sql_store_agrees_with_memory_and_with_its_log(
    sql_handles: tuple[SqlAgentPoolStore, SqlAgentPoolStore], scenario: list[Operation]
) -> None:
    prefix = uuid.uuid4().hex
    memory = InMemoryAgentPoolStore()
    memory_handles = (memory, memory.another_handle())

    def pool_id(pool: str) -> str:
        return f"{prefix}.{pool}"

    for index, operation in enumerate(scenario):
        pid = pool_id(operation.pool)
        expected = outcome(lambda op=operation, p=pid: op.call(memory_handles[op.handle], p))
        actual = outcome(lambda op=operation, p=pid: op.call(sql_handles[op.handle], p))
        assert actual == expected, f"operation {index}: {operation!r}"

    sql = sql_handles[0]
    for pool in POOLS:
        pid = pool_id(pool)
        watched = list(memory.watch(pid))
        assert list(sql.watch(pid)) == watched
        assert list(sql_handles[1].watch(pid, 1)) == watched[1:]
        assert outcome(lambda p=pid: sql.snapshot(p)) == outcome(lambda p=pid: memory.snapshot(p))
        receipts = {key: outcome(lambda p=pid, k=key: sql.message_receipt(p, k)) for key in KEYS}
        assert receipts == {
            key: outcome(lambda p=pid, k=key: memory.message_receipt(p, k)) for key in KEYS
        }
        registrations = {
            key: outcome(lambda p=pid, k=key: sql.wake_registration(p, k)) for key in KEYS
        }
        assert registrations == {
            key: outcome(lambda p=pid, k=key: memory.wake_registration(p, k)) for key in KEYS
        }
        stored_wakes = {cid: outcome(lambda p=pid, c=cid: sql.wake(p, c)) for cid in CONDITION_IDS}
        assert stored_wakes == {
            cid: outcome(lambda p=pid, c=cid: memory.wake(p, c)) for cid in CONDITION_IDS
        }

        rows, state = replay_rows(sql, pid)
        assert [row.payload_json for row in rows] == [r.payload.model_dump_json() for r in watched]
        if state is None:
            assert watched == []
            continue
        assert sql.snapshot(pid) == state.snapshot(pid)
        assert sql.snapshot_json(pid) == state.snapshot(pid).model_dump_json()
        assert state.message_receipts == {
            key: result[1] for key, result in receipts.items() if result[1] is not None
        }
        assert state.wake_registrations == {
            key: result[1] for key, result in registrations.items() if result[1] is not None
        }
        assert state.wakes == {
            cid: result[1] for cid, result in stored_wakes.items() if result[1] is not None
        }
        # both stores hand out the same next event sequence and the same next cursor
        assert sql.next_event_sequence(pid) == memory.next_event_sequence(pid)
        assert sql_handles[1].record_pool_created(pid) == memory.record_pool_created(pid)
