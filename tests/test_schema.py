"""A schema of the host's choosing on PostgreSQL: ``open_store(url, schema=…)``.

Each PostgreSQL test makes a database of its own (``new_pg_database``), so that ``public``
can be checked to stay empty. The contract suite runs in a schema too: the
``postgresql-schema`` backend of ``tests/conftest.py``.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

from agent_pool_store import (
    AgentError,
    AgentErrorKind,
    AgentPoolStoreConfig,
    AgentPoolStoreCursor,
    PoolCreated,
    RetryClassification,
    migrations,
    open_store,
)
from agent_pool_store.cli import cli
from agent_pool_store.sql.dialects import postgresql_waiter
from agent_pool_store.sql.dialects.postgresql_waiter import CHANNEL, PostgresWaiter
from agent_pool_store.sql.schema import Base
from alembic import command
from tests.checkout_alembic import checkout_alembic
from tests.databases import new_pg_database, sqlite_url
from tests.factories import MemberFactory, PolicyRefFactory, message_pair

REPO_ROOT = Path(__file__).resolve().parent.parent
POOL = "pool.schema"
OURS = set(Base.metadata.tables) | {migrations.VERSION_TABLE}
FUNCTION = "agent_pool_store_notify_append"
CLI_ENV: dict[str, str | None] = {
    "FORCE_COLOR": None,
    "TTY_COMPATIBLE": None,
    "AGENT_POOL_STORE_URL": None,
    "AGENT_POOL_STORE_SCHEMA": None,
}

postgresql = pytest.mark.postgresql


@pytest.fixture
def url(pg_database: URL) -> Iterator[URL]:
    """A new, empty PostgreSQL database of this test's own (``pg_database``: reachability)."""
    with new_pg_database("aps_schema") as made:
        yield made


def libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def query(url: URL, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def objects(url: URL, schema: str) -> dict[str, set[str]]:
    """The tables, indexes, functions and triggers a schema holds."""
    return {
        "tables": {
            name
            for (name,) in query(
                url, "SELECT tablename FROM pg_tables WHERE schemaname = :s", s=schema
            )
        },
        "indexes": {
            name
            for (name,) in query(
                url, "SELECT indexname FROM pg_indexes WHERE schemaname = :s", s=schema
            )
        },
        "functions": {
            name
            for (name,) in query(
                url,
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = :s",
                s=schema,
            )
        },
        "triggers": {
            name
            for (name,) in query(
                url,
                "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :s AND NOT t.tgisinternal",
                s=schema,
            )
        },
    }


def schema_exists(url: URL, schema: str) -> bool:
    return bool(query(url, "SELECT 1 FROM pg_namespace WHERE nspname = :s", s=schema))


def assert_host_configuration_needed(caught: pytest.ExceptionInfo[AgentError]) -> None:
    assert caught.value.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED
    assert caught.value.retry is RetryClassification.HOST_CONFIGURATION_NEEDED


def cli_run(args: list[str], env: Mapping[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, args, env={**CLI_ENV, **(env or {})}, catch_exceptions=False)


def cli_ok(args: list[str], env: Mapping[str, str | None] | None = None) -> Result:
    result = cli_run(args, env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


# --- migrations ------------------------------------------------------------------------------


@postgresql
def test_migrate_puts_everything_in_the_schema_and_nothing_in_public(url: URL) -> None:
    assert migrations.current(url, schema="agents") is None  # only read: nothing created
    assert not schema_exists(url, "agents")
    migrations.upgrade(url, schema="agents")

    made = objects(url, "agents")
    assert made["tables"] == OURS
    assert {f"pk_{table}" for table in Base.metadata.tables} <= made["indexes"]
    assert made["functions"] == {FUNCTION}
    assert made["triggers"] == {FUNCTION}
    assert objects(url, "public") == {
        "tables": set(),
        "indexes": set(),
        "functions": set(),
        "triggers": set(),
    }
    assert migrations.current(url, schema="agents") == migrations.head()
    assert migrations.current(url) is None  # public has no version table
    # the trigger function names its schema's table: it works from any search_path
    [(body,)] = query(url, f"SELECT pg_get_functiondef('agents.{FUNCTION}'::regproc)")
    assert "agents.agent_pool_store_followers" in body
    assert "'agents.' || NEW.pool_id" in body

    # the tables match the models, compared in the schema
    engine = create_engine(url, connect_args={"options": "-c search_path=agents"})
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "version_table": migrations.VERSION_TABLE,
                    "version_table_schema": "agents",
                    "compare_type": True,
                    "include_name": lambda name, type_, _: (
                        type_ != "table" or name in Base.metadata.tables
                    ),
                },
            )
            assert list(compare_metadata(context, Base.metadata)) == []
    finally:
        engine.dispose()

    migrations.downgrade(url, "0004", schema="agents")  # the 0003 function again
    [(body,)] = query(url, f"SELECT pg_get_functiondef('agents.{FUNCTION}'::regproc)")
    assert "agents.agent_pool_store_followers" not in body
    migrations.downgrade(url, "base", schema="agents")
    assert objects(url, "agents")["tables"] == {
        "agent_pool_records",
        "agent_pool_event_seq",
        migrations.VERSION_TABLE,
    }
    assert objects(url, "public")["tables"] == set()
    migrations.upgrade(url, schema="agents")
    assert objects(url, "agents")["tables"] == OURS


@postgresql
def test_a_role_that_may_not_create_schemas_migrates_into_one_made_for_it(url: URL) -> None:
    """``migrate`` creates the schema only when it is missing: an application role without
    the right to create schemas (nor to create in ``public``, PostgreSQL 15's default)
    migrates into a schema a DBA made for it."""
    role = f"aps_app_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE ROLE {role} LOGIN"))
            connection.execute(text(f"CREATE SCHEMA app AUTHORIZATION {role}"))
        as_role = url.set(username=role)
        migrations.upgrade(as_role, schema="app")
        with open_store(as_role, schema="app") as store:
            store.open_pool(POOL, AgentPoolStoreConfig())
            assert store.snapshot(POOL).cursor is not None
        assert objects(url, "app")["tables"] == OURS
        with pytest.raises(AgentError) as caught:
            migrations.upgrade(as_role, schema="other")  # creating one is refused
        assert caught.value.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED
        assert not schema_exists(url, "other")
    finally:
        with admin.connect() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS app CASCADE"))
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_offline_sql_names_the_schema_everywhere() -> None:
    script = migrations.upgrade_sql("postgresql+psycopg://app@db.internal/pools", schema="agents")
    begin = script.index("BEGIN;")
    assert script.index('CREATE SCHEMA IF NOT EXISTS "agents";') > begin
    assert script.index('SET LOCAL search_path = "agents";') < script.index("CREATE TABLE")
    assert f"CREATE TABLE agents.{migrations.VERSION_TABLE}" in script
    printed = cli_ok(
        ["--url", "postgresql://app@db.internal/pools", "--schema", "agents", "migrate", "--sql"]
    )
    assert printed.stdout.strip() == script.strip()
    with pytest.raises(AgentError, match="PostgreSQL only"):
        migrations.upgrade_sql("sqlite:///x.sqlite", schema="agents")
    with pytest.raises(AgentError, match="schema must be"):
        migrations.upgrade_sql("postgresql://app@db.internal/pools", schema="Agents")


@postgresql
def test_offline_sql_for_a_schema_runs_as_rendered(url: URL) -> None:
    buffer = io.StringIO()
    config = Config(str(REPO_ROOT / "alembic.ini"), output_buffer=buffer)
    config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False))
    config.cmd_opts = type("Options", (), {"x": ["schema=offline"]})()  # as `-x schema=…`
    command.upgrade(config, "head", sql=True)
    script = buffer.getvalue()
    assert 'CREATE SCHEMA IF NOT EXISTS "offline"' in script
    assert 'SET LOCAL search_path = "offline"' in script
    assert f"INSERT INTO offline.{migrations.VERSION_TABLE}" in script
    assert not schema_exists(url, "offline")  # rendering touched nothing
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        connection.execute(script.encode())
    assert migrations.current(url, schema="offline") == migrations.head()
    assert objects(url, "offline")["tables"] == OURS
    assert objects(url, "offline")["triggers"] == {FUNCTION}
    assert objects(url, "public")["tables"] == set()
    with open_store(url, schema="offline") as store:
        store.open_pool(POOL, AgentPoolStoreConfig())
        assert [r.cursor.sequence for r in store.follow(POOL, timeout=0)] == [1]


