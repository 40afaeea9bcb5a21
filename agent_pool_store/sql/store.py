"""``SqlAgentPoolStore``: the contract persisted with SQLAlchemy, and ``open_store``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Engine, exc
from sqlalchemy.engine import URL

from agent_pool_store import arguments
from agent_pool_store.domain import (
    AgentPoolMember,
    AgentPoolSnapshot,
    AgentPoolStoreConfig,
    AgentPoolStoreCursor,
    AgentPoolStoredWake,
    AgentPoolStoreRecord,
    AgentPoolStoreRecordPayload,
    MessageReceipt,
    PoolOpened,
    WakeRegistration,
    apply_payload,
)
from agent_pool_store.errors import AgentError
from agent_pool_store.following import Waiter
from agent_pool_store.operations import Lookup, PoolStoreOperations, PoolUnit
from agent_pool_store.sql import admin
from agent_pool_store.sql.batch_statement import append_statement, lookup_statement
from agent_pool_store.sql.driver_execution import autocommit, fetch_one
from agent_pool_store.sql.engine import (
    DEFAULT_URL,
    EngineSettings,
    SqliteSynchronous,
    build_engine,
    safe_url,
)
from agent_pool_store.sql.errors import is_lock_timeout, is_transient, timeout_error, translate
from agent_pool_store.sql.follow import open_waiter
from agent_pool_store.sql.integrity import VerificationReport, rebuild_pool, verify_pool
from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.record_rows import RecordRows
from agent_pool_store.sql.repositories import (
    LOOKUPS,
    PoolHead,
    parse_payload,
    parse_projection,
    row_by_key,
)
from agent_pool_store.sql.unit_of_work import SqlUnitOfWork

T = TypeVar("T")

CATCH_UP_BATCH = 1000
"""Records applied per statement batch when catching up with a foreign writer."""

KNOWN_CONFIGS_KEPT = 4096
"""Pools whose stored config a store remembers having parsed (see ``_known_configs``)."""

KnownConfigs = dict[str, tuple[str, AgentPoolStoreConfig]]
"""Per pool: the stored config JSON a store last parsed successfully, and the config."""


class _CatchUpNeededError(Exception):
    """A read found records its projections have not applied yet."""


class _StaleConnectionError(Exception):
    """The unit's first statement found its pooled connection closed by the server.

    Nothing was sent on that connection in this unit, so running the unit again on a fresh
    connection is safe. (This replaces a "pre-ping" round trip on every checkout.) A
    disconnect later in a unit is not retried: a lost COMMIT may have landed.
    """

    def __init__(self, error: exc.DBAPIError) -> None:
        super().__init__()
        self.error = error


class SqlPoolUnit:
    """One pool inside one SQL unit of work (see :class:`~agent_pool_store.operations.PoolUnit`)."""

    def __init__(
        self, uow: SqlUnitOfWork, pool_id: str, head: PoolHead, known_configs: KnownConfigs
    ) -> None:
        self.uow = uow
        self.pool_id = pool_id
        self.head = head
        self.projections = uow.projections(pool_id)
        self._config: AgentPoolStoreConfig | None = None
        self._stale = False
        self._known_configs = known_configs

    def _current(self) -> PoolHead:
        """The pool's head, re-read if an append may have changed config or created."""
        if self._stale:
            head = self.uow.pools.head(self.pool_id, lock=False)
            assert head is not None
            self.head, self._config, self._stale = head, None, False
        return self.head

    def config(self) -> AgentPoolStoreConfig | None:
        config_json = self._current().config_json
        if config_json is not None and self._config is None:
            known = self._known_configs.get(self.pool_id)
            if known is not None and known[0] == config_json:
                self._config = known[1]  # the same text parses to the same (frozen) config
            else:
                config = parse_projection(self.pool_id, AgentPoolStoreConfig, config_json, "config")
                self._remember(config_json, config)
                self._config = config
        return self._config

    def _remember(self, config_json: str, config: AgentPoolStoreConfig) -> None:
        if len(self._known_configs) >= KNOWN_CONFIGS_KEPT:
            self._known_configs.clear()
        self._known_configs[self.pool_id] = (config_json, config)

    def snapshot(self) -> AgentPoolSnapshot:
        return self.projections.load_state(self._current()).snapshot(self.pool_id)

    def member(self, run_id: str) -> AgentPoolMember | None:
        return self.projections.member(run_id)

    def message_receipt(self, idempotency_key: str) -> MessageReceipt | None:
        return self.projections.message_receipt(idempotency_key)

    def wake_registration(self, idempotency_key: str) -> WakeRegistration | None:
        return self.projections.wake_registration(idempotency_key)

    def wake(self, condition_id: str) -> AgentPoolStoredWake | None:
        return self.projections.wake(condition_id)

    def append(
        self, payload: AgentPoolStoreRecordPayload, payload_json: str | None = None
    ) -> AgentPoolStoreCursor:
        seq = self.head.projected_seq + 1
        batch = ProjectionBatch().at(seq)
        text = payload.model_dump_json() if payload_json is None else payload_json
        batch.records.append((seq, payload.type, text))
        apply_payload(batch, payload)
        self.projections.write(batch)
        if isinstance(payload, PoolOpened) and batch.config_json is not None:
            self._remember(batch.config_json, payload.config)  # written from a valid model
        self.head = PoolHead(True, self.head.config_json, self.head.created, seq, seq)
        self._stale = True
        return AgentPoolStoreCursor(sequence=seq)

    def next_event_sequence(self) -> int:
        return self.uow.event_sequences.next(self.pool_id)

    def records_after(self, sequence: int, limit: int) -> Sequence[AgentPoolStoreRecord]:
        return RecordRows(self.pool_id, self.uow.records.rows_after(self.pool_id, sequence, limit))


