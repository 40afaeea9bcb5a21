"""PostgreSQL's waiter for ``follow``: ``LISTEN agent_pool_records`` on a connection of its own.

A dedicated autocommit psycopg connection runs ``LISTEN agent_pool_records`` and registers
its backend as a follower of the pool in ``agent_pool_store_followers``; the ``AFTER INSERT``
trigger (migrations 0002, 0003) sends the pool id on that channel at every commit that
appended a record to a followed pool. The follower's first read happens after both, so a
record committed before then is read too. An append whose trigger ran just before the
registration became visible but which commits after that first read sends nothing; the
waiter therefore also re-reads every :data:`RECHECK_SECONDS`, which bounds how late such a
record can be seen. Registrations of connections that no longer exist (a crashed follower)
are removed by the next follower to register.

The notification's payload is the pool id, prefixed with ``schema.`` when the store's tables
are not in ``public`` (migration 0005): a follower is woken only by its own schema's pools.
The waiter reads which schema that is on its connection, so it always agrees with the
trigger, whether the schema was given (``open_store(schema=…)``: its connection's
``search_path`` is set to it) or comes from the connection's own ``search_path``.

A waiter used in a process forked from the one that opened its connection never touches that
connection (it is the parent's): it listens again on a connection of its own.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from sqlalchemy import Engine, exc

from agent_pool_store import telemetry_hooks
from agent_pool_store.asyncio_bridge import wait_for
from agent_pool_store.sql.errors import driver_cause, first_line, follow_unavailable
from agent_pool_store.sql.schema import FollowerRow, table_of

LOG = logging.getLogger(__name__)

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
_TABLES_SCHEMA = (
    "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = to_regclass('agent_pool_records')"
)
_UNREGISTER = f"DELETE FROM {_FOLLOWERS} WHERE pool_id = %s AND backend_pid = pg_backend_pid()"


def notification_payload(schema: str | None, pool_id: str) -> str:
    """What the append trigger of ``schema`` sends for ``pool_id`` (see migration 0005)."""
    return pool_id if schema in (None, "public") else f"{schema}.{pool_id}"


class PostgresWaiter:
    """Wakes on ``NOTIFY agent_pool_records`` carrying the followed pool's id."""

    def __init__(
        self, engine: Engine, pool_id: str, lock_timeout: float, schema: str | None = None
    ) -> None:
        self._engine = engine
        self._url = engine.url
        self._pool_id = pool_id
        self._lock_timeout = lock_timeout
        self._schema = schema
        self._payload = pool_id
        self._connection: Any = None
        self._connect()

    def _connect(self) -> None:
        import psycopg  # noqa: PLC0415 - an optional dependency, only for PostgreSQL

        # a connection made as the engine makes them (its connect arguments: search_path,
        # SSL, …; its connect events), then taken out of its pool for good: it listens
        try:
            pooled = self._engine.raw_connection()
        except exc.SQLAlchemyError as error:
            reason = first_line(error.orig if isinstance(error, exc.DBAPIError) else error)
            raise follow_unavailable(self._url, reason) from driver_cause(error, self._url)
        self._driver: Any = pooled.driver_connection  # psycopg's (Async)Connection
        pooled.detach()
        connection: Any = pooled.dbapi_connection
        try:
            connection.autocommit = True
            # its registration waits for locks no longer than the store's operations do
            lock_ms = max(1, int(self._lock_timeout * 1000))
            connection.execute(f"SET lock_timeout = {lock_ms}")
            if self._schema is not None:
                # for the session: the connection has left the pool (a host's engine, whose
                # connections do not carry the schema, never gets it back)
                connection.execute(f'SET search_path = "{self._schema}"')
            found = connection.execute(_TABLES_SCHEMA).fetchone()
            self._payload = notification_payload(found[0] if found else None, self._pool_id)
            connection.execute(f"LISTEN {CHANNEL}")
            connection.execute(_FORGET_GONE)
            connection.execute(_REGISTER, (self._pool_id,))
        except psycopg.Error as error:
            connection.close()
            raise follow_unavailable(self._url, first_line(error)) from driver_cause(
                error, self._url
            )
        self._connection = connection
        self._pid = os.getpid()
        self._driver_error = psycopg.Error  # for close(), which may run at interpreter exit
        self._recheck_at = time.monotonic() + RECHECK_SECONDS

    def arm(self) -> None:
        """Nothing to remember: a notification arriving after LISTEN is never lost."""

    def wait(self, seconds: float) -> bool:
        import psycopg  # noqa: PLC0415

        deadline = time.monotonic() + seconds
        if self._pid != os.getpid():  # forked: the connection is the parent's
            self._connection = None  # dropped, not closed (psycopg closes it only in its owner)
            self._connect()
            return True
        try:
            while True:
                now = time.monotonic()
                if now >= self._recheck_at:
                    self._recheck_at = now + RECHECK_SECONDS
                    return True
                remaining = max(0.0, min(deadline, self._recheck_at) - now)
                woke = self._notifications(remaining)
                if self._payload in woke:
                    return True
                if time.monotonic() >= deadline:
                    return False
        except psycopg.OperationalError as error:
            # the connection broke: listen again and tell the follower to re-read, which
            # covers whatever was committed while nobody listened
            LOG.warning(
                "follower of pool %r: listening connection lost (%s); listening again",
                self._pool_id,
                first_line(error),
            )
            telemetry_hooks.reconnected(first_line(error))
            self.close()
            self._connect()
            return True

    def _notifications(self, seconds: float) -> list[str]:
        """The payloads of at most one notification, waiting up to ``seconds`` for it.

        On an asyncio engine the driver is psycopg's ``AsyncConnection``: its notifications
        are awaited on the event loop (see :mod:`agent_pool_store.asyncio_bridge`).
        """
        if not self._engine.dialect.is_async:
            return [note.payload for note in self._driver.notifies(timeout=seconds, stop_after=1)]

        async def collect() -> list[str]:
            notes = self._driver.notifies(timeout=seconds, stop_after=1)
            return [note.payload async for note in notes]

        return wait_for(collect())

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            if self._pid != os.getpid():
                return  # the parent's connection: the parent unregisters and closes it
            try:
                connection.execute(_UNREGISTER, (self._pool_id,))
            except self._driver_error:
                pass  # a lost connection: the next follower to register removes the row
            finally:
                connection.close()