@postgresql
def test_alembic_from_a_checkout_takes_the_schema_from_x_or_the_environment(url: URL) -> None:
    target = url.render_as_string(hide_password=False)

    def alembic(*args: str, schema_variable: str) -> str:
        return checkout_alembic(
            "-x", f"url={target}", *args, AGENT_POOL_STORE_SCHEMA=schema_variable
        )

    assert alembic("current", schema_variable="by_env").split() == []
    assert not schema_exists(url, "by_env")  # `alembic current` only reads
    alembic("upgrade", "head", schema_variable="by_env")
    assert alembic("current", schema_variable="by_env").split() == [migrations.head(), "(head)"]
    alembic("-x", "schema=by_x", "upgrade", "head", schema_variable="by_env")  # -x comes first
    assert objects(url, "by_x")["tables"] == OURS
    assert migrations.current(url, schema="by_env") == migrations.head()
    assert objects(url, "public")["tables"] == set()


# --- opening ---------------------------------------------------------------------------------


@postgresql
def test_open_store_on_a_missing_schema_fails_and_creates_nothing(url: URL) -> None:
    with pytest.raises(AgentError) as caught:
        open_store(url, schema="missing")
    assert_host_configuration_needed(caught)
    assert "schema 'missing'" in caught.value.message
    assert "does not exist" in caught.value.message
    assert "upgrade(URL, schema='missing')" in caught.value.message
    assert not schema_exists(url, "missing")
    assert objects(url, "public")["tables"] == set()

    migrations.upgrade(url, schema="present")  # a migrated schema beside it changes nothing
    with pytest.raises(AgentError, match="schema 'missing'"):
        open_store(url, schema="missing")
    with pytest.raises(AgentError) as caught:
        open_store(url)  # nor does public see the other schema's tables
    assert "is at schema revision none" in caught.value.message

    with open_store(url, schema="missing", auto_upgrade=True) as store:
        store.open_pool(POOL, AgentPoolStoreConfig())
    assert objects(url, "missing")["tables"] == OURS


@postgresql
def test_the_store_connections_see_the_schema_alone_and_keep_the_url_options(url: URL) -> None:
    """``search_path`` is the schema alone (nothing falls through to ``public``), set with the
    store's ``lock_timeout`` beside the libpq ``options`` the URL already carries."""
    migrations.upgrade(url, schema="agents")
    with_options = url.update_query_dict(
        {"options": "-c statement_timeout=12345 -c search_path=public"}
    )
    with open_store(with_options, schema="agents", lock_timeout=3) as store:
        with store.engine.connect() as connection:
            settings = connection.execute(
                text(
                    "SELECT current_setting('search_path'), current_setting('lock_timeout'),"
                    " current_setting('statement_timeout')"
                )
            ).one()
        assert tuple(settings) == ("agents", "3s", "12345ms")
        assert repr(store).endswith("schema='agents')")
    migrations.upgrade(url)  # public too, found through the URL's own search_path
    with open_store(with_options) as store, store.engine.connect() as connection:
        path = connection.execute(text("SHOW search_path")).scalar()
        assert path == "public"


@postgresql
def test_the_one_statement_paths_serve_a_schema(url: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    """The autocommit append and look-up (``postgresql_statements``) run in the schema, not
    only the units of work they fall back to."""
    migrations.upgrade(url, schema="agents")
    with open_store(url, schema="agents") as store:
        answers: list[object] = []
        for name in ("try_append", "try_look_up"):
            original = getattr(store.dialect, name)

            def spy(*args: Any, _original: Any = original) -> Any:
                answers.append(_original(*args))
                return answers[-1]

            monkeypatch.setattr(store.dialect, name, spy)
        store.open_pool(POOL, AgentPoolStoreConfig())
        store.join_member(POOL, MemberFactory(run_id="run.one"))
        store.record_message(POOL, *message_pair("message.one"))
        assert store.message_receipt(POOL, "idem.message.one") is not None
        assert answers[-3:] == [2, 3, (answers[-1][0],)]  # type: ignore[index]
        assert isinstance(answers[-1][0], str)  # type: ignore[index]
        assert store.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=3)


@pytest.mark.sqlite
def test_sqlite_refuses_a_schema(tmp_path: Path) -> None:
    path = tmp_path / "pool.sqlite"
    for attempt in (
        lambda: open_store(sqlite_url(path), schema="agents"),
        lambda: migrations.upgrade(sqlite_url(path), schema="agents"),
        lambda: open_store(create_engine(sqlite_url(path)), schema="agents"),
    ):
        with pytest.raises(AgentError) as caught:
            attempt()
        assert_host_configuration_needed(caught)
        assert "schema option" in caught.value.message
        assert "PostgreSQL only" in caught.value.message
    assert not path.exists()
    result = cli_run(["--url", sqlite_url(path), "--schema", "agents", "migrate"])
    assert result.exit_code == 1
    assert "PostgreSQL only" in result.stderr
    assert not path.exists()


