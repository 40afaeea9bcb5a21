"""How the store talks to its database, the default database, and URLs fit to be shown."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy.engine import URL

from agent_pool_store.errors import AgentError

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

    def __post_init__(self) -> None:
        timeout = self.lock_timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise AgentError.invalid_argument(
                f"lock_timeout must be a finite number of seconds above 0, got {timeout!r}"
            )
        if self.sqlite_synchronous not in get_args(SqliteSynchronous):
            raise AgentError.invalid_argument(
                f"sqlite_synchronous must be one of {', '.join(get_args(SqliteSynchronous))}, "
                f"got {self.sqlite_synchronous!r}"
            )


_PASSWORD_KEYS = ("password", "sslpassword")
"""Query parameters that carry a secret (libpq's names), in any case."""

_CONNINFO_PASSWORD = re.compile(r"((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", re.I)
"""``password=…`` inside a value, as in a libpq conninfo string given as ``dsn``."""


def url_secrets(url: URL) -> list[str]:
    """Every secret ``url`` carries.

    Its password, password query parameters, and passwords inside conninfo strings given
    as query values.
    """
    secrets = [url.password] if url.password else []
    for key, value in url.query.items():
        for item in (value,) if isinstance(value, str) else value:
            if key.lower() in _PASSWORD_KEYS:
                secrets.append(item)
            else:
                secrets += [match.group(2) for match in _CONNINFO_PASSWORD.finditer(item)]
    return [str(secret) for secret in secrets if secret]


def safe_url(url: URL) -> str:
    """The URL as text with every secret it carries masked (see :func:`url_secrets`)."""
    masked: dict[str, str | tuple[str, ...]] = {}
    for key, value in url.query.items():
        items = (value,) if isinstance(value, str) else tuple(value)
        if key.lower() in _PASSWORD_KEYS:
            items = tuple("***" for _ in items)
        else:
            items = tuple(_CONNINFO_PASSWORD.sub(r"\1***", item) for item in items)
        masked[key] = items[0] if isinstance(value, str) else items
    shown = url.set(query=masked).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")  # the mask as the password's is shown
