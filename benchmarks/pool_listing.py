"""``python -m benchmarks.pool_listing``: listing pools against the number of pools.

For 100, 10,000 and 100,000 pools (``--quick``: 100 and 10,000), on SQLite and PostgreSQL,
each pool opened with one member (two records), one pool in ten idle for 40 days:

- ``pools()``: the whole listing, in µs per pool (one statement per page of 1,000), and the
  CPU time this process spent on it (on SQLite that includes the database's work; the
  wall time also counts waiting for a busy machine);
- the first page, ``pools(limit=1000)``: how long ``agent-pool-store pools`` waits before it
  prints;
- ``pools(idle_for=30 days)``: the idle pools, in µs per pool in the database;
- the listing as it was before (a unit of work per pool, as ``pools()`` caught each pool up
  in turn), on a sample of 200 pools, in µs per pool, for scale;
- ``snapshot`` of one pool, in µs: an operation on one pool stays flat in the number of pools.

Times are medians of the rounds (one round with ``--quick``). The pools are written straight
into the tables (records, pool rows, member rows), as the store would have left them.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from agent_pool_store import AgentPoolMember, AgentPoolStoreConfig, open_store
from agent_pool_store.domain import MemberJoined, PoolOpened
from agent_pool_store.sql import admin
from agent_pool_store.sql.schema import MemberRow, PoolRow, RecordRow, table_of
from benchmarks.databases import on_each_dialect, vacuum_analyze
from benchmarks.report import print_tables

SIZES = (100, 10_000, 100_000)
QUICK_SIZES = (100, 10_000)
SAMPLE = 200
"""Pools listed the way it was done before (a unit of work each), for scale."""
BATCH = 5_000
IDLE_EVERY = 10


def _pool(index: int) -> str:
    return f"pool.bench.listing.{index:07d}"


def populate(url: URL, count: int) -> None:
    """``count`` pools, each opened with one member, every tenth idle for 40 days."""
    config = AgentPoolStoreConfig()
    member = AgentPoolMember(run_id="run.a", agent_id="agent.a")
    opened = PoolOpened(config=config).model_dump_json()
    joined = MemberJoined(member=member).model_dump_json()
    now, long_ago = datetime.now(UTC), datetime.now(UTC) - timedelta(days=40)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for start in range(0, count, BATCH):
                pools = [_pool(index) for index in range(start, min(count, start + BATCH))]
                connection.execute(
                    table_of(RecordRow).insert(),
                    [
                        {"pool_id": pool, "seq": seq, "kind": kind, "payload_json": payload}
                        for pool in pools
                        for seq, kind, payload in (
                            (1, "pool_opened", opened),
                            (2, "member_joined", joined),
                        )
                    ],
                )
                connection.execute(
                    table_of(PoolRow).insert(),
                    [
                        {
                            "pool_id": pool,
                            "config_json": config.model_dump_json(),
                            "created": False,
                            "projected_seq": 2,
                            "last_append_at": long_ago
                            if (start + offset) % IDLE_EVERY == 0
                            else now,
                        }
                        for offset, pool in enumerate(pools)
                    ],
                )
                connection.execute(
                    table_of(MemberRow).insert(),
                    [
                        {
                            "pool_id": pool,
                            "run_id": "run.a",
                            "member_json": member.model_dump_json(),
                            "seq": 2,
                        }
                        for pool in pools
                    ],
                )
    finally:
        engine.dispose()
    vacuum_analyze(url)


def _seconds(
    call: Callable[[], object], rounds: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    times = []
    for _ in range(rounds):
        started = clock()
        call()
        times.append(clock() - started)
    return statistics.median(times)


def measure(url: URL, count: int, rounds: int) -> dict[str, Any]:
    """The figures of a database of ``count`` pools."""
    populate(url, count)
    store = open_store(url, lock_timeout=60)
    try:
        listed = store.pools()
        assert len(listed) == count, (len(listed), count)
        idle = store.pools(idle_for=timedelta(days=30))
        assert len(idle) == len(range(0, count, IDLE_EVERY)), len(idle)
        runner: Any = store._runner  # the way pools() read each pool before, for scale
        sample = [summary.pool_id for summary in listed[:SAMPLE]]
        before = _seconds(lambda: [admin._caught_up(runner, pool) for pool in sample], rounds)
        pool = _pool(count // 2)
        store.snapshot(pool)
        snapshot = _seconds(lambda: [store.snapshot(pool) for _ in range(50)], rounds) / 50
        return {
            "pools": count,
            "pools() µs/pool": _seconds(store.pools, rounds) / count * 1e6,
            "pools() CPU µs/pool": _seconds(store.pools, rounds, time.process_time) / count * 1e6,
            "first page ms": _seconds(lambda: store.pools(limit=1000), rounds) * 1e3,
            "idle_for µs/pool": _seconds(lambda: store.pools(idle_for=timedelta(days=30)), rounds)
            / count
            * 1e6,
            "unit per pool (before) µs/pool": before / len(sample) * 1e6,
            "snapshot µs": snapshot * 1e6,
        }
    finally:
        store.close()


def run(sizes: tuple[int, ...], rounds: int) -> dict[str, list[dict[str, Any]]]:
    """SQLite, and PostgreSQL when its server is reachable; a fresh database per size."""
    results: dict[str, list[dict[str, Any]]] = {}
    for size in sizes:
        for dialect, row in on_each_dialect(
            functools.partial(measure, count=size, rounds=rounds)
        ).items():
            results.setdefault(dialect, []).append(row)
    return results


def main(argv: list[str] | None = None) -> None:
    """Run and print one Markdown table per dialect."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args(argv)
    results = run(QUICK_SIZES if arguments.quick else SIZES, 1 if arguments.quick else 3)
    print_tables(results, " (quick)" if arguments.quick else "")


if __name__ == "__main__":
    main()