@pytest.mark.parametrize("name", ["Agents", "1agents", "a-b", "a b", "", "pg_agents", "x" * 64])
def test_a_schema_name_is_checked(name: str) -> None:
    with pytest.raises(AgentError) as caught:
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none", schema=name)
    assert caught.value.kind is AgentErrorKind.INVALID_STATE_TRANSITION  # an argument refused
    assert "schema" in caught.value.message
    result = cli_run(["--url", "sqlite:///unused.sqlite", "--schema", name or " ", "pools"])
    assert result.exit_code == 2, result.stderr  # a usage error


# --- two schemas, one database ---------------------------------------------------------------


@postgresql
def test_two_schemas_of_one_database_are_independent(url: URL, tmp_path: Path) -> None:
    for schema in ("a", "b"):
        migrations.upgrade(url, schema=schema)
    with open_store(url, schema="a") as a, open_store(url, schema="b") as b:
        a.open_pool(POOL, AgentPoolStoreConfig())
        b.open_pool(POOL, AgentPoolStoreConfig(policy_refs=[]))
        a.join_member(POOL, MemberFactory(run_id="run.a"))
        b.record_pool_created(POOL)
        b.record_message(POOL, *message_pair("message.b"))
        b.join_member(POOL, MemberFactory(run_id="run.b1"))
        b.join_member(POOL, MemberFactory(run_id="run.b2"))
        assert [a.next_event_sequence(POOL) for _ in range(3)] == [1, 2, 3]
        assert b.next_event_sequence(POOL) == 1

        in_a, in_b = a.snapshot(POOL), b.snapshot(POOL)
        assert (in_a.cursor, in_b.cursor) == (
            AgentPoolStoreCursor(sequence=2),
            AgentPoolStoreCursor(sequence=5),
        )
        assert [m.run_id for m in in_a.members] == ["run.a"]
        assert [m.run_id for m in in_b.members] == ["run.b1", "run.b2"]
        assert not in_a.created and in_b.created
        assert a.message_receipt(POOL, "idem.message.b") is None
        assert b.message_receipt(POOL, "idem.message.b") is not None
        assert [(s.pool_id, s.records) for s in a.pools()] == [(POOL, 2)]
        assert [(s.pool_id, s.records) for s in b.pools()] == [(POOL, 5)]
        assert a.verify().ok and b.verify().ok
        assert [r.payload.type for r in a.watch(POOL)] == ["pool_opened", "member_joined"]

        # export from b, import into a third schema: the same log, counters included
        lines = list(b.export_records())
        with open_store(a.engine, schema="b") as b_on_a_engine:  # built for a: set per unit
            assert b_on_a_engine.snapshot(POOL) == in_b
    migrations.upgrade(url, schema="c")
    with open_store(url, schema="c") as c:
        report = c.import_records(lines)
        assert report.records == 5
        assert c.snapshot(POOL).model_dump_json() == in_b.model_dump_json()
        assert c.next_event_sequence(POOL) == 2
    assert objects(url, "public")["tables"] == set()


