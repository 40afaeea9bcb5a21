"""Child-process workers of the reliability scenarios, and the helpers that drive them.

A child is a new Python process started at the repo root with the root on ``PYTHONPATH``
(as in ``tests/test_sql_sharing.py``)::

    python -c "from tests.reliability.workers import main; main()" WORKER ARGS_JSON

It opens its own store, warms it up, prints ``ready`` and waits for ``go START`` on stdin
(a barrier across processes: every child then sleeps until the wall-clock time ``START``, so
they really race), does its work, and writes its result as JSON to ``ARGS_JSON["result"]``.
Errors raised by the store are caught and reported in the result, never lost.

The parent side (:class:`Children`, :class:`Database`, :class:`Raw`) is here too, so that
the scenarios and their children share one definition of every operation.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from agent_pool_store import (
    AgentError,
    AgentPoolMember,
    AgentPoolStoreConfig,
    AgentPoolStoreCursor,
    AgentPoolStoredWake,
    AgentPoolStoreRecord,
    CompiledEventFilter,
    EventFilter,
    MessageReceipt,
    MessageStatus,
    PolicyKind,
    PolicyRef,
    ResumeInputPolicy,
    RunAddress,
    RunMessage,
    SqlAgentPoolStore,
    WakeCondition,
    WakeRegistration,
    WakeRegistrationStatus,
    open_store,
)
from agent_pool_store.sql.schema import Base
from tests.async_support import open_async_as_sync

ROOT = Path(__file__).resolve().parents[2]
CHILD_CODE = "from tests.reliability.workers import main; main()"


def _stress() -> int:
    text = os.environ.get("AGENT_POOL_STORE_STRESS", "1")
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise ValueError(f"AGENT_POOL_STORE_STRESS must be a positive integer, not {text!r}")
    return value


STRESS = _stress()
"""Scale factor of every scenario (``AGENT_POOL_STORE_STRESS``, default 1)."""

CHILD_TIMEOUT = 120.0 * STRESS
"""Seconds a child may take to finish once told to."""

TABLES = tuple(table.name for table in Base.metadata.sorted_tables)
"""Every table of the store: the two shared with the reference, and ours."""

EQUAL_CONFIG = AgentPoolStoreConfig(policy_refs=[PolicyRef(kind=PolicyKind.PERMISSION, id="p.eq")])
"""The config every writer of a shared pool opens it with."""


def config_of(tag: str) -> AgentPoolStoreConfig:
    """A config that differs from every other tag's."""
    return AgentPoolStoreConfig(policy_refs=[PolicyRef(kind=PolicyKind.PERMISSION, id=f"p.{tag}")])


def message_pair(message_id: str) -> tuple[RunMessage, MessageReceipt]:
    """A message and its receipt (as ``tests.factories.message_pair``, without factory-boy,
    which children need not import)."""
    message = RunMessage(
        message_id=message_id,
        from_="run.sender",
        to=RunAddress.run("run.receiver"),
        content_ref=f"content.{message_id}",
        idempotency_key=f"idem.{message_id}",
    )
    return message, MessageReceipt(message_id=message_id, status=MessageStatus.ACCEPTED)


def wake_triple(condition_id: str) -> tuple[WakeCondition, CompiledEventFilter, WakeRegistration]:
    """A wake condition, its compiled filter and a registration (as ``tests.factories``)."""
    condition = WakeCondition(
        condition_id=condition_id,
        run_id="run.sleeper",
        filter=EventFilter(),
        resume_with=ResumeInputPolicy.MATCHING_EVENT_REFS,
        idempotency_key=f"idem.{condition_id}",
    )
    registration = WakeRegistration(
        condition_id=condition_id, run_id="run.sleeper", status=WakeRegistrationStatus.REGISTERED
    )
    return condition, condition.filter.compile(), registration


