"""The single-process workloads: history look-ups, appends, watch and snapshot scaling.

Every workload takes its stores from a :class:`Bench` and returns result rows. Contenders
compared against each other are timed in interleaved rounds (a block of calls each, in
turn), so a change in machine load during the run hits them alike.
"""

from __future__ import annotations

import functools
import random
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import URL

from agent_pool_store import (
    AgentPoolMember,
    AgentPoolStore,
    AgentPoolStoreRecordPayload,
    InMemoryAgentPoolStore,
    MemberJoined,
    MemberLeft,
    MessageStatus,
    PoolCreated,
    PoolOpened,
    RunMessageRecorded,
    SqlAgentPoolStore,
    WakeRecorded,
)
from benchmarks import payloads
from benchmarks.databases import bulk_insert, vacuum_analyze
from benchmarks.raw_driver import RawConnection, read_and_parse
from benchmarks.replay_baseline import ReplayBaselineStore
from benchmarks.results import (
    RAW,
    REPLAY,
    AppendResult,
    CatchUpResult,
    LookupResult,
    SnapshotScaleResult,
    WatchResult,
)
from benchmarks.settings import Settings
from benchmarks.timing import Stats, timed

OPERATIONS = (*payloads.LOOKUPS, "snapshot")
"""What is timed at each history length."""

Contender = AgentPoolStore | ReplayBaselineStore
"""Anything with the store's look-ups, ``snapshot`` and the appends we time."""

LOAD_CHUNK = 1_000
"""Records bulk-inserted between two catch-ups when loading a history.

PostgreSQL keeps every version of a row updated within one transaction until it commits;
catching up a long log in one transaction, where the same projection rows are rewritten
thousands of times, slows down with the square of the chunk.
"""


def history_pool(size: int) -> str:
    return f"pool.bench.history.{size}"


def status_pool(statuses: int) -> str:
    return f"pool.bench.status.{statuses}"


@dataclass
class Bench:
    """The stores of one run: ours per backend, the replay baseline and raw driver per dialect."""

    settings: Settings
    urls: dict[str, URL]
    stores: dict[str, AgentPoolStore]
    replays: dict[str, ReplayBaselineStore]
    raws: dict[str, RawConnection]
    rng: random.Random = field(default_factory=lambda: random.Random(11))


def perform(store: AgentPoolStore, pool_id: str, payload: AgentPoolStoreRecordPayload) -> None:
    """Append ``payload`` through the store operation that writes it."""
    match payload:
        case PoolOpened(config=config):
            store.open_pool(pool_id, config)
        case PoolCreated():
            store.record_pool_created(pool_id)
        case MemberJoined(member=member):
            store.join_member(pool_id, member)
        case MemberLeft(member=member):
            store.leave_member(pool_id, member.run_id)
        case RunMessageRecorded(stored=stored):
            store.record_message(pool_id, stored.message, stored.receipt)
        case WakeRecorded(stored=stored):
            store.record_wake(
                pool_id, stored.condition, stored.compiled_filter, stored.registration
            )


def load(bench: Bench, pools: dict[str, tuple[payloads.History, int]]) -> list[CatchUpResult]:
    """Give every backend these pools (``pool_id: (history, length)``).

    SQL databases get the rows bulk-inserted into ``agent_pool_records`` :data:`LOAD_CHUNK`
    at a time, as a foreign writer appending; after each chunk our stores' next call applies
    it (catch-up, timed). PostgreSQL is then vacuumed and analysed, as autovacuum would. The
    in-memory store is fed through its operations.
    """
    sql = {
        backend: store
        for backend, store in bench.stores.items()
        if not isinstance(store, InMemoryAgentPoolStore)
    }
    results = []
    for pool, (history, length) in pools.items():
        rows = history.rows(pool, length)
        spent = dict.fromkeys(sql, 0.0)
        for start in range(0, len(rows), LOAD_CHUNK):
            for url in bench.urls.values():
                bulk_insert(url, rows[start : start + LOAD_CHUNK])
            for backend, store in sql.items():
                spent[backend] += timed(functools.partial(store.snapshot, pool))
        results += [CatchUpResult(b, pool, length, seconds) for b, seconds in spent.items()]
        for backend, store in bench.stores.items():
            if backend not in sql:
                for payload in history.payloads(length):
                    perform(store, pool, payload)
    for url in bench.urls.values():
        vacuum_analyze(url)
    return results


def _call(reader: Contender, operation: str, pool_id: str, key: str) -> object:
    if operation == "snapshot":
        return reader.snapshot(pool_id)
    found: object = getattr(reader, operation)(pool_id, key)
    return found


def _call_random(
    reader: Contender, operation: str, pool_id: str, keys: list[str], rng: random.Random
) -> object:
    return _call(reader, operation, pool_id, rng.choice(keys))


def _keys(history: payloads.History, operation: str, size: int) -> list[str]:
    return [""] if operation == "snapshot" else history.keys(operation, size)


