"""``python -m benchmarks.embedding``: what running inside a host's transaction costs.

Wall time per ``record_message`` to one pool, in interleaved rounds, on SQLite and
PostgreSQL: the store on an engine it built; the store on the host's engine (no
one-statement path, ``SET LOCAL lock_timeout`` per unit on PostgreSQL); ``store.bind`` with
one host transaction per call (``engine.begin()``: the host's ``BEGIN`` and ``COMMIT`` plus
the view's savepoint and settings); and ``store.bind`` with 20 calls per host transaction.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from agent_pool_store import (
    AgentPoolStoreConfig,
    open_store,
)
from benchmarks import payloads
from benchmarks.databases import postgresql_database, postgresql_problem, sqlite_database

BATCH = 20
"""Calls per host transaction in the batched variant."""


def measure(url: URL, calls: int, rounds: int) -> dict[str, float]:
    """Median seconds per append of each variant, over ``rounds`` interleaved rounds."""
    host_engine = create_engine(url)
    store_on_host = open_store(host_engine)
    store_alone = open_store(url)
    numbers = iter(range(1, 10**9))
    times: dict[str, list[float]] = {}

    def timed(name: str, run: Callable[[str], None]) -> None:
        pool = f"pool.{uuid.uuid4().hex[:8]}"
        store_alone.open_pool(pool, AgentPoolStoreConfig())
        started = time.perf_counter()
        run(pool)
        times.setdefault(name, []).append((time.perf_counter() - started) / calls)

    def alone(pool: str) -> None:
        for _ in range(calls):
            store_alone.record_message(pool, *payloads.small_message(str(next(numbers))))

    def on_host_engine(pool: str) -> None:
        for _ in range(calls):
            store_on_host.record_message(pool, *payloads.small_message(str(next(numbers))))

    def bound_each(pool: str) -> None:
        for _ in range(calls):
            with host_engine.begin() as connection:
                store_on_host.bind(connection).record_message(
                    pool, *payloads.small_message(str(next(numbers)))
                )

    def bound_batched(pool: str) -> None:
        for _ in range(calls // BATCH):
            with host_engine.begin() as connection:
                view = store_on_host.bind(connection)
                for _ in range(BATCH):
                    view.record_message(pool, *payloads.small_message(str(next(numbers))))

    try:
        for _ in range(rounds):
            timed("store, its own engine", alone)
            timed("store, the host's engine", on_host_engine)
            timed("bind, 1 call per host transaction", bound_each)
            timed(f"bind, {BATCH} calls per host transaction", bound_batched)
    finally:
        store_alone.close()
        store_on_host.close()
        host_engine.dispose()
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    """Measure both dialects and print one Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=400, help="appends per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        results["SQLite"] = measure(
            sqlite_database(Path(folder)), arguments.calls, arguments.rounds
        )
    problem = postgresql_problem()
    if problem is None:
        with postgresql_database() as url:
            results["PostgreSQL"] = measure(url, arguments.calls, arguments.rounds)
    else:
        print(f"PostgreSQL skipped: {problem}")
    dialects = list(results)
    print("| variant | " + " | ".join(f"{d} µs/append" for d in dialects) + " |")
    print("|---|" + "---:|" * len(dialects))
    for name in results[dialects[0]]:
        cells = " | ".join(f"{results[d][name] * 1e6:.0f}" for d in dialects)
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
