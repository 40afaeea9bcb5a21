"""Archiving under faults: a process killed mid-archive, another implementation appending.

- SIGKILL while the archive file is being written, and between writing it and deleting the
  pool: the pool stays in the database whole (same snapshot, records, counter, verify ok),
  and the file is either absent or complete.
- A foreign writer (``MAX(seq) + 1`` in its own transaction, as the reference appends)
  appending while the pool is archived: every record it committed is afterwards in the
  archive file or in the database; the archive includes it or refuses (Retryable).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent_pool_store import AgentError, AgentPoolMember, RetryClassification, open_store
from agent_pool_store.sql import lifecycle
from agent_pool_store.sql.archive_file import read_archive
from tests.reliability.workers import (
    EQUAL_CONFIG,
    ROOT,
    STRESS,
    Database,
    Raw,
    child_environment,
)

pytestmark = pytest.mark.timeout(300 * STRESS)

POOL = "pool.archived"

KILLER = """
import os, signal, sys
from pathlib import Path
from agent_pool_store import open_store
from agent_pool_store.sql import lifecycle, transfer

url, pool, destination, moment = sys.argv[1:5]
if moment == "after-file":
    write = lifecycle.write_archive
    def write_then_die(path, lines):
        write(path, lines)
        os.kill(os.getpid(), signal.SIGKILL)
    lifecycle.write_archive = write_then_die
else:  # "mid-file": killed while lines are being written
    export = transfer.export_lines
    def export_then_die(*args, **kwargs):
        for number, line in enumerate(export(*args, **kwargs)):
            if number == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            yield line
    transfer.export_lines = export_then_die
with open_store(url) as store:
    store.archive(pool, Path(destination))
print("not killed")
"""


def fill(database: Database, members: int = 6) -> None:
    with database.open() as store:
        store.open_pool(POOL, EQUAL_CONFIG)
        for index in range(members):
            store.join_member(POOL, AgentPoolMember(run_id=f"run.{index}", agent_id="agent"))
        store.next_event_sequence(POOL)


def state(database: Database) -> dict[str, Any]:
    """Everything a reader can see of the pool, and its rows in every table."""
    with open_store(database.url) as store:
        return {
            "snapshot": store.snapshot(POOL).model_dump_json(),
            "records": [r.model_dump_json() for r in store.watch(POOL)],
            "export": list(store.export_records(POOL)),
            "verify": store.verify(POOL).ok,
            "rows": database.raw().dump(),
        }


@pytest.mark.parametrize("moment", ["mid-file", "after-file"])
@pytest.mark.parametrize("name", ["pool.jsonl", "pool.jsonl.gz"])
def test_a_process_killed_mid_archive_leaves_the_pool_whole(
    database: Database, tmp_path: Path, moment: str, name: str
) -> None:
    fill(database)
    before = state(database)
    destination = tmp_path / name
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, database.url, POOL, str(destination), moment],
        cwd=ROOT,
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert state(database) == before  # the delete never committed
    if moment == "after-file":  # the file was complete before anything was deleted
        assert read_archive(destination) == before["export"]
        with open_store(database.url) as store, pytest.raises(AgentError) as raised:
            store.restore(destination)  # refused while the pool exists
        assert "already have records" in raised.value.message
        destination.unlink()
    else:
        assert not destination.exists()
    with open_store(database.url) as store:  # archiving again works, and restores whole
        store.archive(POOL, destination)
        store.restore(destination)
    after = state(database)
    assert {key: after[key] for key in ("snapshot", "records", "export", "verify")} == {
        key: before[key] for key in ("snapshot", "records", "export", "verify")
    }


def foreign_append(raw: Raw, index: int) -> int:
    """Append as the reference does: ``MAX(seq) + 1`` in a transaction of its own."""
    payload = AgentPoolMember(run_id=f"run.foreign.{index}", agent_id="agent.foreign")
    payload_json = json.dumps(
        {"type": "member_joined", "member": json.loads(payload.model_dump_json())},
        separators=(",", ":"),
    )
    raw.begin()
    try:
        seq = raw.append_record(POOL, "member_joined", payload_json)
    except BaseException:
        raw.rollback()
        raise
    raw.commit()
    return seq


def payloads_in_database(database: Database) -> list[str]:
    rows = database.raw().execute(
        "SELECT payload_json FROM agent_pool_records WHERE pool_id = ? ORDER BY seq", (POOL,)
    )
    return [row[0] for row in rows]


def payloads_in(lines: list[str]) -> list[str]:
    """The payloads of an export's record lines (as stored)."""
    found = []
    for line in lines:
        if ',"seq":' in line:
            found.append(line[line.index(',"payload":') + len(',"payload":') : -1])
    return found


