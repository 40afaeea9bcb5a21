"""The packaged Alembic migrations, usable without a checkout.

``upgrade(url_or_engine)`` brings a database to the latest schema; ``current`` and ``head``
name revisions. Migrations keep their own version table, ``agent_pool_store_alembic_version``,
so they live beside a host application's own Alembic history: ``upgrade(connection)`` runs
them from the host's ``env.py`` on its connection, and :func:`include_name` keeps the host's
autogenerate away from our tables. :func:`upgrade_sql` renders the DDL without a database.
On PostgreSQL, ``schema=`` puts everything (the version table included) in that schema,
which an upgrade creates if it is missing.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.environment import (
    EnvironmentContext,
    NameFilterParentNames,
    NameFilterType,
)
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, exc, inspect
from sqlalchemy.engine import URL, make_url

from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.sql.dialects.registry import dialect_for
from agent_pool_store.sql.engine import build_engine
from agent_pool_store.sql.errors import driver_cause, translate
from agent_pool_store.sql.schema import Base
from agent_pool_store.sql.settings import EngineSettings, safe_url, schema_refused
from alembic import command
from alembic import context as alembic_context
from alembic import op as alembic_op

LOG = logging.getLogger(__name__)

VERSION_TABLE = "agent_pool_store_alembic_version"
"""Alembic's version table for this library's migrations."""

SCRIPT_LOCATION = str(Path(__file__).parent)
"""The migration scripts inside the installed package."""

_OUR_TABLES = frozenset({table.name for table in Base.metadata.tables.values()} | {VERSION_TABLE})
"""Every table of ours, for :func:`include_name`."""

_OFFLINE_DIALECTS = ("sqlite", "postgresql")
"""The dialects :func:`upgrade_sql` renders for."""


def alembic_config(connection: Connection | None = None, *, schema: str | None = None) -> Config:
    """An Alembic config for the packaged scripts, optionally bound to ``connection``.

    ``schema`` (PostgreSQL): the schema the migrations run in, created if missing.
    """
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


def head() -> str:
    """The latest revision shipped with this package."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


@contextmanager
def migration_connection(
    url_or_engine: str | URL | Engine, schema: str | None = None
) -> Iterator[Connection]:
    """A connection holding the write lock for migrating, committed unless the block fails.

    The dialect decides how: SQLite takes ``BEGIN IMMEDIATE``; PostgreSQL an advisory
    transaction lock. A ``schema`` on SQLite is refused (HostConfigurationNeeded).
    """
    owns = not isinstance(url_or_engine, Engine)
    engine, dialect = build_engine(url_or_engine, EngineSettings(schema=schema))
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


def upgrade(
    target: str | URL | Engine | Connection, revision: str = "head", *, schema: str | None = None
) -> None:
    """Upgrade the database to ``revision`` (concurrent callers are serialised).

    ``target`` is a URL or an engine: the upgrade runs in a transaction of its own,
    committed at the end. A database already at the latest revision is only read: upgrading
    to ``"head"`` takes the write lock (SQLite's file lock, PostgreSQL's advisory lock) only
    when there is something to migrate, so opening a migrated SQLite file never waits for its
    writers.

    ``target`` may also be a SQLAlchemy ``Connection``, such as the one a host application's
    Alembic ``env.py`` migrates with. The migrations then run in the connection's transaction
    and never commit, roll back or close it; a connection with no transaction begun gets one
    of ours, committed at the end. Called while a host's Alembic command runs (its
    ``env.py``), it migrates only when that command is ``upgrade`` online, and does nothing
    for every other command (see :func:`host_is_upgrading`).

    ``schema`` (PostgreSQL): migrate that schema, creating it first if it does not exist;
    the connection's ``search_path`` is set to it for the migrations and put back after.
    """
    if isinstance(target, Connection):
        _upgrade_connection(target, revision, schema)
        return
    if revision == "head" and _at_head(target, schema):
        return
    with migration_connection(target, schema) as connection:
        _run_upgrade(connection, revision, schema)


def _upgrade_connection(connection: Connection, revision: str, schema: str | None) -> None:
    """:func:`upgrade` on a caller's connection, in its transaction (or in one of ours)."""
    environment = host_environment()
    if environment is not None and not host_is_upgrading(environment):
        LOG.debug("not migrating: the host's Alembic command is not an online upgrade")
        return
    with _translated(connection.engine), _transaction_of(connection):
        if revision == "head" and checked_revision(connection, schema) == head():
            return
        dialect_for(connection.engine, EngineSettings(schema=schema)).lock_for_migration(connection)
        _run_upgrade(connection, revision, schema)


@contextmanager
def _transaction_of(connection: Connection) -> Iterator[None]:
    """The connection's own transaction, left to its owner; else one of ours, committed."""
    if connection.in_transaction():
        yield
        return
    with connection.begin():
        yield


def host_environment() -> EnvironmentContext | None:
    """The Alembic environment a running command installed as ``alembic.context``, if any.

    Not ``None`` while a host application's ``env.py`` runs under an Alembic command (the
    ``alembic`` CLI, ``alembic.command.*``, Flask-Migrate, pytest-alembic).
    """
    installed = getattr(alembic_context, "_proxy", None)
    return installed if isinstance(installed, EnvironmentContext) else None


