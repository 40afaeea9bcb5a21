"""The ``agent-pool-store`` command line, on SQLite and PostgreSQL.

Most tests drive the click group in-process with ``CliRunner`` (output is not a terminal, so
it is plain unless rich is forced with ``TTY_COMPATIBLE=1``); a few run the installed console
script as a subprocess: piped output, ``watch --follow`` stopped by a signal.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from agent_pool_store import (
    AgentPoolStoreConfig,
    SqlAgentPoolStore,
    migrations,
    open_store,
)
from agent_pool_store.cli import cli
from agent_pool_store.render import record_text, snapshot_text
from agent_pool_store.sql.transfer import ImportReport
from tests.databases import PG_ADMIN_URL, sqlite_url
from tests.factories import MemberFactory, append_every_kind

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("agent-pool-store")
SECRET = "s3cr3t"
POOL = "pool.cli"
OTHER = "pool.cli.other"
PROCESS_TIMEOUT = 120
OPENED_LINE = (
    '{"pool_id":"p","seq":1,"payload":{"type":"pool_opened","config":{"message_policy":'
    '{"include_sender_in_pool_broadcast":false},"wake_policy":{"envelope_only":true}}}}\n'
)

PLAIN_ENV: dict[str, str | None] = {
    "FORCE_COLOR": None,
    "TTY_COMPATIBLE": None,
    "TTY_INTERACTIVE": None,
    "AGENT_POOL_STORE_URL": None,
    "AGENT_POOL_STORE_SCHEMA": None,
}
"""Environment for plain output: nothing that makes rich believe it writes to a terminal."""

RICH_ENV: dict[str, str | None] = {**PLAIN_ENV, "TTY_COMPATIBLE": "1", "COLUMNS": "160"}


# --- databases -------------------------------------------------------------------------------


@dataclass
class Db:
    dialect: str
    url: str
    """The URL with any password in clear (what a user types)."""

    def open(self) -> SqlAgentPoolStore:
        return open_store(self.url)

    def execute(self, statement: str, **params: object) -> list[tuple[object, ...]]:
        engine = create_engine(self.url)
        try:
            with engine.begin() as connection:
                result = connection.execute(text(statement), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()


def with_secret(url: URL) -> str:
    """The URL with a password; the server trusts local connections, so any password works."""
    return url.set(password=SECRET).render_as_string(hide_password=False)


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ]
)
def db(request: pytest.FixtureRequest) -> Db:
    """A fresh migrated database of each dialect; on PostgreSQL its URL has a password."""
    if request.param == "sqlite":
        return Db("sqlite", sqlite_url(request.getfixturevalue("sqlite_file")))
    return Db("postgresql", with_secret(request.getfixturevalue("pg_url")))


@contextmanager
def fresh_pg_database(*, migrate: bool = False) -> Iterator[str]:
    """A new, empty PostgreSQL database (uuid name), dropped afterwards; URL with a password."""
    name = f"aps_cli_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name)
    try:
        if migrate:
            migrations.upgrade(url)
        yield with_secret(url)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fresh_pg(pg_database: URL) -> Iterator[str]:
    """An empty, unmigrated PostgreSQL database (skipped like the others without a server)."""
    with fresh_pg_database() as url:
        yield url


def seed(url: str) -> None:
    """Two pools with every record kind, non-ASCII identifiers and a foreign record."""
    with open_store(url) as store:
        append_every_kind(store, POOL)
        store.open_pool(OTHER, AgentPoolStoreConfig())
        store.join_member(OTHER, MemberFactory(run_id="run.o"))
    # a record appended by another implementation, with its own (non-canonical) spacing
    foreign = create_engine(url)
    with foreign.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
                " VALUES (:pool, 3, 'pool_created', :payload)"
            ),
            {"pool": OTHER, "payload": '{ "type" : "pool_created" }'},
        )
    foreign.dispose()


POOLS_HEADER = "pool_id\trecords\tmembers\tcursor\tcreated\tlast_append"
"""The plain header line of ``pools``."""


# --- running the CLI -------------------------------------------------------------------------


def run(
    args: list[str],
    *,
    env: Mapping[str, str | None] | None = None,
    input: str | bytes | None = None,
) -> Result:
    """The CLI in-process, plain output unless ``env`` says otherwise."""
    runner = CliRunner()
    return runner.invoke(
        cli, args, env={**PLAIN_ENV, **(env or {})}, input=input, catch_exceptions=False
    )


def ok(args: list[str], **kwargs: object) -> Result:
    result = run(args, **kwargs)  # type: ignore[arg-type]
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def one_error_line(result: Result, code: int) -> str:
    """The failure's only stderr line (no traceback)."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def script_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PLAIN_ENV}
    path = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)
    return {**env, **(extra or {})}


