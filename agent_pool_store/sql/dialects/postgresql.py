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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, Connection, Engine, exc, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL

from agent_pool_store.domain import AgentPoolStoreRecordPayload, apply_payload
from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.follow_loop import Waiter
from agent_pool_store.sql import statements
from agent_pool_store.sql.dialects.driver import autocommit, fetch_one
from agent_pool_store.sql.dialects.postgresql_statements import (
    append_statement,
    lookup_statement,
    write_batch_statement,
)
from agent_pool_store.sql.dialects.postgresql_waiter import PostgresWaiter
from agent_pool_store.sql.errors import is_lock_timeout, timeout_error
from agent_pool_store.sql.pool_head import PoolHead
from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.settings import EngineSettings, safe_url

MIGRATION_LOCK = 0x41505331
"""Advisory lock key serialising concurrent upgrades."""


class PostgresqlDialect:
    """The store on PostgreSQL (``postgresql+psycopg://``)."""

    name = "postgresql"
    insert = staticmethod(postgresql.insert)
    migrates_on_open = False
    batch_migrations = False

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    @staticmethod
    def engine_arguments(url: URL, settings: EngineSettings) -> tuple[URL, dict[str, Any]]:
        """The URL (driver psycopg) and ``create_engine`` arguments (``lock_timeout``)."""
        if url.get_driver_name() not in ("psycopg", ""):
            raise AgentError(
                AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                RetryClassification.HOST_CONFIGURATION_NEEDED,
                f"unsupported PostgreSQL driver in {safe_url(url)}: use postgresql+psycopg://",
            )
        lock_ms = max(1, int(settings.lock_timeout * 1000))
        return url.set(drivername="postgresql+psycopg"), {
            "connect_args": {"options": f"-c lock_timeout={lock_ms}"}
        }

    def configure_engine(self, engine: Engine) -> None:
        """Nothing: the lock timeout travels in the connect arguments."""

    def unit_options(self, *, write: bool) -> dict[str, Any]:
        """Reads see one snapshot for all their statements (REPEATABLE READ)."""
        return {} if write else {"isolation_level": "REPEATABLE READ"}

    def lock_for_migration(self, connection: Connection) -> None:
        """An advisory transaction lock: concurrent upgrades run one after the other."""
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})

    def read_head(self, connection: Connection, pool_id: str, *, lock: bool) -> PoolHead | None:
        """The head, its row ``FOR UPDATE`` when ``lock``."""
        statement = statements.HEAD_FOR_UPDATE if lock else statements.HEAD
        row = connection.execute(statement, {"pool_id": pool_id}).one_or_none()
        return None if row is None else PoolHead.of_row(row)

    def write_batch(self, connection: Connection, pool_id: str, batch: ProjectionBatch) -> None:
        """The whole batch in one statement (records, projection rows, watermark)."""
        connection.execute(*write_batch_statement(pool_id, batch))

    def _one_statement(
        self, engine: Engine, statement: Any, parameters: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row of one autocommit statement, run on the driver: one round trip."""
        with engine.connect() as connection, autocommit(connection):
            return fetch_one(connection, statement, parameters)

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
        if not self.settings.postgresql_one_statement:
            return None
        batch = ProjectionBatch()
        apply_payload(batch, payload)
        statement = append_statement(pool_id, readable_config, payload.type, payload_json, batch)
        try:
            row = self._one_statement(engine, *statement)
        except exc.DBAPIError as error:
            if is_lock_timeout(error):
                raise timeout_error(
                    f"{self.name} agent pool store", self.settings.lock_timeout
                ) from None
            return None
        return None if row is None else int(row[0])

    def try_look_up(
        self,
        engine: Engine,
        pool_id: str,
        readable_config: str,
        json_column: Column[str],
        key: str,
    ) -> tuple[str | None] | None:
        """The look-up as one autocommit statement (one round trip).

        The statement (:func:`.postgresql_statements.lookup_statement`) reads the row with
        the pool's row and answers only if the pool is current with ``readable_config``;
        otherwise, or on any error, the look-up runs as a read unit of work (four round
        trips), which checks the pool, catches up or reports.
        """
        if not self.settings.postgresql_one_statement:
            return None
        parameters = {"pool_id": pool_id, "key": key, "readable_config": readable_config}
        try:
            row = self._one_statement(
                engine, lookup_statement(statements.row_by_key(json_column)), parameters
            )
        except exc.DBAPIError:
            return None
        return None if row is None else (row[0],)

    def open_waiter(self, url: URL, pool_id: str, poll_interval: float) -> Waiter:
        """Listens on a connection of its own (the pool's records' NOTIFY)."""
        return PostgresWaiter(url, pool_id, self.settings.lock_timeout)
