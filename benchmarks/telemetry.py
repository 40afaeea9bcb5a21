"""``python -m benchmarks.telemetry``: what the ``otel`` extra costs an append.

Three stores on one database, appending ``record_message`` to a pool each, in interleaved
rounds (each round times every variant, in a rotating order), on SQLite then PostgreSQL:

- **not installed**: a store without telemetry (``store._telemetry is None``), which is
  exactly what every store is when OpenTelemetry cannot be imported
  (``tests/test_telemetry_install.py`` checks that);
- **not installed, again**: a second such store, measured like the others: its difference
  from the first is the noise of the run, which no other figure can be told apart from;
- **installed, no SDK**: a store on OpenTelemetry's global providers, which this process
  never configures: every span and metric call goes to the API's no-op;
- **SDK, exporter**: a store given its own SDK tracer provider, with a ``BatchSpanProcessor``
  in front of an exporter that counts the spans and drops them (a network exporter's cost
  to the process, less its network), and an SDK meter provider with an in-memory reader
  (collected between rounds): every span (the operation and its statements) and every
  metric point is recorded;
- **SDK, exporter, 1 trace in 10**: the same, with OpenTelemetry's own lever on the cost, a
  sampler (``ParentBased(TraceIdRatioBased(0.1))``): the operations of the other nine
  traces make no statement spans, and their own spans record nothing (metrics still
  count every operation).

For each: appends per second (wall time, the median round), and the CPU time it adds to an
append (this process's, all threads: the span processor's too), the median of the rounds'
paired differences against the first variant, in µs and in percent of an append's wall
time without telemetry. The added time is CPU time, and CPU time is what a busy machine
disturbs least: the wall-time rates swing by tens of percent from one round to the next
when other work shares the machine. Targets: at most 3 % with no SDK, at most 10 % with an
exporter. ``--quick``: small rounds, to check that it runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import URL

from agent_pool_store import AgentPoolStoreConfig, SqlAgentPoolStore, open_store
from agent_pool_store.telemetry import AVAILABLE, Telemetry
from benchmarks import payloads
from benchmarks.databases import on_each_dialect

NOT_INSTALLED = "not installed"
AGAIN = "not installed, again"
NO_SDK = "installed, no SDK"
EXPORTER = "SDK, exporter"
SAMPLED_RATIO = 0.1
SAMPLED = "SDK, exporter, 1 trace in 10"

TARGETS = {NO_SDK: 3.0, EXPORTER: 10.0}
"""Most extra time per append, in percent of the store without telemetry."""

QUICK = (200, 5)
FULL = (1000, 7)
"""Appends per round, rounds."""


def _sdk_telemetry(ratio: float = 1.0) -> tuple[Telemetry, Callable[[], None]] | None:
    """A :class:`Telemetry` recording every trace (``ratio``: that share of them), and what
    flushes its exporter."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError:
        return None

    class Counting(SpanExporter):
        """Exports by counting: what a network exporter costs the process, less the network."""

        exported = 0

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            Counting.exported += len(spans)
            return SpanExportResult.SUCCESS

    exporter = Counting()
    processor = BatchSpanProcessor(exporter)
    tracer_provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    tracer_provider.add_span_processor(processor)
    reader = InMemoryMetricReader()
    telemetry = Telemetry(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )

    def drain() -> None:
        processor.force_flush()
        reader.get_metrics_data()

    return telemetry, drain


def _stores(url: URL) -> dict[str, tuple[SqlAgentPoolStore, Callable[[], None]]]:
    stores = {}
    for name in (NOT_INSTALLED, AGAIN):
        plain = open_store(url, auto_upgrade=True)
        plain._telemetry = None  # what every store is without OpenTelemetry
        stores[name] = (plain, lambda: None)
    if AVAILABLE:
        stores[NO_SDK] = (open_store(url), lambda: None)
        for name, ratio in ((EXPORTER, 1.0), (SAMPLED, SAMPLED_RATIO)):
            sdk = _sdk_telemetry(ratio)
            if sdk is not None:
                stores[name] = (open_store(url, telemetry=sdk[0]), sdk[1])
    return stores