def snapshots(url: str, *pools: str) -> dict[str, str]:
    with open_store(url) as store:
        return {pool: store.snapshot(pool).model_dump_json() for pool in pools}


def raw_rows(db: Db) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT pool_id, seq, kind, payload_json FROM agent_pool_records ORDER BY pool_id, seq"
    )


# --- migrate, current ------------------------------------------------------------------------


def test_migrate_and_current_on_a_new_sqlite_file(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "new.sqlite")
    result = ok(["--url", url, "migrate"])
    head = migrations.head()
    assert result.stdout.splitlines() == [f"url: {url}", f"current: {head}", f"head: {head}"]
    assert "upgraded from revision none" in result.stderr
    again = ok(["--url", url, "migrate"])
    assert "already at revision" in again.stderr
    assert ok(["--url", url, "current"]).stdout.splitlines()[1] == f"current: {head}"
    assert "already at revision" in ok(["--url", url, "migrate", "--revision", "0001"]).stderr


@pytest.mark.postgresql
def test_unmigrated_postgresql_needs_migrate(fresh_pg: str) -> None:
    shown = make_url(fresh_pg).render_as_string(hide_password=True)
    current = ok(["--url", fresh_pg, "current"])
    assert current.stdout.splitlines() == [
        f"url: {shown}",
        "current: none",
        f"head: {migrations.head()}",
    ]
    for command in (["pools"], ["snapshot", POOL], ["watch", POOL], ["verify"]):
        line = one_error_line(run(["--url", fresh_pg, *command]), 1)
        assert "HostConfigurationNeeded" in line
        assert "agent-pool-store migrate" in line
        assert SECRET not in line
    ok(["--url", fresh_pg, "migrate", "--revision", "0001"])
    assert "current: 0001" in ok(["--url", fresh_pg, "current"]).stdout
    ok(["--url", fresh_pg, "migrate"])
    assert ok(["--url", fresh_pg, "pools"]).stdout == POOLS_HEADER + "\n"


def test_migrate_unknown_revision_fails_in_one_line(tmp_path: Path) -> None:
    line = one_error_line(
        run(["--url", sqlite_url(tmp_path / "x.sqlite"), "migrate", "--revision", "nope"]), 1
    )
    assert "nope" in line


# --- pools, snapshot, watch ------------------------------------------------------------------


def test_pools(db: Db) -> None:
    seed(db.url)
    result = ok(["--url", db.url, "pools"])
    lines = result.stdout.splitlines()
    assert lines[0] == POOLS_HEADER
    rows = [line.split("\t") for line in lines[1:]]
    assert [row[:-1] for row in rows] == [
        [POOL, "10", "2", "10", "true"],
        [OTHER, "3", "1", "3", "true"],  # the foreign pool_created is caught up and counted
    ]
    listed = json.loads(ok(["--url", db.url, "pools", "--json"]).stdout)
    assert [(p["pool_id"], p["records"], p["cursor"], p["problem"]) for p in listed] == [
        (POOL, 10, 10, None),
        (OTHER, 3, 3, None),
    ]
    for row, pool in zip(rows, listed, strict=True):  # the last append: ISO 8601, UTC
        appended = datetime.fromisoformat(pool["last_append_at"])
        assert appended.utcoffset() == timedelta(0)
        assert row[-1] == appended.isoformat(timespec="seconds")
    with open_store(db.url) as store:
        assert [s.pool_id for s in store.pools()] == [POOL, OTHER]


