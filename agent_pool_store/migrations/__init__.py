"""The packaged Alembic migrations, usable without a checkout.

``upgrade(url_or_engine)`` brings a database to the latest schema; ``current`` and ``head``
name revisions. Migrations keep their own version table, ``agent_pool_store_alembic_version``,
so they live beside a host application's own Alembic history.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, exc, inspect
from sqlalchemy.engine import URL

from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.sql.engine import build_engine
from agent_pool_store.sql.errors import driver_cause, translate
from agent_pool_store.sql.settings import EngineSettings, safe_url
from alembic import command

LOG = logging.getLogger(__name__)

VERSION_TABLE = "agent_pool_store_alembic_version"
"""Alembic's version table for this library's migrations."""

SCRIPT_LOCATION = str(Path(__file__).parent)
"""The migration scripts inside the installed package."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged scripts, optionally bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The latest revision shipped with this package."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


@contextmanager
def migration_connection(url_or_engine: str | URL | Engine) -> Iterator[Connection]:
    """A connection holding the write lock for migrating, committed unless the block fails.

    The dialect decides how: SQLite takes ``BEGIN IMMEDIATE``; PostgreSQL an advisory
    transaction lock.
    """
    owns = not isinstance(url_or_engine, Engine)
    engine, dialect = build_engine(url_or_engine, EngineSettings())
    try:
        with _translated(engine), engine.connect() as plain:
            connection = plain.execution_options(**dialect.unit_options(write=True))
            with connection.begin():
                dialect.lock_for_migration(connection)
                yield connection
    finally:
        if owns:
            engine.dispose()


@contextmanager
def _translated(engine: Engine) -> Iterator[None]:
    """Database errors while migrating leave as AgentError, the URL's password masked."""
    try:
        yield
    except exc.SQLAlchemyError as error:
        raise translate(error, f"migrating {safe_url(engine.url)}") from driver_cause(
            error, engine.url
        )


def upgrade(url_or_engine: str | URL | Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (concurrent callers are serialised).

    A database already at the latest revision is only read: upgrading to ``"head"`` takes
    the write lock (SQLite's file lock, PostgreSQL's advisory lock) only when there is
    something to migrate, so opening a migrated SQLite file never waits for its writers.
    """
    if revision == "head" and _at_head(url_or_engine):
        return
    with migration_connection(url_or_engine) as connection:
        before = current_of(connection)
        command.upgrade(alembic_config(connection), revision)
        after = current_of(connection)
        if after != before:
            LOG.info(
                "migrated %s from revision %s to %s",
                safe_url(connection.engine.url),
                before or "none",
                after,
            )


def _at_head(url_or_engine: str | URL | Engine) -> bool:
    """Whether the database is at :func:`head`, read without taking a write lock."""
    owns = not isinstance(url_or_engine, Engine)
    engine, _ = build_engine(url_or_engine, EngineSettings())
    try:
        with _translated(engine), engine.connect() as connection:
            return checked_revision(connection) == head()
    finally:
        if owns:
            engine.dispose()


def downgrade(url_or_engine: str | URL | Engine, revision: str) -> None:
    """Downgrade the database to ``revision``.

    ``"base"`` removes this library's own tables and keeps the two record tables shared
    with the reference, with their data.
    """
    with migration_connection(url_or_engine) as connection:
        command.downgrade(alembic_config(connection), revision)


def current_of(connection: Connection) -> str | None:
    """The revision the connected database is at, or ``None`` before any migration."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def current(url_or_engine: str | URL | Engine) -> str | None:
    """The revision the database is at, or ``None`` before any migration."""
    with migration_connection(url_or_engine) as connection:
        return current_of(connection)


def checked_revision(connection: Connection) -> str | None:
    """:func:`current_of`, checked: this package can migrate the database from there.

    HostConfigurationNeeded for a revision it does not know (a newer package migrated the
    database), or for none although our tables exist (the version row is missing).
    """
    at = current_of(connection)
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    where = safe_url(connection.engine.url)
    if at is not None and at not in known:
        raise AgentError(
            AgentErrorKind.HOST_CONFIGURATION_NEEDED,
            RetryClassification.HOST_CONFIGURATION_NEEDED,
            f"database {where} is at schema revision {at}, which this version of "
            f"agent-pool-store (latest revision {head()}) does not know: a newer version "
            "migrated it; upgrade the agent-pool-store package",
        )
    if at is None and inspect(connection).has_table("agent_pool_store_pools"):
        raise AgentError(
            AgentErrorKind.HOST_CONFIGURATION_NEEDED,
            RetryClassification.HOST_CONFIGURATION_NEEDED,
            f"database {where} has agent-pool-store's tables but no revision in "
            f"{VERSION_TABLE} (made without the migrations, or the row was removed): find "
            "the revision its tables match and record it with `alembic -x url=URL stamp "
            "REVISION` from a checkout before migrating",
        )
    return at


def require_head(engine: Engine) -> None:
    """Raise HostConfigurationNeeded unless the database is at :func:`head`."""
    with _translated(engine), engine.connect() as connection:
        at = checked_revision(connection)
    if at != head():
        raise AgentError(
            AgentErrorKind.HOST_CONFIGURATION_NEEDED,
            RetryClassification.HOST_CONFIGURATION_NEEDED,
            f"database {safe_url(engine.url)} is at schema revision {at or 'none'}, "
            f"not {head()}: run `alembic -x url=URL upgrade head` from a checkout, "
            "`agent_pool_store.migrations.upgrade(URL)`, or open the store with "
            "auto_upgrade=True",
        )
