"""A lost reply never doubles a record, and never passes for "did not happen".

A fault-injecting TCP proxy (:mod:`tests.reliability.pg_proxy`) sits between the store and
PostgreSQL. It lets a chosen statement run, and commit, then closes the connection before
the client reads the reply. For every write operation and ``next_event_sequence``, on both
PostgreSQL paths (the one-statement append and the unit of work's ``COMMIT``):

- the call returns its normal result, and the log holds the record once (the counter
  advanced once): the store found out on a fresh connection that the write had landed;
- when the store cannot find out (the database is unreachable after the loss), the call
  fails with AgentError ``outcome_unknown`` (JournalFailure / UserActionNeeded), never with a
  plain Retryable, and the record is there exactly once;
- under random losses from several threads, no record is doubled, each successful call's
  record is there once, and a call that failed without ``outcome_unknown`` wrote nothing.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from sqlalchemy.engine import URL

from agent_pool_store import (
    AgentError,
    AgentPoolStoreCursor,
    RetryClassification,
    SqlAgentPoolStore,
    open_store,
)
from tests.async_support import open_async_as_sync
from tests.reliability.pg_proxy import PgFaultProxy
from tests.reliability.test_write_path import member
from tests.reliability.workers import EQUAL_CONFIG, Raw, message_pair, wake_triple

pytestmark = pytest.mark.postgresql

POOL = "pool.lost"
ROUNDS = int(os.environ.get("AGENT_POOL_STORE_LOST_REPLY_ROUNDS", "40"))
"""Rounds of three calls per thread in the random-loss test (raise it for a longer soak)."""


def one_statement_append(sql: str) -> bool:
    """The PostgreSQL one-statement append (its record-inserting CTE)."""
    return "insert_record" in sql


def commit(sql: str) -> bool:
    return sql.strip().upper() == "COMMIT"


@pytest.fixture
def proxy() -> Iterator[PgFaultProxy]:
    made = PgFaultProxy()
    try:
        yield made
    finally:
        made.close()


@dataclass
class Scene:
    proxy: PgFaultProxy
    url: URL
    direct: Raw
    flavour: str = "sync"
    """``async``: the stores are async stores (psycopg's ``AsyncConnection``), driven through
    the same calls on an event loop of their own."""
    stores: list[SqlAgentPoolStore] = field(default_factory=list)

    def store(self, **options: Any) -> SqlAgentPoolStore:
        through_proxy = self.proxy.url(self.url)
        if self.flavour == "async":
            made = cast(
                SqlAgentPoolStore,
                open_async_as_sync(
                    through_proxy.render_as_string(hide_password=False), lock_timeout=5, **options
                ),
            )
        else:
            made = open_store(through_proxy, lock_timeout=5, **options)
        self.stores.append(made)
        return made

    def kinds(self) -> list[str]:
        rows = self.direct.execute(
            "SELECT kind FROM agent_pool_records WHERE pool_id = ? ORDER BY seq", (POOL,)
        )
        return [kind for (kind,) in rows]

    def close(self) -> None:
        for store in self.stores:
            store.close()
        self.direct.close()


@pytest.fixture(params=["sync", "async"])
def scene(proxy: PgFaultProxy, pg_url: URL, request: pytest.FixtureRequest) -> Iterator[Scene]:
    made = Scene(
        proxy,
        pg_url,
        Raw(
            "postgresql", pg_url.set(drivername="postgresql").render_as_string(hide_password=False)
        ),
        flavour=request.param,
    )
    try:
        yield made
    finally:
        made.close()


Append = Callable[[SqlAgentPoolStore], AgentPoolStoreCursor]

APPENDS: dict[str, tuple[Append, str]] = {
    "record_pool_created": (lambda store: store.record_pool_created(POOL), "pool_created"),
    "join_member": (lambda store: store.join_member(POOL, member("run.lost")), "member_joined"),
    "record_message": (
        lambda store: store.record_message(POOL, *message_pair("message.lost")),
        "run_message",
    ),
    "record_wake": (
        lambda store: store.record_wake(POOL, *wake_triple("wake.lost")),
        "wake",
    ),
}


@pytest.mark.parametrize("operation", sorted(APPENDS))
def test_a_lost_reply_to_the_one_statement_append_is_settled(scene: Scene, operation: str) -> None:
    store = scene.store()
    store.open_pool(POOL, EQUAL_CONFIG)  # the store knows the pool: one-statement appends
    append, kind = APPENDS[operation]
    scene.proxy.lose_replies(one_statement_append)
    assert append(store).sequence == 2
    assert scene.proxy.lost == 1
    assert scene.kinds() == ["pool_opened", kind]
    assert append(store).sequence == 3  # the store is usable afterwards
    assert scene.kinds() == ["pool_opened", kind, kind]
    assert store.verify().ok


@pytest.mark.parametrize("operation", sorted(APPENDS))
def test_a_lost_reply_to_a_units_commit_is_settled(scene: Scene, operation: str) -> None:
    store = scene.store(postgresql_one_statement=False)
    store.open_pool(POOL, EQUAL_CONFIG)
    append, kind = APPENDS[operation]
    scene.proxy.lose_replies(commit)
    assert append(store).sequence == 2
    assert scene.proxy.lost == 1
    assert scene.kinds() == ["pool_opened", kind]
    assert store.verify().ok


def test_lost_commit_replies_of_open_leave_and_event_sequence_are_settled(scene: Scene) -> None:
    store = scene.store()
    scene.proxy.lose_replies(commit)
    snapshot = store.open_pool(POOL, EQUAL_CONFIG)
    assert snapshot.cursor == AgentPoolStoreCursor(sequence=1)
    assert store.open_pool(POOL, EQUAL_CONFIG) == snapshot  # re-opening appends nothing
    store.join_member(POOL, member("run.leaving"))
    scene.proxy.lose_replies(commit)
    left, cursor = store.leave_member(POOL, "run.leaving")
    assert (left.run_id, cursor.sequence) == ("run.leaving", 3)
    with pytest.raises(AgentError) as caught:
        store.leave_member(POOL, "run.leaving")  # left once, so not a member any more
    assert caught.value.retry is RetryClassification.NOT_RETRYABLE
    assert scene.kinds() == ["pool_opened", "member_joined", "member_left"]

    assert store.next_event_sequence(POOL) == 1
    scene.proxy.lose_replies(commit)
    assert store.next_event_sequence(POOL) == 2
    assert store.next_event_sequence(POOL) == 3  # no number handed out twice or skipped
    assert scene.proxy.lost == 3
    assert store.verify().ok


@pytest.mark.parametrize("path", ["one statement", "unit of work"])
def test_an_outcome_that_cannot_be_settled_is_reported_as_unknown(scene: Scene, path: str) -> None:
    """The reply is lost and the database is unreachable afterwards: the caller is told the
    outcome is unknown (not Retryable), and indeed the record landed."""
    one_statement = path == "one statement"
    store = open_store(
        scene.proxy.url(scene.url), lock_timeout=1, postgresql_one_statement=one_statement
    )
    scene.stores.append(store)
    store.open_pool(POOL, EQUAL_CONFIG)
    scene.proxy.refuse_after_loss = True
    scene.proxy.lose_replies(one_statement_append if one_statement else commit)
    with pytest.raises(AgentError) as caught:
        store.join_member(POOL, member("run.unknown"))
    error = caught.value
    assert error.outcome_unknown
    assert error.retry is RetryClassification.USER_ACTION_NEEDED
    assert "before retrying" in error.message
    assert scene.kinds() == ["pool_opened", "member_joined"]
    scene.proxy.refusing = False
    assert store.join_member(POOL, member("run.after")).sequence == 3


def test_random_lost_replies_from_many_threads_never_double_a_record(scene: Scene) -> None:
    """Four threads (two store objects) append, leave and count while 5% of the replies to
    write statements and COMMITs are lost."""
    stores = [scene.store(), scene.store()]
    stores[0].open_pool(POOL, EQUAL_CONFIG)
    stores[1].open_pool(POOL, EQUAL_CONFIG)
    scene.proxy.lose_replies(
        lambda sql: commit(sql) or one_statement_append(sql) or "agent_pool_event_seq" in sql,
        times=None,
        probability=0.05,
        seed=7,
    )
    results: dict[str, str] = {}  # call -> "ok" / "unknown" / "failed"
    events: list[int] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        store = stores[index % 2]
        for n in range(ROUNDS):
            name = f"{index}.{n}"
            calls: list[tuple[str, Callable[[], object]]] = [
                (f"join {name}", functools.partial(store.join_member, POOL, member(f"run.{name}"))),
                (
                    f"message {name}",
                    functools.partial(store.record_message, POOL, *message_pair(f"m.{name}")),
                ),
                (f"event {name}", functools.partial(store.next_event_sequence, POOL)),
            ]
            for call, run in calls:
                try:
                    value = run()
                    outcome = "ok"
                except AgentError as error:
                    outcome = "unknown" if error.outcome_unknown else "failed"
                    value = None
                with lock:
                    results[call] = outcome
                    if call.startswith("event") and isinstance(value, int):
                        events.append(value)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    scene.proxy.stop_losing()
    assert not any(thread.is_alive() for thread in threads)
    assert scene.proxy.lost >= 5, "the proxy lost too few replies to test anything"

    records = list(stores[0].watch(POOL))
    assert [r.cursor.sequence for r in records] == list(range(1, len(records) + 1))
    written = Counter()
    for record in records:
        payload = record.payload
        if payload.type == "member_joined":
            written[f"join {payload.member.run_id.removeprefix('run.')}"] += 1
        elif payload.type == "run_message":
            written[f"message {payload.stored.message.message_id.removeprefix('m.')}"] += 1
    assert max(written.values()) == 1, "a record was written twice"
    for call, outcome in results.items():
        if call.startswith("event"):
            continue
        if outcome == "ok":
            assert written[call] == 1, call
        elif outcome == "failed":
            assert written[call] == 0, call
    assert len(events) == len(set(events)), "an event sequence was handed out twice"
    if all(outcome == "ok" for call, outcome in results.items() if call.startswith("event")):
        assert sorted(events) == list(range(1, len(events) + 1)), "a number was skipped"
    assert stores[0].verify().ok
    counts = Counter(results.values())
    print(f"calls {len(results)}, outcomes {dict(counts)}, replies lost {scene.proxy.lost}")


def test_lost_replies_are_logged(scene: Scene, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agent_pool_store")
    store = scene.store()
    store.open_pool(POOL, EQUAL_CONFIG)
    scene.proxy.lose_replies(one_statement_append)
    store.join_member(POOL, member("run.logged"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"pool {POOL!r}: the reply to an append was lost; it landed at 2"]