def test_pools_lists_a_damaged_pool_with_its_problem(db: Db) -> None:
    seed(db.url)
    db.execute(
        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
        " VALUES (:pool, 4, 'wake', '{not json')",
        pool=OTHER,
    )
    listed = {p["pool_id"]: p for p in json.loads(ok(["--url", db.url, "pools", "--json"]).stdout)}
    assert listed[POOL]["problem"] is None
    assert listed[OTHER]["records"] == 4
    assert "seq 4 cannot be read" in listed[OTHER]["problem"]
    table = ok(["--url", db.url, "pools"]).stdout.splitlines()
    assert table[0].endswith("\tproblem")


def test_snapshot_plain_json_and_rich(db: Db) -> None:
    seed(db.url)
    with db.open() as store:
        taken = store.snapshot(POOL)
    assert (
        ok(["--url", db.url, "snapshot", POOL, "--json"]).stdout == taken.model_dump_json() + "\n"
    )
    assert ok(["--url", db.url, "snapshot", POOL]).stdout == snapshot_text(taken) + "\n"
    rich = ok(["--url", db.url, "snapshot", POOL], env=RICH_ENV).stdout
    assert "┃" in rich and "\x1b[" in rich
    for expected in ("run.a", "agent.ü", "message.1", "delivered", "wake.1", "triggered"):
        assert expected in rich
    assert ok(["--url", db.url, "--plain", "snapshot", POOL], env=RICH_ENV).stdout == (
        snapshot_text(taken) + "\n"
    )


def test_snapshot_of_an_unopened_pool_fails_in_one_line(db: Db) -> None:
    line = one_error_line(run(["--url", db.url, "snapshot", "pool.nowhere"]), 1)
    assert line.startswith("agent-pool-store: error: HostConfigurationNeeded: ")
    assert line.endswith("has not opened this pool (pool 'pool.nowhere')")


def test_watch_plain_json_after(db: Db) -> None:
    seed(db.url)
    with db.open() as store:
        records = list(store.watch(POOL))
    plain = ok(["--url", db.url, "watch", POOL]).stdout
    assert plain == "".join(record_text(r) + "\n" for r in records)
    as_json = ok(["--url", db.url, "watch", POOL, "--json"]).stdout
    assert as_json.split("\n")[:-1] == [r.model_dump_json() for r in records]
    after = ok(["--url", db.url, "watch", POOL, "--after", "8", "--json"]).stdout
    assert [json.loads(line)["cursor"]["sequence"] for line in after.splitlines()] == [9, 10]
    assert ok(["--url", db.url, "watch", "pool.nowhere"]).stdout == ""
    rich = ok(["--url", db.url, "watch", POOL], env=RICH_ENV).stdout
    assert "\x1b[" in rich and "member_joined" in rich


def test_watch_follow_with_timeout_in_process(db: Db) -> None:
    seed(db.url)
    result = ok(["--url", db.url, "watch", OTHER, "--follow", "--timeout", "0.2", "--json"])
    assert [json.loads(line)["cursor"]["sequence"] for line in result.stdout.splitlines()] == [
        1,
        2,
        3,
    ]


def test_url_from_environment_and_default(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db.url)
    by_env = ok(["pools"], env={"AGENT_POOL_STORE_URL": db.url})
    assert by_env.stdout == ok(["--url", db.url, "pools"]).stdout
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # the default: agent-pool.sqlite in the working directory
    for command in (["pools"], ["verify"], ["current"], ["snapshot", "pool.x"]):
        line = one_error_line(run(command), 1)  # read-only commands create nothing
        assert "no SQLite database file 'agent-pool.sqlite'" in line, line
        assert "agent-pool-store migrate" in line, line
        assert not (workdir / "agent-pool.sqlite").exists()
    ok(["migrate"])
    assert ok(["pools"]).stdout == POOLS_HEADER + "\n"
    assert "url: sqlite:///agent-pool.sqlite" in ok(["current"]).stdout


# --- export, import --------------------------------------------------------------------------