@postgresql
def test_a_follower_wakes_only_for_its_own_schema(
    url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both schemas follow the same pool id: an append in one notifies with its own
    payload (``schema.pool``), which the other schema's waiter does not take for its own."""
    monkeypatch.setattr(postgresql_waiter, "RECHECK_SECONDS", 60.0)  # only notifications wake
    for schema in ("a", "b"):
        migrations.upgrade(url, schema=schema)
    listener = psycopg.connect(libpq(url), autocommit=True)
    listener.execute(f"LISTEN {CHANNEL}")
    with open_store(url, schema="a") as a, open_store(url, schema="b") as b:
        for store in (a, b):
            store.open_pool(POOL, AgentPoolStoreConfig())
        waiter_a = PostgresWaiter(a.engine, POOL, 5.0, "a")
        waiter_b = PostgresWaiter(b.engine, POOL, 5.0, "b")
        try:
            b.join_member(POOL, MemberFactory(run_id="run.b"))
            assert [n.payload for n in listener.notifies(timeout=5, stop_after=1)] == [f"b.{POOL}"]
            assert waiter_b.wait(5.0) is True
            assert waiter_a.wait(0.5) is False  # b's append did not wake a's follower
            a.join_member(POOL, MemberFactory(run_id="run.a"))
            assert waiter_a.wait(5.0) is True
            assert waiter_b.wait(0.5) is False
        finally:
            waiter_a.close()
            waiter_b.close()
            listener.close()
        assert [r.cursor.sequence for r in a.follow(POOL, timeout=0)] == [1, 2]


# --- writers and engines that are not the store's --------------------------------------------


def _eventually(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


@postgresql
def test_a_foreign_writer_with_another_search_path_is_caught_up(
    url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer (as the Rust reference) inserts into ``agents.agent_pool_records`` from a
    session whose ``search_path`` is ``public`` (empty here), then empty: the trigger still
    finds its schema's followers, and the store catches the records up and follows them."""
    monkeypatch.setattr(postgresql_waiter, "RECHECK_SECONDS", 60.0)  # only notifications wake
    migrations.upgrade(url, schema="agents")
    with open_store(url, schema="agents") as store:
        store.open_pool(POOL, AgentPoolStoreConfig())
        stop = threading.Event()
        got: list[int] = []
        reader = threading.Thread(
            target=lambda: got.extend(r.cursor.sequence for r in store.follow(POOL, 1, stop=stop))
        )
        reader.start()
        try:
            followers = "SELECT 1 FROM agents.agent_pool_store_followers"
            assert _eventually(lambda: query(url, followers))  # registered: appends notify
            with psycopg.connect(libpq(url), autocommit=True) as writer:
                for path in ("public", "''"):
                    writer.execute(f"SET search_path = {path}")
                    writer.execute(
                        "INSERT INTO agents.agent_pool_records (pool_id, seq, kind, payload_json)"
                        " SELECT %s, max(seq) + 1, 'pool_created', %s"
                        " FROM agents.agent_pool_records WHERE pool_id = %s",
                        (POOL, PoolCreated().model_dump_json(), POOL),
                    )
            assert _eventually(lambda: len(got) == 2)  # woken by notifications
            assert got == [2, 3]
        finally:
            stop.set()
            reader.join(10)
        assert store.snapshot(POOL).created
        assert [(s.pool_id, s.records, s.cursor) for s in store.pools()] == [(POOL, 3, 3)]
        assert store.verify().ok


def _host_engine(url: URL) -> Engine:
    """The host's engine: one connection, so the store's transactions run on the very
    connection the host uses next."""
    return create_engine(url, pool_size=1, max_overflow=0)


@postgresql
def test_a_shared_engine_keeps_its_own_search_path(url: URL) -> None:
    engine = _host_engine(url)
    try:
        with engine.begin() as connection:  # the host's own table, in public
            connection.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY)"))
        migrations.upgrade(engine, schema="agents")
        with engine.connect() as connection:
            assert connection.execute(text("SHOW search_path")).scalar() == '"$user", public'
        with open_store(engine, schema="agents") as store:
            store.open_pool(POOL, AgentPoolStoreConfig())
            store.join_member(POOL, MemberFactory(run_id="run.host"))
            assert store.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=2)
            assert store.pools()[0].records == 2
            assert [r.cursor.sequence for r in store.follow(POOL, timeout=0)] == [1, 2]
            with engine.connect() as connection:  # the same pooled connection: no leak
                assert connection.execute(text("SHOW search_path")).scalar() == ('"$user", public')
                assert connection.execute(text("SHOW lock_timeout")).scalar() == "0"
                assert connection.execute(text("SELECT count(*) FROM orders")).scalar() == 0
        assert objects(url, "public")["tables"] == {"orders"}
        assert objects(url, "agents")["tables"] == OURS
    finally:
        engine.dispose()


@postgresql
def test_a_bound_store_sets_the_schema_per_call_in_the_hosts_transaction(url: URL) -> None:
    """``store.bind(connection)``: each call sets the schema's ``search_path`` in its
    savepoint and puts the host's back, after a failed call too."""
    engine = _host_engine(url)
    host_path = '"$user", public'
    try:
        migrations.upgrade(engine, schema="agents")
        store = open_store(engine, schema="agents")
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY)"))
            bound = store.bind(connection)
            bound.open_pool(POOL, AgentPoolStoreConfig())
            assert connection.execute(text("SHOW search_path")).scalar() == host_path
            with pytest.raises(AgentError):
                bound.open_pool(POOL, AgentPoolStoreConfig(policy_refs=[PolicyRefFactory()]))
            assert connection.execute(text("SHOW search_path")).scalar() == host_path
            connection.execute(text("INSERT INTO orders VALUES (1)"))  # public, as before
            assert bound.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=1)
        assert store.snapshot(POOL).cursor == AgentPoolStoreCursor(sequence=1)  # committed
        assert objects(url, "public")["tables"] == {"orders"}
        store.close()
    finally:
        engine.dispose()


