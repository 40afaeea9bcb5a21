"""Many writer processes on one database: no caller sees an error, every log stays 1..N.

Eight processes each perform hundreds of mixed operations (join, leave, record_message,
record_wake, next_event_sequence; times ``AGENT_POOL_STORE_STRESS``), each on the pool all of them
share or on a pool of its own, chosen at random, after opening both with equal configs at the
same instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_pool_store import (
    AgentPoolMember,
    AgentPoolStoreRecord,
    MemberJoined,
    MemberLeft,
    PoolState,
    RunMessageRecorded,
    WakeRecorded,
)
from tests.reliability.workers import (
    STRESS,
    Children,
    Database,
    percentile,
    report_figures,
)

PROCESSES = 8
OPERATIONS = 200 * STRESS
"""Operations per process (besides the two open_pool calls)."""
SHARED = "pool.shared"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300 * STRESS)]


def key_of(record: AgentPoolStoreRecord) -> str:
    """The identifier a writer logged for the record it appended."""
    payload = record.payload
    if isinstance(payload, MemberJoined | MemberLeft):
        return payload.member.run_id
    if isinstance(payload, RunMessageRecorded):
        return payload.stored.message.message_id
    if isinstance(payload, WakeRecorded):
        return payload.stored.condition.condition_id
    return ""


def check_pool(
    pool: str, records: list[AgentPoolStoreRecord], results: list[dict[str, Any]]
) -> tuple[int, int]:
    """Cursors and event sequences of one pool; returns (records, event sequences)."""
    assert [r.cursor.sequence for r in records] == list(range(1, len(records) + 1)), pool
    kinds = [record.payload.type for record in records]
    assert kinds[:1] == ["pool_opened"] and kinds.count("pool_opened") == 1, pool

    returned: list[int] = []
    events: list[int] = []
    for result in results:
        entries = result["log"].get(pool, [])
        mine = [seq for seq, _, _ in entries]
        assert mine == sorted(set(mine)), f"{result['tag']}: cursors not increasing on {pool}"
        returned.extend(mine)
        for seq, kind, key in entries:  # the cursor points at the record the caller wrote
            record = records[seq - 1]
            assert (record.payload.type, key_of(record)) == (kind, key), (pool, seq)
        own_events = result["events"].get(pool, [])
        assert own_events == sorted(set(own_events)), f"{result['tag']}: events on {pool}"
        events.extend(own_events)
        if pool in result["opened"]:
            assert 1 <= result["opened"][pool] <= len(records)
    assert len(returned) == len(set(returned)), f"a cursor was handed out twice on {pool}"
    assert sorted(returned) == list(range(2, len(records) + 1)), f"unclaimed records on {pool}"
    assert len(events) == len(set(events)), f"an event sequence was handed out twice on {pool}"
    assert sorted(events) == list(range(1, len(events) + 1)), f"event gap on {pool}"
    return len(records), len(events)


def test_concurrent_mixed_writers(database: Database, tmp_path: Path) -> None:
    own = [f"pool.own.w{index}" for index in range(PROCESSES)]
    with Children(tmp_path) as children:
        for index in range(PROCESSES):
            children.spawn(
                "mixed_writer",
                f"writer{index}",
                url=database.url,
                tag=f"w{index}",
                seed=index,
                flavour="async" if index % 2 else "sync",
                pools=[SHARED, own[index]],
                count=OPERATIONS,
            )
        children.barrier()
        results = children.results()

    errors = [error for result in results for error in result["errors"]]
    assert errors == [], "\n".join(error["traceback"] for error in errors[:3])
    assert sum(result["operations"] for result in results) == PROCESSES * OPERATIONS

    store = database.open()
    counted: dict[str, tuple[int, int]] = {}
    for pool in [SHARED, *own]:
        records = list(store.watch(pool))
        counted[pool] = check_pool(pool, records, results)
        replay = PoolState.replay((r.cursor.sequence, r.payload) for r in records)
        assert store.snapshot(pool) == replay.snapshot(pool)

    report = store.verify()
    assert report.ok, str(report)
    assert {SHARED, *own} <= set(report.pools)

    # the store carries on from where the writers left off
    records, events = counted[SHARED]
    member = AgentPoolMember(run_id="run.after", agent_id="agent.after")
    assert store.join_member(SHARED, member).sequence == records + 1
    assert store.next_event_sequence(SHARED) == events + 1

    started = min(result["started"] for result in results)
    finished = max(result["finished"] for result in results)
    latencies = [latency for result in results for latency in result["latencies"]]
    operations = len(latencies) + 2 * PROCESSES  # and the open_pool calls
    report_figures(
        "concurrent_writers",
        database.dialect,
        processes=PROCESSES,
        operations_per_process=OPERATIONS,
        operations=operations,
        shared_pool_records=records,
        shared_pool_events=events,
        records_all_pools=sum(count for count, _ in counted.values()),
        seconds=round(finished - started, 2),
        ops_per_second=round(operations / (finished - started)),
        p50_ms=round(1000 * percentile(latencies, 0.5), 1),
        p99_ms=round(1000 * percentile(latencies, 0.99), 1),
        max_ms=round(1000 * max(latencies), 1),
    )
