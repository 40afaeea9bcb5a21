"""The unit of work: one session, one transaction, committed only when told."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from agent_pool_store.sql.engine import WRITE_OPTION
from agent_pool_store.sql.repositories import (
    EventSequenceRepository,
    PoolRepository,
    ProjectionRepository,
    RecordRepository,
)


class SqlUnitOfWork:
    """A context manager owning a session and its transaction.

    A write unit begins with the dialect's write lock (SQLite ``BEGIN IMMEDIATE``); the
    store then locks the pool's row on PostgreSQL. A ``consistent`` read sees one snapshot
    for all its statements (SQLite read transactions always do; PostgreSQL uses REPEATABLE
    READ). Leaving the block without :meth:`commit` rolls everything back.
    """

    session: Session
    records: RecordRepository
    pools: PoolRepository
    event_sequences: EventSequenceRepository

    def __init__(
        self, sessions: sessionmaker[Session], *, write: bool, consistent: bool = False
    ) -> None:
        self._sessions = sessions
        self.write = write
        self.consistent = consistent

    def __enter__(self) -> SqlUnitOfWork:
        self.session = self._sessions()
        try:
            options: dict[str, object] = {WRITE_OPTION: self.write}
            if self.consistent and self.session.get_bind().dialect.name == "postgresql":
                options["isolation_level"] = "REPEATABLE READ"  # one snapshot for all reads
            self.session.connection(execution_options=options)
        except BaseException:
            self.session.close()
            raise
        self.records = RecordRepository(self.session)
        self.pools = PoolRepository(self.session)
        self.event_sequences = EventSequenceRepository(self.session)
        return self

    def projections(self, pool_id: str) -> ProjectionRepository:
        """The projection repository of one pool."""
        return ProjectionRepository(self.session, pool_id)

    def commit(self) -> None:
        """Commit the transaction."""
        self.session.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.session.close()  # rolls back whatever was not committed
