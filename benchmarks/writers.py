"""Multi-writer throughput: N processes appending ``record_message`` for a fixed time.

Each writer is its own process, forked from a clean fork server that has only imported this
module (so no connection is inherited), with its own store on the same database. Writers
wait at a barrier, then append until the time is up. Layouts: all on one pool (serialised by
the pool's write lock) or one pool each (PostgreSQL runs them in parallel; SQLite has one
write lock per file, so there it is for information).

The raw driver runs the same separate-pools layout (one precomputed record per durable
transaction, nothing around it), which shows how far this machine's cores let any client
scale.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from sqlalchemy.engine import make_url

from agent_pool_store import AgentError, MessageStatus, RunMessageRecorded, open_store
from benchmarks import payloads
from benchmarks.raw_driver import connect
from benchmarks.results import RAW, WriterResult

LAYOUTS = ("separate pools", "one pool")
Report = tuple[int, float, int]
"""What a writer reports: records appended, seconds taken, errors."""
PREBUILT = 400
"""Messages each writer builds before the start and cycles through (re-recording receipts)."""
START_TIMEOUT = 120.0


def writer_pool(layout: str, writers: int, index: int, *, raw: bool = False) -> str:
    suffix = "shared" if layout == "one pool" else str(index)
    prefix = "pool.bench.raw-writers" if raw else "pool.bench.writers"
    return f"{prefix}.{layout.split(maxsplit=1)[0]}.{writers}.{suffix}"


def _messages(worker: int) -> list[RunMessageRecorded]:
    return [
        payloads.stored_message(
            f"message.{worker * 1_000_000 + index}", MessageStatus.ACCEPTED, index
        )
        for index in range(PREBUILT)
    ]


def _writer(
    url: str,
    pool_id: str,
    worker: int,
    seconds: float,
    *,
    barrier: Barrier,
    results: Queue[Report],
) -> None:
    """One writer process: append until ``seconds`` have passed; report count, time, errors."""
    built = [recorded.stored for recorded in _messages(worker)]
    with open_store(url, lock_timeout=30.0) as store:
        store.snapshot(pool_id)  # connect and warm up before the start
        barrier.wait(START_TIMEOUT)
        count = errors = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            stored = built[count % PREBUILT]
            try:
                store.record_message(pool_id, stored.message, stored.receipt)
                count += 1
            except AgentError:
                errors += 1
        results.put((count, time.perf_counter() - start, errors))


def _raw_writer(
    url: str,
    pool_id: str,
    worker: int,
    seconds: float,
    *,
    barrier: Barrier,
    results: Queue[Report],
) -> None:
    """One raw-driver writer: commit precomputed records to its own pool until time is up."""
    texts = [recorded.model_dump_json() for recorded in _messages(worker)]
    raw = connect(make_url(url))
    try:
        barrier.wait(START_TIMEOUT)
        count = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            raw.insert_one(pool_id, count + 1, "run_message", texts[count % PREBUILT])
            count += 1
        results.put((count, time.perf_counter() - start, 0))
    finally:
        raw.close()


def _collect(
    processes: Sequence[BaseProcess], results: Queue[Report], timeout: float
) -> list[Report]:
    """One report per process; fails as soon as a process dies without reporting."""
    reports: list[Report] = []
    deadline = time.monotonic() + timeout
    while len(reports) < len(processes):
        try:
            reports.append(results.get(timeout=0.5))
        except queue.Empty:
            dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"writer processes failed (exit codes {dead})") from None
    return reports


def run_writers(
    url: str, dialect: str, layout: str, writers: int, seconds: float, *, raw: bool = False
) -> WriterResult:
    """Start ``writers`` processes on the database at ``url`` and sum what they appended.

    With ``raw``, the processes are raw-driver writers (separate pools only) and the result
    is reported under the raw driver's name.
    """
    pools = [writer_pool(layout, writers, index, raw=raw) for index in range(writers)]
    if not raw:
        with open_store(url) as store:
            for pool in sorted(set(pools)):
                store.open_pool(pool, payloads.config())
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    barrier = context.Barrier(writers)
    results: Queue[Report] = context.Queue()
    processes = [
        context.Process(
            target=_raw_writer if raw else _writer,
            args=(url, pools[index], index, seconds),
            kwargs={"barrier": barrier, "results": results},
        )
        for index in range(writers)
    ]
    for process in processes:
        process.start()
    try:
        reports = _collect(processes, results, START_TIMEOUT + seconds + 60)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    return WriterResult(
        RAW[dialect] if raw else dialect,
        layout,
        writers,
        records=sum(count for count, _, _ in reports),
        seconds=max(elapsed for _, elapsed, _ in reports),
        errors=sum(errors for _, _, errors in reports),
    )


def measure_writers(
    urls: dict[str, str], counts: tuple[int, ...], seconds: float
) -> list[WriterResult]:
    """Every dialect (PostgreSQL first), writer count and layout, with the raw driver.

    At each writer count ours on separate pools, the raw driver on separate pools and ours
    on one pool run one after the other, so that the scaling of ours and of the raw driver
    is measured at about the same time.
    """
    order = sorted(urls, key=lambda dialect: dialect != "postgresql")
    results = []
    for dialect in order:
        for writers in counts:
            results += [
                run_writers(urls[dialect], dialect, LAYOUTS[0], writers, seconds),
                run_writers(urls[dialect], dialect, LAYOUTS[0], writers, seconds, raw=True),
                run_writers(urls[dialect], dialect, LAYOUTS[1], writers, seconds),
            ]
    return results