def test_export_lines_keep_payload_bytes(db: Db, tmp_path: Path) -> None:
    seed(db.url)
    exported = ok(["--url", db.url, "export", "--all"]).stdout_bytes.decode("utf-8")
    lines = exported.split("\n")
    assert lines[-1] == ""
    rows = raw_rows(db)
    assert len(lines) - 1 == len(rows) == 13
    ordered = sorted(rows, key=lambda row: (str(row[0]), int(str(row[1]))))
    for line, (pool, seq, _kind, payload_json) in zip(lines, ordered, strict=False):
        assert line == (
            '{"pool_id":'
            + json.dumps(pool, ensure_ascii=False)
            + f',"seq":{seq},"payload":'
            + str(payload_json)
            + "}"
        )
    assert '{ "type" : "pool_created" }' in exported
    assert "\u2028" in exported  # kept raw, and still one record per line
    single = ok(["--url", db.url, "export", OTHER]).stdout.splitlines()
    assert [json.loads(line)["seq"] for line in single] == [1, 2, 3]
    target = tmp_path / "out.jsonl"
    result = ok(["--url", db.url, "export", POOL, "-o", str(target)])
    assert target.read_text(encoding="utf-8").count("\n") == 10
    assert "exported 10 record(s) of 1 pool(s)" in result.stderr
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_export_usage_and_errors(db: Db) -> None:
    assert "usage error" in one_error_line(run(["--url", db.url, "export"]), 2)
    assert "usage error" in one_error_line(run(["--url", db.url, "export", POOL, "--all"]), 2)
    line = one_error_line(run(["--url", db.url, "export", "pool.nowhere"]), 1)
    assert "has no records" in line


@pytest.mark.postgresql
def test_export_then_import_into_a_fresh_postgresql_database(
    db: Db, tmp_path: Path, pg_database: URL
) -> None:
    seed(db.url)
    with db.open() as store:
        assert [store.next_event_sequence(POOL) for _ in range(3)] == [1, 2, 3]
        records = {pool: list(store.watch(pool)) for pool in (POOL, OTHER)}
    before = snapshots(db.url, POOL, OTHER)
    dump = tmp_path / "dump.jsonl"
    ok(["--url", db.url, "export", "--all", "--output", str(dump)])
    with fresh_pg_database() as target:
        ok(["--url", target, "migrate"])
        assert dump.read_text(encoding="utf-8").split("\n")[10] == (
            f'{{"pool_id":"{POOL}","event_seq":3}}'  # after the pool's 10 records
        )
        result = ok(["--url", target, "import", str(dump)])
        assert result.stdout.splitlines() == [f"{POOL}\t10", f"{OTHER}\t3"]
        assert "imported 13 record(s) into 2 pool(s)" in result.stderr
        assert snapshots(target, POOL, OTHER) == before
        with open_store(target) as imported:
            for pool, expected in records.items():
                assert list(imported.watch(pool)) == expected
            assert imported.verify().ok
            assert [(s.pool_id, s.records, s.cursor) for s in imported.pools()] == [
                (POOL, 10, 10),
                (OTHER, 3, 3),
            ]
            assert imported.join_member(POOL, MemberFactory(run_id="run.new")).sequence == 11
            assert imported.next_event_sequence(POOL) == 4  # the counter came along
            assert imported.next_event_sequence(OTHER) == 1
        target_db = Db("postgresql", target)
        source_rows = sorted(raw_rows(db))
        target_rows = sorted(r for r in raw_rows(target_db) if r[:2] != (POOL, 11))
        assert target_rows == source_rows  # payload_json bytes identical
        # the export of the import is the export
        exported_again = ok(["--url", target, "export", "--all"])
        # 14 records and two counters (POOL's, and OTHER's from the call above)
        assert exported_again.stdout_bytes.count(b"\n") == 16
        assert "exported 14 record(s) of 2 pool(s)" in exported_again.stderr
        assert ok(["--url", target, "verify"]).exit_code == 0


def test_import_from_stdin_into_sqlite(db: Db, tmp_path: Path) -> None:
    seed(db.url)
    exported = ok(["--url", db.url, "export", "--all"]).stdout_bytes
    target = sqlite_url(tmp_path / "target.sqlite")
    ok(["--url", target, "import", "-"], input=exported)
    assert snapshots(target, POOL, OTHER) == snapshots(db.url, POOL, OTHER)
    with open_store(target) as store:
        assert store.verify().ok


