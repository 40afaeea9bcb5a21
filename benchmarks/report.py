"""The run's report: ``benchmarks.md`` (tables, targets, the plot) and the raw JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from benchmarks import peers
from benchmarks.machine import load_note
from benchmarks.payloads import HistoryShape
from benchmarks.results import (
    CPU_SETTINGS,
    DIALECT_NAMES,
    LABELS,
    OURS,
    RAW,
    REPLAY,
    Results,
)
from benchmarks.settings import Settings
from benchmarks.targets import WRITER_SCALING_SHARE
from benchmarks.workloads import LOAD_CHUNK, OPERATIONS

PLOT_NAME = "benchmarks-lookup.png"
SECTIONS = (
    "## Machine",
    "## Targets",
    "## Look-ups and snapshots against history length",
    "## Catch-up after a bulk load",
    "## Single-writer appends",
    "## Single-writer appends against the peers",
    "## CPU per operation",
    "## Multi-writer appends",
    "## Watch and export",
    "## Snapshot against the number of messages",
    "## Snapshot cost against receipts per message",
    "## Method",
)
"""Every section heading the report has, in order."""


def ms(value: float) -> str:
    """Milliseconds with precision that suits their size."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, align: str = "---|"
) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + align * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def print_tables(results: Mapping[str, Sequence[Mapping[str, float]]], note: str = "") -> None:
    """Print one Markdown table per dialect, a column per figure (a module's ``main``)."""
    for dialect, rows in results.items():
        print(f"\n{dialect}{note}\n")
        names = list(rows[0])
        figures = [[f"{row[name]:,.1f}" for name in names] for row in rows]
        print("\n".join(table(names, figures, align="---:|")))


def _machine(results: Results) -> list[str]:
    return [SECTIONS[0], "", *table(("", ""), results.machine.items())]


def _targets(results: Results) -> list[str]:
    passed = sum(check.status == "PASS" for check in results.checks)
    missed = sum(check.status == "MISS" for check in results.checks)
    return [
        SECTIONS[1],
        "",
        f"{passed} PASS, {missed} MISS, {len(results.checks) - passed - missed} N/A "
        "(computed from the numbers below).",
        "",
        *table(
            ("target", "measured", "threshold", "result"),
            (
                (c.name, c.value, c.target, f"**{c.status}**" if c.status == "MISS" else c.status)
                for c in results.checks
            ),
        ),
    ]


def _lookups(results: Results, settings: Settings) -> list[str]:
    measured = {r.backend for r in results.lookups}
    backends = [b for b in (*OURS, *REPLAY.values()) if b in measured]
    rows = []
    for operation in OPERATIONS:
        for backend in backends:
            cells = []
            for size in settings.sizes:
                found = results.lookup(backend, operation, size)
                if found is None:
                    cells.append("-")
                elif found.stats is None:
                    cells.append(found.note)
                else:
                    cells.append(f"{ms(found.stats.median_ms)} / {ms(found.stats.p95_ms)}")
            rows.append((f"`{operation}`", LABELS[backend], *cells))
    return [
        SECTIONS[2],
        "",
        "Median / p95 latency of one call in milliseconds, by records in the pool's history "
        "(the pool's state is the same size at every length). Look-ups hit existing keys.",
        "",
        *table(("operation", "store", *(f"{size:,} records" for size in settings.sizes)), rows),
        "The replay baseline is a Python port: per record it is slower than the Rust adapter "
        "the issue measured (0.6 ms at 100, 46 ms at 5,000: about 9 µs a record, so about "
        "92 ms at 10,000 and 0.9 s at 100,000 by linear extrapolation).",
        "",
        f"![look-up latency against history length]({PLOT_NAME})",
        "",
    ]


def _catch_up(results: Results) -> list[str]:
    rows = (
        (
            LABELS[r.backend],
            f"`{r.pool}`",
            f"{r.size:,}",
            f"{r.seconds:.2f}",
            f"{r.records_per_s:,.0f}",
        )
        for r in results.catch_up
    )
    return [
        SECTIONS[3],
        "",
        f"Histories are bulk-inserted {LOAD_CHUNK:,} records at a time, as a foreign writer "
        "would append them; after each chunk our store's next call applies the new records to "
        "its projections (catch-up, one transaction). Seconds are summed over the chunks. "
        "Not a target; shown for scale.",
        "",
        *table(("store", "pool", "records", "seconds", "records/s"), rows),
    ]


