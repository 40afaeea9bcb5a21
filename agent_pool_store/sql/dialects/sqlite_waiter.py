"""SQLite's waiter for ``follow``: ``PRAGMA data_version`` polled on a connection of its own.

The value changes when any other connection (in any process) commits, and only then is the
log re-read. An in-memory SQLite database cannot be watched from another connection, so it
is re-read every ``poll_interval`` instead. In a process forked from the one that opened the
waiter's connection, the waiter opens a connection of its own.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable

from sqlalchemy.engine import URL

from agent_pool_store.sql.errors import driver_cause, first_line, follow_unavailable


class SqliteWaiter:
    """Polls ``PRAGMA data_version`` on a connection of its own."""

    def __init__(
        self,
        url: URL,
        poll_interval: float,
        busy_timeout: float,
        *,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = url
        self._pause = pause
        """How to sleep between polls (``asyncio.sleep`` for the async store)."""
        self._poll_interval = poll_interval
        self._busy_timeout = busy_timeout
        self._seen: int | None = None
        self._connection: sqlite3.Connection | None = None
        self._inherited: list[sqlite3.Connection] = []
        self._connect()

    def _connect(self) -> None:
        self._pid = os.getpid()
        database = self._url.database
        if database and database != ":memory:" and not database.startswith("file::memory:"):
            uri = str(self._url.query.get("uri", "")).lower() in ("true", "1")
            try:
                self._connection = sqlite3.connect(
                    database,
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                    uri=uri,
                )
            except sqlite3.Error as error:
                raise follow_unavailable(self._url, first_line(error)) from driver_cause(
                    error, self._url
                )

    def _version(self) -> int | None:
        if self._pid != os.getpid() and self._connection is not None:
            # forked: SQLite must not use the parent's connection in the child; it is kept
            # (closing it here could disturb the parent's locks) and a new one opened
            self._inherited.append(self._connection)
            self._connection = None
            self._connect()
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
            self._pause(max(0.0, min(self._poll_interval, deadline - time.monotonic())))
            version = self._version()
            if version is None or version != self._seen:
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            if self._pid == os.getpid():
                connection.close()
            else:
                self._inherited.append(connection)
