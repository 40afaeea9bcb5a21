"""What every command gets: the database URL (never shown unmasked), schema and output."""

from __future__ import annotations

from dataclasses import dataclass

import click
from sqlalchemy.engine import URL

from agent_pool_store.cli.output import Output
from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.sql.dialects.registry import missing_database
from agent_pool_store.sql.settings import safe_url
from agent_pool_store.sql.store import SqlAgentPoolStore, open_store


@dataclass
class CliState:
    """The options of the ``agent-pool-store`` group, shared by its commands."""

    url: URL
    lock_timeout: float
    output: Output
    pool: str | None = None
    """The pool the command works on, named in its error messages."""
    schema: str | None = None
    """The PostgreSQL schema holding the store's tables (``--schema``), if any."""

    @property
    def shown_url(self) -> str:
        """The URL with its password masked: the only form that is ever printed."""
        return safe_url(self.url)

    def open_store(self, *, create: bool = False) -> SqlAgentPoolStore:
        """Open the store; only SQLite is migrated on open (the library's default).

        An unmigrated PostgreSQL database fails with HostConfigurationNeeded. Unless
        ``create`` (``import``), a SQLite file that does not exist is not created: the
        command fails naming it (:meth:`require_database`).
        """
        if not create:
            self.require_database()
        return open_store(self.url, lock_timeout=self.lock_timeout, schema=self.schema)

    def require_database(self) -> None:
        """Refuse a URL that names a database that is not there (a mistyped SQLite path).

        HostConfigurationNeeded, so that only ``migrate`` and ``import`` create a database.
        """
        problem = missing_database(self.url)
        if problem is not None:
            raise AgentError(
                AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                RetryClassification.HOST_CONFIGURATION_NEEDED,
                f"{problem} ({self.shown_url}); nothing was created: check --url, or create "
                "the database with `agent-pool-store migrate`",
            )


pass_state = click.make_pass_decorator(CliState)
"""Decorator giving a command the :class:`CliState` as its first argument."""
