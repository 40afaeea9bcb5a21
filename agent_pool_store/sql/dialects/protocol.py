"""``SqlDialect``: what the SQL store asks of a dialect, and nothing else.

The runner, the unit of work and the repositories are written once against this protocol;
each dialect module implements it (:mod:`.sqlite`, :mod:`.postgresql`) and
:mod:`.registry` picks one. A capability a dialect does not have answers "no" (``None``)
and the caller takes the general path: SQLite's ``try_append`` always returns ``None``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy import Column, Connection, Engine

from agent_pool_store.domain import AgentPoolStoreRecordPayload
from agent_pool_store.follow_loop import Waiter
from agent_pool_store.sql.pool_head import PoolHead
from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.upsert import InsertConstruct


class SqlDialect(Protocol):
    """The dialect-specific half of the SQL store, bound to the store's settings."""

    @property
    def name(self) -> str:
        """The dialect's name as error messages show it: ``"sqlite"``, ``"postgresql"``."""
        ...

    @property
    def insert(self) -> InsertConstruct:
        """The dialect's ``insert(table)`` construct, with ``ON CONFLICT`` (see ``sql/upsert``)."""
        ...

    @property
    def migrates_on_open(self) -> bool:
        """Whether ``open_store`` upgrades the schema unless told otherwise (embedded SQLite)."""
        ...

    @property
    def batch_migrations(self) -> bool:
        """Whether Alembic must rewrite tables to alter them (``render_as_batch``)."""
        ...

    def configure_engine(self, engine: Engine) -> None:
        """Install what every connection of ``engine`` needs (idempotent)."""
        ...

    def check_database(self, connection: Connection) -> None:
        """Refuse, with a clear AgentError, a database the store cannot keep its data in."""
        ...

    def unit_options(self, *, write: bool) -> dict[str, Any]:
        """Execution options of a connection whose transaction SQLAlchemy begins.

        The write lock and isolation (migrations use them; a unit of work begins with
        :meth:`begin_unit`, which also bounds its lock waits).
        """
        ...

    def begin_unit(self, connection: Connection, *, write: bool, wait_limit: float | None) -> None:
        """Begin a unit of work's transaction on its new connection.

        A write unit holds the pool's write lock where the dialect takes it up front
        (SQLite); a read unit sees one snapshot. Its lock waits take at most
        ``wait_limit`` seconds (``None``: the full ``lock_timeout``, which the dialect may
        already have set on its connections); what else the transaction needs and the
        connection may lack is set too (PostgreSQL, an engine the host built: the schema's
        ``search_path``).
        """
        ...

    def end_unit(self, connection: Connection) -> None:
        """Before a unit's connection is closed: roll back what it did not commit.

        Whatever the engine's pool does with returned connections.
        """
        ...

    def in_schema(
        self, connection: Connection, *, create: bool = False
    ) -> AbstractContextManager[None]:
        """In a migration's transaction: the block works in the settings' schema.

        Created first if missing when ``create``; nothing to do without a schema (SQLite
        refuses one when the dialect is made).
        """
        ...

    def host_unit(self, connection: Connection, *, write: bool) -> AbstractContextManager[None]:
        """Prepare a savepoint of a host's transaction for one unit of work, and restore.

        For ``SqlAgentPoolStore.bind``: inside the block, lock waits take at most
        ``lock_timeout`` and, when ``write``, the unit can write without waiting for a lock
        its own transaction would have to give up (SQLite's write lock is taken, or the
        unit fails with a clear error). Whatever the dialect set on the host's connection
        is as it was afterwards.
        """
        ...

    def lock_for_migration(self, connection: Connection) -> None:
        """Serialise migrations, in the migration's transaction (already begun)."""
        ...

    def lock_logs(self, connection: Connection) -> None:
        """Keep every writer of the shared tables out until the write unit ends.

        For deleting whole pools (``archive``, ``delete_pool``): another implementation
        appends without the pool's row lock, so the unit that checks a pool's log and
        deletes it must keep out every writer of ``agent_pool_records`` and
        ``agent_pool_event_seq`` from that check to its ``COMMIT``.
        """
        ...

    def read_head(self, connection: Connection, pool_id: str, *, lock: bool) -> PoolHead | None:
        """The unit's first statement: the pool's head (its row locked when ``lock``)."""
        ...

    def write_batch(self, connection: Connection, pool_id: str, batch: ProjectionBatch) -> None:
        """Append the batch's records, write its projection changes, advance the watermark."""
        ...

    def commit(self, engine: Engine, connection: Connection, transaction_id: str | None) -> bool:
        """Commit a unit's transaction; whether it committed.

        ``False`` only when it certainly did not (the unit may then run again). When the
        reply to ``COMMIT`` is lost, the dialect finds out on another connection, using
        ``transaction_id`` (from the unit's locked head); if it cannot, AgentError with
        ``outcome_unknown``. Any other failure raises as ``Connection.commit`` does.
        """
        ...

    def try_append(
        self,
        engine: Engine,
        pool_id: str,
        readable_config: str,
        payload: AgentPoolStoreRecordPayload,
        payload_json: str,
    ) -> int | None:
        """Append without a unit of work if the pool is current with that config.

        The new sequence, or ``None`` when nothing was appended and a unit of work must
        decide (the pool is not current, the path is off or unavailable, it failed).
        """
        ...

    def try_look_up(
        self,
        engine: Engine,
        pool_id: str,
        readable_config: str,
        json_column: Column[str],
        key: str,
    ) -> tuple[str | None] | None:
        """Read a projection row by key without a unit of work if the pool is current.

        ``(json,)`` (``json`` is ``None`` when no row has that key), or ``None`` to leave
        the look-up to a unit of work.
        """
        ...

    def try_next_event_sequence(
        self, engine: Engine, pool_id: str, readable_config: str
    ) -> int | None:
        """Advance the pool's event counter without a unit of work if the pool is current.

        The new value, or ``None`` to leave it to a unit of work. A lock wait that ran out
        raises AgentError Timeout (the unit would wait again).
        """
        ...

    def open_waiter(self, engine: Engine, pool_id: str, poll_interval: float) -> Waiter:
        """What tells a follower of the pool that new records may have committed."""
        ...