def test_import_conflict_is_refused_and_writes_nothing(db: Db, tmp_path: Path) -> None:
    seed(db.url)
    dump = tmp_path / "dump.jsonl"
    ok(["--url", db.url, "export", "--all", "-o", str(dump)])
    extra = OPENED_LINE.replace('"p"', '"pool.cli.new"')
    dump.write_text(dump.read_text(encoding="utf-8") + extra, encoding="utf-8")
    rows = raw_rows(db)
    line = one_error_line(run(["--url", db.url, "import", str(dump)]), 1)
    assert "import refused, nothing was written" in line
    assert repr(POOL) in line and repr(OTHER) in line and "pool.cli.new" not in line
    assert raw_rows(db) == rows
    assert db.execute(
        "SELECT count(*) FROM agent_pool_store_pools WHERE pool_id = 'pool.cli.new'"
    ) == [(0,)]
    # one pool with records is enough to refuse the whole file
    with db.open() as store:
        store.open_pool("pool.cli.new", AgentPoolStoreConfig())
    line = one_error_line(run(["--url", db.url, "import", "-"], input=extra), 1)
    assert "'pool.cli.new' (records up to cursor 1)" in line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "line 1: not valid JSON"),
        ('{"pool_id":"p","seq":1}\n', "line 1: not an export record (missing payload)"),
        ('{"pool_id":"p","seq":1,"payload":{},"x":1}\n', "unknown key(s) 'x'"),
        ('{"pool_id":"","seq":1,"payload":{}}\n', "invalid pool_id"),
        ('{"pool_id":"p","seq":0,"payload":{}}\n', "seq must be an integer >= 1"),
        ('{"pool_id":"p","seq":1,"payload":{"type":"nope"}}\n', "line 1: invalid payload"),
        ('{"pool_id":"p","event_seq":3}\n', "line 1: pool 'p': an event counter must come once"),
        ('{"pool_id":"p","event_seq":0}\n', "line 1: event_seq must be an integer >= 1"),
        (
            '{"pool_id":"p","seq":1,"payload":{"type":"pool_created"}}\n'
            '{"pool_id":"p","event_seq":3}\n{"pool_id":"p","seq":2,"payload":'
            '{"type":"pool_created"}}\n',
            "line 3: pool 'p': a record after the pool's event counter",
        ),
        (
            '{"pool_id":"p","seq":1,"payload":{"type":"pool_opened","config":{"message_policy":'
            '{"include_sender_in_pool_broadcast":false},"wake_policy":{"envelope_only":true}}}}\n'
            '\n{"pool_id":"p","seq":3,"payload":{"type":"pool_created"}}\n',
            "line 3: pool 'p' record seq 3 out of order: expected seq 2",
        ),
        ('{"pool_id":"p","seq":1,"payload":{}} trailing\n', "unexpected data after the object"),
    ],
)
def test_import_rejects_bad_lines(db: Db, tmp_path: Path, content: str, message: str) -> None:
    dump = tmp_path / "bad.jsonl"
    dump.write_text(content, encoding="utf-8")
    line = one_error_line(run(["--url", db.url, "import", str(dump)]), 1)
    assert message in line
    assert "nothing was imported" in line
    assert raw_rows(db) == []


def test_import_file_problems(db: Db, tmp_path: Path) -> None:
    line = one_error_line(run(["--url", db.url, "import", str(tmp_path / "missing.jsonl")]), 1)
    assert "cannot access" in line and "missing.jsonl" in line
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8 text" in one_error_line(run(["--url", db.url, "import", str(binary)]), 1)
    assert "usage error" in one_error_line(run(["--url", db.url, "import"]), 2)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert "imported 0 record(s)" in ok(["--url", db.url, "import", str(empty)]).stderr


# --- verify, rebuild -------------------------------------------------------------------------