def _appends(results: Results) -> list[str]:
    rows = []
    for dialect in OURS:
        for backend in (dialect, REPLAY.get(dialect), RAW.get(dialect)):
            for operation in ("record_message", "join_member"):
                found = results.append(backend, operation) if backend else None
                if found is None:
                    continue
                raw = results.append(RAW[dialect], operation) if dialect in RAW else None
                share = f"{found.stats.per_second / raw.stats.per_second:.0%}" if raw else "-"
                rows.append(
                    (
                        LABELS[found.backend],
                        f"`{operation}`",
                        f"{found.stats.per_second:,.0f}",
                        ms(found.stats.median_ms),
                        ms(found.stats.p95_ms),
                        share,
                        str(found.stats.n),
                    )
                )
    return [
        SECTIONS[4],
        "",
        "One record per durable transaction, one process. The raw driver commits a "
        "precomputed payload of the same kind with nothing around it; the replay baseline "
        "takes `MAX(seq)+1` and inserts.",
        "",
        *table(
            ("contender", "operation", "appends/s", "median ms", "p95 ms", "of raw rate", "n"),
            rows,
        ),
    ]


def _peers(results: Results, settings: Settings) -> list[str]:
    lines = [
        SECTIONS[5],
        "",
        "Every contender appends one small JSON record (the wire JSON of a `record_message` "
        "payload) per durable transaction to one stream, on the run's databases, in "
        f"{settings.peer_rounds} interleaved rounds of {settings.peer_appends} appends "
        "(median appends/s; `benchmarks/peers.py`): ours (`record_message`, sync and async "
        "store), eventsourcing's aggregate recorder (`insert_events` of one stored event), "
        "LangGraph's checkpointers (`put`; `aput` of the async savers), the raw driver (one "
        "row per transaction: the ceiling of a store that writes one row, not a peer) and the "
        "raw driver running our append's own statements with every parameter built beforehand "
        "(the ceiling of our design). The design's share is our statements against one row "
        "on the raw driver; the library's is ours against our statements. The peers write "
        "one row per append (LangGraph's PostgreSQL saver two); ours also keeps the pool's "
        "projections, which is what keeps its reads flat in history. A peer that is not "
        "installed (the `bench` extra) is left out with a note at the top.",
        "",
    ]
    for dialect, name in DIALECT_NAMES.items():
        rates = results.peer_rates(dialect)
        if rates:
            rows = [(contender, f"{rate:,.0f}") for contender, rate in rates.items()]
            rows += [
                (f"**{ratio}**", f"**{value:.2f}x**")
                for ratio, value in peers.ratios(rates).items()
            ]
            lines += [f"{name}:", "", *table(("contender", "appends/s"), rows)]
    return lines if results.peers else [*lines, "Not measured.", ""]


def _cpu(results: Results, settings: Settings) -> list[str]:
    lines = [
        SECTIONS[6],
        "",
        "µs per call, the median of "
        f"{settings.cpu_rounds} interleaved rounds of {settings.cpu_calls:,} calls per "
        "operation on one pool (`benchmarks/cpu.py`): wall time, our process's user and "
        "system CPU (`resource.getrusage`; user time leaves out the kernel's share of an "
        "`fsync`), and on PostgreSQL the server backends' CPU (read from `/proc`, so only "
        "when the server runs on this machine). SQLite is measured as deployed "
        "(`synchronous=FULL`) and with `synchronous=OFF`. On a VM, waiting for each commit's "
        "`fsync` adds user CPU to our process (its caches are cold when it wakes: about "
        "240 µs per append on the 2-core VM this was written on, against 20 to 35 µs for raw "
        "`sqlite3`'s tiny loop), so the user-CPU targets are evaluated on `synchronous=OFF`, "
        "our code's own cost, with the `synchronous=FULL` figure beside it.",
        "",
    ]
    for setting, name in CPU_SETTINGS.items():
        rows = [
            (
                f"`{r.operation}`",
                f"{r.wall_us:,.0f}",
                f"{r.user_us:,.0f}",
                f"{r.system_us:,.0f}",
                "-" if r.server_us is None else f"{r.server_us:,.0f}",
            )
            for r in results.cpu
            if r.setting == setting
        ]
        if rows:
            header = ("operation", "wall", "user CPU", "system CPU", "server CPU")
            lines += [f"{name}:", "", *table(header, rows)]
    return lines if results.cpu else [*lines, "Not measured.", ""]


