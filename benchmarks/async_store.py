"""``python -m benchmarks.async_store``: the asyncio store beside the sync one, in one run.

Three measurements per dialect (SQLite: a file opened by URL, whose writes run in writer
threads; PostgreSQL through psycopg's ``AsyncConnection``), each interleaved with its sync
counterpart:

- **Event-loop gaps.** A heartbeat coroutine sleeps 1 ms at a time and records how late it
  wakes while 200 operations run concurrently (appends to small pools, look-ups and snapshots
  of a pool of 10,000 messages): through the async store, and through the sync store called
  inline from the same loop (what an application without the async store does). CPython's
  cyclic garbage collector stops every thread while it runs, and a snapshot of 10,000
  messages is about 310,000 objects it must trace; its pauses are timed (``gc.callbacks``)
  and each gap is also given without them, which is the longest the store's own code held
  the loop. A third variant takes the snapshots as ``snapshot_json`` (the wire JSON from the
  stored fragments, no model per message), as a web handler serving them would.
- **Concurrency on one loop.** Appends per second of 8 tasks, each appending to a pool of its
  own, against one task, and against 8 threads using the sync store.
- **Cost.** Wall time per ``record_message`` of the async store against the sync one, and
  the same ratio for the raw drivers (one row per durable transaction, no library): sqlite3
  against aiosqlite, psycopg's ``Connection`` against its ``AsyncConnection``. That is what
  leaving the thread costs on this machine before any library code runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import statistics
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import psycopg
from sqlalchemy.engine import URL, make_url

from agent_pool_store import (
    AgentPoolStoreConfig,
    AsyncSqlAgentPoolStore,
    SqlAgentPoolStore,
    open_async_store,
    open_store,
)
from benchmarks import payloads, raw_driver
from benchmarks.databases import (
    PG_ADMIN_URL,
    bulk_insert,
    on_each_dialect,
    postgresql_problem,
)
from benchmarks.machine import describe

BIG_POOL = "pool.bench.async.big"


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does (``--quick`` makes everything small)."""

    big_messages: int = 10_000
    operations: int = 200
    snapshots: int = 20
    tasks: int = 8
    appends_per_task: int = 300
    cost_appends: int = 300
    gap_rounds: int = 3
    rounds: int = 5


QUICK = Sizes(
    big_messages=300,
    operations=40,
    snapshots=4,
    appends_per_task=20,
    cost_appends=30,
    gap_rounds=1,
    rounds=1,
)


def _fresh() -> str:
    return uuid.uuid4().hex[:10]


def async_url(url: URL) -> str:
    """The asyncio form of a benchmark database URL."""
    driver = "sqlite+aiosqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return url.set(drivername=driver).render_as_string(hide_password=False)


# --- event-loop gaps --------------------------------------------------------------------------


@dataclass
class Gaps:
    """The heartbeat's gaps while a load ran, and the collector's pauses among them."""

    gaps: list[float]
    """Seconds between wake-ups (each asked for 1 ms)."""
    own: list[float]
    """The same gaps less the time the cyclic garbage collector ran within them."""
    collections: list[float]
    """Seconds of each collection."""


async def _gaps_while(load: Callable[[], Awaitable[None]]) -> Gaps:
    """The heartbeat's gaps while ``load`` runs, with the collector's pauses timed."""
    gaps: list[float] = []
    own: list[float] = []
    pauses: list[tuple[float, float]] = []
    started: list[float] = []
    done = asyncio.Event()

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            pauses.append((started[0], time.perf_counter()))

    async def beat() -> None:
        last = time.perf_counter()
        seen = 0  # pauses before this one ended before ``last``
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            collector = sum(min(end, now) - max(start, last) for start, end in pauses[seen:])
            seen = len(pauses)
            gaps.append(now - last)
            own.append(now - last - max(0.0, collector))
            last = now

    gc.callbacks.append(timed)
    try:
        beating = asyncio.create_task(beat())
        await asyncio.sleep(0.01)
        await load()
        done.set()
        await beating
    finally:
        gc.callbacks.remove(timed)
    return Gaps(gaps, own, [end - start for start, end in pauses])


