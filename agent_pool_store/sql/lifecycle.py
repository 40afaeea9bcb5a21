"""Whole pools leaving the database: archive to a file, restore from it, delete for good.

The record log stays append-only: nothing here touches a record of a live pool. A pool
leaves whole, in one write unit of work that

1. locks the pool's row (PostgreSQL; SQLite's unit holds the file's write lock), so the
   store's own writers wait;
2. (``archive``) reads the pool's log and event counter in that unit and writes them to the
   archive file, durably and checked (:mod:`.archive_file`);
3. keeps every writer of the shared tables out (``SqlDialect.lock_logs``: PostgreSQL
   ``LOCK TABLE … ACCESS EXCLUSIVE``, asked for 200 ms at a time, because another
   implementation appends without the
   pool's row lock) and (``archive``) checks that the log and counter are still what the file
   holds: if another writer appended meanwhile, the unit refuses and nothing is deleted;
4. deletes the pool's records, event counter, projections, row and follower rows, and
   commits.

A process killed before the ``COMMIT`` leaves the pool in the database whole (the archive
file may then exist too: restoring it is refused while the pool exists). A store writer
that waited for the pool's lock finds no pool afterwards and fails with
HostConfigurationNeeded ("has not opened this pool"); a follower ends with
:meth:`AgentError.pool_deleted`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, delete, select, type_coerce, update
from sqlalchemy.types import NullType

from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.operations import PoolUnit
from agent_pool_store.sql import admin, statements, transfer
from agent_pool_store.sql.archive_file import read_archive, refuse_existing, write_archive
from agent_pool_store.sql.runner import SqlPoolUnit, SqlRunner
from agent_pool_store.sql.schema import (
    PROJECTION_TABLES,
    EventSequenceRow,
    FollowerRow,
    table_of,
)
from agent_pool_store.sql.unit_of_work import SqlUnitOfWork

_POOL_TABLES = (
    statements.RECORDS,
    table_of(EventSequenceRow),
    *PROJECTION_TABLES,
    table_of(FollowerRow),
    statements.POOLS,
)
"""Every table holding rows of a pool, in the order they are deleted from."""


@dataclass(frozen=True)
class ArchiveReport:
    """What :func:`archive_pools` wrote and deleted."""

    path: Path
    pools: dict[str, int] = field(default_factory=dict)
    """Records archived (and deleted) per pool: each pool's last cursor."""
    event_sequences: dict[str, int] = field(default_factory=dict)
    """Event counters archived per pool (pools whose counter had handed out numbers)."""
    sha256: str = ""
    """SHA-256 of the file's uncompressed content."""

    @property
    def records(self) -> int:
        """How many records were archived in all."""
        return sum(self.pools.values())


def no_records(pool_id: str, action: str) -> AgentError:
    """A pool without records: there is nothing to archive or delete."""
    return AgentError(
        AgentErrorKind.HOST_CONFIGURATION_NEEDED,
        RetryClassification.HOST_CONFIGURATION_NEEDED,
        f"agent pool {pool_id!r} has no records: nothing to {action}",
    )


def appended_meanwhile(pool_id: str, archived: int, now: int) -> AgentError:
    """Another writer appended to a pool while it was being archived."""
    return AgentError(
        AgentErrorKind.INVALID_STATE_TRANSITION,
        RetryClassification.RETRYABLE,
        f"agent pool {pool_id!r} was not archived: another writer appended while the archive "
        f"was written (archived up to seq {archived}, the log now ends at seq {now}); nothing "
        "was deleted and no file was left",
    )


def became_active(pool_id: str, last_append_at: datetime | None) -> AgentError:
    """A pool that was idle when listed but is not any more."""
    when = "never" if last_append_at is None else last_append_at.isoformat()
    return AgentError(
        AgentErrorKind.INVALID_STATE_TRANSITION,
        RetryClassification.NOT_RETRYABLE,
        f"agent pool {pool_id!r} is not idle (last append {when}); it was not archived",
    )


def _lock_pools(uow: SqlUnitOfWork, pools: Iterable[str]) -> None:
    """Lock each pool's row, in one order for every unit (sorted): no deadlock between two."""
    for pool_id in sorted(pools):
        uow.pools.create(pool_id)
        uow.pools.head(pool_id, lock=True)


def delete_pool_rows(uow: SqlUnitOfWork, pool_id: str) -> int:
    """Delete every row of the pool from every table; the records deleted."""
    deleted = 0
    for table in _POOL_TABLES:
        result = uow.connection.execute(delete(table).where(table.c.pool_id == pool_id))
        if table is statements.RECORDS:
            deleted = result.rowcount
    return deleted


_LAST_APPEND_AS_STORED = type_coerce(statements.POOLS.c.last_append_at, NullType())
"""``last_append_at`` as the driver hands it over (SQLite's text kept byte for byte)."""


