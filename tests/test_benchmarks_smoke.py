"""The benchmark suite runs end to end (quick mode, tiny sizes) and writes every section.

It checks that the benchmarks work, not how fast anything is.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest

from benchmarks import (
    async_store,
    cpu,
    peers,
    pool_listing,
    profiling,
    snapshots,
    targets,
    telemetry,
)
from benchmarks.__main__ import main
from benchmarks.databases import postgresql_problem, sqlite_database
from benchmarks.embedding import BATCH, measure
from benchmarks.report import PLOT_NAME, SECTIONS, render
from benchmarks.results import CPU_SETTINGS, Results
from benchmarks.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.sqlite, pytest.mark.postgresql]


def test_quick_benchmark_writes_every_section(tmp_path: Path) -> None:
    problem = postgresql_problem()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")

    main(
        [
            "--quick",
            "--sizes",
            "50,200",
            "--writers",
            "1,2",
            "--writer-seconds",
            "0.3",
            "--output",
            str(tmp_path),
        ]
    )

    markdown = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert f"\n{heading}\n" in markdown, heading
    assert "```python" not in markdown  # tests/test_docs.py would run it
    data = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert data["mode"] == "quick"
    for section in ("lookups", "catch_up", "appends", "writers", "watch", "snapshot_scale"):
        backends = {row.get("backend", row.get("dialect")) for row in data[section]}
        assert {"sqlite", "postgresql"} <= backends, section
    lookups = {(row["backend"], row["operation"], row["size"]) for row in data["lookups"]}
    for backend in ("sqlite", "postgresql", "memory", "replay-sqlite", "replay-postgresql"):
        for operation in ("message_receipt", "wake", "wake_registration", "snapshot"):
            assert {(backend, operation, 50), (backend, operation, 200)} <= lookups
    appends = {(row["backend"], row["operation"]) for row in data["appends"]}
    assert {("raw-sqlite3", "record_message"), ("raw-psycopg", "record_message")} <= appends
    assert {(row["layout"], row["writers"]) for row in data["writers"]} == {
        (layout, writers) for layout in ("one pool", "separate pools") for writers in (1, 2)
    }
    assert all(row["errors"] == 0 for row in data["writers"])
    splits = {row["backend"]: row for row in data["cpu_split"]}
    assert set(splits) == {"postgresql", "raw-psycopg"}
    for split in splits.values():
        assert split["wall_ms"] >= split["client_cpu_ms"] > 0, split
        assert split["server_cpu_ms"] is None or split["server_cpu_ms"] >= 0, split
    assert "ceiling on" in markdown
    assert data["checks"]
    assert all(check["status"] in {"PASS", "MISS", "N/A"} for check in data["checks"])
    assert sum(check["status"] == "N/A" for check in data["checks"]) <= 3  # peers, server CPU
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / PLOT_NAME).stat().st_size > 0
        assert f"]({PLOT_NAME})" in markdown

    # the report renders again from the JSON alone, with the same targets
    again = main(
        ["--from-json", str(tmp_path / "latest.json"), "--output", str(tmp_path / "again")]
    )
    assert [check.status for check in again.checks] == [c["status"] for c in data["checks"]]
    assert (tmp_path / "again" / "benchmarks.md").read_text(encoding="utf-8") == markdown
    raw_writers = {(row["dialect"], row["writers"]) for row in data["writers"]}
    assert {(raw, count) for raw in ("raw-sqlite3", "raw-psycopg") for count in (1, 2)} <= (
        raw_writers
    )
    assert all(row["records"] > 0 for row in data["writers"])
    assert_issue_15_measured(data, markdown)


def assert_issue_15_measured(data: dict[str, Any], markdown: str) -> None:
    """The quick run measured the peers, CPU per operation, export and the snapshot per
    message, and every target of issue 15 has a result."""
    for dialect, raw in (("sqlite", "raw sqlite3"), ("postgresql", "raw psycopg")):
        rates = {r["contender"]: r["per_second"] for r in data["peers"] if r["dialect"] == dialect}
        for contender in ("ours", "ours (async)", raw, f"{raw}, our statements"):
            assert rates[contender] > 0, (dialect, contender)
        assert ("eventsourcing" in rates) == (peers.missing("eventsourcing") is None)
    cpu_rows = {(row["setting"], row["operation"]): row for row in data["cpu"]}
    for setting in CPU_SETTINGS:
        for operation in ("record_message", "join_member", "message_receipt"):
            row = cpu_rows[(setting, operation)]
            assert row["wall_us"] > 0 and row["user_us"] + row["system_us"] > 0, row
    assert {row["backend"] for row in data["export"]} == {"sqlite", "postgresql"}
    assert all(row["per_second"] > 0 for row in data["export"])
    assert {row["dialect"] for row in data["snapshot_sizes"]} == {"sqlite", "postgresql"}
    for row in data["snapshot_sizes"]:
        assert row["figures"]["snapshot_json µs/message"] > 0
        assert row["figures"]["snapshot_json peak / JSON"] > 0
    for heading in ("SQLite, synchronous=OFF:", "PostgreSQL:", "`export_records`", "ours / raw"):
        assert heading in markdown, heading

    results = Results.from_json(data)
    settings = Settings.from_json(data["settings"])
    statuses = {check["name"]: check["status"] for check in data["checks"]}
    *user_cpu, server_cpu = targets.cpu_per_append(results)
    measured = [
        *user_cpu,
        *targets.writer_scaling(results, settings),
        *targets.watch_share(results),
        *targets.export_rate(results),
        *targets.snapshot_per_message(results),
    ]
    assert len(measured) == 4 + 1 + 2 + 2 + 2  # writers 1 and 2: one scaling check
    for check in measured:
        assert statuses[check.name] in {"PASS", "MISS"}, check
    server_read = all(
        cpu_rows[("postgresql", op)]["server_us"] is not None for op in targets.USER_CPU_US
    )
    assert (statuses[server_cpu.name] != "N/A") == server_read
    any_peer = len(peers.not_installed()) < len(peers.PEERS)
    for check in targets.peer_appends(results):
        assert (statuses[check.name] != "N/A") == any_peer, check

    # a run's JSON from before these measurements still renders: their targets are N/A
    for name in ("peers", "cpu", "export", "snapshot_sizes"):
        del data[name]
    older = Results.from_json(data)
    for check in (
        *targets.peer_appends(older),
        *targets.cpu_per_append(older),
        *targets.export_rate(older),
        *targets.snapshot_per_message(older),
    ):
        assert check.status == "N/A", check
    assert "Not measured." in render(older, settings)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_profiling_reports_each_workload(dialect: str, capsys: pytest.CaptureFixture[str]) -> None:
    if dialect == "postgresql" and (problem := postgresql_problem()) is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    flags = ["--postgresql"] if dialect == "postgresql" else []
    profiling.main(["--appends", "20", "--records", "300", "--snapshots", "5", *flags])
    printed = capsys.readouterr().out
    label = "PostgreSQL" if dialect == "postgresql" else "SQLite"
    for workload in ("record_message appends", "watch", "snapshot"):
        assert f"{label} {workload}" in printed
    assert "agent_pool_store" in printed and "sqlalchemy" in printed


def test_embedding_benchmark_measures_every_variant(tmp_path: Path) -> None:
    medians = measure(sqlite_database(tmp_path), calls=BATCH, rounds=1)
    assert len(medians) == 4
    assert all(seconds > 0 for seconds in medians.values())


def test_async_store_benchmark_measures_every_figure() -> None:
    problem = postgresql_problem()
    if problem is not None and os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unreachable: {problem}")
    results = async_store.run(async_store.QUICK)
    assert "SQLite" in results
    for figures in results.values():
        assert figures["appends/s, 8 tasks"] > 0
        assert figures["largest gap, async (ms)"] >= figures["p99 gap, async (ms)"] > 0
        assert figures["largest gap less the collector, async (ms)"] > 0
        assert (
            figures["largest gap less the collector, async (ms)"]
            <= figures["largest gap, async (ms)"]
        )
        assert figures["raw async / raw sync driver"] > 0


def test_snapshot_benchmark_measures_both_ways() -> None:
    problem = postgresql_problem()
    if problem is not None and os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unreachable: {problem}")
    results = snapshots.run(snapshots.QUICK_SIZES, rounds=1)
    assert "SQLite" in results
    for rows in results.values():
        assert [row["messages"] for row in rows] == list(snapshots.QUICK_SIZES)
        for row in rows:
            assert row["snapshot µs/message"] > 0
            assert row["snapshot_json µs/message"] > 0
            assert row["snapshot peak / JSON"] > row["snapshot_json peak / JSON"] > 0


def test_peer_benchmark_measures_ours_and_the_raw_driver() -> None:
    """The peers themselves are optional (the ``bench`` extra); ours and the raw driver are
    always measured, and every peer that is installed is measured too."""
    problem = postgresql_problem()
    if problem is not None and os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unreachable: {problem}")
    results = peers.run(appends=5, rounds=1)
    installed = peers.missing("eventsourcing") is None
    for rates in results.values():
        assert rates["ours"] > 0
        assert rates["ours (async)"] > 0
        raw = next(name for name in rates if name in ("raw sqlite3", "raw psycopg"))
        assert rates[raw] > 0
        assert rates[f"{raw}, our statements"] > 0
        assert any(name.endswith("(the design)") for name in peers.ratios(rates))
        assert ("eventsourcing" in rates) == installed
        if installed:
            assert any(name.startswith("ours / ") for name in peers.ratios(rates))


def test_cpu_benchmark_measures_every_operation() -> None:
    problem = postgresql_problem()
    if problem is not None and os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unreachable: {problem}")
    results = cpu.run(calls=20, rounds=1)
    assert {"SQLite", "SQLite, synchronous=OFF"} <= set(results)
    for by_operation in results.values():
        assert {"record_message", "join_member", "message_receipt"} <= set(by_operation)
        for figures in by_operation.values():
            assert figures["wall"] > 0
            assert figures["user"] + figures["system"] > 0


def test_telemetry_benchmark_measures_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    problem = postgresql_problem()
    if problem is not None and os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unreachable: {problem}")
    results = telemetry.main(["--quick", "--appends", "10", "--rounds", "2"])
    assert "SQLite" in results
    variants = {
        telemetry.NOT_INSTALLED,
        telemetry.AGAIN,
        telemetry.NO_SDK,
        telemetry.EXPORTER,
        telemetry.SAMPLED,
    }
    for figures in results.values():
        assert set(figures) == variants
        assert all(each.appends_per_second > 0 for each in figures.values())
        assert figures[telemetry.NOT_INSTALLED].extra_cpu_us == 0
    printed = capsys.readouterr().out
    assert "quick: 10 appends x 2 rounds" in printed
    assert printed.count("| SQLite |") == len(variants)


def test_pool_listing_benchmark_measures_every_figure() -> None:
    problem = postgresql_problem()
    if problem is not None and os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unreachable: {problem}")
    results = pool_listing.run((20, 1_005), rounds=1)  # 1,005: more than one page
    assert "SQLite" in results
    for rows in results.values():
        assert [row["pools"] for row in rows] == [20, 1_005]
        for row in rows:
            assert all(value > 0 for value in row.values()), row