def _mix(sizes: Sizes) -> list[str]:
    """The kinds of the concurrent operations: appends, look-ups, snapshots of the big pool."""
    others = sizes.operations - sizes.snapshots
    return ["snapshot"] * sizes.snapshots + ["append", "look_up"] * (others // 2)


async def _async_load(
    store: AsyncSqlAgentPoolStore, sizes: Sizes, pools: list[str], *, as_json: bool = False
) -> None:
    async def one(index: int, kind: str) -> None:
        if kind == "snapshot" and as_json:
            await store.snapshot_json(BIG_POOL)
        elif kind == "snapshot":
            await store.snapshot(BIG_POOL)
        elif kind == "append":
            await store.record_message(pools[index % len(pools)], *payloads.small_message(_fresh()))
        else:
            await store.message_receipt(BIG_POOL, f"idem.message.{index % 100}")

    await asyncio.gather(*(one(index, kind) for index, kind in enumerate(_mix(sizes))))


async def _inline_load(store: SqlAgentPoolStore, sizes: Sizes, pools: list[str]) -> None:
    for index, kind in enumerate(_mix(sizes)):
        if kind == "snapshot":
            store.snapshot(BIG_POOL)
        elif kind == "append":
            store.record_message(pools[index % len(pools)], *payloads.small_message(_fresh()))
        else:
            store.message_receipt(BIG_POOL, f"idem.message.{index % 100}")
        await asyncio.sleep(0)  # an await between calls, as application code would have


# --- concurrency --------------------------------------------------------------------------


async def _async_rate(store: AsyncSqlAgentPoolStore, tasks: int, appends: int) -> float:
    pools = [f"pool.bench.async.rate.{_fresh()}" for _ in range(tasks)]
    await asyncio.gather(*(store.open_pool(pool, AgentPoolStoreConfig()) for pool in pools))

    async def appender(pool: str) -> None:
        for _ in range(appends):
            await store.record_message(pool, *payloads.small_message(_fresh()))

    started = time.perf_counter()
    await asyncio.gather(*(appender(pool) for pool in pools))
    return tasks * appends / (time.perf_counter() - started)


def _thread_rate(store: SqlAgentPoolStore, threads: int, appends: int) -> float:
    pools = [f"pool.bench.async.rate.{_fresh()}" for _ in range(threads)]
    for pool in pools:
        store.open_pool(pool, AgentPoolStoreConfig())
    barrier = threading.Barrier(threads + 1)

    def appender(pool: str) -> None:
        barrier.wait()
        for _ in range(appends):
            store.record_message(pool, *payloads.small_message(_fresh()))

    workers = [threading.Thread(target=appender, args=(pool,)) for pool in pools]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * appends / (time.perf_counter() - started)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- the raw drivers' async cost -----------------------------------------------------------

RAW_POOL = "pool.bench.async.raw"


class RawAppender:
    """One row per durable transaction, no library: a sync and an async connection."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.sync = raw_driver.connect(url)
        self.payload = payloads.small_message("raw")[0].model_dump_json()
        self.seq = 0
        self._async: Any = None

    async def open(self) -> None:
        if self.url.get_backend_name() == "sqlite":
            assert self.url.database is not None
            self._async = await aiosqlite.connect(self.url.database, isolation_level=None)
            for pragma in ("busy_timeout = 10000", "journal_mode = WAL", "synchronous = FULL"):
                await self._async.execute(f"PRAGMA {pragma}")
        else:
            conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._async = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)

    def append(self) -> None:
        self.seq += 1
        self.sync.insert_one(RAW_POOL, self.seq, "run_message", self.payload)

    async def append_async(self) -> None:
        self.seq += 1
        row = (RAW_POOL, self.seq, "run_message", self.payload)
        if self.url.get_backend_name() == "sqlite":
            await self._async.execute("BEGIN IMMEDIATE")
            await self._async.execute(raw_driver.INSERT, row)
        else:
            await self._async.execute("BEGIN")
            await self._async.execute(raw_driver.INSERT.replace("?", "%s"), row)
        await self._async.execute("COMMIT")

    async def close(self) -> None:
        self.sync.close()
        if self._async is not None:
            await self._async.close()


# --- one dialect ------------------------------------------------------------------------------


async def _per_call(calls: int, call: Callable[[], object]) -> float:
    """Seconds per call of ``call`` (awaited when it returns an awaitable)."""
    started = time.perf_counter()
    for _ in range(calls):
        pending = call()
        if inspect.isawaitable(pending):
            await pending
    return (time.perf_counter() - started) / calls


async def measure(url: URL, sizes: Sizes, freeze_gc: bool = False) -> dict[str, Any]:
    """Every figure of one dialect, as ``{name: value}`` (milliseconds, rates, ratios)."""
    # not kept: its models would stay in the heap the collector traces, and its pauses with it
    bulk_insert(url, payloads.status_history(sizes.big_messages, 1).rows(BIG_POOL))
    sync = open_store(url, lock_timeout=30)
    store = await open_async_store(async_url(url), lock_timeout=60)
    raw = RawAppender(url)
    try:
        await raw.open()
        sync.snapshot(BIG_POOL)  # catch the bulk-inserted log up once
        pools = [f"pool.bench.async.small.{index}" for index in range(10)]
        for pool in pools:
            sync.open_pool(pool, AgentPoolStoreConfig())
        if freeze_gc:
            gc.collect()
            gc.freeze()
        gaps: dict[str, list[Gaps]] = {"async": [], "async, snapshot_json": [], "sync inline": []}
        rates: dict[str, list[float]] = {"1 task": [], "8 tasks": [], "8 threads (sync)": []}
        costs: dict[str, list[float]] = {
            "sync": [],
            "async": [],
            "raw sync driver": [],
            "raw async driver": [],
        }
        for _ in range(sizes.gap_rounds):
            gaps["async"].append(await _gaps_while(lambda: _async_load(store, sizes, pools)))
            gaps["async, snapshot_json"].append(
                await _gaps_while(lambda: _async_load(store, sizes, pools, as_json=True))
            )
            gaps["sync inline"].append(await _gaps_while(lambda: _inline_load(sync, sizes, pools)))
        for _ in range(sizes.rounds):
            rates["1 task"].append(await _async_rate(store, 1, sizes.appends_per_task))
            rates["8 tasks"].append(await _async_rate(store, sizes.tasks, sizes.appends_per_task))
            rates["8 threads (sync)"].append(
                await asyncio.to_thread(_thread_rate, sync, sizes.tasks, sizes.appends_per_task)
            )
            calls: dict[str, Callable[[], object]] = {
                "sync": lambda: sync.record_message(pools[0], *payloads.small_message(_fresh())),
                "async": lambda: store.record_message(pools[0], *payloads.small_message(_fresh())),
                "raw sync driver": raw.append,
                "raw async driver": raw.append_async,
            }
            for name, call in calls.items():
                costs[name].append(await _per_call(sizes.cost_appends, call))
        figures: dict[str, Any] = {}
        for name, measured in gaps.items():
            every = [gap for run in measured for gap in run.gaps]
            own = [gap for run in measured for gap in run.own]
            collections = [pause for run in measured for pause in run.collections]
            figures[f"largest gap, {name} (ms)"] = max(every) * 1e3
            figures[f"p99 gap, {name} (ms)"] = _percentile(every, 0.99) * 1e3
            figures[f"largest gap less the collector, {name} (ms)"] = max(own) * 1e3
            figures[f"p99 gap less the collector, {name} (ms)"] = _percentile(own, 0.99) * 1e3
            figures[f"longest collection, {name} (ms)"] = max(collections, default=0.0) * 1e3
        for name, values in rates.items():
            figures[f"appends/s, {name}"] = statistics.median(values)
        figures["8 tasks / 1 task"] = figures["appends/s, 8 tasks"] / figures["appends/s, 1 task"]
        figures["8 tasks / 8 threads"] = (
            figures["appends/s, 8 tasks"] / figures["appends/s, 8 threads (sync)"]
        )
        for name, values in costs.items():
            figures[f"append, {name} (µs)"] = statistics.median(values) * 1e6
        figures["async / sync append"] = (
            figures["append, async (µs)"] / figures["append, sync (µs)"]
        )
        figures["raw async / raw sync driver"] = (
            figures["append, raw async driver (µs)"] / figures["append, raw sync driver (µs)"]
        )
        return figures
    finally:
        sync.close()
        await store.close()
        await raw.close()
        gc.unfreeze()


def run(sizes: Sizes, *, freeze_gc: bool = False) -> dict[str, dict[str, Any]]:
    """Measure SQLite, and PostgreSQL when its server is reachable."""
    return on_each_dialect(lambda url: asyncio.run(measure(url, sizes, freeze_gc)))


TARGETS = {
    "largest gap, async (ms)": "≤ 10",
    "8 tasks / 1 task": "≥ 2 (PostgreSQL)",
    "8 tasks / 8 threads": "≥ 0.9 (PostgreSQL)",
    "async / sync append": "≤ 1.3",
}
"""The issue's targets, beside the figures they apply to."""


def render(results: dict[str, dict[str, Any]], machine: dict[str, str]) -> str:
    """The Markdown page: the machine, then one table of every figure per dialect."""
    dialects = list(results)
    lines = [
        "# Benchmarks: the asyncio store",
        "",
        "Written by `python -m benchmarks.async_store --output docs/benchmarks-async.md`; do not "
        "edit by hand. What each figure measures, and what the figures mean, is in "
        "[async.md](async.md#what-it-costs).",
        "",
        "|  |  |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in machine.items()),
        "",
        "| figure | " + " | ".join(dialects) + " | target |",
        "|---|" + "---:|" * len(dialects) + "---|",
    ]
    for name in results[dialects[0]]:
        cells = " | ".join(f"{results[d][name]:,.2f}" for d in dialects)
        lines.append(f"| {name} | {cells} | {TARGETS.get(name, '')} |")
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> None:
    """Run and print the figures (``--quick``: tiny sizes, to check it works)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--freeze-gc",
        action="store_true",
        help="gc.freeze() once the stores are open (what long-running servers often do): "
        "the cyclic collector then skips everything made before, and its pauses shrink",
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown page here")
    arguments = parser.parse_args(argv)
    results = run(QUICK if arguments.quick else Sizes(), freeze_gc=arguments.freeze_gc)
    mode = "quick" if arguments.quick else "full"
    page = render(results, describe(mode, None if postgresql_problem() else make_url(PG_ADMIN_URL)))
    print(page)
    if arguments.output is not None:
        arguments.output.write_text(page, encoding="utf-8")


if __name__ == "__main__":
    main()
