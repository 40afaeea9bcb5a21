"""``python -m benchmarks.cpu``: CPU per operation, of our process and of the database server.

Every write and look-up of the store, called back to back (at least 2,000 times; ``--quick``:
200) on one pool of each dialect, in interleaved rounds. For each: wall time, and our
process's user and system CPU (``resource.getrusage``: user time leaves out the kernel's share
of an ``fsync``); on PostgreSQL also the server backends' CPU, read from ``/proc`` as
:mod:`benchmarks.cpu_split` does (only when the server runs on this machine).

SQLite is measured twice: as deployed (``synchronous=FULL``) and with ``synchronous=OFF``.
On the 2-core VM this was written on, waiting for each commit's ``fsync`` adds about 240 µs
of *user* CPU to an append of ours (its caches are cold when it wakes), against 20 to 35 µs for
raw ``sqlite3``'s tiny loop; the second figure is our code's own cost.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from agent_pool_store import (
    AgentPoolMember,
    AgentPoolStoreConfig,
    SqlAgentPoolStore,
    WakeRegistrationStatus,
    open_store,
)
from benchmarks import payloads, raw_driver
from benchmarks.cpu_split import backend_cpu_seconds, database_backends
from benchmarks.databases import (
    on_each_dialect,
    sqlite_database,
)
from benchmarks.results import CpuResult


@dataclass(frozen=True)
class Operation:
    """An operation: its arguments for call number ``n`` (built before the timing starts)
    and the call itself."""

    arguments: Callable[[int], tuple[Any, ...]]
    call: Callable[..., object]


def _wake(condition_id: str) -> tuple[Any, Any, Any]:
    stored = payloads.stored_wake(condition_id, WakeRegistrationStatus.REGISTERED, 1).stored
    return stored.condition, stored.compiled_filter, stored.registration


def operations(store: SqlAgentPoolStore, pool: str) -> dict[str, Operation]:
    """The store's writes and look-ups on ``pool`` (opened, with a message and a wake)."""
    run = uuid.uuid4().hex[:8]
    store.record_message(pool, *payloads.small_message("known"))
    store.record_wake(pool, *_wake("wake.0"))
    return {
        "record_message": Operation(
            lambda n: (pool, *payloads.small_message(f"{run}.{n}")), store.record_message
        ),
        "join_member": Operation(
            lambda n: (pool, AgentPoolMember(run_id=f"run.{run}.{n}", agent_id="agent.a")),
            store.join_member,
        ),
        "record_wake": Operation(lambda n: (pool, *_wake(f"wake.{n + 1}")), store.record_wake),
        "next_event_sequence": Operation(lambda n: (pool,), store.next_event_sequence),
        "message_receipt": Operation(lambda n: (pool, "idem.known"), store.message_receipt),
        "wake": Operation(lambda n: (pool, "wake.0"), store.wake),
        "wake_registration": Operation(lambda n: (pool, "idem.wake.0"), store.wake_registration),
    }


def _usage() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def measure(url: URL, calls: int, rounds: int, **options: Any) -> dict[str, dict[str, float]]:
    """µs per call of every operation: wall, user, system, and server CPU (PostgreSQL)."""
    store = open_store(url, auto_upgrade=True, **options)
    raw = raw_driver.connect(url) if url.get_backend_name() == "postgresql" else None
    try:
        pool = f"pool.bench.cpu.{uuid.uuid4().hex[:8]}"
        store.open_pool(pool, AgentPoolStoreConfig())
        calls_of = operations(store, pool)
        numbers = iter(range(10**9))
        for operation in calls_of.values():  # warm up: caches, prepared statements
            for _ in range(20):
                operation.call(*operation.arguments(next(numbers)))
        samples: dict[str, list[tuple[float, ...]]] = {name: [] for name in calls_of}
        for _ in range(rounds):
            for name, operation in calls_of.items():
                arguments = [operation.arguments(next(numbers)) for _ in range(calls)]
                call = operation.call
                backends = database_backends(raw) if raw is not None else []
                server = backend_cpu_seconds(backends) if backends else None
                user, system = _usage()
                started = time.perf_counter()
                for given in arguments:
                    call(*given)
                wall = time.perf_counter() - started
                user_after, system_after = _usage()
                server_after = backend_cpu_seconds(backends) if backends else None
                served = (
                    float("nan")
                    if server is None or server_after is None
                    else server_after - server
                )
                samples[name].append((wall, user_after - user, system_after - system, served))
        return {
            name: {
                label: statistics.median(sample[index] for sample in taken) / calls * 1e6
                for index, label in enumerate(("wall", "user", "system", "server"))
            }
            for name, taken in samples.items()
        }
    finally:
        store.close()
        if raw is not None:
            raw.close()


SYNC_OFF = "SQLite, synchronous=OFF"
"""How :func:`run` names SQLite measured without waiting for ``fsync``."""


def measure_sync_off(directory: Path, calls: int, rounds: int) -> dict[str, dict[str, float]]:
    """:func:`measure` on a new SQLite file in ``directory`` with ``synchronous=OFF``.

    No ``fsync``: on a VM, the process's own user CPU grows after every wait for the disk
    (its caches go cold), which this leaves out.
    """
    url = sqlite_database(directory, "cpu-synchronous-off.sqlite")
    return measure(url, calls, rounds, sqlite_synchronous="OFF")


def measure_results(
    urls: dict[str, URL], directory: Path, calls: int, rounds: int
) -> list[CpuResult]:
    """The main run's rows: every database of ``urls`` (keyed by dialect) and, with SQLite,
    a SQLite file with ``synchronous=OFF`` in ``directory``."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    for dialect, url in urls.items():
        found[dialect] = measure(url, calls, rounds)
        if dialect == "sqlite":
            found["sqlite-synchronous-off"] = measure_sync_off(directory, calls, rounds)
    return [
        CpuResult(
            setting,
            operation,
            figures["wall"],
            figures["user"],
            figures["system"],
            None if math.isnan(figures["server"]) else figures["server"],
        )
        for setting, by_operation in found.items()
        for operation, figures in by_operation.items()
    ]


def run(calls: int, rounds: int) -> dict[str, dict[str, dict[str, float]]]:
    """SQLite, SQLite with ``synchronous=OFF``, and PostgreSQL when its server is reachable."""
    results = on_each_dialect(lambda url: measure(url, calls, rounds))
    with tempfile.TemporaryDirectory() as folder:
        results[SYNC_OFF] = measure_sync_off(Path(folder), calls, rounds)
    return results


def main(argv: list[str] | None = None) -> None:
    """Run and print µs per call, one table per dialect."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args(argv)
    results: Any = run(*((200, 1) if arguments.quick else (2000, 3)))
    for dialect, by_operation in results.items():
        print(f"\n{dialect} (µs per call, median of the rounds)\n")
        print("| operation | wall | user CPU | system CPU | server CPU |")
        print("|---|---:|---:|---:|---:|")
        for name, figures in by_operation.items():
            cells = " | ".join(f"{figures[key]:,.0f}" for key in ("wall", "user", "system"))
            server = "-" if math.isnan(figures["server"]) else f"{figures['server']:,.0f}"
            print(f"| {name} | {cells} | {server} |")


if __name__ == "__main__":
    main()