def host_is_upgrading(environment: EnvironmentContext | None = None) -> bool:
    """Whether a host's Alembic command is running and is an online ``upgrade``.

    ``environment`` is the command's environment, by default :func:`host_environment`;
    with none, False. The rule: the environment is online (not ``--sql``) and its migration
    function (the ``fn`` that Alembic's commands hand their environment,
    ``environment.context_opts["fn"]``) is the one :func:`alembic.command.upgrade` defines.
    ``downgrade``, ``stamp``, ``current``, ``check``, ``revision --autogenerate``,
    ``history``, ``ensure_version``, offline runs and environments set up by anything but
    ``alembic.command.upgrade`` are not upgrades: :func:`upgrade` on a connection does
    nothing under them.
    """
    if environment is None:
        environment = host_environment()
    if environment is None or environment.is_offline_mode():
        return False
    function = environment.context_opts.get("fn")
    return getattr(function, "__module__", None) == command.__name__ and getattr(
        function, "__qualname__", ""
    ).startswith(f"{command.upgrade.__name__}.<locals>.")


def include_name(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    """A host's autogenerate ``include_name`` hook: every name but this library's tables.

    False for the tables of :data:`agent_pool_store.sql.schema.Base` (the two shared with
    the Rust reference included) and for :data:`VERSION_TABLE`, so that ``alembic revision
    --autogenerate`` and ``alembic check`` in the host application propose nothing for them.
    Pass it as ``context.configure(..., include_name=include_name)``.
    """
    return not (type_ == "table" and name in _OUR_TABLES)


def upgrade_sql(url: str | URL, revision: str = "head", *, schema: str | None = None) -> str:
    """The SQL script that upgrades a database of ``url``'s dialect to ``revision``.

    Alembic's offline (``--sql``) mode: only the URL's dialect is used, nothing connects.
    ``revision`` may be a range ``START:END`` (``base:head``, ``0002:head``); without a start
    the script begins at ``base``. It creates the two tables shared with the reference
    unconditionally (offline, it cannot look whether they exist). With a ``schema``
    (PostgreSQL), the script's transaction begins with :func:`schema_statements`.
    """
    parsed = make_url(url)
    dialect_name = parsed.get_backend_name()
    if dialect_name not in _OFFLINE_DIALECTS:
        raise AgentError(
            AgentErrorKind.HOST_CONFIGURATION_NEEDED,
            RetryClassification.HOST_CONFIGURATION_NEEDED,
            f"unsupported database {safe_url(parsed)}: use sqlite:/// or postgresql+psycopg://",
        )
    check_offline_schema(dialect_name, schema)
    start, _, destination = revision.rpartition(":")
    output = io.StringIO()
    environment = _upgrade_environment(destination, as_sql=True, starting_rev=start or None)
    environment.configure(
        dialect_name=dialect_name,
        output_buffer=output,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        literal_binds=True,
    )
    context = environment.get_context()
    with _operations(context), context.begin_transaction():
        for statement in schema_statements(schema):
            context.execute(statement)
        context.run_migrations()
    return output.getvalue()


def check_offline_schema(dialect_name: str, schema: str | None) -> None:
    """Refuse, as a store would, a bad schema name or a schema on SQLite (offline SQL)."""
    if schema is not None:
        EngineSettings(schema=schema)  # checks the name
        if dialect_name != "postgresql":
            raise schema_refused(dialect_name)


def schema_statements(schema: str | None) -> list[str]:
    """What an offline script runs first to migrate ``schema``: create it, make it current."""
    if schema is None:
        return []
    return [f'CREATE SCHEMA IF NOT EXISTS "{schema}"', f'SET LOCAL search_path = "{schema}"']


def _upgrade_environment(destination: str, **options: Any) -> EnvironmentContext:
    """An Alembic environment (never entered) whose migrations upgrade to ``destination``."""
    config = alembic_config()
    script = ScriptDirectory.from_config(config)

    def steps(heads: Any, _context: MigrationContext) -> list[RevisionStep]:
        # what alembic.command.upgrade hands its environment; there is no public equivalent
        return script._upgrade_revs(destination, heads)

    return EnvironmentContext(config, script, fn=steps, destination_rev=destination, **options)


def _run_upgrade(connection: Connection, revision: str, schema: str | None = None) -> None:
    """Run our scripts up to ``revision`` on ``connection``, in its transaction (begun).

    The scripts run through an :class:`~alembic.runtime.environment.EnvironmentContext` of
    our own that is never entered: ``alembic.context`` (a host's, while its ``env.py`` runs)
    is left as it is, and ``alembic.op`` is given back as it was. With a ``schema``, they
    run in it (``SqlDialect.in_schema``: created if missing, the ``search_path`` put back).
    """
    dialect = dialect_for(connection.engine, EngineSettings(schema=schema))
    environment = _upgrade_environment(revision)
    environment.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        render_as_batch=dialect.batch_migrations,
    )
    context = environment.get_context()
    before = context.get_current_revision()
    with dialect.in_schema(connection, create=True), _operations(context):
        context.run_migrations()
    after = context.get_current_revision()
    if after != before:
        LOG.info(
            "migrated %s from revision %s to %s",
            safe_url(connection.engine.url),
            before or "none",
            after,
        )