def _writer_scaling(results: Results) -> list[str]:
    def rates(backend: str) -> dict[int, float]:
        return {
            r.writers: r.per_second
            for r in results.writers
            if (r.dialect, r.layout) == (backend, "separate pools")
        }

    ours, raw = rates("postgresql"), rates(RAW["postgresql"])
    if not (ours.get(1) and raw.get(1)):
        return []
    rows = [
        (
            str(count),
            f"{ours[count] / ours[1]:.2f}x",
            f"{raw[count] / raw[1]:.2f}x",
            f"{(ours[count] / ours[1]) / (raw[count] / raw[1]):.2f}",
        )
        for count in sorted(set(ours) & set(raw))
        if count > 1 and raw[count] > 0
    ]
    return [
        "Scaling against the raw driver's (PostgreSQL, separate pools; the target is our "
        f"ratio at least {WRITER_SCALING_SHARE:g} of raw psycopg's):",
        "",
        *table(("writers", "ours x one", "raw psycopg x one", "ours / raw"), rows),
    ]


def _writers(results: Results) -> list[str]:
    single = {(r.dialect, r.layout): r.per_second for r in results.writers if r.writers == 1}
    rows = []
    for r in results.writers:
        base = single.get((r.dialect, r.layout))
        rows.append(
            (
                LABELS[r.dialect],
                r.layout,
                str(r.writers),
                f"{r.records:,}",
                f"{r.seconds:.1f}",
                f"{r.per_second:,.0f}",
                f"{r.per_second / base:.2f}x" if base else "-",
                str(r.errors),
            )
        )
    return [
        SECTIONS[7],
        "",
        "Processes appending `record_message` for a fixed time, all on one pool or each on its "
        "own. SQLite has one write lock per file, so its rows are for information. The raw "
        "driver rows run the separate-pools layout with one precomputed record per durable "
        "transaction and nothing around it: how far this machine's cores let any client "
        "scale.",
        "",
        *table(
            (
                "store",
                "layout",
                "writers",
                "records",
                "seconds",
                "records/s",
                "x one writer",
                "errors",
            ),
            rows,
        ),
        *_writer_scaling(results),
        *_cpu_split(results),
    ]


def _cpu_split(results: Results) -> list[str]:
    if not results.cpu_split:
        return []
    cores = int(results.machine.get("cores") or 1)

    def optional(value: float | None, suffix: str = "") -> str:
        return "-" if value is None else f"{ms(value)}{suffix}"

    rows = [
        (
            LABELS[r.backend],
            f"{r.appends:,}",
            ms(r.wall_ms),
            ms(r.client_cpu_ms),
            optional(r.server_cpu_ms),
            optional(r.waiting_ms),
            "-" if r.ceiling(cores) is None else f"{r.ceiling(cores):.2f}x",
        )
        for r in results.cpu_split
    ]
    return [
        "Where one writer's append goes on PostgreSQL (milliseconds per `record_message`): "
        "client CPU, the server's CPU for its statements, and the rest, waiting for the "
        f"commit's flush and the network. On {cores} cores, writers on separate pools can "
        "reach at most cores * wall / (client + server CPU) times one writer's rate, however "
        "many there are (see `benchmarks/cpu_split.py`).",
        "",
        *table(
            (
                "writer",
                "appends",
                "wall",
                "client CPU",
                "server CPU",
                "waiting",
                f"ceiling on {cores} cores",
            ),
            rows,
        ),
    ]


