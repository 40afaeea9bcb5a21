"""``SqlAgentPoolStore``, the SQL store's public face, and ``open_store``.

The facade holds no SQL and no dialect switch: the contract's operations come from
:class:`~agent_pool_store.operations.PoolStoreOperations` over a
:class:`~agent_pool_store.sql.runner.SqlRunner`; integrity, summaries and transfer are the
modules :mod:`.integrity`, :mod:`.admin` and :mod:`.transfer`, run through the same runner.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, exc
from sqlalchemy.engine import URL

from agent_pool_store import arguments, migrations
from agent_pool_store.errors import AgentError, about_pool
from agent_pool_store.operations import PoolStoreOperations, PoolUnit
from agent_pool_store.sql import admin, lifecycle, transfer
from agent_pool_store.sql.binding import BoundAgentPoolStore, HostTransaction
from agent_pool_store.sql.engine import build_engine
from agent_pool_store.sql.errors import driver_cause, translate
from agent_pool_store.sql.integrity import VerificationReport, rebuild_pool, verify_pool
from agent_pool_store.sql.runner import SqlPoolUnit, SqlRunner
from agent_pool_store.sql.settings import DEFAULT_URL, EngineSettings, SqliteSynchronous, safe_url
from agent_pool_store.telemetry import Telemetry, store_telemetry


class SqlAgentPoolStore(PoolStoreOperations[SqlRunner]):
    """The store contract on SQLite or PostgreSQL; build one with :func:`open_store`.

    Every operation is one unit of work. Writes take the pool's write lock (SQLite
    ``BEGIN IMMEDIATE``; PostgreSQL the pool's row ``FOR UPDATE``), so "sequence = last + 1,
    append, update projections" is atomic and each pool's commit order is its sequence
    order. Look-ups and snapshots read projections. Records another implementation appended
    are applied to the projections (catch-up) before the pool is served.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        settings: EngineSettings | None = None,
        owns_engine: bool = False,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        self.engine, self.dialect = build_engine(engine, self.settings)
        self._owns_engine = owns_engine
        super().__init__(
            SqlRunner(self.engine, self.dialect, self.settings),
            store_telemetry(telemetry, self.dialect.name),
        )

    def __repr__(self) -> str:
        schema = "" if self.settings.schema is None else f", schema={self.settings.schema!r}"
        return f"SqlAgentPoolStore({safe_url(self.engine.url)!r}{schema})"

    @property
    def url(self) -> URL:
        """The database URL (render it with ``hide_password=True`` before showing it)."""
        return self.engine.url

    def close(self) -> None:
        """Close the store: every later call fails with AgentError NotRetryable.

        Releases the connection pool if this store created the engine (an engine you passed
        in stays yours). Closing again does nothing. ``with open_store(…) as store:`` closes
        the store when the block ends.
        """
        self._runner.closed = True
        if self._owns_engine:
            self.engine.dispose()

    def bind(self, host: HostTransaction) -> BoundAgentPoolStore:
        """The store's twelve operations in the host's transaction.

        ``host`` is a :class:`~sqlalchemy.Connection` or ORM
        :class:`~sqlalchemy.orm.Session` of this store's engine. Every operation of the
        returned view runs on it, in a savepoint of its transaction: the store never commits,
        rolls back or closes it, and what the view wrote commits or rolls back with the
        host's transaction::

            with Session(store.engine) as session, session.begin():
                session.add(task)
                store.bind(session).record_message(pool_id, message)

        See :mod:`agent_pool_store.sql.binding` (locks, SQLite's write transaction, retries).
        """
        return BoundAgentPoolStore(self._runner, host, self._telemetry)

    def __enter__(self) -> SqlAgentPoolStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- integrity (agent_pool_store.sql.integrity) ---------------------------------------

    def verify(self, pool_id: str | None = None) -> VerificationReport:
        """Check one pool, or every pool, without changing anything.

        Reports cursor gaps or repeats, unreadable payloads and every projection that
        differs from a fresh replay of the log (``differences``: damage), and, as
        information, records another writer appended that are not applied yet (``pending``).
        """
        pools = [arguments.identifier("pool_id", pool_id)] if pool_id is not None else None
        report = VerificationReport()
        if pools is None:
            pools = self._runner.read(lambda uow: uow.pools.pool_ids(), action="verify")
        for each in pools:
            report.add(self._runner.read(functools.partial(verify_pool, pool_id=each), "verify"))
        return report

    def rebuild(self, pool_id: str) -> int:
        """Recompute a pool's projections from its log; return the records applied.

        Fails with RepairNeeded, changing nothing, if a record of the pool cannot be read,
        and with HostConfigurationNeeded if the pool has no records. The pool's last append
        time is kept: a repair is no activity.
        """
        pool_id = arguments.identifier("pool_id", pool_id)

        def work(unit: PoolUnit) -> int:
            assert isinstance(unit, SqlPoolUnit)
            if not unit.uow.records.last_seq(pool_id):
                raise AgentError.pool_not_opened(self._runner.store_name)  # no log to rebuild
            last_append = lifecycle.last_append_as_stored(unit.uow, pool_id)
            rebuild_pool(unit.uow, pool_id)
            applied = self._runner.catch_up(unit.uow, pool_id, 0, gaps=True).projected_seq
            lifecycle.set_last_append(unit.uow, pool_id, last_append)  # a repair, no activity
            return applied

        with about_pool(pool_id):
            return self._runner.run(pool_id, write=True, work=work, catch_up=False)

    # -- administration (agent_pool_store.sql.admin, .transfer) ----------------------------

    def pools(
        self,
        *,
        idle_for: timedelta | float | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[admin.PoolSummary]:
        """Pools with their record count, member count, last cursor, flags and last append.

        In the database's order of pool ids: all of them, or up to ``limit`` after the id
        ``after`` (pages: pass the last id of a page as the next page's ``after``).
        ``idle_for`` (a ``timedelta`` or seconds) keeps only pools whose last append is
        older than that, by the database's clock. One statement reads a page of up to 1,000
        pools; a pool with records another implementation appended is caught up first (and
        so counts as active), and a pool whose log cannot be read is listed with ``problem``
        set.
        """
        return admin.pool_summaries(
            self._runner,
            idle_for=arguments.duration("idle_for", idle_for),
            limit=arguments.optional_count("limit", limit),
            after=None if after is None else arguments.identifier("after", after),
        )

    def archive(
        self,
        pool_id: str | Iterable[str],
        destination: str | os.PathLike[str],
        *,
        idle_for: timedelta | float | None = None,
    ) -> lifecycle.ArchiveReport:
        """Move a pool (or several) out of the database into an archive file.

        Writes each pool's whole log and event counter to ``destination`` in the export
        format (gzip when the name ends in ``.gz``), ``fsync``-s it, checks it by reading it
        back, and only then deletes the pools, all in one write transaction: a crash before
        its ``COMMIT`` leaves the pools in the database. If another writer appends to one of
        them meanwhile, nothing is deleted (AgentError Retryable) and the file is removed.
        ``destination`` must not exist. ``idle_for``: refuse (NotRetryable) a pool that is
        not idle that long once it is locked. :meth:`restore` imports the file again.
        """
        pools = [pool_id] if isinstance(pool_id, str) else list(pool_id)
        checked = [arguments.identifier("pool_id", each) for each in pools]
        return lifecycle.archive_pools(
            self._runner,
            checked,
            Path(destination),
            idle_for=arguments.duration("idle_for", idle_for),
        )

    def restore(
        self,
        source: str | os.PathLike[str],
        *,
        progress: transfer.Progress | None = None,
    ) -> transfer.ImportReport:
        """Import an archive (any export file; gzip when named ``*.gz``) again.

        Every cursor, payload byte and event counter comes back; pools that already have
        records are refused (UserActionNeeded) and nothing is written.
        """
        return lifecycle.restore_archive(self._runner, Path(source), progress=progress)

    def delete_pool(self, pool_id: str) -> int:
        """Erase a pool; return how many records were deleted.

        Its log, event counter, projections and follower rows go, in one transaction.
        A concurrent append to the pool lands before the delete (and is deleted) or fails
        with HostConfigurationNeeded (the pool is no longer opened); a follower of the pool
        ends with AgentError NotRetryable. A pool without records is HostConfigurationNeeded.
        """
        pool_id = arguments.identifier("pool_id", pool_id)
        with about_pool(pool_id):
            return lifecycle.delete_pool(self._runner, pool_id)

    def pool_ids(self) -> list[str]:
        """Every pool id with records or a pool row, sorted (nothing is caught up)."""
        return admin.pool_ids(self._runner)

    def count_records(self, pool_id: str | None = None) -> int:
        """How many records one pool (or, with ``None``, every pool) holds."""
        pool = None if pool_id is None else arguments.identifier("pool_id", pool_id)
        return self._runner.read(lambda uow: uow.records.count(pool))

    def export_records(self, pool_id: str | None = None) -> Iterator[str]:
        """The records of one pool, or of every pool (``None``), as export lines.

        Lines have no newline; pools come in sorted order, each pool's records in sequence
        order (see :mod:`agent_pool_store.sql.transfer` for the format). An unreadable
        record raises AgentError RepairNeeded naming the pool and sequence.
        """
        pools = [arguments.identifier("pool_id", pool_id)] if pool_id is not None else None
        return transfer.export_records(
            self._runner, pools if pools is not None else self.pool_ids()
        )

    def import_records(
        self, lines: Iterable[str], *, progress: transfer.Progress | None = None
    ) -> transfer.ImportReport:
        """Import export lines into pools without records, in one transaction.

        Every cursor is kept. A bad line raises ImportFormatError naming it; pools that
        already have records are refused (UserActionNeeded) and nothing is written.
        """
        return transfer.import_records(self._runner, lines, progress=progress)


def open_store(
    url_or_engine: str | URL | Engine = DEFAULT_URL,
    *,
    lock_timeout: float = 10.0,
    sqlite_synchronous: SqliteSynchronous = "FULL",
    auto_upgrade: bool | None = None,
    postgresql_one_statement: bool = True,
    schema: str | None = None,
    telemetry: Telemetry | None = None,
) -> SqlAgentPoolStore:
    """Open the SQL store on a database URL or an existing engine.

    SQLite (the default, ``sqlite:///agent-pool.sqlite``) is upgraded to the latest schema
    automatically; other dialects must already be at the latest migration (run
    ``alembic upgrade head`` or :func:`agent_pool_store.migrations.upgrade`) unless
    ``auto_upgrade=True``. Waits for another writer are bounded by ``lock_timeout`` seconds.
    ``postgresql_one_statement=False`` runs every PostgreSQL operation as a unit of work
    (see :class:`~agent_pool_store.sql.settings.EngineSettings`). ``schema`` (PostgreSQL
    only; SQLite refuses it with HostConfigurationNeeded) keeps every table of the store in
    that schema: it must exist and be migrated (``migrations.upgrade(url, schema=…)``, which
    creates it) unless ``auto_upgrade=True``. ``telemetry``: where the store's operations
    report (OpenTelemetry's global providers by default, when the ``otel`` extra is
    installed; see :mod:`agent_pool_store.telemetry`).
    """
    settings = EngineSettings(
        lock_timeout=lock_timeout,
        sqlite_synchronous=sqlite_synchronous,
        postgresql_one_statement=postgresql_one_statement,
        schema=schema,
    )
    owns_engine = not isinstance(url_or_engine, Engine)
    engine, dialect = build_engine(url_or_engine, settings)
    try:
        with engine.connect() as connection:
            dialect.check_database(connection)
        if auto_upgrade if auto_upgrade is not None else dialect.migrates_on_open:
            migrations.upgrade(engine, schema=schema)
        else:
            migrations.require_head(engine, schema)
    except exc.SQLAlchemyError as error:
        if owns_engine:
            engine.dispose()
        raise translate(error, f"opening {safe_url(engine.url)}") from driver_cause(
            error, engine.url
        )
    except AgentError:
        if owns_engine:
            engine.dispose()
        raise
    return SqlAgentPoolStore(
        engine, settings=settings, owns_engine=owns_engine, telemetry=telemetry
    )
