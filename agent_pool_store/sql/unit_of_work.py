"""The unit of work: one connection, one transaction, committed only when told.

:class:`SqlUnitOfWork` owns its connection and transaction; :class:`HostUnitOfWork` runs
on a host application's connection, inside its transaction (``SqlAgentPoolStore.bind``).
"""

from __future__ import annotations

from contextlib import ExitStack
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
    state tracking it would never use). It owns the dialect, which begins its transaction
    (``SqlDialect.begin_unit``: a SQLite write unit begins with ``BEGIN IMMEDIATE`` on the
    driver connection, taking the write lock; a PostgreSQL read unit runs at REPEATABLE READ,
    so a snapshot is never torn by a concurrent commit), and its repositories reach the
    dialect through it. Leaving the block without :meth:`commit` rolls everything back
    (``SqlDialect.end_unit``, then closing the connection).
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
        self.connection = self._engine.connect()
        try:
            self.dialect.begin_unit(self.connection, write=self.write, wait_limit=self.wait_limit)
        except BaseException:
            self.connection.close()
            raise
        self._attach_repositories()
        return self

    def _attach_repositories(self) -> None:
        self.records = RecordRepository(self.connection)
        self.pools = PoolRepository(self.connection, self.dialect)
        self.event_sequences = EventSequenceRepository(self.connection, self.dialect)

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
        try:
            self.dialect.end_unit(self.connection)  # rolls back whatever was not committed
        finally:
            self.connection.close()


class HostUnitOfWork(SqlUnitOfWork):
    """A unit of work inside a host application's transaction, on the host's connection.

    It never commits, rolls back or closes what the host owns: it runs in a savepoint of
    the host's transaction (``Connection.begin_nested``), released when the block ends
    normally and rolled back when it fails, so a failed operation leaves the host's
    transaction as it was, and usable. The dialect prepares the savepoint for the unit
    (``SqlDialect.host_unit``: lock waits bounded by ``lock_timeout``, SQLite's write lock)
    and restores the host's own settings afterwards. What the unit wrote commits, or not,
    with the host's transaction.
    """

    def __init__(self, connection: Connection, dialect: SqlDialect, *, write: bool) -> None:
        super().__init__(connection.engine, dialect, write=write)
        self.connection = connection
        self._stack = ExitStack()

    def __enter__(self) -> HostUnitOfWork:
        with ExitStack() as stack:
            stack.enter_context(self.connection.begin_nested())
            stack.enter_context(self.dialect.host_unit(self.connection, write=self.write))
            self._stack = stack.pop_all()
        self._attach_repositories()
        return self

    def commit(self) -> bool:
        """Nothing to do: the savepoint is released when the block ends; the host commits."""
        return True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.__exit__(exc_type, exc, traceback)
