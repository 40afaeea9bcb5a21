"""The unit of work: one connection, one transaction, committed only when told."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine

from agent_pool_store.sql.engine import WRITE_OPTION
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
    state tracking it would never use). A write unit begins with the dialect's write lock
    (SQLite ``BEGIN IMMEDIATE``); the store then locks the pool's row on PostgreSQL. A read
    unit sees one snapshot for all its statements (a SQLite read transaction always does; on
    PostgreSQL it runs at REPEATABLE READ), so a snapshot is never torn by a concurrent
    commit. Leaving the block without :meth:`commit` rolls everything back.
    """

    connection: Connection
    records: RecordRepository
    pools: PoolRepository
    event_sequences: EventSequenceRepository

    def __init__(self, engine: Engine, *, write: bool) -> None:
        self._engine = engine
        self.write = write

    def __enter__(self) -> SqlUnitOfWork:
        options: dict[str, object] = {WRITE_OPTION: self.write}
        if not self.write and self._engine.dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"  # one snapshot for all reads
        self.connection = self._engine.connect().execution_options(**options)
        try:
            self.connection.begin()
        except BaseException:
            self.connection.close()
            raise
        self.records = RecordRepository(self.connection)
        self.pools = PoolRepository(self.connection)
        self.event_sequences = EventSequenceRepository(self.connection)
        return self

    def projections(self, pool_id: str) -> ProjectionRepository:
        """The projection repository of one pool."""
        return ProjectionRepository(self.connection, pool_id)

    def commit(self) -> None:
        """Commit the transaction."""
        self.connection.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.connection.close()  # rolls back whatever was not committed
