"""Opening the store: every way it can go wrong ends in a clear AgentError.

- a password given in the URL's query (or inside a conninfo string) is masked wherever the
  URL is shown, as one in the user-info part is;
- a database migrated by a newer version of this package, or with our tables but no version
  row, is named as such (not Alembic's raw errors, not "run upgrade head");
- a PostgreSQL database not in UTF-8 is refused;
- an unparsable URL and bad ``open_store`` arguments are refused naming the argument;
- a SQLite engine whose pool already holds connections gets the store's settings on them;
- a read-only SQLite database refuses writes with a classification that invites no retry.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from agent_pool_store import (
    AgentError,
    AgentErrorKind,
    AgentPoolMember,
    AgentPoolStoreConfig,
    MemberJoined,
    RetryClassification,
    migrations,
    open_store,
)
from agent_pool_store.cli import cli
from agent_pool_store.sql.settings import safe_url
from tests.databases import new_pg_database, sqlite_url

SECRET = "s3cr3t-in-query"
POOL = "pool.opening"
MEMBER = AgentPoolMember(run_id="run.a", agent_id="agent.a")


def assert_agent_error(error: BaseException, retry: RetryClassification, *words: str) -> None:
    assert isinstance(error, AgentError), f"{type(error).__name__}: {error}"
    assert error.retry is retry, error
    for word in words:
        assert word in error.message, error.message


# --- secrets in the query ---------------------------------------------------------------------


def test_safe_url_masks_every_password_a_url_can_carry() -> None:
    urls = [
        f"postgresql+psycopg://app:{SECRET}@db/pools",
        f"postgresql+psycopg://app@db/pools?password={SECRET}",
        f"postgresql+psycopg://app@db/pools?PassWord={SECRET}&sslmode=disable",
        f"postgresql+psycopg://app@db/pools?sslpassword={SECRET}",
        f"postgresql+psycopg:///?dsn=host%3Ddb%20password%3D{SECRET}%20user%3Dapp",
        f"postgresql+psycopg:///?dsn=host%3Ddb%20password%3D%27{SECRET}%20x%27",
    ]
    for url in urls:
        shown = safe_url(make_url(url))
        assert SECRET not in shown, shown
        assert "***" in shown, shown
    assert safe_url(make_url("sqlite:///a/b.sqlite")) == "sqlite:///a/b.sqlite"


@pytest.mark.postgresql
def test_a_password_in_the_query_never_shows(pg_url: URL) -> None:
    url = pg_url.update_query_dict({"password": SECRET}).render_as_string(hide_password=False)
    assert SECRET in url
    with open_store(url) as store:  # trust authentication accepts any password
        assert SECRET not in repr(store)
        assert SECRET not in str(store.url)
        assert SECRET not in repr(store.url)
        store.open_pool(POOL, AgentPoolStoreConfig())
    unreachable = make_url(url).set(database="aps_no_such_database")
    with pytest.raises(AgentError) as caught:
        open_store(unreachable)
    assert SECRET not in str(caught.value)
    result = CliRunner().invoke(cli, ["--url", url, "pools"])
    assert result.exit_code == 0, result.output
    assert POOL in result.output
    assert SECRET not in result.output
    failed = CliRunner().invoke(cli, ["--url", unreachable.render_as_string(False), "pools"])
    assert failed.exit_code != 0
    assert SECRET not in failed.output


# --- schema revisions -------------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ]
)
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database of its own, migrated to head (PostgreSQL: dropped afterwards)."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "own.sqlite")
        migrations.upgrade(url)
        yield url
        return
    request.getfixturevalue("pg_database")  # reachable, or fail under CI
    with new_pg_database("aps_open") as url:
        migrations.upgrade(url)
        yield url.render_as_string(hide_password=False)


def execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


@pytest.mark.parametrize("auto_upgrade", [True, False])
def test_a_database_migrated_by_a_newer_version_is_named(
    migrated_url: str, auto_upgrade: bool
) -> None:
    execute(migrated_url, "UPDATE agent_pool_store_alembic_version SET version_num = '0999'")
    with pytest.raises(AgentError) as caught:
        open_store(migrated_url, auto_upgrade=auto_upgrade)
    assert_agent_error(
        caught.value,
        RetryClassification.HOST_CONFIGURATION_NEEDED,
        "0999",
        migrations.head(),
        "newer",
        "upgrade the agent-pool-store package",
    )
    assert "upgrade head" not in caught.value.message


@pytest.mark.parametrize("auto_upgrade", [True, False])
def test_our_tables_without_a_version_row_are_named(migrated_url: str, auto_upgrade: bool) -> None:
    execute(migrated_url, "DELETE FROM agent_pool_store_alembic_version")
    with pytest.raises(AgentError) as caught:
        open_store(migrated_url, auto_upgrade=auto_upgrade)
    assert_agent_error(
        caught.value,
        RetryClassification.HOST_CONFIGURATION_NEEDED,
        "agent_pool_store_alembic_version",
        "stamp",
    )
    assert "already exists" not in caught.value.message


@pytest.mark.postgresql
def test_a_postgresql_database_not_in_utf8_is_refused(pg_database: URL) -> None:
    ascii_only = "ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
    with new_pg_database("aps_ascii", ascii_only) as url:
        for auto_upgrade in (True, None):
            with pytest.raises(AgentError) as caught:
                open_store(url, auto_upgrade=auto_upgrade)
            assert_agent_error(
                caught.value, RetryClassification.HOST_CONFIGURATION_NEEDED, "SQL_ASCII", "UTF8"
            )


# --- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["", "not a url", "://", "postgresql+psycopg://[::1"])
def test_an_unparsable_url_is_refused(url: str) -> None:
    with pytest.raises(AgentError) as caught:
        open_store(url)
    assert_agent_error(caught.value, RetryClassification.HOST_CONFIGURATION_NEEDED, "URL")


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"lock_timeout": float("nan")}, "lock_timeout"),
        ({"lock_timeout": float("inf")}, "lock_timeout"),
        ({"lock_timeout": -1}, "lock_timeout"),
        ({"lock_timeout": 0}, "lock_timeout"),
        ({"lock_timeout": "10"}, "lock_timeout"),
        ({"lock_timeout": True}, "lock_timeout"),
        ({"sqlite_synchronous": "SOMETIMES"}, "sqlite_synchronous"),
        ({"sqlite_synchronous": "full; DROP TABLE x"}, "sqlite_synchronous"),
    ],
)
def test_bad_open_store_arguments_are_refused(
    tmp_path: Path, arguments: dict[str, Any], named: str
) -> None:
    path = tmp_path / "never.sqlite"
    with pytest.raises(AgentError) as caught:
        open_store(sqlite_url(path), **arguments)
    assert_agent_error(caught.value, RetryClassification.NOT_RETRYABLE, named)
    assert not path.exists()


# --- SQLite engines and files -----------------------------------------------------------------


@pytest.mark.sqlite
def test_a_sqlite_engine_with_pooled_connections_gets_the_store_settings(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path / "host.sqlite"))
    try:
        with engine.connect() as connection:  # the host used its engine first
            connection.execute(text("CREATE TABLE host_things (id INTEGER PRIMARY KEY)"))
            connection.commit()
            pooled = connection.connection.dbapi_connection
        with open_store(engine, lock_timeout=3) as store:
            store.open_pool(POOL, AgentPoolStoreConfig())
            store.join_member(POOL, MEMBER)
            with engine.connect() as connection:
                assert connection.connection.dbapi_connection is pooled  # the same one
                settings = [
                    connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "busy_timeout", "synchronous")
                ]
        assert settings == ["wal", 3000, 2]  # WAL, lock_timeout, FULL
    finally:
        engine.dispose()


@pytest.mark.sqlite
def test_a_read_only_sqlite_database_refuses_writes_without_inviting_a_retry(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ro.sqlite"
    with open_store(sqlite_url(path)) as store:
        store.open_pool(POOL, AgentPoolStoreConfig())
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    with open_store(read_only) as store:
        assert store.snapshot(POOL).cursor.sequence == 1
        with pytest.raises(AgentError) as caught:
            store.join_member(POOL, MEMBER)
        assert_agent_error(caught.value, RetryClassification.HOST_CONFIGURATION_NEEDED, "read-only")
        assert caught.value.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM agent_pool_records").fetchone() == (1,)


# --- closing ----------------------------------------------------------------------------------


def test_close_is_final(migrated_url: str) -> None:
    with open_store(migrated_url) as store:
        store.open_pool(POOL, AgentPoolStoreConfig())
        follower = store.follow(POOL, timeout=0)
        watching = store.watch(POOL)
    for call in (
        lambda: store.snapshot(POOL),
        lambda: store.join_member(POOL, MEMBER),
        lambda: store.message_receipt(POOL, "idem.x"),
        lambda: list(store.watch(POOL)),
        lambda: list(watching),  # made before the close, read after it
        lambda: list(follower),
        lambda: store.next_event_sequence(POOL),
        store.verify,
        store.pools,
        lambda: store.rebuild(POOL),
    ):
        with pytest.raises(AgentError) as caught:
            call()
        assert_agent_error(caught.value, RetryClassification.NOT_RETRYABLE, "is closed")
    store.close()  # closing again does nothing
    with open_store(migrated_url) as again:  # the data is there for a new store
        assert again.snapshot(POOL).cursor.sequence == 1


# --- logging ----------------------------------------------------------------------------------


def test_the_library_logs_migrations_and_catch_ups_not_ordinary_operations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent_pool_store")
    path = tmp_path / "logged.sqlite"
    with open_store(sqlite_url(path)) as store:
        store.open_pool(POOL, AgentPoolStoreConfig())
        migrated = [r for r in caplog.records if "migrated" in r.getMessage()]
        assert [r.levelno for r in migrated] == [logging.INFO]
        assert "from revision none to" in migrated[0].getMessage()
        caplog.clear()
        for n in range(5):  # ordinary operations: nothing at INFO or above
            store.join_member(POOL, AgentPoolMember(run_id=f"run.{n}", agent_id="a"))
            store.snapshot(POOL)
        assert [r for r in caplog.records if r.levelno >= logging.INFO] == []
        with sqlite3.connect(path) as foreign:  # another writer appends, as the reference does
            foreign.execute(
                "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json)"
                " VALUES (?, 7, 'member_joined', ?)",
                (POOL, MemberJoined(member=MEMBER).model_dump_json()),
            )
        store.snapshot(POOL)
        caught_up = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert caught_up == [
            f"pool {POOL!r}: applied records 7..7 to the projections (another writer's)"
        ]
