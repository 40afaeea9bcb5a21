"""Readers following ``watch(pool, last_cursor)`` never skip a record, however writers interleave.

Writer processes append to one pool while a deliberately slow foreign writer (raw SQL, as
the reference adapter writes: ``MAX(seq) + 1`` inside a transaction) sleeps before each
commit. Readers, in their own processes and in threads, each keep only the cursor of the
last record they saw. Every reader must see every record exactly once, in order, ending
with the full log.

A reader that skipped a row committed late would show a gap in its list of sequences;
``test_a_late_commit_is_caught_by_the_reader_check`` commits a row out of order on purpose
(behind the store's back) to show that the check catches exactly that.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import psycopg
import pytest

from agent_pool_store import AgentError, AgentPoolMember, MemberJoined, RetryClassification
from tests.reliability.workers import (
    EQUAL_CONFIG,
    STRESS,
    Children,
    Database,
    Raw,
    Tail,
    error_entry,
    report_figures,
    watch_problems,
)

POOL = "pool.tail"
WRITERS = 3
APPENDS = 100 * STRESS
"""Appends per writer process."""
FOREIGN = 10 * STRESS
"""Slow foreign appends."""
READER_PROCESSES = 1
READER_THREADS = 2
DEADLINE = 120.0 * STRESS

pytestmark = pytest.mark.timeout(300 * STRESS)


def foreign_payload(index: int) -> MemberJoined:
    return MemberJoined(member=AgentPoolMember(run_id=f"run.foreign.{index}", agent_id="agent.f"))


class SlowForeignWriter:
    """Appends ``MAX(seq) + 1`` in a transaction and sleeps before committing."""

    def __init__(self, raw: Raw, count: int) -> None:
        self.raw = raw
        self.count = count
        self.seqs: list[int] = []
        self.conflicts = 0
        self.errors: list[dict[str, str]] = []
        self.rng = random.Random()  # timing only

    def run(self, go: threading.Event) -> None:
        go.wait()
        try:
            for index in range(self.count):
                time.sleep(self.rng.uniform(0.0, 0.15))
                self.seqs.append(self.append(foreign_payload(index)))
        except Exception as error:
            self.errors.append(error_entry("slow foreign append", error))

    def append(self, payload: MemberJoined) -> int:
        while True:
            self.raw.begin()
            try:
                seq = self.raw.append_record(POOL, payload.type, payload.model_dump_json())
                time.sleep(self.rng.uniform(0.02, 0.2))  # the row is written, not committed
                self.raw.commit()
                return seq
            except psycopg.errors.UniqueViolation:
                self.raw.rollback()  # a store writer took that seq first: read MAX again
                self.conflicts += 1
            except BaseException:
                self.raw.rollback()
                raise


@pytest.mark.slow
def test_readers_see_every_record_once_in_order(database: Database, tmp_path: Path) -> None:
    store = database.open()
    store.open_pool(POOL, EQUAL_CONFIG)
    final = 1 + WRITERS * APPENDS + FOREIGN
    go = threading.Event()
    failures: list[dict[str, str]] = []

    readers = [Tail(database.open(), POOL) for _ in range(READER_THREADS)]

    def read(reader: Tail) -> None:
        go.wait()
        try:
            reader.follow(final, time.monotonic() + DEADLINE)
        except Exception as error:
            failures.append(error_entry("reader thread", error))

    foreign = SlowForeignWriter(database.raw(), FOREIGN)
    threads = [threading.Thread(target=read, args=(reader,)) for reader in readers]
    threads.append(threading.Thread(target=foreign.run, args=(go,)))
    for thread in threads:
        thread.start()
    try:
        with Children(tmp_path) as children:
            for index in range(WRITERS):
                children.spawn(
                    "appender",
                    f"writer{index}",
                    url=database.url,
                    tag=f"a{index}",
                    seed=index,
                    flavour="async" if index % 2 else "sync",
                    pool=POOL,
                    count=APPENDS,
                )
            for index in range(READER_PROCESSES):
                children.spawn(
                    "tail_reader",
                    f"reader{index}",
                    url=database.url,
                    tag=f"r{index}",
                    flavour="async" if index % 2 else "sync",
                    pool=POOL,
                    final_seq=final,
                    deadline=DEADLINE,
                )
            children.barrier()
            go.set()
            results = children.results()
    finally:
        go.set()
        for thread in threads:
            thread.join()

    writers, reader_processes = results[:WRITERS], results[WRITERS:]
    errors = [
        *failures,
        *foreign.errors,
        *(error for result in results for error in result["errors"]),
    ]
    assert errors == [], "\n".join(error["traceback"] for error in errors[:3])

    log = list(store.watch(POOL))
    assert [record.cursor.sequence for record in log] == list(range(1, final + 1))
    claimed = [seq for result in writers for seq, _, _ in result["log"][POOL]] + foreign.seqs
    assert sorted(claimed) == list(range(2, final + 1))
    for index, seq in enumerate(foreign.seqs):
        assert log[seq - 1].payload == foreign_payload(index)

    views = [reader.seen for reader in readers]
    views += [[(seq, payload) for seq, payload in result["seen"]] for result in reader_processes]
    for number, seen in enumerate(views):
        assert watch_problems(seen, log) == [], f"reader {number}"
    assert store.verify().ok

    started = min(result["started"] for result in writers)
    finished = max(result["finished"] for result in writers)
    report_figures(
        "tailing_readers",
        database.dialect,
        writer_processes=WRITERS,
        appends_per_writer=APPENDS,
        slow_foreign_appends=FOREIGN,
        foreign_conflicts=foreign.conflicts,
        records=final,
        readers=len(views),
        records_delivered=sum(len(seen) for seen in views),
        seconds=round(finished - started, 2),
        appends_per_second=round((final - 1) / (finished - started)),
    )


def test_a_late_commit_is_never_served_past(database: Database) -> None:
    """Commit seq 5 before seq 4 behind the store's back: while 4 is missing, the pool is not
    served past the hole (RepairNeeded naming seq 5 and the missing 4); once 4 commits, a
    reader sees 4 then 5, and the projections apply both, in order.

    This cannot happen with the store's own writes (writers of a pool are serialised and
    commit in sequence order) nor with ``MAX(seq) + 1`` writers (the second writer of a seq
    waits for the first and collides); it is what a writer that claims sequence numbers
    ahead of committing (a counter, an identity column) would do. Before the store checked
    that another writer's records continue the log, the reader skipped seq 4 and the
    projections never applied it.
    """
    store = database.open()
    store.open_pool(POOL, EQUAL_CONFIG)
    for index in (1, 2):
        store.join_member(POOL, AgentPoolMember(run_id=f"run.{index}", agent_id="agent"))
    reader = Tail(database.open(), POOL)
    assert reader.follow(3, time.monotonic() + 30) == [
        (record.cursor.sequence, record.payload.model_dump_json()) for record in store.watch(POOL)
    ]
    late, early = database.raw(), database.raw()
    late_payload, early_payload = foreign_payload(4), foreign_payload(5)
    if database.dialect == "postgresql":
        late.begin()
        late.insert_record(POOL, 4, late_payload.type, late_payload.model_dump_json())
        early.insert_record(POOL, 5, early_payload.type, early_payload.model_dump_json())
    else:
        # SQLite has one writer at a time, so the late commit can only be replayed in order
        early.insert_record(POOL, 5, early_payload.type, early_payload.model_dump_json())
    with pytest.raises(AgentError) as caught:
        reader.poll()  # sees 5 committed, 4 not yet
    assert caught.value.retry is RetryClassification.REPAIR_NEEDED
    assert "seq 5" in caught.value.message and "4..4 are missing" in caught.value.message
    if database.dialect == "postgresql":
        late.commit()
    else:
        late.insert_record(POOL, 4, late_payload.type, late_payload.model_dump_json())
    assert reader.poll() == 2  # 4, then 5

    log = list(store.watch(POOL))
    assert [record.cursor.sequence for record in log] == [1, 2, 3, 4, 5]
    assert watch_problems(reader.seen, log) == []
    report = store.verify(POOL)
    assert report.ok, str(report)
