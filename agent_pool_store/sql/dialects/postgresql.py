"""PostgreSQL (psycopg 3): the batch write in one statement, and the one-statement paths.

Every round trip to the server costs more than the statements it carries, so:

- a unit of work writes its whole batch in one statement
  (:func:`.postgresql_statements.write_batch_statement`), and reads at REPEATABLE READ so a
  snapshot is one snapshot;
- once the store has parsed a pool's config, an append (``try_append``) and a look-up by
  key (``try_look_up``) are one autocommit statement on the psycopg connection, under the
  rule a unit of work applies (:func:`agent_pool_store.sql.statements.current_with_config`);
  when the statement finds the pool not current, or fails, it answers ``None`` and the
  runner takes a unit of work. ``EngineSettings.postgresql_one_statement=False`` turns these
  paths off.

Connections get a ``lock_timeout``, so no wait for a lock is unbounded.

**A lost reply never doubles a write.** When the connection is lost after a write was sent,
the write may have committed or not. The dialect finds out on a fresh connection before it
answers: it ends the old session (``pg_terminate_backend`` on the session it noted when the
connection was made: backend pid and start time, so a reused pid is never touched), waits
until it is gone (so nothing of it can still commit), then reads the outcome:

- a unit of work's ``COMMIT``: ``pg_xact_status`` of the transaction id its locked head read;
- a one-statement append: its record, found by the random ``append_token`` it wrote.

If that cannot be done within ``lock_timeout`` (the server stays unreachable), the caller
gets AgentError with ``outcome_unknown`` set, never a plain Retryable.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Connection, Engine, Text, cast, event, exc, func, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL

from agent_pool_store.asyncio_bridge import pause
from agent_pool_store.domain import AgentPoolStoreRecordPayload, apply_payload
from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.follow_loop import Waiter
from agent_pool_store.sql import statements
from agent_pool_store.sql.dialects.driver import fetch_one, look_up
from agent_pool_store.sql.dialects.postgresql_statements import (
    append_statement,
    write_batch_statement,
)
from agent_pool_store.sql.dialects.postgresql_waiter import PostgresWaiter
from agent_pool_store.sql.errors import (
    driver_cause,
    first_line,
    is_disconnect,
    is_lock_timeout,
    timeout_error,
)
from agent_pool_store.sql.pool_head import PoolHead
from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.settings import EngineSettings, safe_url

LOG = logging.getLogger(__name__)

MIGRATION_LOCK = 0x41505331
"""Advisory lock key serialising concurrent upgrades."""

SESSION_INFO = "agent_pool_store_session"
"""Key in a pooled connection's ``info``: its server session, ``(backend pid, start)``."""

_SESSION = "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
_END_SESSION = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE pid = :pid AND backend_start = :start AND pid <> pg_backend_pid()"
)
_SESSION_ALIVE = text(
    "SELECT 1 FROM pg_stat_activity WHERE pid = :pid AND backend_start = :start"
    " AND pid <> pg_backend_pid()"
)
_SCHEMA_EXISTS = text("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :schema)")
_SWAP_SEARCH_PATH = text(
    "SELECT current_setting('search_path'), set_config('search_path', :path, true)"
)
"""Set the transaction's ``search_path``, returning the value it had."""
_XACT_STATUS = text("SELECT pg_xact_status(CAST(:xid AS xid8))")
_APPENDED = text(
    "SELECT seq FROM agent_pool_records WHERE pool_id = :pool_id AND append_token = :token"
    " ORDER BY seq DESC LIMIT 1"
)
_SWAP_SETTINGS = text(
    "SELECT current_setting('lock_timeout'), set_config('lock_timeout', :value, true),"
    " current_setting('search_path'),"
    " set_config('search_path', coalesce(:path, current_setting('search_path')), true)"
)
"""Set the transaction's ``lock_timeout`` and ``search_path`` (kept as it is when ``path`` is
NULL), returning the values they had."""
_HEAD_FOR_WRITE = statements.HEAD_FOR_UPDATE.add_columns(cast(func.pg_current_xact_id(), Text))
"""The locked head and the unit's transaction id (assigned now; the unit writes)."""


def _note_session(dbapi_connection: Any, record: Any) -> None:
    """Remember a new connection's server session (for settling a lost reply)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_SESSION)
        record.info[SESSION_INFO] = cursor.fetchone()
    finally:
        cursor.close()
        dbapi_connection.rollback()


LOCK_LOGS_WAIT_MS = 200
"""How long ``lock_logs`` waits for its ``ACCESS EXCLUSIVE`` lock before it gives up (and its
unit runs again): the longest the store's other readers and writers queue behind it."""


