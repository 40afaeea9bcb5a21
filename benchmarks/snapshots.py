"""``python -m benchmarks.snapshots``: a snapshot against the number of messages in the pool.

For pools of 1,000, 10,000 and 50,000 messages (``--quick``: 200 and 1,000), on SQLite and
PostgreSQL, interleaved in one run:

- ``snapshot(pool_id)``, which builds the snapshot's pydantic models;
- ``snapshot_json(pool_id)``, which assembles the same wire JSON from the stored fragments;
- ``model_dump_json()`` of a snapshot already built, for scale.

Each is timed with the cyclic garbage collector on (as an application runs), as the median of
the rounds, in µs per message. Peak memory is measured apart (``tracemalloc`` slows what it
traces), against the size of the snapshot's JSON.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL

from agent_pool_store import SqlAgentPoolStore, open_store
from benchmarks import payloads
from benchmarks.databases import (
    bulk_insert,
    on_each_dialect,
)
from benchmarks.report import print_tables
from benchmarks.results import SnapshotSizeResult

SIZES = (1_000, 10_000, 50_000)
QUICK_SIZES = (200, 1_000)


def _seconds(call: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _peak_bytes(call: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _pool(size: int) -> str:
    return f"pool.bench.snapshots.{size}"


def measure(store: SqlAgentPoolStore, size: int, rounds: int) -> dict[str, Any]:
    """The figures of one pool of ``size`` messages."""
    pool = _pool(size)
    built = store.snapshot(pool)
    wire = built.model_dump_json()
    assert store.snapshot_json(pool) == wire
    seconds = {"snapshot": 0.0, "snapshot_json": 0.0, "model_dump_json": 0.0}
    calls: dict[str, Callable[[], object]] = {
        "snapshot": lambda: store.snapshot(pool),
        "snapshot_json": lambda: store.snapshot_json(pool),
        "model_dump_json": built.model_dump_json,
    }
    for name, call in calls.items():  # one round each, in turn, ``rounds`` times
        seconds[name] = _seconds(call, rounds)
    del built
    json_bytes = len(wire.encode())
    return {
        "messages": size,
        "json KiB": json_bytes / 1024,
        **{f"{name} µs/message": value / size * 1e6 for name, value in seconds.items()},
        "snapshot peak / JSON": _peak_bytes(lambda: store.snapshot(pool)) / json_bytes,
        "snapshot_json peak / JSON": _peak_bytes(lambda: store.snapshot_json(pool)) / json_bytes,
    }


def measure_dialect(url: URL, sizes: tuple[int, ...], rounds: int) -> list[dict[str, Any]]:
    """Every size on one database."""
    for size in sizes:
        bulk_insert(url, payloads.status_history(size, 1).rows(_pool(size)))
    store = open_store(url, auto_upgrade=True, lock_timeout=60)
    try:
        for size in sizes:
            store.snapshot(_pool(size))  # catch the bulk-inserted log up once
        return [measure(store, size, rounds) for size in sizes]
    finally:
        store.close()


def measure_results(dialect: str, url: URL, messages: int, rounds: int) -> list[SnapshotSizeResult]:
    """One pool of ``messages`` messages on the database at ``url``, as a result row of the
    main run."""
    (figures,) = measure_dialect(url, (messages,), rounds)
    return [SnapshotSizeResult(dialect, messages, figures)]


def run(sizes: tuple[int, ...], rounds: int) -> dict[str, list[dict[str, Any]]]:
    """SQLite, and PostgreSQL when its server is reachable."""
    return on_each_dialect(lambda url: measure_dialect(url, sizes, rounds))


def main(argv: list[str] | None = None) -> None:
    """Run and print one Markdown table per dialect."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args(argv)
    results = run(QUICK_SIZES if arguments.quick else SIZES, 1 if arguments.quick else 3)
    print_tables(results)


if __name__ == "__main__":
    main()
