"""A store used before ``fork`` works in the child and in the parent, each on its own
connections, as gunicorn / Celery pre-fork workers and ``multiprocessing`` (fork) use it.

On SQLite and PostgreSQL: a parent that has used its store (its pool holds a connection; on
PostgreSQL the store knows the pool, so appends take the one-statement path) forks; the
child and the parent then append at the same time. Every call in both succeeds, cursors are
unique and together exactly 1..N, each record is there once, ``verify`` is ok. A follower
started in the parent and continued in the child reads the child's records there on a
listening connection of its own (closing it there leaves the parent's registration and
session alone), and the parent's follower still works afterwards.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_pool_store import AgentPoolStoreRecord, open_store
from tests.reliability.test_write_path import member
from tests.reliability.workers import EQUAL_CONFIG, Database

POOL = "pool.fork"
APPENDS = 20


def in_child(path: Path, work: Callable[[], Any]) -> int:
    """Fork; the child runs ``work`` and writes its result (or its error) to ``path``."""
    pid = os.fork()
    if pid == 0:  # the child
        try:
            result = {"ok": True, "value": work()}
        except BaseException:  # everything, reported to the parent
            result = {"ok": False, "error": traceback.format_exc()}
        try:
            path.write_text(json.dumps(result), encoding="utf-8")
        finally:
            os._exit(0)
    return pid


def child_result(pid: int, path: Path) -> Any:
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result = json.loads(path.read_text(encoding="utf-8"))
    assert result["ok"], result.get("error")
    return result["value"]


def test_a_forked_child_appends_on_connections_of_its_own(
    database: Database, tmp_path: Path
) -> None:
    store = open_store(database.url)
    try:
        store.open_pool(POOL, EQUAL_CONFIG)
        store.join_member(POOL, member("run.before"))
        assert store.snapshot(POOL).cursor.sequence == 2

        def child_work() -> list[int]:
            cursors = [
                store.join_member(POOL, member(f"run.child.{n}")).sequence for n in range(APPENDS)
            ]
            assert len(store.snapshot(POOL).members) >= APPENDS + 1
            return cursors

        path = tmp_path / "child.json"
        pid = in_child(path, child_work)
        parent = [
            store.join_member(POOL, member(f"run.parent.{n}")).sequence for n in range(APPENDS)
        ]
        child = child_result(pid, path)
        total = 2 + 2 * APPENDS
        assert sorted(parent + child) == list(range(3, total + 1))
        records = list(store.watch(POOL))
        assert [r.cursor.sequence for r in records] == list(range(1, total + 1))
        joined = [r.payload.member.run_id for r in records if r.payload.type == "member_joined"]
        assert len(joined) == len(set(joined)) == 1 + 2 * APPENDS
        assert store.verify().ok
    finally:
        store.close()


def test_a_follower_continued_in_a_forked_child_listens_on_its_own(
    database: Database, tmp_path: Path
) -> None:
    store = open_store(database.url)
    try:
        store.open_pool(POOL, EQUAL_CONFIG)
        follower = store.follow(POOL, timeout=10)
        first: AgentPoolStoreRecord = next(follower)  # the waiter's connection is open now
        assert first.cursor.sequence == 1

        def child_work() -> list[int]:
            seen = []
            for n in range(3):
                store.join_member(POOL, member(f"run.child.{n}"))
            for record in follower:
                seen.append(record.cursor.sequence)
                if record.cursor.sequence == 4:
                    break
            follower.close()
            return seen

        path = tmp_path / "child.json"
        pid = in_child(path, child_work)
        assert child_result(pid, path) == [2, 3, 4]
        if database.dialect == "postgresql":  # the parent's listening session is untouched
            followers = database.raw().execute(
                "SELECT count(*) FROM agent_pool_store_followers WHERE pool_id = ?", (POOL,)
            )
            assert followers == [(1,)]
        store.join_member(POOL, member("run.parent"))
        seen = []
        for record in follower:
            seen.append(record.cursor.sequence)
            if record.cursor.sequence == 5:
                break
        follower.close()
        assert seen == [2, 3, 4, 5]
        assert store.verify().ok
    finally:
        store.close()
