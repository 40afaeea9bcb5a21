"""``python -m benchmarks``: run every workload side by side and write the report."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from agent_pool_store import AgentPoolStore, InMemoryAgentPoolStore, open_store
from benchmarks import cpu, payloads, peers, snapshots
from benchmarks.cpu_split import measure_cpu_split
from benchmarks.databases import (
    PG_ADMIN_URL,
    postgresql_database,
    postgresql_problem,
    sqlite_database,
)
from benchmarks.machine import describe, load_average
from benchmarks.raw_driver import connect
from benchmarks.replay_baseline import ReplayBaselineStore
from benchmarks.report import PLOT_NAME, write_json, write_markdown
from benchmarks.results import Results
from benchmarks.settings import DIALECTS, Settings
from benchmarks.targets import evaluate
from benchmarks.workloads import (
    Bench,
    history_pool,
    load,
    measure_appends,
    measure_lookups,
    measure_replay_lookups,
    measure_snapshot_scaling,
    measure_watch,
)
from benchmarks.writers import measure_writers

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Outputs:
    """Where a run writes its report, plot and raw results."""

    markdown: Path
    plot: Path
    json: Path

    @classmethod
    def in_directory(cls, directory: Path) -> Outputs:
        return cls(directory / "benchmarks.md", directory / PLOT_NAME, directory / "latest.json")

    @classmethod
    def repository(cls) -> Outputs:
        docs = ROOT / "docs"
        return cls(
            docs / "benchmarks.md", docs / PLOT_NAME, ROOT / "benchmarks/results/latest.json"
        )


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    parser.add_argument("--sizes", type=_numbers, help="history lengths, e.g. 100,10000,100000")
    parser.add_argument("--writers", type=_numbers, help="writer process counts, e.g. 1,2,4,8")
    parser.add_argument("--writer-seconds", type=float, help="duration of each multi-writer run")
    parser.add_argument(
        "--dialects",
        type=lambda text: tuple(part for part in text.split(",") if part),
        help=f"SQL dialects to run, from {','.join(DIALECTS)} (default: both)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="directory for benchmarks.md, the plot and latest.json (default: docs/ and "
        "benchmarks/results/ for a full run, a new temporary directory for --quick)",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="measure nothing: render the report and plot again from a run's latest.json",
    )
    parser.add_argument(
        "--pg-url", default=PG_ADMIN_URL, help="PostgreSQL URL that may CREATE DATABASE"
    )
    return parser.parse_args(argv)


class Progress:
    """Phase lines on stderr with the time since the start."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(
            f"[bench {time.perf_counter() - self.start:7.1f} s] {message}",
            file=sys.stderr,
            flush=True,
        )


def measure_modules(
    results: Results, urls: dict[str, URL], workdir: Path, settings: Settings, progress: Progress
) -> None:
    """What :mod:`benchmarks.peers`, :mod:`benchmarks.cpu` and :mod:`benchmarks.snapshots`
    measure, on the run's databases, added to ``results``."""
    progress("single-writer appends against the peers")
    results.notes += peers.not_installed()
    for dialect, url in urls.items():
        results.peers += peers.measure_results(
            dialect, url, settings.peer_appends, settings.peer_rounds
        )
    progress("CPU per operation")
    results.cpu += cpu.measure_results(urls, workdir, settings.cpu_calls, settings.cpu_rounds)
    progress(f"snapshot of {settings.snapshot_messages:,} messages")
    for dialect, url in urls.items():
        results.snapshot_sizes += snapshots.measure_results(
            dialect, url, settings.snapshot_messages, settings.snapshot_rounds
        )


