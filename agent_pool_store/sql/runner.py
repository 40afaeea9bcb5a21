"""The SQL runner: units of work on one pool, retried, caught up, and the shorter paths.

:class:`SqlRunner` is the :class:`~agent_pool_store.operations.PoolRunner` of the SQL store.
It knows nothing of a particular dialect: where dialects differ it asks its
:class:`~agent_pool_store.sql.dialects.protocol.SqlDialect`.

- :meth:`SqlRunner.run` runs the contract's work on a :class:`SqlPoolUnit` in one
  :class:`~agent_pool_store.sql.unit_of_work.SqlUnitOfWork`: it reads the pool's head, catches
  the projections up with records another writer appended, and retries transient failures
  with backoff until ``lock_timeout``.
- :meth:`SqlRunner.append` and :meth:`SqlRunner.look_up` first offer the call to the
  dialect's one-statement path (``try_append`` / ``try_look_up``) when this runner has parsed
  the pool's stored config (the :class:`ConfigCache`); when that answers ``None``, a unit of
  work answers, within what is left of the same ``lock_timeout``.
- :meth:`SqlRunner.read` runs a read unit not tied to one pool (pool lists, counts, verify).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import Engine, exc

from agent_pool_store import telemetry_hooks
from agent_pool_store.asyncio_bridge import pause
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
from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.follow_loop import Waiter
from agent_pool_store.operations import Lookup, PoolUnit
from agent_pool_store.sql import statements
from agent_pool_store.sql.dialects.protocol import SqlDialect
from agent_pool_store.sql.errors import (
    driver_cause,
    first_line,
    is_transient,
    timeout_error,
    translate,
)
from agent_pool_store.sql.parsing import checked_row, parse_payload, parse_projection
from agent_pool_store.sql.pool_head import PoolHead
from agent_pool_store.sql.projection_batch import ProjectionBatch
from agent_pool_store.sql.record_rows import RecordRows
from agent_pool_store.sql.settings import EngineSettings
from agent_pool_store.sql.unit_of_work import SqlUnitOfWork

T = TypeVar("T")

LOG = logging.getLogger(__name__)
"""Under ``agent_pool_store``: catch-ups at INFO, units run again at DEBUG (INFO after a
lost connection); nothing at INFO for an operation that went as usual."""

CATCH_UP_BATCH = 1000
"""Records applied per statement batch when catching up with a foreign writer."""

KNOWN_CONFIGS_KEPT = 4096
"""Pools whose stored config a runner remembers having parsed (see :class:`ConfigCache`)."""


class CatchUpNeededError(Exception):
    """A read found records its projections have not applied yet."""


class ConfigCache:
    """Per pool, the stored config JSON this runner last parsed successfully, and the config.

    A unit reading the same text skips parsing it, and only a pool whose stored config is
    that text takes a one-statement path (the statement compares the text): "the config is
    readable" is decided here, once, for both paths.
    """

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, AgentPoolStoreConfig]] = {}

    def readable(self, pool_id: str) -> str | None:
        """The config text this runner has parsed for the pool, if any."""
        known = self._known.get(pool_id)
        return None if known is None else known[0]

    def parse(self, pool_id: str, config_json: str) -> AgentPoolStoreConfig:
        """The config stored as ``config_json`` (RepairNeeded if it cannot be read)."""
        known = self._known.get(pool_id)
        if known is not None and known[0] == config_json:
            return known[1]  # the same text parses to the same (frozen) config
        config = parse_projection(pool_id, AgentPoolStoreConfig, config_json, "config")
        self.remember(pool_id, config_json, config)
        return config

    def remember(self, pool_id: str, config_json: str, config: AgentPoolStoreConfig) -> None:
        """Note that ``config_json`` is the pool's config ``config``."""
        if len(self._known) >= KNOWN_CONFIGS_KEPT:
            self._known.clear()
        self._known[pool_id] = (config_json, config)