def _watch(results: Results) -> list[str]:
    def reader(backend: str, kind: str) -> str:
        if backend in RAW.values():
            return f"{LABELS[backend]} (SELECT + parse)"
        return f"{LABELS[backend]} `{kind}`"

    rows = (
        (
            reader(r.backend, kind),
            f"{r.records:,}",
            f"{r.median_seconds:.2f}",
            f"{r.per_second:,.0f}",
            f"{r.records / r.best_seconds:,.0f}",
        )
        for kind, found in (("watch", results.watch), ("export_records", results.export))
        for r in found
    )
    return [
        SECTIONS[8],
        "",
        "Reading a whole pool's log from the start, in interleaved passes: `watch` (every "
        "record parsed into its model), against the raw driver reading the same rows and "
        "parsing each payload (the raw parse ceiling), and `export_records` (export lines; "
        "records the store has applied are copied unparsed).",
        "",
        *table(("reader", "records", "median s", "records/s (median)", "records/s (best)"), rows),
    ]


def _snapshot_sizes(results: Results) -> list[str]:
    names = list(results.snapshot_sizes[0].figures) if results.snapshot_sizes else []
    rows = (
        (DIALECT_NAMES[r.dialect], *(f"{r.figures[name]:,.1f}" for name in names))
        for r in results.snapshot_sizes
    )
    return [
        SECTIONS[9],
        "",
        "One pool of that many messages (one receipt each), bulk-loaded and caught up "
        "(`benchmarks/snapshots.py`): `snapshot` builds the pydantic models, `snapshot_json` "
        "assembles the same wire JSON from the stored fragments (the target is evaluated on "
        "it), `model_dump_json` of a snapshot already built is shown for scale. Median of the "
        "rounds with the garbage collector on; peak memory (tracemalloc, measured apart) "
        "against the size of the snapshot's JSON. `python -m benchmarks.snapshots` measures "
        "1,000, 10,000 and 50,000 messages.",
        "",
        *(table(("database", *names), rows) if names else ["Not measured.", ""]),
    ]


def _snapshot_scale(results: Results) -> list[str]:
    fewest = min((r.statuses for r in results.snapshot_scale), default=0)
    first = {r.backend: r for r in results.snapshot_scale if r.statuses == fewest}
    rows = []
    for r in results.snapshot_scale:
        base = first.get(r.backend)
        rows.append(
            (
                LABELS[r.backend],
                str(r.statuses),
                f"{r.records:,}",
                str(r.messages),
                ms(r.stats.median_ms),
                ms(r.stats.p95_ms),
                f"{r.peak_kib:,.0f}",
                f"{r.stats.median_ms / base.stats.median_ms:.2f}x / "
                f"{r.peak_kib / base.peak_kib:.2f}x"
                if base and base is not r
                else "-",
            )
        )
    return [
        SECTIONS[10],
        "",
        "Two pools with the same state (the same messages, members and config) whose messages "
        "carry 2 or 50 receipt records each. Peak memory is what one `snapshot` call "
        "allocates at its peak (tracemalloc).",
        "",
        *table(
            (
                "store",
                "receipts per message",
                "records",
                "messages",
                "median ms",
                "p95 ms",
                "peak KiB",
                "time / memory vs fewer",
            ),
            rows,
        ),
    ]