def test_a_foreign_append_between_the_file_and_the_delete_is_included_or_refused(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(database)
    original = payloads_in_database(database)
    raw = database.raw()
    appended: list[int] = []
    write = lifecycle.write_archive

    def write_then_foreign_append(path: Path, lines: Any) -> Any:
        written = write(path, lines)
        # PostgreSQL: the foreign writer takes no lock of ours and commits now; SQLite: it
        # waits for the archive's write lock, in its thread, and commits after
        thread = threading.Thread(target=lambda: appended.append(foreign_append(raw, 1)))
        thread.start()
        thread.join(0.5)
        threads.append(thread)
        return written

    threads: list[threading.Thread] = []
    monkeypatch.setattr(lifecycle, "write_archive", write_then_foreign_append)
    destination = tmp_path / "race.jsonl"
    with open_store(database.url) as store:
        try:
            store.archive(POOL, destination)
            refused = None
        except AgentError as error:
            refused = error
    for thread in threads:
        thread.join(60)
    assert len(appended) == 1
    archived = payloads_in(read_archive(destination)) if destination.exists() else []
    remaining = payloads_in_database(database)
    if refused is not None:  # nothing deleted, no file, the foreign record is in the log
        assert refused.retry is RetryClassification.RETRYABLE
        assert "another writer appended" in refused.message
        assert not destination.exists()
        assert remaining[: len(original)] == original and len(remaining) == len(original) + 1
    else:  # archived whole before the foreign writer got in; it appended afterwards
        assert archived == original
        assert len(remaining) == 1 and appended == [1]  # a new log, not an orphan
    assert sorted(archived + remaining) == sorted([*original, remaining[-1]])


def test_a_foreign_writer_racing_repeated_archives_loses_nothing(
    database: Database, tmp_path: Path
) -> None:
    """Archive rounds while another implementation keeps appending to the pool id.

    What it appends after a round's delete starts a new log, which a later round archives.
    Every record it committed ends up in an archive file or in the database.
    """
    fill(database, members=3)
    raw = database.raw()
    committed: list[str] = []
    stop = threading.Event()

    def keep_appending() -> None:
        index = 0
        while not stop.is_set():
            index += 1
            foreign_append(raw, index)
            committed.append(f"run.foreign.{index}")
            time.sleep(0.002 if index % 4 else 0.05)  # bursts, and pauses an archive may use

    thread = threading.Thread(target=keep_appending)
    thread.start()
    outcomes = {"archived": 0, "refused": 0, "empty": 0}
    try:
        with open_store(database.url) as store:
            for round_ in range(60 * STRESS):
                if outcomes["archived"] >= 3 * STRESS:
                    break
                destination = tmp_path / f"round{round_}.jsonl.gz"
                try:
                    store.archive(POOL, destination)
                except AgentError as error:
                    assert not destination.exists()
                    if "has no records" in error.message:
                        outcomes["empty"] += 1
                        continue
                    assert error.retry is RetryClassification.RETRYABLE, error
                    outcomes["refused"] += 1
                    continue
                outcomes["archived"] += 1
                assert payloads_in(read_archive(destination))
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    runs = _runs(payloads_in_database(database))
    for path in tmp_path.glob("*.jsonl.gz"):
        runs |= _runs(payloads_in(read_archive(path)))
    assert set(committed) <= runs, set(committed) - runs
    assert outcomes["archived"] >= 1, outcomes


def _runs(payloads: list[str]) -> set[str]:
    runs = set()
    for payload in payloads:
        member = json.loads(payload).get("member")
        if member is not None:
            runs.add(member["run_id"])
    return runs


@pytest.mark.postgresql
def test_a_waiting_table_lock_does_not_stall_other_readers(pg_url: Any, tmp_path: Path) -> None:
    """PostgreSQL: an archive's ``ACCESS EXCLUSIVE`` request waits 200 ms at a time.

    A long read holds the shared tables; an archive (``lock_timeout=3``) keeps asking for its
    lock and giving up. Meanwhile, another store reads another pool: it gets in between the
    archive's attempts (the archive is still trying when the read returns), where a request
    waiting the whole ``lock_timeout`` would have queued every reader behind it. The archive
    ends with Timeout (Retryable), no file, and the pool whole.
    """
    url = pg_url.render_as_string(hide_password=False)
    database = Database(
        "postgresql", url, pg_url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        fill(database)
        original = payloads_in_database(database)
        with open_store(url) as other:
            other.open_pool("pool.other", EQUAL_CONFIG)
            reader = database.raw()
            reader.begin()
            reader.execute("SELECT count(*) FROM agent_pool_records")  # holds ACCESS SHARE
            outcome: list[BaseException] = []
            destination = tmp_path / "stalled.jsonl"

            def archive() -> None:
                with open_store(url, lock_timeout=3) as store:
                    try:
                        store.archive(POOL, destination)
                    except BaseException as error:
                        outcome.append(error)

            thread = threading.Thread(target=archive)
            thread.start()
            time.sleep(0.5)  # the archive is asking for its lock by now
            assert other.snapshot("pool.other").cursor is not None
            assert thread.is_alive()  # the read got in while the archive still tries
            thread.join(60)
            reader.rollback()
        assert len(outcome) == 1 and isinstance(outcome[0], AgentError), outcome
        assert outcome[0].retry is RetryClassification.RETRYABLE
        assert not destination.exists()
        assert payloads_in_database(database) == original
    finally:
        database.close()