@postgresql
def test_migrations_in_the_hosts_transaction_leave_its_search_path(url: URL) -> None:
    """The host's ``env.py`` runs ours on its connection, in its transaction
    (``upgrade(connection, schema=…)``, or Alembic's own commands on ``alembic_config``):
    its own statements after ours still land where its ``search_path`` says."""
    engine = _host_engine(url)
    host_path = '"$user", public'
    try:
        with engine.begin() as connection:
            migrations.upgrade(connection, schema="agents")
            assert connection.execute(text("SHOW search_path")).scalar() == host_path
            connection.execute(text("CREATE TABLE host_after (id INTEGER)"))
            command.upgrade(migrations.alembic_config(connection, schema="other"), "head")
            assert connection.execute(text("SHOW search_path")).scalar() == host_path
            connection.execute(text("CREATE TABLE host_last (id INTEGER)"))
        assert objects(url, "public")["tables"] == {"host_after", "host_last"}
        for schema in ("agents", "other"):
            assert migrations.current(engine, schema=schema) == migrations.head()
            assert objects(url, schema)["tables"] == OURS
    finally:
        engine.dispose()


# --- the command line ------------------------------------------------------------------------


@postgresql
def test_cli_schema_option_and_environment(url: URL, tmp_path: Path) -> None:
    target = url.render_as_string(hide_password=False)
    line = cli_run(["--url", target, "--schema", "agents", "pools"])
    assert line.exit_code == 1
    assert "schema 'agents'" in line.stderr
    assert "agent-pool-store --schema agents migrate" in line.stderr
    assert not schema_exists(url, "agents")
    current = cli_ok(["--url", target, "--schema", "agents", "current"])
    assert "current: none" in current.stdout
    assert not schema_exists(url, "agents")  # `current` only reads

    migrated = cli_ok(["--url", target, "--schema", "agents", "migrate"])
    assert "schema: agents" in migrated.stdout.splitlines()
    assert f"current: {migrations.head()}" in migrated.stdout
    assert objects(url, "agents")["tables"] == OURS
    assert objects(url, "public")["tables"] == set()

    with open_store(url, schema="agents") as store:
        store.open_pool(POOL, AgentPoolStoreConfig())
        store.join_member(POOL, MemberFactory(run_id="run.cli"))
    by_env = {"AGENT_POOL_STORE_URL": target, "AGENT_POOL_STORE_SCHEMA": "agents"}
    pools = cli_ok(["pools"], env=by_env)
    assert pools.stdout.splitlines()[1].split("\t")[:2] == [POOL, "2"]
    assert cli_ok(["--schema", "agents", "pools"], env={"AGENT_POOL_STORE_URL": target}).stdout == (
        pools.stdout
    )
    assert "agents" in cli_ok(["current"], env=by_env).stdout
    cli_ok(["verify"], env=by_env)

    dump = tmp_path / "dump.jsonl"
    cli_ok(["export", "--all", "--output", str(dump)], env=by_env)
    cli_ok(["migrate"], env={**by_env, "AGENT_POOL_STORE_SCHEMA": "copy"})
    cli_ok(["import", str(dump)], env={**by_env, "AGENT_POOL_STORE_SCHEMA": "copy"})
    copied = cli_ok(["snapshot", POOL], env={**by_env, "AGENT_POOL_STORE_SCHEMA": "copy"})
    assert copied.stdout == cli_ok(["snapshot", POOL], env=by_env).stdout
    watched = cli_ok(["watch", POOL], env={**by_env, "AGENT_POOL_STORE_SCHEMA": "copy"})
    assert len(watched.stdout.splitlines()) == 2
    # an empty variable is no schema: public, which is not migrated
    assert cli_run(["pools"], env={**by_env, "AGENT_POOL_STORE_SCHEMA": ""}).exit_code == 1
