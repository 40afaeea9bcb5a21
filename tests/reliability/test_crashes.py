"""Writer processes killed with SIGKILL at random moments leave a consistent database.

Each round starts writer processes (plain ``subprocess.Popen``) doing mixed operations on a
shared pool and on a pool of their own, then kills each with SIGKILL after a random delay,
mid-operation. After every round the database must open, pass SQLite's
``PRAGMA integrity_check``, pass ``store.verify()`` (every record has its projection updates
and no projection update lacks its record), keep every pool's cursors 1..N, still hold every
operation a writer had acknowledged before it died, and take new writes at last + 1.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from agent_pool_store import AgentPoolMember, AgentPoolStoreRecord, open_store
from tests.reliability.test_concurrent_writers import key_of
from tests.reliability.workers import (
    EQUAL_CONFIG,
    STRESS,
    Child,
    Children,
    Database,
    read_acks,
    report_figures,
)

ROUNDS = 3 * STRESS
WRITERS = 2
SHARED = "pool.crash"
KILL_AFTER = (0.1, 0.8)
"""Seconds after the start (or the previous kill) at which each writer is killed."""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300 * STRESS)]


def sqlite_integrity(path: str) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return [row[0] for row in connection.execute("PRAGMA integrity_check")]
    finally:
        connection.close()


def check_acknowledged(
    pool: str, log: list[AgentPoolStoreRecord], acks: list[dict[str, Any]]
) -> list[int]:
    """Every acknowledged append is in the log where its caller was told; the events."""
    events = []
    for ack in acks:
        if "event" in ack:
            events.append(ack["event"])
            continue
        assert ack["seq"] <= len(log), f"acknowledged seq {ack['seq']} of {pool} was lost"
        record = log[ack["seq"] - 1]
        assert (record.payload.type, key_of(record)) == (ack["kind"], ack["key"]), ack
    assert len(events) == len(set(events)), f"an event sequence of {pool} was handed out twice"
    return events


def test_writers_killed_at_random_moments(database: Database, tmp_path: Path) -> None:
    rng = random.Random()  # timing only
    own = [f"pool.crash.own{index}" for index in range(WRITERS)]
    pools = [SHARED, *own]
    acks: dict[str, list[dict[str, Any]]] = {pool: [] for pool in pools}
    kills = 0
    with open_store(database.url) as store:
        for pool in pools:
            store.open_pool(pool, EQUAL_CONFIG)

    def spawn_round(round_: int) -> tuple[list[Child], list[Path]]:
        ack_files = [tmp_path / f"round{round_}.writer{index}.acks" for index in range(WRITERS)]
        group = [
            children.spawn(
                "crash_writer",
                f"round{round_}.writer{index}",
                url=database.url,
                tag=f"k{round_}.{index}",
                seed=100 * round_ + index,
                pools=[SHARED, own[index]],
                acks=str(ack_files[index]),
                max_seconds=120,
            )
            for index in range(WRITERS)
        ]
        return group, ack_files

    with Children(tmp_path) as children:
        upcoming = spawn_round(0)
        for round_ in range(ROUNDS):
            group, ack_files = upcoming
            children.barrier(group)
            if round_ + 1 < ROUNDS:  # the next round's writers start up meanwhile
                upcoming = spawn_round(round_ + 1)
            rng.shuffle(group)
            for child in group:
                time.sleep(rng.uniform(*KILL_AFTER))
                running = child.process.poll() is None
                assert running, f"{child.label} exited before it was killed:\n{child.stderr()}"
                child.kill()
                kills += 1
            for pool, entries in check_round(database, round_, pools, ack_files).items():
                acks[pool].extend(entries)

    acknowledged = sum(len(entries) for entries in acks.values())
    assert acknowledged, "the writers did nothing before they were killed"
    with open_store(database.url) as store:  # every round's acknowledgements still hold
        logs = {pool: list(store.watch(pool)) for pool in pools}
        for pool, log in logs.items():
            check_acknowledged(pool, log, acks[pool])
        assert store.verify().ok
    records = sum(len(log) for log in logs.values())
    report_figures(
        "crashes",
        database.dialect,
        rounds=ROUNDS,
        writers_per_round=WRITERS,
        kills=kills,
        acknowledged_operations=acknowledged,
        records=records,
    )


def check_round(
    database: Database, round_: int, pools: list[str], ack_files: list[Path]
) -> dict[str, list[dict[str, Any]]]:
    """The database after a round of kills; the round's acknowledgements per pool."""
    acks: dict[str, list[dict[str, Any]]] = {pool: [] for pool in pools}
    for path in ack_files:
        for ack in read_acks(path):
            assert "error" not in ack, ack["error"]["traceback"]
            acks[ack["pool"]].append(ack)

    if database.dialect == "sqlite":
        assert sqlite_integrity(database.raw_target) == ["ok"]
    with open_store(database.url) as store:
        report = store.verify()
        assert report.ok, str(report)
        for pool in pools:
            log = list(store.watch(pool))
            assert [r.cursor.sequence for r in log] == list(range(1, len(log) + 1)), pool
            events = check_acknowledged(pool, log, acks[pool])
            member = AgentPoolMember(run_id=f"run.resumed.{round_}", agent_id="agent.r")
            assert store.join_member(pool, member).sequence == len(log) + 1
            assert store.next_event_sequence(pool) > max(events, default=0)
        assert store.verify().ok
    if database.dialect == "sqlite":
        assert sqlite_integrity(database.raw_target) == ["ok"]
    return acks