def test_verify_failure_then_rebuild(db: Db) -> None:
    seed(db.url)
    # the foreign record is not applied yet: verify says so (and changes nothing), as
    # information: it is not damage, so the exit status is 0
    pending = run(["--url", db.url, "verify"])
    assert pending.exit_code == 0
    assert f"{OTHER}: pending: records 3..3 are not in the projections yet" in pending.stdout
    ok(["--url", db.url, "pools"])  # any operation on the pool catches up
    assert ok(["--url", db.url, "verify"]).stdout == "verified 2 pool(s), 13 record(s): ok\n"
    db.execute(
        "UPDATE agent_pool_store_members SET member_json = :json WHERE run_id = 'run.a'",
        json='{"run_id":"run.a","agent_id":"agent.forged"}',
    )
    failed = run(["--url", db.url, "verify"])
    assert failed.exit_code == 1
    assert failed.stdout.startswith("verified 2 pool(s), 13 record(s): 1 difference(s)")
    assert f"{POOL}: projection: member 'run.a' differs" in failed.stdout
    assert run(["--url", db.url, "verify", OTHER]).exit_code == 0
    rich = run(["--url", db.url, "verify", POOL], env=RICH_ENV)
    assert rich.exit_code == 1 and "┃" in rich.stdout
    rebuilt = ok(["--url", db.url, "rebuild", POOL])
    assert rebuilt.stdout == f"rebuilt {POOL}: 10 record(s) applied\n"
    assert ok(["--url", db.url, "verify", POOL]).stdout == "verified 1 pool(s), 10 record(s): ok\n"
    line = one_error_line(run(["--url", db.url, "rebuild", "pool.nowhere"]), 1)
    assert "has no records; nothing to rebuild" in line
    assert "usage error" in one_error_line(run(["--url", db.url, "rebuild"]), 2)


# --- errors, usage, masking ------------------------------------------------------------------


def test_usage_errors_exit_2_in_one_line(db: Db) -> None:
    assert "No such command" in one_error_line(run(["--url", db.url, "bogus"]), 2)
    assert "No such option" in one_error_line(run(["--url", db.url, "pools", "--bogus"]), 2)
    line = one_error_line(run(["--url", db.url, "watch", POOL, "--timeout", "1"]), 2)
    assert "--timeout only applies with --follow" in line
    assert "usage error" in one_error_line(
        run(["--url", db.url, "watch", POOL, "--after", "-1"]), 2
    )
    line = one_error_line(run(["--url", "postgresql://u:hunter2@host:bad/db", "pools"]), 2)
    assert "not a database URL" in line and "hunter2" not in line
    line = one_error_line(run(["--url", "mysql://u:hunter2@host/db", "pools"]), 1)
    assert "unsupported database" in line and "hunter2" not in line


def test_help_and_version() -> None:
    result = ok(["--help"])
    for command in (
        "migrate",
        "current",
        "pools",
        "snapshot",
        "watch",
        "export",
        "import",
        "verify",
        "rebuild",
    ):
        assert command in result.stdout
    assert "agent-pool-store, version" in ok(["--version"]).stdout


@pytest.mark.postgresql
def test_password_never_shown(pg_url: URL, tmp_path: Path) -> None:
    url = with_secret(pg_url)
    seed(url)
    dump = tmp_path / "dump.jsonl"
    commands = [
        ["current"],
        ["migrate"],
        ["pools"],
        ["pools", "--json"],
        ["snapshot", POOL],
        ["snapshot", "pool.nowhere"],
        ["watch", POOL],
        ["watch", OTHER, "--follow", "--timeout", "0.1"],
        ["export", "--all", "-o", str(dump)],
        ["import", str(dump)],  # refused: the pools have records
        ["verify"],
        ["rebuild", POOL],
    ]
    for env in (PLAIN_ENV, RICH_ENV):
        for command in commands:
            result = run(["--url", url, *command], env=env)
            assert SECRET not in result.stdout + result.stderr, command
        result = run(["pools"], env={**env, "AGENT_POOL_STORE_URL": url})
        assert result.exit_code == 0 and SECRET not in result.stdout + result.stderr
    unreachable = make_url(url).set(port=1).render_as_string(hide_password=False)
    line = one_error_line(run(["--url", unreachable, "pools"]), 1)
    assert SECRET not in line and "***" in line
    assert "postgresql+psycopg://postgres:***@" in ok(["--url", url, "current"]).stdout


# --- the console script ----------------------------------------------------------------------


