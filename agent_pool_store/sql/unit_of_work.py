"""The unit of work: one connection, one transaction, committed only when told."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine

from agent_pool_store.sql.dialects.protocol import SqlDialect
from agent_pool_store.sql.repositories import (
    EventSequenceRepository,
    PoolRepository,
    ProjectionRepository,
    RecordRepository,
)


class SqlUnitOfWork:
    """A context manager owning a Core connection and its transaction.

    The store's hot paths are Core statements, so the unit of work holds a
    :class:`~sqlalchemy.Connection` rather than an ORM Session (whose identity map and
    state tracking it would never use). It owns the dialect: its connection gets the
    dialect's unit options (a SQLite write unit begins with ``BEGIN IMMEDIATE``, taking the
    write lock; a PostgreSQL read unit runs at REPEATABLE READ, so a snapshot is never torn
    by a concurrent commit), and its repositories reach the dialect through it. Leaving the
    block without :meth:`commit` rolls everything back.
    """

    connection: Connection
    records: RecordRepository
    pools: PoolRepository
    event_sequences: EventSequenceRepository

    def __init__(
        self, engine: Engine, dialect: SqlDialect, *, write: bool, wait_limit: float | None = None
    ) -> None:
        self._engine = engine
        self.dialect = dialect
        self.write = write
        self.wait_limit = wait_limit
        """Seconds the unit's lock waits may take, when less than ``lock_timeout``."""
        self.transaction_id: str | None = None
        """Set from the unit's locked head where the dialect reads it (see :meth:`commit`)."""

    def __enter__(self) -> SqlUnitOfWork:
        options = self.dialect.unit_options(write=self.write, wait_limit=self.wait_limit)
        self.connection = self._engine.connect().execution_options(**options)
        try:
            self.connection.begin()
            self.dialect.limit_waits(self.connection, self.wait_limit)
        except BaseException:
            self.connection.close()
            raise
        self.records = RecordRepository(self.connection)
        self.pools = PoolRepository(self.connection, self.dialect)
        self.event_sequences = EventSequenceRepository(self.connection, self.dialect)
        return self

    def projections(self, pool_id: str) -> ProjectionRepository:
        """The projection repository of one pool."""
        return ProjectionRepository(self.connection, self.dialect, pool_id)

    def commit(self) -> bool:
        """Commit the transaction; ``False`` if it certainly did not commit.

        The dialect settles a lost ``COMMIT`` reply (see ``SqlDialect.commit``); an outcome
        it cannot settle raises AgentError with ``outcome_unknown``.
        """
        return self.dialect.commit(self._engine, self.connection, self.transaction_id)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.connection.close()  # rolls back whatever was not committed