class SqlPoolUnit:
    """One pool inside one SQL unit of work (see :class:`~agent_pool_store.operations.PoolUnit`)."""

    def __init__(
        self, uow: SqlUnitOfWork, pool_id: str, head: PoolHead, configs: ConfigCache
    ) -> None:
        self.uow = uow
        self.pool_id = pool_id
        self.head = head
        self.projections = uow.projections(pool_id)
        self._config: AgentPoolStoreConfig | None = None
        self._stale = False
        self._configs = configs

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
            self._config = self._configs.parse(self.pool_id, config_json)
        return self._config

    def snapshot(self) -> AgentPoolSnapshot:
        return self.projections.load_state(self._current()).snapshot(self.pool_id)

    def snapshot_json(self) -> str:
        return self.projections.snapshot_json(self._current())

    def member(self, run_id: str) -> AgentPoolMember | None:
        return self.projections.member(run_id)

    def message_receipt(self, idempotency_key: str) -> MessageReceipt | None:
        return cast(
            "MessageReceipt | None", self.projections.look_up("message_receipt", idempotency_key)
        )

    def wake_registration(self, idempotency_key: str) -> WakeRegistration | None:
        found = self.projections.look_up("wake_registration", idempotency_key)
        return cast("WakeRegistration | None", found)

    def wake(self, condition_id: str) -> AgentPoolStoredWake | None:
        return cast("AgentPoolStoredWake | None", self.projections.look_up("wake", condition_id))

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
            # written from a valid model: a later unit need not parse it
            self._configs.remember(self.pool_id, batch.config_json, payload.config)
        self.head = self.head.appended(seq)
        self._stale = True
        return AgentPoolStoreCursor(sequence=seq)

    def next_event_sequence(self) -> int:
        return self.uow.event_sequences.next(self.pool_id)

    def records_after(self, sequence: int, limit: int) -> Sequence[AgentPoolStoreRecord]:
        return RecordRows(self.pool_id, self.uow.records.rows_after(self.pool_id, sequence, limit))