class SqlAgentPoolStore(PoolStoreOperations):
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
    ) -> None:
        self.settings = settings or EngineSettings()
        self.engine = build_engine(engine, self.settings)
        self.label = self.engine.dialect.name
        self._owns_engine = owns_engine
        self._known_configs: KnownConfigs = {}
        """Per pool, the stored config JSON this store last parsed successfully, and the
        config: a unit reading the same text skips parsing it, and only a pool whose stored
        config is that text takes the one-statement append (``_append_directly``)."""

    def __repr__(self) -> str:
        return f"SqlAgentPoolStore({safe_url(self.engine.url)!r})"

    @property
    def url(self) -> URL:
        """The database URL (render it with ``hide_password=True`` before showing it)."""
        return self.engine.url

    def close(self) -> None:
        """Release the connection pool if this store created the engine."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> SqlAgentPoolStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- integrity -------------------------------------------------------------------------

    def verify(self, pool_id: str | None = None) -> VerificationReport:
        """Check one pool, or every pool, without changing anything.

        Reports cursor gaps or repeats, unreadable payloads, records not yet applied to the
        projections, and every projection that differs from a fresh replay of the log.
        """
        pools = [arguments.identifier("pool_id", pool_id)] if pool_id is not None else None
        report = VerificationReport()
        try:
            if pools is None:
                with SqlUnitOfWork(self.engine, write=False) as uow:
                    pools = uow.pools.pool_ids()
            for each in pools:
                with SqlUnitOfWork(self.engine, write=False) as uow:
                    count, differences = verify_pool(uow, each)
                report.pools.append(each)
                report.records += count
                report.differences.extend(differences)
        except exc.SQLAlchemyError as error:
            raise translate(error, f"{self.label} agent pool store verify") from None
        return report

    def rebuild(self, pool_id: str) -> int:
        """Recompute a pool's projections from its log; return the records applied.

        Fails with RepairNeeded, changing nothing, if a record of the pool cannot be read,
        and with HostConfigurationNeeded if the pool has no records.
        """
        pool_id = arguments.identifier("pool_id", pool_id)

        def work(unit: PoolUnit) -> int:
            assert isinstance(unit, SqlPoolUnit)
            if not unit.uow.records.last_seq(pool_id):
                raise AgentError.pool_not_opened(self.label)  # no log: nothing to rebuild
            rebuild_pool(unit.uow, pool_id)
            head = self._catch_up(unit.uow, pool_id, PoolHead(True, None, False, 0, 0))
            return head.projected_seq

        return self._execute(pool_id, write=True, work=work, catch_up=False)

    # -- administration and following (agent_pool_store.sql.admin, .follow) --------------

    def pools(self) -> list[admin.PoolSummary]:
        """Every pool with its record count, member count, last cursor and created flag.

        Records appended by another implementation are applied (catch-up) and counted. A
        pool whose log cannot be read is listed with ``problem`` set.
        """
        return admin.pool_summaries(self)

    def _open_waiter(self, pool_id: str, poll_interval: float) -> Waiter:
        return open_waiter(self, pool_id, poll_interval)

    # -- look-ups and appends in one statement (PostgreSQL) --------------------------------

    def _readable_config(self, pool_id: str) -> str | None:
        """The config text a one-statement path requires, or ``None`` to use a unit of work.

        That is, on PostgreSQL, the stored config this store last parsed for the pool.
        """
        known = self._known_configs.get(pool_id)
        return known[0] if self.label == "postgresql" and known is not None else None

    def _one_statement(
        self, statement: Any, parameters: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row of one autocommit statement, run on the driver: one round trip."""
        with self.engine.connect() as connection, autocommit(connection):
            return fetch_one(connection, statement, parameters)

    def _look_up_directly(
        self, pool_id: str, lookup: Lookup, key: str
    ) -> tuple[BaseModel | None] | None:
        """PostgreSQL: the look-up as one autocommit statement (one round trip).

        The statement (:func:`~agent_pool_store.sql.batch_statement.lookup_statement`) reads
        the projection row with the pool's row, and answers only if the pool's config is the
        text this store last parsed for it and no record follows the watermark; otherwise,
        or on any error, the look-up runs as a read unit of work (four round trips), which
        checks the pool, catches up or reports.
        """
        readable_config = self._readable_config(pool_id)
        if readable_config is None:
            return None
        json_column, model = LOOKUPS[lookup]
        parameters = {"pool_id": pool_id, "key": key, "readable_config": readable_config}
        try:
            row = self._one_statement(lookup_statement(row_by_key(json_column)), parameters)
        except exc.DBAPIError:
            return None
        if row is None:
            return None
        json = row[0]
        if json is None:
            return (None,)
        return (parse_projection(pool_id, model, json, json_column.table.name),)

    def _append_directly(
        self, pool_id: str, payload: AgentPoolStoreRecordPayload, payload_json: str
    ) -> AgentPoolStoreCursor | None:
        """PostgreSQL: the append as one autocommit statement (one round trip).

        The statement (:func:`~agent_pool_store.sql.batch_statement.append_statement`) locks
        the pool's row and appends only if the pool's stored config is the text this store
        last parsed successfully for it (so a damaged config still fails the append with
        RepairNeeded, as on SQLite) and the log has nothing to catch up with. In every other
        case (the pool's first append on this store included), and on any error but a lock
        wait that ran out, it leaves the append to a unit of work, which catches up, retries
        or reports. SQLite has no data-modifying CTEs, and a statement there costs no round
        trip: it always uses the unit of work.
        """
        readable_config = self._readable_config(pool_id)
        if readable_config is None:
            return None
        batch = ProjectionBatch()
        apply_payload(batch, payload)
        statement = append_statement(pool_id, readable_config, payload.type, payload_json, batch)
        try:
            row = self._one_statement(*statement)
        except exc.DBAPIError as error:
            if is_lock_timeout(error):
                raise timeout_error(
                    f"{self.label} agent pool store", self.settings.lock_timeout
                ) from None
            return None
        return None if row is None else AgentPoolStoreCursor(sequence=row[0])

    # -- units of work ---------------------------------------------------------------------

    def _execute(
        self,
        pool_id: str,
        *,
        write: bool,
        work: Callable[[PoolUnit], T],
        catch_up: bool = True,
    ) -> T:
        deadline = time.monotonic() + self.settings.lock_timeout
        attempt = 0
        while True:
            try:
                with SqlUnitOfWork(self.engine, write=write) as uow:
                    result = work(self._prepare(uow, pool_id, catch_up=catch_up))
                    uow.commit()
                    return result
            except _CatchUpNeededError:
                write = True
            except _StaleConnectionError as stale:
                if time.monotonic() >= deadline:
                    raise translate(stale.error, f"{self.label} agent pool store") from None
            except exc.DBAPIError as error:
                if not is_transient(error):
                    raise translate(error, f"{self.label} agent pool store") from None
                if time.monotonic() >= deadline:
                    raise timeout_error(
                        f"{self.label} agent pool store", self.settings.lock_timeout
                    ) from None
                time.sleep(min(0.2, 0.005 * 2**attempt) * random.uniform(0.5, 1.5))
                attempt += 1
            except exc.SQLAlchemyError as error:
                raise translate(error, f"{self.label} agent pool store") from None

    def _prepare(self, uow: SqlUnitOfWork, pool_id: str, *, catch_up: bool) -> SqlPoolUnit:
        try:
            head = uow.pools.head(pool_id, lock=uow.write)  # the unit's first statement
        except exc.DBAPIError as error:
            if error.connection_invalidated:
                raise _StaleConnectionError(error) from None
            raise
        if head is None:
            if not uow.write:
                if uow.records.last_seq(pool_id):
                    raise _CatchUpNeededError
                return SqlPoolUnit(
                    uow, pool_id, PoolHead(False, None, False, 0, 0), self._known_configs
                )
            uow.pools.create(pool_id)
            head = uow.pools.head(pool_id, lock=True)
            assert head is not None
        if head.behind and catch_up:
            if not uow.write:
                raise _CatchUpNeededError
            head = self._catch_up(uow, pool_id, head)
        return SqlPoolUnit(uow, pool_id, head, self._known_configs)

    def _catch_up(self, uow: SqlUnitOfWork, pool_id: str, head: PoolHead) -> PoolHead:
        projections = uow.projections(pool_id)
        seq = head.projected_seq
        while True:
            rows = uow.records.rows_after(pool_id, seq, CATCH_UP_BATCH)
            batch = ProjectionBatch()
            for row_seq, payload_json in rows:
                apply_payload(batch.at(row_seq), parse_payload(pool_id, row_seq, payload_json))
            if rows:
                projections.write(batch)
                seq = batch.seq
            if len(rows) < CATCH_UP_BATCH:
                break
        caught_up = uow.pools.head(pool_id, lock=False)
        assert caught_up is not None
        return caught_up


