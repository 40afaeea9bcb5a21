"""Export and import keep every log the reference can write, byte for byte.

The reference lets ``record_pool_created`` run before ``open_pool``, so a real Rust
database can hold a pool whose log starts with ``pool_created``. Such a log exports, imports
into an empty database of either dialect with the same cursors and bytes, and serves there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_pool_store import (
    AgentError,
    AgentPoolMember,
    AgentPoolStoreConfig,
    MemberJoined,
    PoolCreated,
    PoolOpened,
    RetryClassification,
    open_store,
)
from agent_pool_store.sql import transfer
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


def test_export_parses_only_records_the_store_has_not_applied(database: Database) -> None:
    """An applied record is exported as stored, unparsed; an unapplied one is parsed.

    A record at or below the pool's watermark was read (or written from a valid model) when
    the store applied it, so export copies it as stored: a payload damaged in place after
    that is exported as it is, and ``verify`` (which reads every payload) names it. A
    foreign writer's record the store has not applied yet is parsed, and a bad one refused.
    """
    store = database.open()
    store.open_pool(POOL, AgentPoolStoreConfig())
    store.join_member(POOL, AgentPoolMember(run_id="run.a", agent_id="agent.a"))
    raw = database.raw()
    raw.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = 2",
        ('{"type":"member_joined"}', POOL),
    )
    lines = list(store.export_records(POOL))
    assert lines[1] == f'{{"pool_id":"{POOL}","seq":2,"payload":{{"type":"member_joined"}}}}'
    report = store.verify(POOL)
    assert not report.ok
    assert "seq 2" in str(report)

    raw.append_record(POOL, "member_joined", '{"type":"member_joined"}')  # seq 3, unapplied
    with pytest.raises(AgentError) as caught:
        list(store.export_records(POOL))
    assert caught.value.retry is RetryClassification.REPAIR_NEEDED
    assert "record seq 3 cannot be read" in str(caught.value)


def test_an_export_in_several_batches_has_every_record_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "EXPORT_BATCH", 2)
    store = database.open()
    store.open_pool(POOL, AgentPoolStoreConfig())
    for index in range(4):
        store.join_member(POOL, AgentPoolMember(run_id=f"run.{index}", agent_id="agent.a"))
    store.next_event_sequence(POOL)
    lines = list(store.export_records(POOL))
    assert [json.loads(line).get("seq") for line in lines] == [1, 2, 3, 4, 5, None]
    assert json.loads(lines[-1]) == {"pool_id": POOL, "event_seq": 1}
