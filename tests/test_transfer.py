"""Export and import keep every log the reference can write, byte for byte.

The reference lets ``record_pool_created`` run before ``open_pool``, so a real Rust
database can hold a pool whose log starts with ``pool_created``. Such a log exports, imports
into an empty database of either dialect with the same cursors and bytes, and serves there.
"""

from __future__ import annotations

from pathlib import Path

from agent_pool_store import (
    AgentPoolMember,
    AgentPoolStoreConfig,
    MemberJoined,
    PoolCreated,
    PoolOpened,
    open_store,
)
from tests.databases import sqlite_url
from tests.reliability.workers import Database

POOL = "pool.created.first"


def test_a_log_starting_with_pool_created_exports_and_imports(
    database: Database, tmp_path: Path
) -> None:
    raw = database.raw()
    payloads = [
        PoolCreated(),
        PoolOpened(config=AgentPoolStoreConfig()),
        MemberJoined(member=AgentPoolMember(run_id="run.a", agent_id="agent.a")),
    ]
    for payload in payloads:  # as the reference appends: MAX(seq) + 1, JSON as it writes it
        raw.append_record(POOL, payload.type, payload.model_dump_json())
    source = database.open()
    lines = list(source.export_records(POOL))
    assert len(lines) == 3
    with open_store(sqlite_url(tmp_path / "target.sqlite")) as target:
        report = target.import_records(lines)
        assert report.pools == {POOL: 3}
        assert list(target.export_records(POOL)) == lines  # the same bytes and cursors
        snapshot = target.snapshot(POOL)
        assert snapshot.created
        assert snapshot.cursor.sequence == 3
        assert [m.run_id for m in snapshot.members] == ["run.a"]
        assert target.verify().ok
        assert snapshot == source.snapshot(POOL)
