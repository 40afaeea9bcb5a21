"""PostgreSQL: where one append's time goes, and how far more writers can scale on this machine.

One writer appends ``record_message`` records back to back; for ours and for the raw driver
the run measures its wall time, the client's CPU time (``time.process_time``) and the
server's (the CPU time of the database's backend processes, read from ``/proc``, so only
when the server runs on this machine). What is left of the wall time is waiting: the commit's
flush to disk and the network.

While an append waits, another writer can use the CPU, so N writers on separate pools can at
best reach ``min(N, cores * wall / (client CPU + server CPU))`` times one writer's rate: that
ceiling is reported beside the multi-writer figures. (More writers than cores also pay for
switching between processes, so measured ratios stay below it.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from agent_pool_store import MessageStatus, PoolOpened
from benchmarks import payloads
from benchmarks.raw_driver import RawConnection
from benchmarks.results import RAW, CpuSplitResult
from benchmarks.workloads import Bench

WARM_UP = 20
"""Appends made before measuring (the store learns the pool; statements get prepared)."""


def backend_cpu_seconds(pids: Iterable[int]) -> float | None:
    """User + system CPU seconds of these server processes, or ``None`` if unreadable."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    except (OSError, IndexError, ValueError):
        return None
    return total / ticks


def database_backends(raw: RawConnection) -> list[int]:
    """The process ids of every client connection to the raw connection's database.

    Autovacuum workers and other server processes are left out: their work is not the
    appends'.
    """
    rows = raw.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND backend_type = 'client backend'"
    )
    return [int(pid) for (pid,) in rows]


def _split(
    backend: str, raw: RawConnection, append: Callable[[int], None], count: int
) -> CpuSplitResult:
    for index in range(WARM_UP):
        append(index)
    pids = database_backends(raw)
    server_before = backend_cpu_seconds(pids)
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    for index in range(WARM_UP, WARM_UP + count):
        append(index)
    wall = time.perf_counter() - wall_start
    client = time.process_time() - cpu_start
    server_after = backend_cpu_seconds(pids)
    server = (
        None
        if server_before is None or server_after is None
        else (server_after - server_before) * 1000 / count
    )
    return CpuSplitResult(backend, count, wall * 1000 / count, client * 1000 / count, server)


def measure_cpu_split(bench: Bench) -> list[CpuSplitResult]:
    """Ours and the raw driver on PostgreSQL, one writer: wall, client CPU, server CPU."""
    store = bench.stores.get("postgresql")
    raw = bench.raws.get("postgresql")
    if store is None or raw is None:
        return []
    count = bench.settings.rounds * bench.settings.append_block * 4
    messages = [
        payloads.stored_message(f"message.split.{index}", MessageStatus.ACCEPTED, index)
        for index in range(WARM_UP + count)
    ]
    pool = "pool.bench.cpu-split"
    store.open_pool(pool, payloads.config())

    def ours(index: int) -> None:
        stored = messages[index].stored
        store.record_message(pool, stored.message, stored.receipt)

    raw_pool = "pool.bench.cpu-split.raw"
    opened = PoolOpened(config=payloads.config())
    raw.insert_one(raw_pool, 1, "pool_opened", opened.model_dump_json())
    texts = [message.model_dump_json() for message in messages]

    def driver(index: int) -> None:
        raw.insert_one(raw_pool, index + 2, "run_message", texts[index])

    return [_split("postgresql", raw, ours, count), _split(RAW["postgresql"], raw, driver, count)]