class SqlRunner:
    """Runs the store's work on an engine through its dialect (see the module docstring)."""

    def __init__(self, engine: Engine, dialect: SqlDialect, settings: EngineSettings) -> None:
        self.engine = engine
        self.dialect = dialect
        self.settings = settings
        self.configs = ConfigCache()
        self._pause = pause
        self.closed = False
        """Set by the store's ``close()``: every later call fails (see :meth:`_check_open`)."""

    def _check_open(self) -> None:
        if self.closed:
            raise AgentError.store_closed(self.store_name)

    @property
    def store_name(self) -> str:
        """The dialect's name, as error messages show the store (``"sqlite"``, …)."""
        return self.dialect.name

    def _what(self, action: str | None = None) -> str:
        what = f"{self.store_name} agent pool store"
        return what if action is None else f"{what} {action}"

    # -- the shorter paths ------------------------------------------------------------------

    def append(
        self,
        pool_id: str,
        payload: AgentPoolStoreRecordPayload,
        payload_json: str,
        work: Callable[[PoolUnit], AgentPoolStoreCursor],
    ) -> AgentPoolStoreCursor:
        """The one-statement append, else ``work`` in a write unit, within one deadline."""
        self._check_open()
        deadline = time.monotonic() + self.settings.lock_timeout
        cursor = self.try_append(pool_id, payload, payload_json)
        if cursor is not None:
            return cursor
        return self.run(pool_id, write=True, work=work, deadline=deadline)

    def look_up(self, pool_id: str, lookup: Lookup, key: str, work: Callable[[PoolUnit], T]) -> T:
        """The one-statement look-up, else ``work`` in a read unit, within one deadline."""
        self._check_open()
        deadline = time.monotonic() + self.settings.lock_timeout
        found = self.try_look_up(pool_id, lookup, key)
        if found is not None:
            return cast("T", found[0])
        return self.run(pool_id, write=False, work=work, deadline=deadline)

    def next_event_sequence(self, pool_id: str, work: Callable[[PoolUnit], int]) -> int:
        """The dialect's one-statement counter, else ``work`` in a write unit.

        Both within one deadline.
        """
        self._check_open()
        deadline = time.monotonic() + self.settings.lock_timeout
        readable_config = self.configs.readable(pool_id)
        if readable_config is not None:
            try:
                value = self.dialect.try_next_event_sequence(self.engine, pool_id, readable_config)
            except exc.SQLAlchemyError as error:  # e.g. no pooled connection became free
                raise translate(error, self._what()) from driver_cause(error, self.engine.url)
            if value is not None:
                return value
        return self.run(pool_id, write=True, work=work, deadline=deadline)

    def try_append(
        self, pool_id: str, payload: AgentPoolStoreRecordPayload, payload_json: str
    ) -> AgentPoolStoreCursor | None:
        """The dialect's one-statement append, if this runner has parsed the pool's config."""
        readable_config = self.configs.readable(pool_id)
        if readable_config is None:
            return None
        try:
            seq = self.dialect.try_append(
                self.engine, pool_id, readable_config, payload, payload_json
            )
        except exc.SQLAlchemyError as error:  # e.g. no pooled connection became free
            raise translate(error, self._what()) from driver_cause(error, self.engine.url)
        return None if seq is None else AgentPoolStoreCursor(sequence=seq)

    def try_look_up(self, pool_id: str, lookup: Lookup, key: str) -> tuple[BaseModel | None] | None:
        """The dialect's one-statement look-up, if this runner has parsed the pool's config."""
        readable_config = self.configs.readable(pool_id)
        if readable_config is None:
            return None
        json_column, model = statements.LOOKUPS[lookup]
        try:
            found = self.dialect.try_look_up(
                self.engine, pool_id, readable_config, json_column, key
            )
        except exc.SQLAlchemyError as error:  # e.g. no pooled connection became free
            raise translate(error, self._what()) from driver_cause(error, self.engine.url)
        if found is None:
            return None
        json = found[0]
        if json is None:
            return (None,)
        return (parse_projection(pool_id, model, json, json_column.table.name),)

    def open_waiter(self, pool_id: str, poll_interval: float) -> Waiter:
        """The dialect's waiter (it opens its dedicated connection)."""
        self._check_open()
        return self.dialect.open_waiter(self.engine, pool_id, poll_interval)

    # -- units of work ----------------------------------------------------------------------

    def unit_of_work(self, *, write: bool, wait_limit: float | None = None) -> SqlUnitOfWork:
        """A new unit of work on this runner's engine and dialect.

        ``wait_limit``: seconds its lock waits may take, when less than ``lock_timeout``.
        """
        return SqlUnitOfWork(self.engine, self.dialect, write=write, wait_limit=wait_limit)

    def read(self, work: Callable[[SqlUnitOfWork], T], action: str | None = None) -> T:
        """Run ``work`` in one read unit of work; database errors leave as AgentError.

        A unit whose connection was lost (a pooled connection the server closed) runs once
        more on a fresh one, as :meth:`run` does.
        """
        self._check_open()
        for attempt in (1, 2):
            try:
                with self.unit_of_work(write=False) as uow:
                    return work(uow)
            except exc.DBAPIError as error:
                if not (error.connection_invalidated and attempt == 1):
                    raise translate(error, self._what(action)) from driver_cause(
                        error, self.engine.url
                    )
            except exc.SQLAlchemyError as error:
                raise translate(error, self._what(action)) from driver_cause(error, self.engine.url)
        raise AssertionError("unreachable")

    def run(
        self,
        pool_id: str,
        *,
        write: bool,
        work: Callable[[PoolUnit], T],
        catch_up: bool = True,
        deadline: float | None = None,
    ) -> T:
        """Run ``work`` on the pool in one unit of work; commit if it returns.

        A read that finds records to catch up with runs again as a write. A transient
        failure (lock wait, serialization failure, a foreign writer's colliding ``seq``)
        rolls back and runs the unit again with backoff until ``lock_timeout``, and so does
        a connection lost before ``COMMIT`` was sent; a lost reply to ``COMMIT`` is settled
        by the dialect (see ``SqlDialect.commit``). Anything else leaves as AgentError.
        ``catch_up=False`` serves the pool as it is (rebuild and import catch up themselves).

        The whole call waits at most ``lock_timeout`` (from ``deadline``, when an earlier
        step of the same operation already waited): a unit that starts with less than that
        left limits its lock waits to what is left (``SqlDialect.begin_unit``).
        """
        self._check_open()
        if deadline is None:
            deadline = time.monotonic() + self.settings.lock_timeout
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise timeout_error(self._what(), self.settings.lock_timeout)
            wait_limit = left if left < self.settings.lock_timeout * 0.99 else None
            try:
                with self.unit_of_work(write=write, wait_limit=wait_limit) as uow:
                    result = work(self._prepare(uow, pool_id, catch_up=catch_up))
                    if uow.commit():
                        return result
                if time.monotonic() >= deadline:  # lost at COMMIT, which did not take effect
                    raise AgentError(
                        AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                        RetryClassification.RETRYABLE,
                        f"{self._what()}: the connection was lost at COMMIT, which did not "
                        "take effect; nothing was written",
                    )
                telemetry_hooks.retried("connection lost at COMMIT, which did not take effect")
            except CatchUpNeededError:
                telemetry_hooks.retried("records to catch up: running again as a write")
                write = True
            except exc.DBAPIError as error:
                if error.connection_invalidated:
                    # Lost before COMMIT was sent (a lost COMMIT is settled by the dialect's
                    # commit): nothing of the unit was committed, so it runs again, on a
                    # fresh connection. This also replaces a "pre-ping" per checkout.
                    if time.monotonic() >= deadline:
                        raise translate(error, self._what()) from driver_cause(
                            error, self.engine.url
                        )
                    LOG.info("pool %r: connection lost before COMMIT; running again", pool_id)
                    telemetry_hooks.retried("connection lost before COMMIT")
                    continue
                if not is_transient(error):
                    raise translate(error, self._what()) from driver_cause(error, self.engine.url)
                if time.monotonic() >= deadline:
                    raise timeout_error(self._what(), self.settings.lock_timeout) from driver_cause(
                        error, self.engine.url
                    )
                LOG.debug("pool %r: %s; running again", pool_id, first_line(error.orig))
                telemetry_hooks.retried(first_line(error.orig))
                backoff = min(0.2, 0.005 * 2**attempt) * random.uniform(0.5, 1.5)
                self._pause(max(0.0, min(backoff, deadline - time.monotonic())))
                attempt += 1
            except exc.SQLAlchemyError as error:
                raise translate(error, self._what()) from driver_cause(error, self.engine.url)

    def _prepare(self, uow: SqlUnitOfWork, pool_id: str, *, catch_up: bool) -> SqlPoolUnit:
        head = uow.pools.head(pool_id, lock=uow.write)  # the unit's first statement
        if head is not None:
            uow.transaction_id = head.transaction_id
        if head is None:
            if not uow.write:
                if uow.records.last_seq(pool_id):
                    raise CatchUpNeededError
                return SqlPoolUnit(uow, pool_id, PoolHead.absent(), self.configs)
            uow.pools.create(pool_id)
            head = uow.pools.head(pool_id, lock=True)
            assert head is not None
            uow.transaction_id = head.transaction_id
        if not head.log_sound and catch_up:
            raise uow.records.unsound_log(pool_id, head.projected_seq)
        if head.behind and catch_up:
            if not uow.write:
                raise CatchUpNeededError
            head = self.catch_up(uow, pool_id, head.projected_seq)
        return SqlPoolUnit(uow, pool_id, head, self.configs)

    def catch_up(
        self, uow: SqlUnitOfWork, pool_id: str, projected_seq: int, *, gaps: bool = False
    ) -> PoolHead:
        """Apply the pool's records after ``projected_seq`` to its projections.

        Records are applied :data:`CATCH_UP_BATCH` at a time; ``uow`` holds the pool's write
        lock. Returns the pool's head afterwards. A row that is not a readable record, or
        (unless ``gaps``: rebuild replays what is there) one that does not follow the one
        before it, is AgentError RepairNeeded naming the pool and its seq, and nothing is
        applied.
        """
        projections = uow.projections(pool_id)
        seq = previous = projected_seq
        while True:
            rows = uow.records.rows_after(pool_id, seq, CATCH_UP_BATCH)
            batch = ProjectionBatch()
            for stored_seq, stored_json in rows:
                row_seq, payload_json = checked_row(pool_id, stored_seq, stored_json)
                if not gaps and row_seq != previous + 1:
                    raise AgentError.unreadable_record(
                        pool_id,
                        row_seq,
                        f"it follows seq {previous}: records {previous + 1}..{row_seq - 1} "
                        "are missing",
                    )
                apply_payload(batch.at(row_seq), parse_payload(pool_id, row_seq, payload_json))
                previous = row_seq
            if rows:
                projections.write(batch)
                seq = batch.seq
            if len(rows) < CATCH_UP_BATCH:
                break
        if previous > projected_seq:
            LOG.info(
                "pool %r: applied records %d..%d to the projections (another writer's)",
                pool_id,
                projected_seq + 1,
                previous,
            )
            telemetry_hooks.caught_up(projected_seq + 1, previous)
        caught_up = uow.pools.head(pool_id, lock=False)
        assert caught_up is not None
        return caught_up