def measure_lookups(bench: Bench, history: payloads.History) -> list[LookupResult]:
    """Our stores: every operation at every history length, interleaved, hits only."""
    settings = bench.settings
    samples: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for store in bench.stores.values():
        for size in settings.sizes:  # warm up and check every key is a hit
            for operation in OPERATIONS:
                for key in _keys(history, operation, size)[:3]:
                    assert _call(store, operation, history_pool(size), key) is not None
    for _ in range(settings.rounds):
        for backend, store in bench.stores.items():
            for size in settings.sizes:
                pool = history_pool(size)
                for operation in OPERATIONS:
                    keys = _keys(history, operation, size)
                    cell = samples[(backend, operation, size)]
                    for _ in range(settings.block):
                        key = bench.rng.choice(keys)
                        cell.append(timed(functools.partial(_call, store, operation, pool, key)))
    return [
        LookupResult(backend, operation, size, Stats.of(values))
        for (backend, operation, size), values in samples.items()
    ]


def budgeted(call: Callable[[], object], most: int, budget: float, first: float) -> list[float]:
    """Durations of up to ``most`` calls (``first`` already timed), within ``budget`` seconds.

    At least three calls are timed whatever the budget.
    """
    values = [first]
    deadline = time.perf_counter() + budget
    while len(values) < most and (len(values) < 3 or time.perf_counter() < deadline):
        values.append(timed(call))
    return values


def _replay_cell(
    bench: Bench, replay: ReplayBaselineStore, operation: str, size: int, keys: list[str]
) -> tuple[Stats | None, str]:
    settings = bench.settings
    pool = history_pool(size)
    first = timed(functools.partial(_call, replay, operation, pool, keys[0]))
    if first > settings.replay_limit:
        return None, f"skipped: one call took {first:.1f} s (> {settings.replay_limit:g} s)"
    values = budgeted(
        functools.partial(_call_random, replay, operation, pool, keys, bench.rng),
        settings.rounds * settings.block,
        settings.replay_budget,
        first,
    )
    return Stats.of(values), ""


def measure_replay_lookups(bench: Bench, history: payloads.History) -> list[LookupResult]:
    """The replay baseline at each length, within a time budget per cell.

    A length where one call is predicted (linearly from the previous length) or measured to
    take longer than ``replay_limit`` is skipped and says so.
    """
    settings = bench.settings
    results = []
    for dialect, replay in bench.replays.items():
        backend = REPLAY[dialect]
        for operation in OPERATIONS:
            per_record = 0.0  # seconds per record of one call at the last length measured
            for size in settings.sizes:
                estimate = per_record * size
                if estimate > settings.replay_limit:
                    limit = f"{settings.replay_limit:g} s"
                    note = (
                        f"skipped: est. {estimate:.1f} s per call (> {limit})"
                        if estimate < float("inf")
                        else f"skipped: a shorter history already took over {limit}"
                    )
                    results.append(LookupResult(backend, operation, size, None, note))
                    continue
                keys = _keys(history, operation, size)
                stats, note = _replay_cell(bench, replay, operation, size, keys)
                results.append(LookupResult(backend, operation, size, stats, note))
                per_record = stats.median_ms / 1000.0 / size if stats else float("inf")
    return results


Append = Callable[[int], object]
"""One contender's append of its ``i``-th prepared record."""


def _record_message(
    writer: Contender, pool_id: str, made: list[RunMessageRecorded], i: int
) -> object:
    return writer.record_message(pool_id, made[i].stored.message, made[i].stored.receipt)


def _join_member(writer: Contender, pool_id: str, made: list[AgentPoolMember], i: int) -> object:
    return writer.join_member(pool_id, made[i])


@dataclass(frozen=True)
class _RawInsert:
    """The raw driver's append of the ``i``-th precomputed payload."""

    raw: RawConnection
    pool_id: str
    kind: str
    texts: list[str]
    first_seq: int

    def __call__(self, i: int) -> None:
        self.raw.insert_one(self.pool_id, self.first_seq + i, self.kind, self.texts[i])


def _append_calls(bench: Bench, count: int) -> dict[tuple[str, str], Append]:
    """Every single-writer contender on its own opened pool: ``(backend, operation) -> call``."""
    messages = [
        payloads.stored_message(f"message.{index}", MessageStatus.ACCEPTED, index)
        for index in range(count)
    ]
    members = [payloads.member(index % 50) for index in range(count)]
    opened = PoolOpened(config=payloads.config())
    writers: dict[str, Contender] = dict(bench.stores)
    for backend, store in bench.stores.items():
        store.open_pool(f"pool.bench.append.{backend}", opened.config)
    for dialect, replay in bench.replays.items():
        writers[REPLAY[dialect]] = replay
        replay.append(f"pool.bench.append.{REPLAY[dialect]}", opened)
    calls: dict[tuple[str, str], Append] = {}
    for backend, writer in writers.items():
        pool = f"pool.bench.append.{backend}"
        calls[(backend, "record_message")] = functools.partial(
            _record_message, writer, pool, messages
        )
        calls[(backend, "join_member")] = functools.partial(_join_member, writer, pool, members)
    message_json = [payload.model_dump_json() for payload in messages]
    member_json = [MemberJoined(member=member).model_dump_json() for member in members]
    for dialect, raw in bench.raws.items():
        pool = f"pool.bench.append.{RAW[dialect]}"
        raw.insert_one(pool, 1, "pool_opened", opened.model_dump_json())
        calls[(RAW[dialect], "record_message")] = _RawInsert(
            raw, pool, "run_message", message_json, 2
        )
        calls[(RAW[dialect], "join_member")] = _RawInsert(
            raw, pool, "member_joined", member_json, 2 + count
        )
    return calls