def last_append_as_stored(uow: SqlUnitOfWork, pool_id: str) -> object:
    """The pool's ``last_append_at`` exactly as stored (for :func:`set_last_append`)."""
    return uow.connection.execute(
        select(_LAST_APPEND_AS_STORED).where(statements.POOLS.c.pool_id == pool_id)
    ).scalar()


def set_last_append(uow: SqlUnitOfWork, pool_id: str, stored: object) -> None:
    """Put back a value :func:`last_append_as_stored` read (``rebuild`` is no activity)."""
    uow.connection.execute(
        update(statements.POOLS)
        .where(statements.POOLS.c.pool_id == pool_id)
        .values(last_append_at=type_coerce(bindparam("stored"), NullType())),
        {"stored": stored},
    )


def _check_idle(uow: SqlUnitOfWork, pool_id: str, cutoff: datetime) -> None:
    row = uow.connection.execute(
        select(statements.POOLS.c.last_append_at, statements.first_unprojected(pool_id)).where(
            statements.POOLS.c.pool_id == pool_id
        )
    ).one()
    last = None if row[0] is None else admin.utc(row[0])
    if last is None or last >= cutoff or row[1] is not None:
        raise became_active(pool_id, last)


def archive_pools(
    runner: SqlRunner,
    pool_ids: Iterable[str],
    destination: Path,
    *,
    idle_for: timedelta | None = None,
) -> ArchiveReport:
    """Write the pools' logs and counters to ``destination``, then delete the pools.

    See the module docstring for the steps; all of it is one write unit of work, retried as
    a whole on transient failures. ``destination`` must not exist (AgentError otherwise,
    nothing done). With ``idle_for``, a pool whose last append is not older than that when
    its lock is held is refused (AgentError NotRetryable) and nothing is done. If the unit
    fails, the file is removed, unless the outcome of its ``COMMIT`` is unknown.
    """
    pools = sorted(set(pool_ids))
    if not pools:
        raise AgentError.invalid_argument("archive: no pool given")
    refuse_existing(destination)
    cutoff = None if idle_for is None else admin.idle_cutoff(idle_for)

    def work(uow: SqlUnitOfWork) -> ArchiveReport:
        _lock_pools(uow, pools)
        for pool_id in pools:
            if not uow.records.last_seq(pool_id):
                raise no_records(pool_id, "archive")
            if cutoff is not None:
                _check_idle(uow, pool_id, cutoff)
        exported: dict[str, transfer.ExportedPool] = {}
        written = write_archive(
            destination, transfer.export_lines(lambda read: read(uow), pools, exported)
        )
        try:
            runner.dialect.lock_logs(uow.connection)
            for pool_id in pools:
                now = uow.records.last_seq(pool_id)
                if now != exported[pool_id].last_seq:
                    raise appended_meanwhile(pool_id, exported[pool_id].last_seq, now)
                counter = uow.event_sequences.current(pool_id)
                if counter != exported[pool_id].event_seq:
                    raise appended_meanwhile(pool_id, exported[pool_id].last_seq, now)
            for pool_id in pools:
                delete_pool_rows(uow, pool_id)
        except BaseException:
            destination.unlink(missing_ok=True)
            raise
        return ArchiveReport(
            destination,
            {pool_id: exported[pool_id].last_seq for pool_id in pools},
            {p: e.event_seq for p, e in exported.items() if e.event_seq},
            written.sha256,
        )

    def in_unit(unit: PoolUnit) -> ArchiveReport:
        assert isinstance(unit, SqlPoolUnit)
        return work(unit.uow)

    try:
        return runner.run(pools[0], write=True, work=in_unit, catch_up=False)
    except AgentError as error:
        if not error.outcome_unknown:
            destination.unlink(missing_ok=True)
        raise


def restore_archive(
    runner: SqlRunner, source: Path, *, progress: transfer.Progress | None = None
) -> transfer.ImportReport:
    """Import an archive (or any export file, gzip when named ``*.gz``) again.

    Pools that already have records are refused and nothing is written (see
    :func:`~agent_pool_store.sql.transfer.import_records`).
    """
    return transfer.import_records(runner, read_archive(source), progress=progress)


def delete_pool(runner: SqlRunner, pool_id: str) -> int:
    """Delete the pool (records, counter, projections, row, followers); the records deleted.

    One write unit of work: the pool's row lock, then every writer of the shared tables kept
    out (``lock_logs``) until ``COMMIT``, so a concurrent append lands before the delete (and
    is deleted with the pool) or after it (and fails: the pool is no longer opened). A pool
    without records is AgentError HostConfigurationNeeded and nothing is deleted.
    """

    def work(unit: PoolUnit) -> int:
        assert isinstance(unit, SqlPoolUnit)
        uow = unit.uow
        runner.dialect.lock_logs(uow.connection)
        if not uow.records.last_seq(pool_id):
            raise no_records(pool_id, "delete")
        return delete_pool_rows(uow, pool_id)

    return runner.run(pool_id, write=True, work=work, catch_up=False)
