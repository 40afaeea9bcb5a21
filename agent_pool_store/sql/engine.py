"""Engines for the supported dialects: built from a URL, or a given engine, configured once.

What each dialect sets on its connections (SQLite: WAL, busy timeout, ``BEGIN IMMEDIATE``;
PostgreSQL: ``lock_timeout``) lives with the dialect, in ``sql/dialects/``.
"""

from __future__ import annotations

from sqlalchemy import Engine, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.sql.dialects.protocol import SqlDialect
from agent_pool_store.sql.dialects.registry import (
    async_engine_for_url,
    check_async_engine,
    dialect_for,
    engine_for_url,
)
from agent_pool_store.sql.forking import forget_connections_in_children
from agent_pool_store.sql.settings import EngineSettings


def parse_url(url: str | URL) -> URL:
    """``url`` as a SQLAlchemy URL; HostConfigurationNeeded (not showing it) if it is not one."""
    try:
        return make_url(url)
    except (exc.ArgumentError, ValueError):
        raise AgentError(  # the text is not shown: it may hold a password
            AgentErrorKind.HOST_CONFIGURATION_NEEDED,
            RetryClassification.HOST_CONFIGURATION_NEEDED,
            "the database URL could not be parsed: use sqlite:///path or "
            "postgresql+psycopg://user:password@host/database",
        ) from None


def build_async_engine(
    url_or_engine: str | URL | AsyncEngine, settings: EngineSettings
) -> AsyncEngine:
    """An asyncio engine for ``url_or_engine`` (a given one is checked, and stays its owner's).

    The store configures its sync facade (``engine.sync_engine``) when it opens on it, as
    it configures a sync engine.
    """
    if isinstance(url_or_engine, AsyncEngine):
        check_async_engine(url_or_engine)
        return url_or_engine
    if isinstance(url_or_engine, str | URL):
        return async_engine_for_url(parse_url(url_or_engine), settings)
    raise AgentError.invalid_argument(
        "url_or_engine must be a URL (str or sqlalchemy URL) or an AsyncEngine, "
        f"not {type(url_or_engine).__name__}"
    )


def build_engine(
    url_or_engine: str | URL | Engine, settings: EngineSettings
) -> tuple[Engine, SqlDialect]:
    """An engine for ``url_or_engine``, configured for the store, and its dialect.

    A given :class:`~sqlalchemy.Engine` is configured in place (SQLite event hooks); its
    owner keeps it and disposes of it. In a forked child, the engine's pool starts empty
    (see :mod:`agent_pool_store.sql.forking`).
    """
    if isinstance(url_or_engine, Engine):
        engine = url_or_engine
    elif isinstance(url_or_engine, str | URL):
        engine = engine_for_url(parse_url(url_or_engine), settings)
    else:
        raise AgentError.invalid_argument(
            "url_or_engine must be a URL (str or sqlalchemy URL) or an Engine, "
            f"not {type(url_or_engine).__name__}"
        )
    dialect = dialect_for(engine, settings)
    dialect.configure_engine(engine)
    forget_connections_in_children(engine)
    return engine, dialect