def measure_appends(bench: Bench) -> list[AppendResult]:
    """Single-writer appends of every contender, in interleaved rounds."""
    settings = bench.settings
    calls = _append_calls(bench, settings.rounds * settings.append_block)
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    for round_ in range(settings.rounds):
        for contender, call in calls.items():
            first = round_ * settings.append_block
            for index in range(first, first + settings.append_block):
                samples[contender].append(timed(functools.partial(call, index)))
    return [
        AppendResult(backend, operation, Stats.of(values))
        for (backend, operation), values in samples.items()
    ]


def _watch_all(store: AgentPoolStore, pool_id: str) -> int:
    return sum(1 for _ in store.watch(pool_id))


def _export_all(store: SqlAgentPoolStore, pool_id: str) -> int:
    return sum(1 for _ in store.export_records(pool_id))


def measure_watch(bench: Bench) -> tuple[list[WatchResult], list[WatchResult]]:
    """Reading the largest history pool whole, interleaved: our ``watch`` and a raw SELECT +
    parse (the watch rows), and our SQL stores' ``export_records`` (the export rows)."""
    size = max(bench.settings.sizes)
    pool = history_pool(size)
    readers: dict[tuple[str, str], Callable[[], int]] = {
        ("watch", backend): functools.partial(_watch_all, store, pool)
        for backend, store in bench.stores.items()
    }
    for dialect, raw in bench.raws.items():
        readers[("watch", RAW[dialect])] = functools.partial(read_and_parse, raw, pool)
    for backend, store in bench.stores.items():
        if isinstance(store, SqlAgentPoolStore):
            readers[("export", backend)] = functools.partial(_export_all, store, pool)
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _ in range(bench.settings.watch_passes):
        for reader, read in readers.items():
            start = time.perf_counter()
            count = read()
            durations[reader].append(time.perf_counter() - start)
            # an export may end with a line holding the pool's event counter
            assert count == size or (reader[0] == "export" and count == size + 1), reader
    found = {
        reader: WatchResult(reader[1], size, sorted(values)[len(values) // 2], min(values))
        for reader, values in durations.items()
    }
    return (
        [result for (kind, _), result in found.items() if kind == "watch"],
        [result for (kind, _), result in found.items() if kind == "export"],
    )


def _peak_kib(call: Callable[[], object]) -> float:
    """Peak memory allocated during one call, beyond what was allocated before it."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        call()
        return (tracemalloc.get_traced_memory()[1] - before) / 1024.0
    finally:
        tracemalloc.stop()


def measure_snapshot_scaling(bench: Bench) -> tuple[list[SnapshotScaleResult], list[CatchUpResult]]:
    """Snapshots of two pools with equal state whose messages carry 2 vs 50 receipt records."""
    settings = bench.settings
    histories = {
        statuses: payloads.status_history(settings.status_messages, statuses)
        for statuses in settings.status_counts
    }
    catch_up = load(
        bench,
        {status_pool(statuses): (history, len(history)) for statuses, history in histories.items()},
    )
    readers: dict[str, Contender] = dict(bench.stores)
    samples: dict[tuple[str, int], list[float]] = defaultdict(list)
    for _ in range(settings.snapshot_reps):
        for backend, reader in readers.items():
            for statuses in settings.status_counts:
                pool = status_pool(statuses)
                samples[(backend, statuses)].append(timed(functools.partial(reader.snapshot, pool)))
    for dialect, replay in bench.replays.items():  # slow: a time budget per pool instead
        readers[REPLAY[dialect]] = replay
        for statuses in settings.status_counts:
            call = functools.partial(replay.snapshot, status_pool(statuses))
            samples[(REPLAY[dialect], statuses)] = budgeted(
                call, settings.snapshot_reps, settings.replay_budget, timed(call)
            )
    results = []
    for (backend, statuses), values in samples.items():
        reader, pool = readers[backend], status_pool(statuses)
        snapshot = reader.snapshot(pool)
        assert len(snapshot.messages) == settings.status_messages
        peak = min(_peak_kib(functools.partial(reader.snapshot, pool)) for _ in range(2))
        results.append(
            SnapshotScaleResult(
                backend,
                settings.status_messages,
                statuses,
                len(histories[statuses]),
                Stats.of(values),
                peak,
            )
        )
    return results, catch_up