def report_figures(scenario: str, dialect: str, **values: object) -> None:
    """Print the sizes and timings a scenario measured (and append them to a file).

    Shown with ``pytest -s`` (or ``-rP``); collected into
    ``$AGENT_POOL_STORE_RELIABILITY_FIGURES`` as JSON lines when that variable is set.
    """
    line = json.dumps({"scenario": scenario, "dialect": dialect, "stress": STRESS, **values})
    print(f"reliability figures: {line}")
    path = os.environ.get("AGENT_POOL_STORE_RELIABILITY_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``values`` (nearest rank), 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- databases (parent side) ------------------------------------------------------------------


class Raw:
    """A raw driver connection (``sqlite3`` / ``psycopg``) in autocommit mode.

    SQL uses ``?`` placeholders on both dialects. :meth:`begin` opens an explicit transaction
    (SQLite: ``BEGIN IMMEDIATE``, taking the write lock at once).
    """

    def __init__(self, dialect: str, target: str) -> None:
        self.dialect = dialect
        if dialect == "sqlite":
            self.sqlite = sqlite3.connect(
                target, timeout=30, isolation_level=None, check_same_thread=False
            )
        else:
            import psycopg  # only the parent needs the raw driver

            self.pg = psycopg.connect(target, autocommit=True)

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        if self.dialect == "sqlite":
            cursor = self.sqlite.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        result = self.pg.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
        return [tuple(row) for row in result.fetchall()] if result.description else []

    def scalar(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        return self.execute(sql, params)[0][0]

    def begin(self) -> None:
        self.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    def close(self) -> None:
        if self.dialect == "sqlite":
            self.sqlite.close()
        else:
            self.pg.close()

    # the record log, as another implementation of the wire format writes it

    def last_seq(self, pool_id: str) -> int:
        return int(
            self.scalar(
                "SELECT COALESCE(MAX(seq), 0) FROM agent_pool_records WHERE pool_id = ?",
                (pool_id,),
            )
        )

    def insert_record(self, pool_id: str, seq: int, kind: str, payload_json: str) -> None:
        self.execute(
            "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json) VALUES (?, ?, ?, ?)",
            (pool_id, seq, kind, payload_json),
        )

    def append_record(self, pool_id: str, kind: str, payload_json: str) -> int:
        """Insert at ``MAX(seq) + 1`` (in the caller's transaction, if any); return seq."""
        seq = self.last_seq(pool_id) + 1
        self.insert_record(pool_id, seq, kind, payload_json)
        return seq

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table of the store, sorted."""
        return {table: sorted(self.execute(f"SELECT * FROM {table}"), key=repr) for table in TABLES}

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT COUNT(*) FROM {table}"))

    def counts(self) -> dict[str, int]:
        return {table: self.count(table) for table in TABLES}


@dataclass
class Database:
    """A fresh, migrated test database of one dialect (built by the ``database`` fixture)."""

    dialect: str
    url: str
    """SQLAlchemy URL, password included: what a child process opens."""
    raw_target: str
    """``sqlite3`` path or ``psycopg`` conninfo URL."""
    stores: list[SqlAgentPoolStore] = field(default_factory=list)
    raws: list[Raw] = field(default_factory=list)

    def open(self, **kwargs: Any) -> SqlAgentPoolStore:
        store = open_store(self.url, **kwargs)
        self.stores.append(store)
        return store

    def raw(self) -> Raw:
        connection = Raw(self.dialect, self.raw_target)
        self.raws.append(connection)
        return connection

    def close(self) -> None:
        for store in self.stores:
            store.close()
        for connection in self.raws:
            connection.close()


# --- child processes (parent side) ------------------------------------------------------------


def child_environment() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


class Child:
    """One worker process; protocol lines on stdin/stdout, result in a JSON file."""

    def __init__(self, directory: Path, label: str, worker: str, args: dict[str, Any]) -> None:
        self.label = label
        self.result_path = directory / f"{label}.result.json"
        self.stderr_path = directory / f"{label}.stderr"
        args = {**args, "result": str(self.result_path)}
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", CHILD_CODE, worker, json.dumps(args)],
                cwd=ROOT,
                env=child_environment(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                bufsize=1,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def expect_ready(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            self.process.poll()
            raise AssertionError(
                f"child {self.label} said {line!r} instead of ready "
                f"(exit {self.process.returncode}):\n{self.stderr()}"
            )

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = CHILD_TIMEOUT) -> dict[str, Any]:
        """Wait for the child to exit on its own; its result."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout)
        assert self.process.returncode == 0, f"child {self.label} failed:\n{self.stderr()}"
        result: dict[str, Any] = json.loads(self.result_path.read_text(encoding="utf-8"))
        return result

    def kill(self) -> None:
        """SIGKILL (no clean-up of any kind in the child) and reap."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def close(self) -> None:
        self.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class Children:
    """Child processes started by one scenario; every one is killed when the block ends."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.children: list[Child] = []

    def spawn(self, worker: str, label: str, **args: Any) -> Child:
        child = Child(self.directory, label, worker, args)
        self.children.append(child)
        return child

    def barrier(self, children: list[Child] | None = None, lead: float = 0.05) -> None:
        """Wait until every child is ready, then let them all go at the same instant."""
        group = self.children if children is None else children
        for child in group:
            child.expect_ready()
        start = time.time() + lead
        for child in group:
            child.send(f"go {start!r}")

    def results(self, timeout: float = CHILD_TIMEOUT) -> list[dict[str, Any]]:
        return [child.finish(timeout) for child in self.children]

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for child in self.children:
            child.close()


# --- operations shared by children and threads ------------------------------------------------


def error_entry(what: str, error: BaseException) -> dict[str, str]:
    """An error as a child reports it."""
    return {
        "op": what,
        "type": type(error).__name__,
        "error": repr(error),
        "traceback": "".join(traceback.format_exception(error)),
    }


def warm_up(store: SqlAgentPoolStore, tag: str) -> None:
    """Pay first-use costs (connection, statement compilation) before a race."""
    pool = f"pool.warm.{tag}"
    store.open_pool(pool, AgentPoolStoreConfig())
    store.join_member(pool, AgentPoolMember(run_id=f"run.warm.{tag}", agent_id="agent.warm"))
    store.next_event_sequence(pool)
    store.snapshot(pool)
    list(store.watch(pool))


OPERATION_WEIGHTS = {"join": 3, "leave": 2, "message": 2, "wake": 2, "event": 2}
APPEND_WEIGHTS = {"join": 3, "leave": 2, "message": 2, "wake": 2}


@dataclass
class MixedWriter:
    """Mixed operations on pools: join, leave, record_message, record_wake, next_event_sequence.

    Every returned cursor is logged as ``[seq, kind, key]`` per pool (the record it must
    point at), every event sequence per pool; every exception is recorded in ``errors``.
    A writer leaves only runs it joined itself, so no leave is expected to fail; about one
    message or wake in five is read back through a look-up (read-your-writes).
    """

    store: SqlAgentPoolStore
    tag: str
    seed: int
    weights: dict[str, int] = field(default_factory=lambda: dict(OPERATION_WEIGHTS))
    ack: Callable[[dict[str, Any]], None] | None = None
    log: dict[str, list[list[Any]]] = field(default_factory=dict)
    events: dict[str, list[int]] = field(default_factory=dict)
    opened: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    joined: dict[str, list[str]] = field(default_factory=dict)
    operations: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def open(self, pool: str, config: AgentPoolStoreConfig = EQUAL_CONFIG) -> None:
        try:
            snapshot = self.store.open_pool(pool, config)
        except Exception as error:
            self.errors.append(error_entry(f"open_pool {pool}", error))
            return
        assert snapshot.cursor is not None
        self.opened[pool] = snapshot.cursor.sequence

    def _logged(self, pool: str, seq: int, kind: str, key: str) -> None:
        self.log.setdefault(pool, []).append([seq, kind, key])
        if self.ack is not None:
            self.ack({"pool": pool, "seq": seq, "kind": kind, "key": key})

    def step(self, pool: str) -> None:
        """One operation on ``pool``, chosen at random (seeded)."""
        op = self.rng.choices(list(self.weights), weights=list(self.weights.values()))[0]
        joined = self.joined.setdefault(pool, [])
        if op == "leave" and not joined:
            op = "join"
        index = self.operations
        self.operations += 1
        started = time.perf_counter()
        try:
            self._run(op, pool, f"{self.tag}.{index}", joined)
        except Exception as error:
            entry = error_entry(f"{op} {pool}", error)
            self.errors.append(entry)
            if self.ack is not None:
                self.ack({"pool": pool, "error": entry})
        finally:
            self.latencies.append(time.perf_counter() - started)

    def _run(self, op: str, pool: str, key: str, joined: list[str]) -> None:
        store = self.store
        if op == "join":
            run_id = f"run.{key}"
            member = AgentPoolMember(run_id=run_id, agent_id=f"agent.{self.tag}", topics=(key,))
            cursor = store.join_member(pool, member)
            joined.append(run_id)
            self._logged(pool, cursor.sequence, "member_joined", run_id)
        elif op == "leave":
            run_id = joined.pop(self.rng.randrange(len(joined)))
            left, cursor = store.leave_member(pool, run_id)
            self._logged(pool, cursor.sequence, "member_left", run_id)
            if left.run_id != run_id:
                raise AssertionError(f"left {left.run_id!r} instead of {run_id!r}")
        elif op == "message":
            message, receipt = message_pair(f"message.{key}")
            cursor = store.record_message(pool, message, receipt)
            self._logged(pool, cursor.sequence, "run_message", message.message_id)
            if self.rng.random() < 0.2:
                seen = store.message_receipt(pool, message.idempotency_key)
                if seen != receipt:
                    raise AssertionError(f"message_receipt read back {seen!r}, not {receipt!r}")
        elif op == "wake":
            condition, compiled, registration = wake_triple(f"wake.{key}")
            cursor = store.record_wake(pool, condition, compiled, registration)
            self._logged(pool, cursor.sequence, "wake", condition.condition_id)
            if self.rng.random() < 0.2:
                stored = AgentPoolStoredWake(
                    condition=condition, compiled_filter=compiled, registration=registration
                )
                seen_wake = store.wake(pool, condition.condition_id)
                if seen_wake != stored:
                    raise AssertionError(f"wake read back {seen_wake!r}")
        else:
            value = store.next_event_sequence(pool)
            self.events.setdefault(pool, []).append(value)
            if self.ack is not None:
                self.ack({"pool": pool, "event": value})

    def result(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "log": self.log,
            "events": self.events,
            "opened": self.opened,
            "errors": self.errors,
            "latencies": self.latencies,
            "operations": self.operations,
        }


def race_once(store: SqlAgentPoolStore, spec: dict[str, Any]) -> dict[str, Any]:
    """One contender of a check-and-append race: ``open_pool`` or ``leave_member``."""
    try:
        if spec["op"] == "open":
            config = AgentPoolStoreConfig.model_validate_json(spec["config"])
            snapshot = store.open_pool(spec["pool"], config)
            assert snapshot.cursor is not None
            return {"ok": True, "cursor": snapshot.cursor.sequence, "config": spec["config"]}
        member, cursor = store.leave_member(spec["pool"], spec["run_id"])
        return {"ok": True, "cursor": cursor.sequence, "member": member.run_id}
    except AgentError as error:
        return {
            "ok": False,
            "kind": error.kind.value,
            "retry": error.retry.value,
            "message": error.message,
        }
    except Exception as error:
        return {"ok": False, "kind": "unexpected", "retry": "", "message": repr(error)}


@dataclass
class Tail:
    """A reader following one pool with ``watch(pool, last_cursor)``.

    ``seen`` holds ``(seq, payload_json)`` of every record yielded, in the order yielded.
    """

    store: SqlAgentPoolStore
    pool: str
    seen: list[tuple[int, str]] = field(default_factory=list)
    cursor: AgentPoolStoreCursor | None = None

    @property
    def last(self) -> int:
        return 0 if self.cursor is None else self.cursor.sequence

    def poll(self) -> int:
        """One ``watch`` from the last cursor; the number of records it yielded."""
        got = 0
        for record in self.store.watch(self.pool, self.cursor):
            self.seen.append((record.cursor.sequence, record.payload.model_dump_json()))
            self.cursor = record.cursor
            got += 1
        return got

    def follow(self, final_seq: int, deadline: float) -> list[tuple[int, str]]:
        """Poll until the last cursor reaches ``final_seq`` (or ``time.monotonic()`` passes
        ``deadline``).

        The loop stops on the last cursor, not on a count, so a skipped record shows up as a
        gap in ``seen`` rather than as a longer wait.
        """
        while self.last < final_seq and time.monotonic() < deadline:
            if not self.poll():
                time.sleep(0.005)
        return self.seen


def watch_problems(seen: list[tuple[int, str]], log: list[AgentPoolStoreRecord]) -> list[str]:
    """How a reader's view differs from the full log (empty: every record once, in order)."""
    problems = []
    seqs = [seq for seq, _ in seen]
    expected = [record.cursor.sequence for record in log]
    if expected != list(range(1, len(expected) + 1)):
        problems.append(f"the log itself is not 1..N: {expected[:20]}")
    missing = sorted(set(expected) - set(seqs))
    if missing:
        problems.append(f"never saw seq {missing[:20]} ({len(missing)} in all)")
    repeated = sorted({seq for seq in seqs if seqs.count(seq) > 1})
    if repeated:
        problems.append(f"saw seq {repeated[:20]} more than once")
    if seqs != sorted(seqs):
        problems.append("saw records out of order")
    full = [(record.cursor.sequence, record.payload.model_dump_json()) for record in log]
    if not problems and seen != full:
        problems.append("saw payloads that differ from the log")
    return problems


# --- child side -------------------------------------------------------------------------------


def wait_for_go() -> None:
    """Tell the parent we are ready; wait for ``go START``; sleep until START."""
    print("ready", flush=True)
    words = sys.stdin.readline().split()
    if not words or words[0] != "go":
        raise SystemExit("the parent went away")
    delay = float(words[1]) - time.time()
    if delay > 0:
        time.sleep(delay)


def write_result(path: str, result: dict[str, Any]) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    os.replace(temporary, path)


def open_worker_store(args: dict[str, Any]) -> SqlAgentPoolStore:
    """The store a child works with: the sync store, or the async one.

    With ``flavour="async"``, the async store on an event loop of the child's own, driven
    through the same calls: the scenario's fleet then mixes sync and async writers.
    """
    if args.get("flavour") == "async":
        return cast(SqlAgentPoolStore, open_async_as_sync(args["url"]))
    return open_store(args["url"])


def mixed_writer(args: dict[str, Any]) -> dict[str, Any]:
    """``count`` mixed operations, each on the shared pool or the child's own, at random."""
    store = open_worker_store(args)
    warm_up(store, args["tag"])
    writer = MixedWriter(store, args["tag"], args["seed"])
    pools = args["pools"]
    wait_for_go()
    started = time.time()
    for pool in pools:
        writer.open(pool)
    for _ in range(args["count"]):
        writer.step(writer.rng.choice(pools))
    finished = time.time()
    store.close()
    return {**writer.result(), "started": started, "finished": finished}


def appender(args: dict[str, Any]) -> dict[str, Any]:
    """``count`` appends (join, leave, message, wake) to one pool."""
    store = open_worker_store(args)
    warm_up(store, args["tag"])
    writer = MixedWriter(store, args["tag"], args["seed"], weights=dict(APPEND_WEIGHTS))
    wait_for_go()
    started = time.time()
    writer.open(args["pool"])
    for _ in range(args["count"]):
        writer.step(args["pool"])
    finished = time.time()
    store.close()
    return {**writer.result(), "started": started, "finished": finished}


def tail_reader(args: dict[str, Any]) -> dict[str, Any]:
    """Follow one pool's log until its last record (see :func:`tail`)."""
    store = open_worker_store(args)
    warm_up(store, args["tag"])
    wait_for_go()
    errors = []
    reader = Tail(store, args["pool"])
    try:
        reader.follow(args["final_seq"], time.monotonic() + args["deadline"])
    except Exception as error:
        errors.append(error_entry("watch", error))
    store.close()
    return {"seen": reader.seen, "errors": errors}


def racer(args: dict[str, Any]) -> dict[str, Any]:
    """One contender per round; every round starts at the barrier."""
    store = open_worker_store(args)
    warm_up(store, args["tag"])
    outcomes = []
    for spec in args["rounds"]:
        wait_for_go()
        outcomes.append(race_once(store, spec))
    store.close()
    return {"outcomes": outcomes}


def crash_writer(args: dict[str, Any]) -> dict[str, Any]:
    """Write until killed; acknowledge each completed operation in the ack file first."""
    store = open_worker_store(args)
    descriptor = os.open(args["acks"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def ack(entry: dict[str, Any]) -> None:
        os.write(descriptor, (json.dumps(entry) + "\n").encode())

    writer = MixedWriter(store, args["tag"], args["seed"], ack=ack)
    pools = args["pools"]
    wait_for_go()
    for pool in pools:
        writer.open(pool)
    deadline = time.monotonic() + args["max_seconds"]  # in case the parent never kills us
    while time.monotonic() < deadline:
        writer.step(writer.rng.choice(pools))
    store.close()
    return writer.result()


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "mixed_writer": mixed_writer,
    "appender": appender,
    "tail_reader": tail_reader,
    "racer": racer,
    "crash_writer": crash_writer,
}


def main() -> None:
    """Entry point of a child: ``WORKER ARGS_JSON`` on the command line."""
    worker, args = sys.argv[1], json.loads(sys.argv[2])
    write_result(args["result"], WORKERS[worker](args))


def read_acks(path: Path) -> Iterator[dict[str, Any]]:
    """The acknowledgements a crash writer wrote before it was killed."""
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)
