"""Live following of a pool on the SQL store: ``SqlAgentPoolStore.follow``.

The follower re-reads the log with ``watch(pool_id, last_cursor)`` whenever the database may
have changed, so it never skips or repeats a record, whoever wrote it (this process, another
process, another implementation of the wire format). What differs per dialect is only how
it learns that reading again is worth it:

- **PostgreSQL**: a dedicated autocommit psycopg connection runs ``LISTEN
  agent_pool_records`` and registers its backend as a follower of the pool in
  ``agent_pool_store_followers``; the ``AFTER INSERT`` trigger (migrations 0002, 0003) sends
  the pool id on that channel at every commit that appended a record to a followed pool.
  The first read happens after both, so a record committed before then is read too. An
  append whose trigger ran just before the registration became visible but which commits
  after that first read sends nothing; the waiter therefore also re-reads every
  :data:`RECHECK_SECONDS`, which bounds how late such a record can be seen. Registrations of
  connections that no longer exist (a crashed follower) are removed by the next follower to
  register.
- **SQLite**: a dedicated ``sqlite3`` connection polls ``PRAGMA data_version`` every
  ``poll_interval`` seconds; the value changes when any other connection (in any process)
  commits, and only then is the log re-read. An in-memory SQLite database cannot be watched
  from another connection, so it is re-read every ``poll_interval`` instead.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.following import (
    Waiter,
)
from agent_pool_store.sql.engine import safe_url
from agent_pool_store.sql.schema import FollowerRow, table_of

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from agent_pool_store.sql.store import SqlAgentPoolStore

CHANNEL = "agent_pool_records"
"""The PostgreSQL notification channel of migration 0002 (payload: the pool id)."""

RECHECK_SECONDS = 2.0
"""A PostgreSQL follower re-reads at least this often even without a notification."""

_FOLLOWERS = table_of(FollowerRow).name
_FORGET_GONE = (
    f"DELETE FROM {_FOLLOWERS} WHERE backend_pid NOT IN (SELECT pid FROM pg_stat_activity)"
)
_REGISTER = (
    f"INSERT INTO {_FOLLOWERS} (pool_id, backend_pid) VALUES (%s, pg_backend_pid())"
    " ON CONFLICT DO NOTHING"
)
_UNREGISTER = f"DELETE FROM {_FOLLOWERS} WHERE pool_id = %s AND backend_pid = pg_backend_pid()"


def _unavailable(url: URL, reason: str) -> AgentError:
    return AgentError(
        AgentErrorKind.HOST_CONFIGURATION_NEEDED,
        RetryClassification.RETRYABLE,
        f"following {safe_url(url)}: database unavailable: {reason}",
    )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class PostgresWaiter:
    """Wakes on ``NOTIFY agent_pool_records`` carrying the followed pool's id."""

    def __init__(self, url: URL, pool_id: str, connect_timeout: float) -> None:
        self._url = url
        self._pool_id = pool_id
        self._connect_timeout = connect_timeout
        self._connection: Any = None
        self._connect()

    def _connect(self) -> None:
        import psycopg  # noqa: PLC0415 - an optional dependency, only for PostgreSQL

        # the password is needed to connect; this string is never logged or shown
        conninfo = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            connection = psycopg.connect(
                conninfo,
                autocommit=True,
                connect_timeout=max(1, round(self._connect_timeout)),
            )
        except psycopg.Error as error:
            raise _unavailable(self._url, _first_line(error)) from None
        try:
            connection.execute(f"LISTEN {CHANNEL}")
            connection.execute(_FORGET_GONE)
            connection.execute(_REGISTER, (self._pool_id,))
        except psycopg.Error as error:
            connection.close()
            raise _unavailable(self._url, _first_line(error)) from None
        self._connection = connection
        self._driver_error = psycopg.Error  # for close(), which may run at interpreter exit
        self._recheck_at = time.monotonic() + RECHECK_SECONDS

    def arm(self) -> None:
        """Nothing to remember: a notification arriving after LISTEN is never lost."""

    def wait(self, seconds: float) -> bool:
        import psycopg  # noqa: PLC0415

        deadline = time.monotonic() + seconds
        try:
            while True:
                now = time.monotonic()
                if now >= self._recheck_at:
                    self._recheck_at = now + RECHECK_SECONDS
                    return True
                remaining = max(0.0, min(deadline, self._recheck_at) - now)
                woke = [
                    notify.payload
                    for notify in self._connection.notifies(timeout=remaining, stop_after=1)
                ]
                if self._pool_id in woke:
                    return True
                if time.monotonic() >= deadline:
                    return False
        except psycopg.OperationalError:
            # the connection broke: listen again and tell the follower to re-read, which
            # covers whatever was committed while nobody listened
            self.close()
            self._connect()
            return True

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(_UNREGISTER, (self._pool_id,))
            except self._driver_error:
                pass  # a lost connection: the next follower to register removes the row
            finally:
                connection.close()


class SqliteWaiter:
    """Polls ``PRAGMA data_version`` on a connection of its own."""

    def __init__(self, url: URL, poll_interval: float, busy_timeout: float) -> None:
        self._poll_interval = poll_interval
        self._seen: int | None = None
        database = url.database
        self._connection: sqlite3.Connection | None = None
        if database and database != ":memory:" and not database.startswith("file::memory:"):
            uri = str(url.query.get("uri", "")).lower() in ("true", "1")
            try:
                self._connection = sqlite3.connect(
                    database,
                    timeout=busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                    uri=uri,
                )
            except sqlite3.Error as error:
                raise _unavailable(url, _first_line(error)) from None

    def _version(self) -> int | None:
        if self._connection is None:
            return None
        try:
            row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.OperationalError:
            return None  # busy or locked right now: treat as "maybe changed"
        return int(row[0])

    def arm(self) -> None:
        self._seen = self._version()

    def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            time.sleep(max(0.0, min(self._poll_interval, deadline - time.monotonic())))
            version = self._version()
            if version is None or version != self._seen:
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()


def open_waiter(store: SqlAgentPoolStore, pool_id: str, poll_interval: float) -> Waiter:
    """The waiter for the store's dialect (opens its dedicated connection)."""
    url = store.engine.url
    if store.engine.dialect.name == "postgresql":
        return PostgresWaiter(url, pool_id, store.settings.lock_timeout)
    return SqliteWaiter(url, poll_interval, store.settings.lock_timeout)
