"""Which dialect serves an engine or a URL: the one place that compares a dialect's name."""

from __future__ import annotations

import weakref

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL

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