def run(settings: Settings, pg_url: str, workdir: Path, progress: Progress) -> Results:
    """Every workload on every backend; the results with their targets evaluated."""
    results = Results(mode=settings.mode, machine={}, settings=asdict(settings))
    with ExitStack() as stack:
        urls = {}
        if "sqlite" in settings.dialects:
            urls["sqlite"] = sqlite_database(workdir)
        if "postgresql" in settings.dialects:
            problem = postgresql_problem(pg_url)
            if problem is None:
                urls["postgresql"] = stack.enter_context(postgresql_database(pg_url))
            else:
                results.notes.append(f"PostgreSQL was not measured: {problem}")
        results.machine = describe(settings.mode, urls.get("postgresql"))
        stores: dict[str, AgentPoolStore] = {
            dialect: stack.enter_context(open_store(url)) for dialect, url in urls.items()
        }
        stores["memory"] = InMemoryAgentPoolStore()
        raws = {dialect: connect(url) for dialect, url in urls.items()}
        replays = {dialect: ReplayBaselineStore(connect(url)) for dialect, url in urls.items()}
        for raw in raws.values():
            stack.callback(raw.close)
        for replay in replays.values():
            stack.callback(replay.close)
        bench = Bench(settings, urls, stores, replays, raws)

        progress(f"building a {max(settings.sizes):,}-record history")
        history = payloads.build_history(max(settings.sizes))
        progress("loading histories (bulk insert, then catch-up)")
        results.catch_up += load(
            bench, {history_pool(size): (history, size) for size in settings.sizes}
        )
        progress("look-ups and snapshots: ours")
        results.lookups += measure_lookups(bench, history)
        progress("look-ups and snapshots: replay baseline")
        results.lookups += measure_replay_lookups(bench, history)
        progress("single-writer appends")
        results.appends += measure_appends(bench)
        progress("one append's CPU, client and server (PostgreSQL)")
        results.cpu_split += measure_cpu_split(bench)
        measure_modules(results, urls, workdir, settings, progress)
        progress("watch and export")
        watch, export = measure_watch(bench)
        results.watch += watch
        results.export += export
        progress("snapshot scaling (2 vs 50 receipts per message)")
        scale, catch_up = measure_snapshot_scaling(bench)
        results.snapshot_scale += scale
        results.catch_up += catch_up
        progress("multi-writer appends")
        results.writers += measure_writers(
            {dialect: url.render_as_string(hide_password=False) for dialect, url in urls.items()},
            settings.writers,
            settings.writer_seconds,
        )
    results.machine["load average at end (1/5/15 min)"] = load_average()
    seconds = time.perf_counter() - progress.start
    results.machine["duration of the run"] = f"{seconds / 60:.1f} min ({seconds:,.0f} s)"
    return results


def write(results: Results, settings: Settings, outputs: Outputs) -> None:
    """Evaluate the targets; write the plot, the markdown report and the JSON."""
    results.checks = evaluate(results, settings)
    outputs.plot.parent.mkdir(parents=True, exist_ok=True)
    try:
        from benchmarks.plot import plot_lookups
    except ImportError as error:  # matplotlib comes with the `bench` extra
        results.notes.append(f"The plot was not drawn: {error} (pip install -e '.[bench]').")
    else:
        plot_lookups(results, outputs.plot)
    write_markdown(results, settings, outputs.markdown)
    write_json(results, outputs.json)


def main(argv: list[str] | None = None) -> Results:
    """Run the benchmarks as the command line asks; return what was measured."""
    args = parse_args(argv)
    progress = Progress()
    if args.from_json is not None:
        results = Results.from_json(json.loads(args.from_json.read_text(encoding="utf-8")))
        settings = Settings.from_json(results.settings)
    else:
        settings = (Settings.quick() if args.quick else Settings.full()).with_overrides(
            sizes=args.sizes,
            writers=args.writers,
            writer_seconds=args.writer_seconds,
            dialects=args.dialects,
        )
        progress(f"{settings.mode} run: sizes {settings.sizes}, writers {settings.writers}")
        with tempfile.TemporaryDirectory(prefix="agent-pool-bench-db-") as workdir:
            results = run(settings, args.pg_url, Path(workdir), progress)
    if args.output is not None:
        outputs = Outputs.in_directory(args.output)
    elif settings.mode == "quick":
        outputs = Outputs.in_directory(Path(tempfile.mkdtemp(prefix="agent-pool-bench-")))
    else:
        outputs = Outputs.repository()
    write(results, settings, outputs)
    progress(f"wrote {outputs.markdown}, {outputs.plot} and {outputs.json}")
    for check in results.checks:
        print(f"{check.status:4}  {check.name}: {check.value}")
    return results


if __name__ == "__main__":
    main()