@contextmanager
def _operations(context: MigrationContext) -> Iterator[None]:
    """``alembic.op`` bound to ``context`` while our scripts run, then as it was.

    A host's revision script that called :func:`upgrade` keeps its own ``op`` afterwards.
    """
    previous = getattr(alembic_op, "_proxy", None)
    operations = Operations(context)
    operations._install_proxy()
    try:
        yield
    finally:
        if previous is not None:
            previous._install_proxy()
        else:
            operations._remove_proxy()


def _at_head(url_or_engine: str | URL | Engine, schema: str | None = None) -> bool:
    """Whether the database is at :func:`head`, read without taking a write lock."""
    owns = not isinstance(url_or_engine, Engine)
    engine, _ = build_engine(url_or_engine, EngineSettings(schema=schema))
    try:
        with _translated(engine), engine.connect() as connection:
            return checked_revision(connection, schema) == head()
    finally:
        if owns:
            engine.dispose()


def downgrade(
    url_or_engine: str | URL | Engine, revision: str, *, schema: str | None = None
) -> None:
    """Downgrade the database (or its ``schema``, PostgreSQL) to ``revision``.

    ``"base"`` removes this library's own tables and keeps the two record tables shared
    with the reference, with their data.
    """
    with migration_connection(url_or_engine, schema) as connection:
        command.downgrade(alembic_config(connection, schema=schema), revision)


def current_of(connection: Connection, schema: str | None = None) -> str | None:
    """The revision the connected database (its ``schema``) is at, ``None`` before any."""
    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE, "version_table_schema": schema}
    )
    return context.get_current_revision()


def current(url_or_engine: str | URL | Engine, *, schema: str | None = None) -> str | None:
    """The revision the database (its ``schema``) is at, or ``None`` before any migration."""
    with migration_connection(url_or_engine, schema) as connection:
        return current_of(connection, schema)


def checked_revision(connection: Connection, schema: str | None = None) -> str | None:
    """:func:`current_of`, checked: this package can migrate the database from there.

    HostConfigurationNeeded for a revision it does not know (a newer package migrated the
    database), or for none although our tables exist (the version row is missing).
    """
    at = current_of(connection, schema)
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    where = _where(connection.engine, schema)
    if at is not None and at not in known:
        raise AgentError(
            AgentErrorKind.HOST_CONFIGURATION_NEEDED,
            RetryClassification.HOST_CONFIGURATION_NEEDED,
            f"{where} is at schema revision {at}, which this version of "
            f"agent-pool-store (latest revision {head()}) does not know: a newer version "
            "migrated it; upgrade the agent-pool-store package",
        )
    if at is None and inspect(connection).has_table("agent_pool_store_pools", schema=schema):
        raise AgentError(
            AgentErrorKind.HOST_CONFIGURATION_NEEDED,
            RetryClassification.HOST_CONFIGURATION_NEEDED,
            f"{where} has agent-pool-store's tables but no revision in "
            f"{VERSION_TABLE} (made without the migrations, or the row was removed): find "
            "the revision its tables match and record it with `alembic -x "
            f"url=URL{_x_schema(schema)} stamp REVISION` from a checkout before migrating",
        )
    return at


def require_head(engine: Engine, schema: str | None = None) -> None:
    """Raise HostConfigurationNeeded unless the database (its ``schema``) is at :func:`head`.

    A ``schema`` that does not exist is reported as such; nothing is created.
    """
    with _translated(engine), engine.connect() as connection:
        missing = schema is not None and not inspect(connection).has_schema(schema)
        at = None if missing else checked_revision(connection, schema)
    if at == head():
        return
    if missing:
        problem = f"does not exist: create it and migrate it to {head()}"
    else:
        problem = f"is at schema revision {at or 'none'}, not {head()}"
    argument = "" if schema is None else f", schema={schema!r}"
    raise AgentError(
        AgentErrorKind.HOST_CONFIGURATION_NEEDED,
        RetryClassification.HOST_CONFIGURATION_NEEDED,
        f"{_where(engine, schema)} {problem}: run `alembic -x url=URL{_x_schema(schema)} "
        f"upgrade head` from a checkout, `agent_pool_store.migrations.upgrade(URL{argument})`, "
        "or open the store with auto_upgrade=True",
    )


def _x_schema(schema: str | None) -> str:
    """The Alembic ``-x`` argument naming ``schema``, as commands in messages show it."""
    return "" if schema is None else f" -x schema={schema}"


def _where(engine: Engine, schema: str | None) -> str:
    """``database URL`` or ``schema 'name' of database URL``, as messages name it."""
    where = f"database {safe_url(engine.url)}"
    return where if schema is None else f"schema {schema!r} of {where}"