@dataclass(frozen=True)
class Figures:
    """One variant on one dialect."""

    appends_per_second: float
    """Wall time: the median round's rate."""
    extra_cpu_us: float
    """This process's CPU time per append (all its threads: the span processor's too) above
    the store without telemetry, the median of the rounds' paired differences."""
    extra_percent: float
    """``extra_cpu_us`` in percent of the wall time of an append without telemetry."""


def measure(url: URL, appends: int, rounds: int) -> dict[str, Figures]:
    """Each variant's figures on ``url``."""
    stores = _stores(url)
    try:
        pools = {}
        for name, (store, _) in stores.items():
            pool = f"pool.bench.otel.{uuid.uuid4().hex[:8]}"
            store.open_pool(pool, AgentPoolStoreConfig())
            for n in range(20):  # warm up: caches, prepared statements, the config cache
                store.record_message(pool, *payloads.small_message(f"{pool}.warm.{n}"))
            pools[name] = pool
        wall: dict[str, list[float]] = {name: [] for name in stores}
        cpu: dict[str, list[float]] = {name: [] for name in stores}
        order = list(stores)
        for round_number in range(rounds):
            for name in order[round_number % len(order) :] + order[: round_number % len(order)]:
                store, drain = stores[name]
                pool = pools[name]
                arguments = [
                    payloads.small_message(f"{pool}.{round_number}.{n}") for n in range(appends)
                ]
                drain()
                started, used = time.perf_counter(), time.process_time()
                for message, receipt in arguments:
                    store.record_message(pool, message, receipt)
                drain()  # the exporter's work counts
                cpu[name].append((time.process_time() - used) / appends)
                wall[name].append((time.perf_counter() - started) / appends)
    finally:
        for store, _ in stores.values():
            store.close()
    base_wall = statistics.median(wall[NOT_INSTALLED])
    figures = {}
    for name in stores:
        extra = statistics.median(
            mine - base for mine, base in zip(cpu[name], cpu[NOT_INSTALLED], strict=True)
        )
        figures[name] = Figures(
            1 / statistics.median(wall[name]), extra * 1e6, extra / base_wall * 100
        )
    return figures


def run(appends: int, rounds: int) -> dict[str, dict[str, Figures]]:
    """Each variant's figures, per dialect."""
    return on_each_dialect(lambda url: measure(url, appends, rounds))


def main(argv: list[str] | None = None) -> dict[str, dict[str, Figures]]:
    """Run and print each variant's figures, per dialect."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small rounds: check that it runs")
    parser.add_argument("--appends", type=int, help="appends per round (overrides the mode's)")
    parser.add_argument("--rounds", type=int, help="rounds (overrides the mode's)")
    arguments = parser.parse_args(argv)
    appends, rounds = QUICK if arguments.quick else FULL
    appends, rounds = arguments.appends or appends, arguments.rounds or rounds
    results = run(appends, rounds)
    mode = "quick" if arguments.quick else "full"
    print(f"\nappend cost of the otel extra ({mode}: {appends} appends x {rounds} rounds)\n")
    print("| dialect | variant | appends/s | extra CPU per append | of an append | target |")
    print("|---|---|---:|---:|---:|---:|")
    for dialect, by_variant in results.items():
        for name, figures in by_variant.items():
            extra = (
                ("", "")
                if name == NOT_INSTALLED
                else (f"{figures.extra_cpu_us:+,.0f} µs", f"{figures.extra_percent:+.1f} %")
            )
            target = f"≤ {TARGETS[name]:g} %" if name in TARGETS else ""
            print(
                f"| {dialect} | {name} | {figures.appends_per_second:,.0f} | {extra[0]} "
                f"| {extra[1]} | {target} |"
            )
    return results


if __name__ == "__main__":
    main()
