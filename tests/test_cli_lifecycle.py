"""The lifecycle commands: ``pools --idle-for/--limit/--after``, ``archive``, ``restore``,
``delete``, on both dialects (the URL carries a password, never printed)."""

# ruff: noqa: F811 - the ``db`` fixture of tests.test_cli is imported, and named by the tests

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, update

from agent_pool_store import AgentPoolMember, AgentPoolStoreConfig, open_store
from agent_pool_store.cli.commands_lifecycle import archive_name
from agent_pool_store.cli.durations import parse_duration
from agent_pool_store.sql.schema import PoolRow
from tests.test_cli import SECRET, Db, db, ok, one_error_line, run  # noqa: F401 - fixture

POOLS = PoolRow.__table__


def make_pools(url: str, *pools: str) -> None:
    with open_store(url) as store:
        for pool in pools:
            store.open_pool(pool, AgentPoolStoreConfig())
            store.join_member(pool, AgentPoolMember(run_id="run.a", agent_id="agent"))
            store.next_event_sequence(pool)


def age(url: str, pool: str, days: int) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(POOLS)
                .where(POOLS.c.pool_id == pool)
                .values(last_append_at=datetime.now(UTC) - timedelta(days=days))
            )
    finally:
        engine.dispose()


def listed(url: str, *args: str) -> list[str]:
    result = ok(["--url", url, "pools", "--json", *args])
    return [pool["pool_id"] for pool in json.loads(result.stdout)]


def snapshots(url: str, *pools: str) -> dict[str, str]:
    with open_store(url) as store:
        return {pool: store.snapshot_json(pool) for pool in pools}


def test_pools_idle_for_limit_and_after(db: Db) -> None:
    make_pools(db.url, "pool.a", "pool.b", "pool.c")
    age(db.url, "pool.a", 40)
    age(db.url, "pool.c", 40)
    assert listed(db.url) == ["pool.a", "pool.b", "pool.c"]
    assert listed(db.url, "--idle-for", "30d") == ["pool.a", "pool.c"]
    assert listed(db.url, "--idle-for", "4w2d") == ["pool.a", "pool.c"]
    assert listed(db.url, "--idle-for", "41d") == []
    assert listed(db.url, "--limit", "2") == ["pool.a", "pool.b"]
    assert listed(db.url, "--after", "pool.a", "--limit", "1") == ["pool.b"]
    plain = ok(["--url", db.url, "pools", "--idle-for", "720h"]).stdout.splitlines()
    assert [line.split("\t")[0] for line in plain] == ["pool_id", "pool.a", "pool.c"]
    line = one_error_line(run(["--url", db.url, "pools", "--idle-for", "soon"]), 2)
    assert "not a duration" in line


def test_archive_and_restore_pools(db: Db, tmp_path: Path) -> None:
    make_pools(db.url, "pool.a", "pool.b", "pool.c")
    before = snapshots(db.url, "pool.a", "pool.b")
    archive = tmp_path / "ab.jsonl.gz"
    result = ok(["--url", db.url, "archive", "pool.a", "pool.b", "-o", str(archive)])
    assert result.stdout.splitlines() == ["pool.a\t2", "pool.b\t2"]
    assert "archived 4 record(s) of 2 pool(s)" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert listed(db.url) == ["pool.c"]
    restored = ok(["--url", db.url, "restore", str(archive)])
    assert restored.stdout.splitlines() == ["pool.a\t2", "pool.b\t2"]
    assert snapshots(db.url, "pool.a", "pool.b") == before
    line = one_error_line(run(["--url", db.url, "restore", str(archive)]), 1)
    assert "already have records" in line
    line = one_error_line(run(["--url", db.url, "archive", "pool.a", "-o", str(archive)]), 1)
    assert "already exists" in line


def test_archive_idle_pools_into_a_directory(db: Db, tmp_path: Path) -> None:
    make_pools(db.url, "pool.a", "pool/b", "pool.c")
    age(db.url, "pool.a", 40)
    age(db.url, "pool/b", 40)
    before = snapshots(db.url, "pool.a", "pool/b")
    dry = ok(["--url", db.url, "archive", "--idle-for", "30d", "--dry-run"])
    assert [line.split("\t")[0] for line in dry.stdout.splitlines()] == [
        "pool_id",
        "pool.a",
        "pool/b",
    ]
    assert "nothing was archived" in dry.stderr
    assert listed(db.url) == ["pool.a", "pool.c", "pool/b"]
    directory = tmp_path / "archives"
    result = ok(["--url", db.url, "archive", "--idle-for", "30d", "-o", str(directory)])
    assert [line.split("\t")[:2] for line in result.stdout.splitlines()] == [
        ["pool.a", "2"],
        ["pool/b", "2"],
    ]
    assert sorted(path.name for path in directory.iterdir()) == [
        "pool%2Fb.jsonl.gz",
        "pool.a.jsonl.gz",
    ]
    assert listed(db.url) == ["pool.c"]
    for path in directory.iterdir():
        ok(["--url", db.url, "restore", str(path)])
    assert snapshots(db.url, "pool.a", "pool/b") == before


def test_delete_needs_yes(db: Db) -> None:
    make_pools(db.url, "pool.a", "pool.b")
    line = one_error_line(run(["--url", db.url, "delete", "pool.a"]), 2)
    assert "--yes" in line
    assert listed(db.url) == ["pool.a", "pool.b"]
    result = ok(["--url", db.url, "delete", "pool.a", "--yes"])
    assert "deleted pool.a: 2 record(s)" in result.stderr
    assert listed(db.url) == ["pool.b"]
    line = one_error_line(run(["--url", db.url, "delete", "pool.a", "--yes"]), 1)
    assert "has no records" in line


@pytest.mark.parametrize(
    "args",
    [
        ["archive"],
        ["archive", "pool.a"],
        ["archive", "pool.a", "--idle-for", "1d", "-o", "x"],
        ["archive", "pool.a", "--dry-run", "-o", "x"],
        ["archive", "--idle-for", "1d"],
    ],
)
def test_archive_usage_errors(db: Db, args: list[str]) -> None:
    make_pools(db.url, "pool.a")
    one_error_line(run(["--url", db.url, *args]), 2)
    assert listed(db.url) == ["pool.a"]


def test_archive_names_and_durations() -> None:
    names = {archive_name(pool) for pool in ("a/b", "a%2Fb", ".hidden", "x" * 500, "x" * 501)}
    assert len(names) == 5
    for name in names:
        assert "/" not in name and not name.startswith(".") and len(name.encode()) <= 255
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    assert parse_duration("90") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    for bad in ("", "d", "1y", "1d 2h", "-1d"):
        with pytest.raises(ValueError):
            parse_duration(bad)