def test_console_script_plain_when_piped(db: Db) -> None:
    seed(db.url)
    assert SCRIPT.exists(), "pip install -e . installs the console script"
    completed = subprocess.run(
        [str(SCRIPT), "--url", db.url, "pools"],
        capture_output=True,
        text=True,
        env=script_env(),
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0] == POOLS_HEADER
    assert "\x1b[" not in completed.stdout
    completed = subprocess.run(
        [str(SCRIPT), "snapshot", "pool.nowhere"],
        capture_output=True,
        text=True,
        env=script_env({"AGENT_POOL_STORE_URL": db.url}),
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.count("\n") == 1 and "HostConfigurationNeeded" in completed.stderr
    assert SECRET not in completed.stdout + completed.stderr


APPENDER = textwrap.dedent(
    """
    import sys, time
    from agent_pool_store import open_store
    from tests.factories import MemberFactory

    url, pool, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open_store(url) as store:
        for index in range(count):
            time.sleep(0.01)
            store.join_member(pool, MemberFactory(run_id=f"run.appended.{index}"))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"]
)
def test_watch_follow_picks_up_another_process(db: Db, signal_number: int) -> None:
    seed(db.url)
    count = 15
    watcher = subprocess.Popen(
        [str(SCRIPT), "watch", OTHER, "--follow", "--json", "--after", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=script_env({"AGENT_POOL_STORE_URL": db.url}),
        # as from a terminal: a test run started as a background job inherits SIGINT ignored,
        # and a process that starts with SIGINT ignored rightly keeps ignoring it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        sequences = [
            json.loads(lines.get(timeout=PROCESS_TIMEOUT))["cursor"]["sequence"] for _ in range(2)
        ]
        assert sequences == [2, 3]  # what was there, then ...
        subprocess.run(
            [sys.executable, "-c", APPENDER, db.url, OTHER, str(count)],
            cwd=ROOT,
            env=script_env(),
            timeout=PROCESS_TIMEOUT,
            check=True,
        )
        for _ in range(count):  # ... what another process appended
            record = json.loads(lines.get(timeout=PROCESS_TIMEOUT))
            sequences.append(record["cursor"]["sequence"])
        assert sequences == list(range(2, 4 + count))
        watcher.send_signal(signal_number)
        watcher.wait(timeout=PROCESS_TIMEOUT)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    reader.join(timeout=10)
    assert watcher.returncode == 0
    assert watcher.stderr is not None
    stderr = watcher.stderr.read()
    assert "Traceback" not in stderr
    assert SECRET not in stderr
    assert lines.empty()


# --- the library functions behind export and import ------------------------------------------


def test_export_and_import_library_functions(db: Db, tmp_path: Path) -> None:
    seed(db.url)
    with db.open() as store:
        lines = list(store.export_records())
        assert lines == list(store.export_records(POOL)) + list(store.export_records(OTHER))
        assert store.count_records() == len(lines) == 13
    assert ok(["--url", db.url, "export", "--all"]).stdout.split("\n")[:-1] == lines
    calls: list[tuple[str, int, int | None]] = []
    target = sqlite_url(tmp_path / "target.sqlite")
    with open_store(target) as imported:
        # Windows line ends and blank lines are fine
        report = imported.import_records(
            [line + "\r\n" for line in lines] + ["\n"],
            progress=lambda *call: calls.append(call),
        )
        assert report == ImportReport({POOL: 10, OTHER: 3})
        assert report.records == 13
        assert imported.verify().ok
    assert {phase for phase, _, _ in calls} == {"reading", "writing", "projecting"}
    assert calls[-1] == ("projecting", 13, 13)
    assert snapshots(target, POOL, OTHER) == snapshots(db.url, POOL, OTHER)


def test_export_refuses_an_unreadable_record(db: Db) -> None:
    seed(db.url)
    db.execute(
        "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
        " VALUES (:pool, 4, 'wake', '{not json')",
        pool=OTHER,
    )
    line = one_error_line(run(["--url", db.url, "export", "--all"]), 1)
    assert f"agent pool {OTHER!r} record seq 4 cannot be read" in line
    assert ok(["--url", db.url, "export", POOL]).stdout.count("\n") == 10
