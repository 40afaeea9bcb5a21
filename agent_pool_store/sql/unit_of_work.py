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
    store then locks the pool's row on PostgreSQL. A read unit sees one snapshot for all its
    statements (a SQLite read transaction always does; on PostgreSQL it runs at REPEATABLE
    READ), so a snapshot is never torn by a concurrent commit. Leaving the block without
    :meth:`commit` rolls everything back.
    """

    session: Session
    records: RecordRepository
    pools: PoolRepository
    event_sequences: EventSequenceRepository

    def __init__(self, sessions: sessionmaker[Session], *, write: bool) -> None:
        self._sessions = sessions
        self.write = write

    def __enter__(self) -> SqlUnitOfWork:
        self.session = self._sessions()
        try:
            options: dict[str, object] = {WRITE_OPTION: self.write}
            if not self.write and self.session.get_bind().dialect.name == "postgresql":
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
