"""How the store talks to its database, the default database, and URLs fit to be shown."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy.engine import URL

from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification

DEFAULT_URL = "sqlite:///agent-pool.sqlite"
"""The embedded default database: a SQLite file in the working directory."""

DEFAULT_ASYNC_URL = "sqlite+aiosqlite:///agent-pool.sqlite"
"""The async store's default: the same SQLite file, through aiosqlite."""

SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
"""A schema name as the store accepts it: an unquoted PostgreSQL identifier that folds to
itself (lowercase letters, digits, ``_``; at most 63 bytes, PostgreSQL's limit)."""


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
    schema: str | None = None
    """PostgreSQL: the schema holding every table, index, function and trigger of the store
    (the version table included); ``None`` keeps the connection's own ``search_path``.
    Refused on SQLite (see :func:`schema_refused`)."""

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
        if self.schema is not None:
            check_schema(self.schema)

    @property
    def quoted_schema(self) -> str | None:
        """The schema as a quoted SQL identifier (``"agents"``), or ``None``."""
        return None if self.schema is None else f'"{self.schema}"'


def check_schema(schema: object) -> str:
    """``schema`` if the store accepts it as a schema name, else AgentError InvalidArgument.

    Lowercase letters, digits and ``_``, not starting with a digit, at most 63 characters,
    and not ``pg_…`` (reserved by PostgreSQL): a name that means the same quoted or not.
    """
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        shown = repr(schema) if isinstance(schema, str) and len(schema) <= 80 else "the value"
        raise AgentError.invalid_argument(
            f"schema must be a PostgreSQL schema name of lowercase letters, digits and _ "
            f"(not starting with a digit, at most 63 characters), got {shown}"
        )
    if schema.startswith("pg_"):
        raise AgentError.invalid_argument(
            f"schema {schema!r}: names starting with pg_ are reserved by PostgreSQL"
        )
    return schema


def schema_refused(dialect: str) -> AgentError:
    """The error for ``schema=`` on a dialect without schemas (SQLite)."""
    return AgentError(
        AgentErrorKind.HOST_CONFIGURATION_NEEDED,
        RetryClassification.HOST_CONFIGURATION_NEEDED,
        f"the schema option (open_store(schema=…), --schema, AGENT_POOL_STORE_SCHEMA) is for "
        f"PostgreSQL only; {dialect} has no schemas: leave it unset, or give each store a "
        "database of its own",
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