def _method(settings: Settings) -> list[str]:
    shape = HistoryShape()
    return [
        SECTIONS[11],
        "",
        "```sh",
        "make bench                        # full run: writes docs/ and benchmarks/results/",
        "make bench BENCH_ARGS=--quick     # smoke run into a temporary directory",
        "```",
        "",
        f"- **Histories.** Pools of {', '.join(f'{s:,}' for s in settings.sizes)} records: "
        f"`pool_opened`, `pool_created`, {shape.members} members joining, then a mix of "
        f"{shape.message_share:.0%} `run_message` (receipts re-recorded for {shape.messages} "
        f"message ids as their status moves on), {shape.wake_share:.0%} `wake` "
        f"({shape.wakes} conditions re-registered) and member joins/leaves among "
        f"{shape.members + shape.spare_members} runs — the state stays bounded while the log "
        "grows. Payloads are the domain models' `model_dump_json()`, bulk-inserted straight "
        f"into `agent_pool_records` {LOAD_CHUNK:,} at a time; our SQL stores apply each chunk "
        "on their next call (catch-up); PostgreSQL is then vacuumed and analysed (as autovacuum "
        "would) and only steady-state calls are timed. The in-memory store is fed through its "
        "operations.",
        "- **Ours.** `open_store()` on a SQLite file in a temporary directory (WAL, "
        "`synchronous=FULL`, `BEGIN IMMEDIATE` for writes) and on a PostgreSQL database created "
        "for the run (migrated with `agent_pool_store.migrations.upgrade`, dropped afterwards), "
        "and `InMemoryAgentPoolStore`.",
        "- **Replay baseline** (`benchmarks/replay_baseline.py`). The reference adapter's "
        "strategy over the same table: every read SELECTs the pool's whole log and folds it "
        "(`RECORD_PAYLOAD` + `PoolState.replay`); an append takes `SELECT MAX(seq)+1` and "
        "INSERTs in one write transaction. It is timed within a budget of "
        f"{settings.replay_budget:g} s per cell and skipped where one call is predicted "
        "(linearly from the previous length) or measured to take over "
        f"{settings.replay_limit:g} s.",
        "- **Raw driver** (`benchmarks/raw_driver.py`). sqlite3 with the same WAL, "
        "`synchronous=FULL` and `BEGIN IMMEDIATE`; psycopg on PostgreSQL: one plain INSERT of "
        "a precomputed realistic payload per transaction (the table's append trigger runs for "
        "it as for every writer; no pool is followed during the run, so nothing is notified).",
        f"- **Repetitions.** Contenders that are compared are timed in {settings.rounds} "
        f"interleaved rounds ({settings.block} look-ups or {settings.append_block} appends "
        "per contender per round) so load changes hit them alike. Multi-writer runs last "
        f"{settings.writer_seconds:g} s each, after every process has connected. Watch reads "
        f"the {max(settings.sizes):,}-record pool {settings.watch_passes} times.",
        "- **Peers, CPU per operation, snapshot per message.** The measurements of "
        "`benchmarks/peers.py`, `benchmarks/cpu.py` and `benchmarks/snapshots.py` on the run's "
        f"databases: {settings.peer_rounds} rounds of {settings.peer_appends} appends per "
        f"contender; {settings.cpu_rounds} rounds of {settings.cpu_calls:,} calls per "
        f"operation; a pool of {settings.snapshot_messages:,} messages, "
        f"{settings.snapshot_rounds} timed calls of each kind. Each module also runs alone "
        "(`python -m benchmarks.peers`, `.cpu`, `.snapshots`, with `--quick`).",
        "- **Multi-writer appends.** At each writer count, ours on separate pools, the raw "
        "driver on separate pools and ours on one pool run one after the other.",
        "- **Snapshot scaling.** "
        f"{settings.status_messages} messages with {settings.status_counts[0]} vs "
        f"{settings.status_counts[1]} interleaved receipt records each; "
        f"{settings.snapshot_reps} timed snapshots per pool.",
        "",
    ]


def render(results: Results, settings: Settings) -> str:
    """The whole markdown report."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks` "
        f"({results.mode} run); do not edit by hand. The first issue: the reference adapter "
        "replays a pool's whole log on every call (one `message_receipt` costs 0.6 ms at 100 "
        "records, 4.5 ms at 1,000, 46 ms at 5,000); our store must not grow with history. "
        "Issue 15 (Performance II): ahead of the stores users would pick instead (the peers), "
        "with less CPU per call, each target measured against something in the same run; its "
        "targets come first in the table below, then the earlier ones that are kept.",
        "",
        "The asyncio store is measured apart, by `python -m benchmarks.async_store`: see "
        "[benchmarks-async.md](benchmarks-async.md).",
        "",
    ]
    notes = [*results.notes, *filter(None, [load_note(results.machine)])]
    if notes:
        lines += [*(f"> {note}" for note in notes), ""]
    lines += _machine(results)
    lines += _targets(results)
    lines += _lookups(results, settings)
    lines += _catch_up(results)
    lines += _appends(results)
    lines += _peers(results, settings)
    lines += _cpu(results, settings)
    lines += _writers(results)
    lines += _watch(results)
    lines += _snapshot_sizes(results)
    lines += _snapshot_scale(results)
    lines += _method(settings)
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(results: Results, settings: Settings, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results, settings), encoding="utf-8")


def write_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results.to_json(), indent=2) + "\n", encoding="utf-8")
