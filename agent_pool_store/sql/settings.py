"""How the store talks to its database, the default database, and URLs fit to be shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.engine import URL

DEFAULT_URL = "sqlite:///agent-pool.sqlite"
"""The embedded default database: a SQLite file in the working directory."""

SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


@dataclass(frozen=True)
class EngineSettings:
    """How the store talks to its database."""

    lock_timeout: float = 10.0
    """Seconds an operation may wait for another writer before failing with Timeout."""
    sqlite_synchronous: SqliteSynchronous = "FULL"
    """SQLite ``PRAGMA synchronous``: FULL keeps every commit durable across power loss."""
    postgresql_one_statement: bool = True
    """PostgreSQL: append to and look up a pool this store already knows in one autocommit
    statement (one round trip). ``False`` runs every operation as a unit of work (four round
    trips for an append), the path a pool this store does not know yet always takes."""


def safe_url(url: URL) -> str:
    """The URL as text with any password masked."""
    return url.render_as_string(hide_password=True)
