"""``python -m benchmarks.profiling``: where our store's time goes (cProfile).

Profiles single-writer ``record_message`` appends, a whole-log ``watch`` and repeated
``snapshot`` calls on a SQLite file in a temporary directory (or, with ``--postgresql``, on a
PostgreSQL database created for the run and dropped afterwards), and prints for each the
time per package (own time summed by where the code lives) and the top functions by own and
by cumulative time. On PostgreSQL, psycopg's ``wait`` is where the client waits for the
server.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from agent_pool_store import MessageStatus, SqlAgentPoolStore, open_store
from benchmarks import payloads
from benchmarks.databases import PG_ADMIN_URL, bulk_insert, postgresql_database, sqlite_database

PACKAGES = (
    ("agent_pool_store", "agent_pool_store"),
    ("sqlalchemy", "sqlalchemy"),
    ("pydantic_core", "pydantic_core"),
    ("pydantic", "pydantic"),
    ("sqlite3", "sqlite3"),
    ("psycopg", "psycopg"),
    ("typing", "typing"),
)


def _package(filename: str, function: str) -> str:
    if filename == "~":  # a built-in: name its owner
        for name, needle in PACKAGES:
            if needle in function:
                return name
        return "builtins"
    for name, needle in PACKAGES:
        if f"/{needle}/" in filename:
            return name
    return "other Python"


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time summed per package, largest first."""
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        totals[_package(filename, function)] += row[2]
    return sorted(totals.items(), key=lambda item: -item[1])


def profile(label: str, work: Callable[[], int], top: int) -> str:
    """Run ``work`` under cProfile; a text report (``work`` returns how many items it did)."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    count = work()
    profiler.disable()
    elapsed = time.perf_counter() - start
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = sum(seconds for _, seconds in by_package(stats))
    out.write(
        f"## {label}: {count:,} in {elapsed:.2f} s under the profiler "
        f"({count / elapsed:,.0f}/s)\n\nown time by package:\n"
    )
    for name, seconds in by_package(stats):
        out.write(f"  {name:16} {seconds:7.3f} s  {seconds / total:6.1%}\n")
    out.write("\n")
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _appends(store: SqlAgentPoolStore, count: int) -> Callable[[], int]:
    pool = "pool.profile.append"
    store.open_pool(pool, payloads.config())
    made = [
        payloads.stored_message(f"message.{index}", MessageStatus.ACCEPTED, index).stored
        for index in range(count)
    ]

    def work() -> int:
        for stored in made:
            store.record_message(pool, stored.message, stored.receipt)
        return count

    return work


def _watch(store: SqlAgentPoolStore, records: int) -> Callable[[], int]:
    pool = "pool.profile.watch"
    bulk_insert(store.url, payloads.build_history(records).rows(pool))
    store.snapshot(pool)  # catch up before profiling

    def work() -> int:
        return sum(1 for _ in store.watch(pool))

    return work


def _snapshots(store: SqlAgentPoolStore, count: int) -> Callable[[], int]:
    pool = "pool.profile.watch"

    def work() -> int:
        for _ in range(count):
            store.snapshot(pool)
        return count

    return work


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling", description=__doc__)
    parser.add_argument("--appends", type=int, default=500, help="record_message calls")
    parser.add_argument("--records", type=int, default=20_000, help="records watched")
    parser.add_argument("--snapshots", type=int, default=200, help="snapshot calls")
    parser.add_argument("--top", type=int, default=25, help="functions listed per table")
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help=f"profile on PostgreSQL (a database created through {PG_ADMIN_URL})",
    )
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        if args.postgresql:
            url, label = stack.enter_context(postgresql_database()), "PostgreSQL"
        else:
            directory = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="agent-pool-profile-")
            )
            url, label = sqlite_database(Path(directory)), "SQLite"
        store = stack.enter_context(open_store(url))
        appends = _appends(store, args.appends)
        watch = _watch(store, args.records)
        print(profile(f"{label} record_message appends", appends, args.top))
        print(profile(f"{label} watch", watch, args.top))
        print(profile(f"{label} snapshot", _snapshots(store, args.snapshots), args.top))


if __name__ == "__main__":
    main()
