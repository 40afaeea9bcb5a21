"""Which dialect serves an engine or a URL: the one place that compares a dialect's name."""

from __future__ import annotations

import weakref

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.sql.dialects.postgresql import PostgresqlDialect
from agent_pool_store.sql.dialects.protocol import SqlDialect
from agent_pool_store.sql.dialects.sqlite import SqliteDialect
from agent_pool_store.sql.settings import EngineSettings, safe_url

_BUILT: weakref.WeakKeyDictionary[Engine, str | None] = weakref.WeakKeyDictionary()
"""Engines :func:`engine_for_url` made (with the store's connect arguments), and the schema
those connect arguments set."""

_DIALECTS: dict[str, type[SqliteDialect] | type[PostgresqlDialect]] = {
    "sqlite": SqliteDialect,
    "postgresql": PostgresqlDialect,
}


def _unsupported(url: URL) -> AgentError:
    return AgentError(
        AgentErrorKind.HOST_CONFIGURATION_NEEDED,
        RetryClassification.HOST_CONFIGURATION_NEEDED,
        f"unsupported database {safe_url(url)}: use sqlite:/// or postgresql+psycopg://",
    )


def engine_for_url(url: URL, settings: EngineSettings) -> Engine:
    """A new engine for a supported URL, with its dialect's connect arguments."""
    dialect = _DIALECTS.get(url.get_backend_name())
    if dialect is None:
        raise _unsupported(url)
    url, arguments = dialect.engine_arguments(url, settings)
    engine = create_engine(url, **arguments)
    _BUILT[engine] = settings.schema
    return engine


_ASYNC_DRIVERS = {"sqlite": ("aiosqlite",), "postgresql": ("psycopg", "psycopg_async")}
"""The asyncio drivers the async store runs on, per dialect; the first is the URL's default."""


def _unsupported_async(url: URL, driver: str) -> AgentError:
    return AgentError(
        AgentErrorKind.HOST_CONFIGURATION_NEEDED,
        RetryClassification.HOST_CONFIGURATION_NEEDED,
        f"unsupported asyncio database driver {driver!r} in {safe_url(url)}: the async store "
        "runs on sqlite+aiosqlite:// and postgresql+psycopg:// (psycopg's AsyncConnection; "
        "its PostgreSQL paths use psycopg's autocommit and notifications, which asyncpg "
        "does not offer alike)",
    )


def async_engine_for_url(url: URL, settings: EngineSettings) -> AsyncEngine:
    """A new asyncio engine for a supported URL, with its dialect's connect arguments.

    ``sqlite://`` means aiosqlite and ``postgresql://`` psycopg's ``AsyncConnection``.
    """
    backend, driver = url.get_backend_name(), url.drivername.partition("+")[2]
    dialect = _DIALECTS.get(backend)
    if dialect is None:
        raise _unsupported(url)
    drivers = _ASYNC_DRIVERS[backend]
    if driver and driver not in drivers:
        raise _unsupported_async(url, driver)
    url, arguments = dialect.engine_arguments(url.set(drivername=backend), settings)
    engine = create_async_engine(url.set(drivername=f"{backend}+{drivers[0]}"), **arguments)
    _BUILT[engine.sync_engine] = settings.schema
    return engine


def check_async_engine(engine: AsyncEngine) -> None:
    """Refuse an asyncio engine whose dialect or driver the async store cannot run on."""
    drivers = _ASYNC_DRIVERS.get(engine.dialect.name)
    if drivers is None:
        raise _unsupported(engine.url)
    if engine.dialect.driver not in drivers:
        raise _unsupported_async(engine.url, engine.dialect.driver)


def missing_database(url: URL) -> str | None:
    """Why ``url`` names no existing database, where that can be told without connecting."""
    dialect = _DIALECTS.get(url.get_backend_name())
    return None if dialect is None else dialect.missing_database(url)


def dialect_for(engine: Engine, settings: EngineSettings) -> SqlDialect:
    """The dialect serving ``engine``, bound to ``settings``.

    An engine the store did not build (the host's), or built for another schema, lacks the
    store's connect arguments; the dialect is told, so that it sets what it needs per
    transaction instead.
    """
    dialect = _DIALECTS.get(engine.dialect.name)
    if dialect is None:
        raise _unsupported(engine.url)
    shared = engine not in _BUILT or _BUILT[engine] != settings.schema
    return dialect(settings, shared_engine=shared)