class PostgresqlDialect:
    """The store on PostgreSQL (``postgresql+psycopg://``)."""

    name = "postgresql"
    insert = staticmethod(postgresql.insert)
    migrates_on_open = False
    batch_migrations = False

    def __init__(self, settings: EngineSettings, *, shared_engine: bool = False) -> None:
        self.settings = settings
        self.shared_engine = shared_engine
        """An engine the host built: its connections do not carry ``lock_timeout``. Every
        unit then sets it with ``SET LOCAL`` (never beyond its transaction), and the
        one-statement paths, which run outside a transaction, are off."""

    @staticmethod
    def engine_arguments(url: URL, settings: EngineSettings) -> tuple[URL, dict[str, Any]]:
        """The URL (driver psycopg) and ``create_engine`` arguments.

        Every connection carries ``lock_timeout`` and, with a schema, ``search_path`` set to
        that schema alone, as libpq ``options`` added to those the URL gives.
        """
        if url.get_driver_name() not in ("psycopg", ""):
            raise AgentError(
                AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                RetryClassification.HOST_CONFIGURATION_NEEDED,
                f"unsupported PostgreSQL driver in {safe_url(url)}: use postgresql+psycopg://",
            )
        if url.password is None and "password" in url.query:
            # a password given as a query parameter goes where SQLAlchemy masks it
            password = url.query["password"]
            url = url.set(password=password if isinstance(password, str) else password[0])
            url = url.difference_update_query(["password"])
        lock_ms = max(1, int(settings.lock_timeout * 1000))
        # libpq's ``options`` of the URL come first, so that the store's settings win where
        # both set one (a given connect argument replaces the URL's, so they are merged)
        given = url.query.get("options", ())
        options = [given] if isinstance(given, str) else list(given)
        options.append(f"-c lock_timeout={lock_ms}")
        if settings.schema is not None:
            options.append(f"-c search_path={settings.schema}")  # that schema, and only it
        url = url.difference_update_query(["options"])
        return url.set(drivername="postgresql+psycopg"), {
            # UTF-8 on the wire whatever the database's encoding, so that a database the
            # store refuses (check_database) can at least be connected to and named
            "connect_args": {"options": " ".join(options), "client_encoding": "utf8"},
            "pool_timeout": settings.lock_timeout,
        }

    @staticmethod
    def missing_database(url: URL) -> str | None:
        """``None``: whether a server has the database is known only by connecting."""
        return None

    def configure_engine(self, engine: Engine) -> None:
        """Note each new connection's server session (``lock_timeout`` is a connect argument)."""
        if not event.contains(engine, "connect", _note_session):
            event.listen(engine, "connect", _note_session)

    def check_database(self, connection: Connection) -> None:
        """The database must store text as UTF-8 (the wire format's JSON is UTF-8)."""
        encoding = connection.execute(text("SHOW server_encoding")).scalar()
        if encoding != "UTF8":
            raise AgentError(
                AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                RetryClassification.HOST_CONFIGURATION_NEEDED,
                f"database {safe_url(connection.engine.url)} has encoding {encoding}, not "
                "UTF8: the store keeps UTF-8 JSON; create the database with ENCODING 'UTF8'",
            )

    def unit_options(self, *, write: bool) -> dict[str, Any]:
        """Reads see one snapshot for all their statements (REPEATABLE READ)."""
        return {} if write else {"isolation_level": "REPEATABLE READ"}

    def begin_unit(self, connection: Connection, *, write: bool, wait_limit: float | None) -> None:
        """SQLAlchemy's ``BEGIN`` (REPEATABLE READ for a read), then :meth:`limit_waits`."""
        connection.execution_options(**self.unit_options(write=write))
        connection.begin()
        self.limit_waits(connection, wait_limit)

    def end_unit(self, connection: Connection) -> None:
        """Nothing: closing the connection rolls back SQLAlchemy's transaction."""

    def limit_waits(self, connection: Connection, seconds: float | None) -> None:
        """``SET LOCAL lock_timeout`` (and ``search_path``), when it is needed.

        One more statement, only when the budget is short (``seconds``) or the engine's
        connections do not carry the store's settings (a shared engine: then the schema's
        ``search_path`` too, in the same round trip, for this transaction only).
        """
        if seconds is None:
            if not self.shared_engine:
                return  # the connection's own lock_timeout is the full budget
            seconds = self.settings.lock_timeout
        milliseconds = max(1, int(seconds * 1000))
        sql = f"SET LOCAL lock_timeout = {milliseconds}"
        if self.shared_engine and self.settings.quoted_schema is not None:
            sql += f"; SET LOCAL search_path = {self.settings.quoted_schema}"
        connection.exec_driver_sql(sql)

    @contextmanager
    def in_schema(self, connection: Connection, *, create: bool = False) -> Iterator[None]:
        """The block's unqualified names resolve in the schema: ``search_path`` set to it.

        For the transaction only, and put back as it was after the block (a host's
        migration transaction goes on with its own). ``create``: a schema that does not
        exist is created first (``CREATE SCHEMA`` only then, so a role without the right to
        create schemas can migrate into one made for it).
        """
        schema, quoted = self.settings.schema, self.settings.quoted_schema
        if quoted is None:
            yield
            return
        if create and not connection.execute(_SCHEMA_EXISTS, {"schema": schema}).scalar():
            connection.exec_driver_sql(f"CREATE SCHEMA {quoted}")
        previous = connection.execute(_SWAP_SEARCH_PATH, {"path": quoted}).scalar_one()
        yield
        connection.execute(_SWAP_SEARCH_PATH, {"path": previous})  # not after a failure

    @contextmanager
    def host_unit(self, connection: Connection, *, write: bool) -> Iterator[None]:
        """``lock_timeout`` for the unit (``set_config`` local), then the host's value again.

        With a schema, its ``search_path`` too, in the same statements. Set inside the
        unit's savepoint: when the unit fails, rolling the savepoint back restores the
        host's values; when it succeeds, they are set back before the release.
        """
        milliseconds = f"{max(1, int(self.settings.lock_timeout * 1000))}ms"
        wanted = {"value": milliseconds, "path": self.settings.quoted_schema}
        previous = connection.execute(_SWAP_SETTINGS, wanted).one()
        yield
        connection.execute(_SWAP_SETTINGS, {"value": previous[0], "path": previous[2]})

    def lock_for_migration(self, connection: Connection) -> None:
        """An advisory transaction lock: concurrent upgrades run one after the other."""
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})

    def lock_logs(self, connection: Connection) -> None:
        """``LOCK TABLE`` the two shared tables ``ACCESS EXCLUSIVE`` until the unit ends.

        Another implementation appends with ``MAX(seq) + 1`` without the pool's row lock,
        perhaps as a ``SELECT`` then an ``INSERT``: only this mode keeps out that ``SELECT``
        too, so such a writer appends after the unit's ``COMMIT`` (to the pool as the unit
        left it), or before this lock is granted (and the unit sees its record). Every
        reader of those tables waits too, for the rest of the unit (a few deletes and the
        ``COMMIT``).

        The request waits at most :data:`LOCK_LOGS_WAIT_MS`: while an ``ACCESS EXCLUSIVE``
        request waits (for a long read of another pool, say), every later reader and writer
        of the tables queues behind it, so a request that waited ``lock_timeout`` would
        stall the whole store that long. A request that runs out is a transient failure:
        the unit runs again after a backoff (others get in meanwhile), within
        ``lock_timeout`` in all (then Timeout). The ``SET LOCAL`` ends with the unit.
        """
        connection.exec_driver_sql(
            f"SET LOCAL lock_timeout = {LOCK_LOGS_WAIT_MS}; "
            "LOCK TABLE agent_pool_records, agent_pool_event_seq IN ACCESS EXCLUSIVE MODE"
        )

    def read_head(self, connection: Connection, pool_id: str, *, lock: bool) -> PoolHead | None:
        """The head, its row ``FOR UPDATE`` and the unit's transaction id when ``lock``."""
        statement = _HEAD_FOR_WRITE if lock else statements.HEAD
        row = connection.execute(statement, {"pool_id": pool_id}).one_or_none()
        return None if row is None else PoolHead.of_row(row)

    def write_batch(self, connection: Connection, pool_id: str, batch: ProjectionBatch) -> None:
        """The whole batch in one statement (records, projection rows, watermark)."""
        connection.execute(*write_batch_statement(pool_id, batch))

    def commit(self, engine: Engine, connection: Connection, transaction_id: str | None) -> bool:
        """``COMMIT``; if its reply is lost, the transaction's status, read elsewhere."""
        session = connection.connection.info.get(SESSION_INFO)
        try:
            connection.commit()
        except exc.DBAPIError as error:
            if transaction_id is None or not is_disconnect(error):
                raise  # a read unit (nothing to settle), or the server refused the COMMIT
            if session is None:
                raise self._unknown("COMMIT", "its session is not known") from None
        else:
            return True
        status = self._settle(engine, session, "COMMIT", _XACT_STATUS, {"xid": transaction_id})
        if status not in ("committed", "aborted"):
            raise self._unknown("COMMIT", f"transaction status {status!r}")
        LOG.warning("the reply to COMMIT was lost; the transaction had %s", status)
        return bool(status == "committed")

    def _unknown(self, what: str, reason: str) -> AgentError:
        return AgentError.unknown_outcome(
            f"{self.name} agent pool store: the connection was lost after {what} was sent and "
            f"whether it took effect could not be found out ({reason}); read the pool "
            "(watch, look-ups) before retrying"
        )

    def _settle(
        self, engine: Engine, session: tuple[int, Any], what: str, outcome: Any, params: Any
    ) -> Any:
        """``outcome``'s value, read once the lost connection's server session is gone.

        Ends that session (it may still be running the write, or waiting for its reply to be
        read), waits until it has exited, so nothing of it can still commit, and runs
        ``outcome``. Retried until ``lock_timeout``; then AgentError ``outcome_unknown``.
        """
        pid, start = session
        deadline = time.monotonic() + max(self.settings.lock_timeout, 1.0)
        reason = "the old session did not end"
        while True:
            try:
                with engine.connect() as connection, connection.begin():
                    try:
                        with connection.begin_nested():
                            connection.execute(_END_SESSION, {"pid": pid, "start": start})
                    except exc.DBAPIError as error:
                        if is_disconnect(error):
                            raise
                        # not allowed to end it: wait until it ends by itself
                    alive = connection.execute(_SESSION_ALIVE, {"pid": pid, "start": start})
                    if alive.first() is None:
                        return connection.execute(outcome, params).scalar()
            except exc.DBAPIError as error:
                reason = f"database unavailable: {first_line(error.orig)}"
            except exc.SQLAlchemyError as error:
                reason = first_line(error)
            if time.monotonic() >= deadline:
                LOG.warning("the outcome of %s whose reply was lost is unknown: %s", what, reason)
                raise self._unknown(what, reason)
            pause(0.02)

    def try_append(
        self,
        engine: Engine,
        pool_id: str,
        readable_config: str,
        payload: AgentPoolStoreRecordPayload,
        payload_json: str,
    ) -> int | None:
        """The append as one autocommit statement (one round trip).

        The statement (:func:`.postgresql_statements.append_statement`) locks the pool's
        row and appends only if the pool's stored config is ``readable_config`` (so a
        damaged config still fails the append with RepairNeeded, in the unit of work) and
        the pool is current. It returns ``None`` when it did not append, and on any error
        but a lock wait that ran out (Timeout), leaving the append to a unit of work, which
        catches up, retries or reports.
        """
        if self.shared_engine or not self.settings.postgresql_one_statement:
            return None
        batch = ProjectionBatch()
        apply_payload(batch, payload)
        token = random.getrandbits(63)
        statement, parameters = append_statement(
            pool_id, readable_config, payload.type, payload_json, batch, append_token=token
        )
        sent, session = False, None
        try:
            with engine.connect() as connection:
                session, sent = connection.connection.info.get(SESSION_INFO), True
                row = fetch_one(connection, statement, parameters, autocommit=True)
        except exc.DBAPIError as error:
            if is_lock_timeout(error):
                raise timeout_error(
                    f"{self.name} agent pool store", self.settings.lock_timeout
                ) from driver_cause(error, engine.url)
            if not (sent and is_disconnect(error)):
                return None  # not sent, or refused by the server: nothing was appended
            if session is None:
                raise self._unknown("an append", "its session is not known") from None
            seq = self._settle(
                engine, session, "an append", _APPENDED, {"pool_id": pool_id, "token": token}
            )
            LOG.warning(
                "pool %r: the reply to an append was lost; it %s",
                pool_id,
                "did not land (a unit of work appends)" if seq is None else f"landed at {seq}",
            )
            return None if seq is None else int(seq)  # None: it did not land; a unit appends
        return None if row is None else int(row[0])

    def try_next_event_sequence(
        self, engine: Engine, pool_id: str, readable_config: str
    ) -> int | None:
        """Never: the counter advances in a unit of work, whose lost ``COMMIT`` is settled.

        An autocommit statement would save round trips, but the reply to it could be lost
        with no way to tell whether it took a number: the counter's row is the reference's
        (``agent_pool_event_seq``) and carries no token to look for. Running it again could
        skip a number, and numbers are handed out without gaps.
        """
        return None

    def try_look_up(
        self,
        engine: Engine,
        pool_id: str,
        readable_config: str,
        json_column: Column[str],
        key: str,
    ) -> tuple[str | None] | None:
        """The look-up as one autocommit statement (:func:`.driver.look_up`).

        One round trip, against a read unit of work's four.
        """
        if self.shared_engine or not self.settings.postgresql_one_statement:
            return None
        return look_up(engine, pool_id, readable_config, json_column, key, autocommit=True)

    def open_waiter(self, engine: Engine, pool_id: str, poll_interval: float) -> Waiter:
        """Listens on a connection of its own, made by ``engine`` (the records' NOTIFY)."""
        return PostgresWaiter(engine, pool_id, self.settings.lock_timeout, self.settings.schema)
