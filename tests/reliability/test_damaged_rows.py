"""Rows no valid writer would leave stay in their pool: RepairNeeded there, nowhere else.

A foreign writer leaves one row in ``agent_pool_records`` of pool ``pool.damaged``: a
``payload_json`` that is not valid UTF-8 or is a BLOB, a ``seq`` stored as text (SQLite
stores what it is given), a ``seq`` of 0 or below, or a ``seq`` of 2**63 - 1 after a gap.
Then, on each dialect where the row can exist:

- every operation on that pool fails with AgentError RepairNeeded naming the pool (and the
  sequence where it has one), never a driver error, a TypeError or "database unavailable";
- ``verify()`` runs to the end and names the damage, on that pool only;
- ``pools()`` lists every pool, the damaged one with its problem;
- exporting every pool refuses the damaged pool by name, and every line it wrote before is
  valid JSON; the healthy pool exports alone;
- the healthy pool keeps working, and the damaged row is left as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from agent_pool_store import (
    AgentError,
    AgentPoolMember,
    MemberJoined,
    RetryClassification,
    SqlAgentPoolStore,
)
from tests.reliability.workers import EQUAL_CONFIG, Database, Raw

DAMAGED = "pool.damaged"
HEALTHY = "pool.healthy"
VALID = MemberJoined(member=AgentPoolMember(run_id="run.z", agent_id="agent.z")).model_dump_json()
MAX_SEQ = 2**63 - 1


@dataclass(frozen=True)
class Damage:
    sql: str
    params: tuple[object, ...]
    named: str
    """What the error message names besides the pool (the sequence, or the problem)."""
    sqlite_only: bool = False


DAMAGES = {
    "payload not UTF-8": Damage(
        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
        " VALUES (?, 4, 'member_joined', CAST(x'7b22ff227d' AS TEXT))",
        (DAMAGED,),
        "seq 4",
        sqlite_only=True,
    ),
    "payload a BLOB": Damage(
        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
        " VALUES (?, 4, 'member_joined', x'7b7d')",
        (DAMAGED,),
        "seq 4",
        sqlite_only=True,
    ),
    "seq as text": Damage(
        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
        " VALUES (?, 'four', 'member_joined', ?)",
        (DAMAGED, VALID),
        "'four'",
        sqlite_only=True,
    ),
    "seq 0": Damage(
        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
        " VALUES (?, 0, 'member_joined', ?)",
        (DAMAGED, VALID),
        "seq 0",
    ),
    "seq negative": Damage(
        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
        " VALUES (?, -5, 'member_joined', ?)",
        (DAMAGED, VALID),
        "seq -5",
    ),
    "seq 2**63 - 1": Damage(
        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
        f" VALUES (?, {MAX_SEQ}, 'member_joined', ?)",
        (DAMAGED, VALID),
        f"seq {MAX_SEQ}",
    ),
}


def populate(store: SqlAgentPoolStore, pool: str) -> None:
    store.open_pool(pool, EQUAL_CONFIG)
    for run in ("a", "b"):
        store.join_member(pool, AgentPoolMember(run_id=f"run.{run}", agent_id="agent"))


def log_rows(raw: Raw) -> list[tuple[object, ...]]:
    return raw.execute(  # SQLite: bytes as stored (the driver cannot decode every payload)
        "SELECT seq, kind, CAST(payload_json AS BLOB) FROM agent_pool_records"
        " WHERE pool_id = ? ORDER BY typeof(seq), seq"
        if raw.dialect == "sqlite"
        else "SELECT seq, kind, payload_json FROM agent_pool_records WHERE pool_id = ?"
        " ORDER BY seq",
        (DAMAGED,),
    )


def assert_repair_needed(error: BaseException, damage: Damage) -> None:
    assert isinstance(error, AgentError), f"{type(error).__name__}: {error}"
    assert error.retry is RetryClassification.REPAIR_NEEDED, error
    assert repr(DAMAGED) in error.message, error.message
    assert damage.named in error.message, error.message


CASES = [
    pytest.param(dialect, name, marks=getattr(pytest.mark, dialect), id=f"{dialect}-{name}")
    for name, damage in sorted(DAMAGES.items())
    for dialect in ("sqlite", "postgresql")
    if not (damage.sqlite_only and dialect == "postgresql")  # typed columns, UTF-8 text
]


@pytest.mark.parametrize(("database", "name"), CASES, indirect=["database"])
def test_a_damaged_row_stays_in_its_pool(database: Database, name: str) -> None:
    damage = DAMAGES[name]
    store = database.open()
    populate(store, HEALTHY)
    populate(store, DAMAGED)
    raw = database.raw()
    raw.execute(damage.sql, damage.params)
    before = log_rows(raw)
    other = database.open()  # a store that never served the pool (no cached config)

    for call in (
        lambda: store.snapshot(DAMAGED),
        lambda: other.snapshot(DAMAGED),
        lambda: store.join_member(DAMAGED, AgentPoolMember(run_id="run.c", agent_id="a")),
        lambda: other.join_member(DAMAGED, AgentPoolMember(run_id="run.c", agent_id="a")),
        lambda: store.next_event_sequence(DAMAGED),
        lambda: list(store.watch(DAMAGED)),
    ):
        with pytest.raises(AgentError) as caught:
            call()
        assert_repair_needed(caught.value, damage)

    report = store.verify()
    assert not report.ok
    assert {d.pool_id for d in report.differences} == {DAMAGED}
    assert damage.named in str(report), str(report)
    assert store.verify(HEALTHY).ok

    summaries = {summary.pool_id: summary for summary in store.pools()}
    assert set(summaries) == {DAMAGED, HEALTHY}
    assert summaries[HEALTHY].problem is None and summaries[HEALTHY].records == 3
    assert summaries[DAMAGED].problem is not None

    lines: list[str] = []
    with pytest.raises(AgentError) as caught:
        lines.extend(store.export_records())
    assert_repair_needed(caught.value, damage)
    for line in lines:
        json.loads(line)
    healthy = list(store.export_records(HEALTHY))
    assert [json.loads(line)["seq"] for line in healthy] == [1, 2, 3]

    assert store.join_member(HEALTHY, AgentPoolMember(run_id="run.c", agent_id="a")).sequence == 4
    assert [r.cursor.sequence for r in store.watch(HEALTHY)] == [1, 2, 3, 4]
    assert log_rows(raw) == before