def open_store(
    url_or_engine: str | URL | Engine = DEFAULT_URL,
    *,
    lock_timeout: float = 10.0,
    sqlite_synchronous: SqliteSynchronous = "FULL",
    auto_upgrade: bool | None = None,
) -> SqlAgentPoolStore:
    """Open the SQL store on a database URL or an existing engine.

    SQLite (the default, ``sqlite:///agent-pool.sqlite``) is upgraded to the latest schema
    automatically; other dialects must already be at the latest migration (run
    ``alembic upgrade head`` or :func:`agent_pool_store.migrations.upgrade`) unless
    ``auto_upgrade=True``. Waits for another writer are bounded by ``lock_timeout`` seconds.
    """
    from agent_pool_store import migrations  # noqa: PLC0415 - migrations import this module

    settings = EngineSettings(lock_timeout=lock_timeout, sqlite_synchronous=sqlite_synchronous)
    owns_engine = not isinstance(url_or_engine, Engine)
    engine = build_engine(url_or_engine, settings)
    try:
        if auto_upgrade if auto_upgrade is not None else engine.dialect.name == "sqlite":
            migrations.upgrade(engine)
        else:
            migrations.require_head(engine)
    except exc.SQLAlchemyError as error:
        if owns_engine:
            engine.dispose()
        raise translate(error, f"opening {safe_url(engine.url)}") from None
    except AgentError:
        if owns_engine:
            engine.dispose()
        raise
    return SqlAgentPoolStore(engine, settings=settings, owns_engine=owns_engine)
