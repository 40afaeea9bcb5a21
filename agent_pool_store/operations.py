"""The contract's rules, written once over a per-pool unit of work that each store provides.

A store subclasses :class:`PoolStoreOperations` and hands it a :class:`PoolRunner`, which
runs a function on a :class:`PoolUnit` for one pool inside one transaction (holding the
pool's write lock when ``write`` is true), retrying it where the store can, and may offer
shorter paths for appends and look-ups that need nothing but an opened pool. Everything the
contract says about arguments, unopened pools, config conflicts and leaving non-members is
here and nowhere else.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

from agent_pool_store import arguments, telemetry_follow, telemetry_hooks
from agent_pool_store.contract import CursorArg
from agent_pool_store.domain import (
    AgentPoolMember,
    AgentPoolSnapshot,
    AgentPoolStoreConfig,
    AgentPoolStoreCursor,
    AgentPoolStoredMessage,
    AgentPoolStoredWake,
    AgentPoolStoreRecord,
    AgentPoolStoreRecordPayload,
    CompiledEventFilter,
    MemberJoined,
    MemberLeft,
    MessageReceipt,
    PoolCreated,
    PoolOpened,
    RunMessage,
    RunMessageRecorded,
    WakeCondition,
    WakeRecorded,
    WakeRegistration,
)
from agent_pool_store.errors import AgentError, about_pool
from agent_pool_store.follow_loop import (
    DEFAULT_POLL_INTERVAL,
    Follower,
    Waiter,
    check_follow_arguments,
    follow_records,
)
from agent_pool_store.telemetry import StoreTelemetry, records_read, traced
from agent_pool_store.telemetry_follow import Reader

T = TypeVar("T")

Lookup = Literal["message_receipt", "wake_registration", "wake"]
"""The look-ups by key a runner may answer without a unit of work
(:meth:`PoolRunner.look_up`), named as the :class:`PoolUnit` methods they stand for."""

MAX_STORED_SEQUENCE = 2**63 - 1
"""Sequences are stored as signed 64-bit integers; a cursor at or past this has no records
after it."""

WATCH_BATCH = 1000
"""How many records :meth:`PoolStoreOperations.watch` reads per transaction."""


class PoolUnit(Protocol):
    """One pool's state and log inside one transaction of a store."""

    def config(self) -> AgentPoolStoreConfig | None:
        """The pool's config, or ``None`` if it was never opened."""
        ...

    def snapshot(self) -> AgentPoolSnapshot:
        """The pool's snapshot (the pool is opened)."""
        ...

    def snapshot_json(self) -> str:
        """``snapshot().model_dump_json()``, built however is cheapest (the pool is opened)."""
        ...

    def member(self, run_id: str) -> AgentPoolMember | None:
        """The current member with this run id."""
        ...

    def message_receipt(self, idempotency_key: str) -> MessageReceipt | None:
        """The latest receipt under a message idempotency key."""
        ...

    def wake_registration(self, idempotency_key: str) -> WakeRegistration | None:
        """The latest registration under a wake idempotency key."""
        ...

    def wake(self, condition_id: str) -> AgentPoolStoredWake | None:
        """The latest stored wake of a condition."""
        ...

    def append(
        self, payload: AgentPoolStoreRecordPayload, payload_json: str | None = None
    ) -> AgentPoolStoreCursor:
        """Append a record at the next sequence and apply it to the projections.

        ``payload_json`` is the payload's wire JSON when the caller has it already.
        """
        ...

    def next_event_sequence(self) -> int:
        """Advance and return the pool's event counter."""
        ...

    def records_after(self, sequence: int, limit: int) -> Sequence[AgentPoolStoreRecord]:
        """Up to ``limit`` records with a sequence above ``sequence``, in order.

        They were read in the unit's transaction; a store may parse each one only when it
        is reached.
        """
        ...


class PoolRunner(Protocol):
    """How a store runs the contract's work: what :class:`PoolStoreOperations` is built on."""

    @property
    def store_name(self) -> str:
        """Names the store in error messages, e.g. ``"sqlite"`` or ``"in-memory"``."""
        ...

    def run(self, pool_id: str, *, write: bool, work: Callable[[PoolUnit], T]) -> T:
        """Run ``work`` on the pool in one unit of work; commit if it returns.

        The store retries the unit where it can.
        """
        ...

    def append(
        self,
        pool_id: str,
        payload: AgentPoolStoreRecordPayload,
        payload_json: str,
        work: Callable[[PoolUnit], AgentPoolStoreCursor],
    ) -> AgentPoolStoreCursor:
        """Append a record that needs nothing but an opened pool, by the shortest path.

        For ``record_pool_created``, ``join_member``, ``record_message`` and ``record_wake``.
        A store may append without a unit of work (PostgreSQL's one statement); whenever it
        does not, it runs ``work`` (write), which checks the pool, appends and reports. The
        whole call keeps to one bound on waiting, whichever paths it takes.
        """
        ...

    def look_up(self, pool_id: str, lookup: Lookup, key: str, work: Callable[[PoolUnit], T]) -> T:
        """A look-up by key by the shortest path.

        Otherwise ``work`` runs in a read unit of work, which checks the pool and catches up
        first; the whole call keeps to one bound on waiting.
        """
        ...

    def next_event_sequence(self, pool_id: str, work: Callable[[PoolUnit], int]) -> int:
        """Advance the pool's event counter by the shortest path.

        Otherwise ``work`` runs in a write unit of work, which checks the pool; the whole
        call keeps to one bound on waiting.
        """
        ...

    def open_waiter(self, pool_id: str, poll_interval: float) -> Waiter:
        """What tells a follower of the pool that new records may have committed."""
        ...


def _records_after(unit: PoolUnit, sequence: int) -> Sequence[AgentPoolStoreRecord]:
    """A batch of records for watch; none for an unopened pool."""
    if unit.config() is None:
        return []
    return unit.records_after(sequence, WATCH_BATCH)


def _followed_records_after(
    unit: PoolUnit, sequence: int, pool_id: str
) -> Sequence[AgentPoolStoreRecord]:
    """:func:`_records_after` for a follower.

    A follower holding a cursor has seen the pool opened: an unopened pool was deleted (or
    archived) since, AgentError NotRetryable.
    """
    if unit.config() is None and sequence > 0:
        raise AgentError.pool_deleted(pool_id, sequence)
    return _records_after(unit, sequence)


R = TypeVar("R", bound=PoolRunner)


class PoolStoreOperations(Generic[R]):
    """The twelve contract operations, implemented once over a :class:`PoolRunner`."""

    def __init__(self, runner: R, telemetry: StoreTelemetry | None = None) -> None:
        self._runner = runner
        self._telemetry = telemetry
        """Where the operations report (:mod:`agent_pool_store.telemetry`); ``None``: nowhere."""

    def _opened(self, unit: PoolUnit) -> AgentPoolStoreConfig:
        config = unit.config()
        if config is None:
            raise AgentError.pool_not_opened(self._runner.store_name)
        return config

    def _read(self, pool_id: str, work: Callable[[PoolUnit], T]) -> T:
        """Run a look-up on an opened pool."""

        def checked(unit: PoolUnit) -> T:
            self._opened(unit)
            return work(unit)

        with about_pool(pool_id):
            return self._runner.run(pool_id, write=False, work=checked)

    @traced("open_pool")
    def open_pool(self, pool_id: str, config: AgentPoolStoreConfig) -> AgentPoolSnapshot:
        """See :meth:`AgentPoolStore.open_pool`."""
        pool_id = arguments.identifier("pool_id", pool_id)
        config = arguments.model("config", config, AgentPoolStoreConfig)

        def work(unit: PoolUnit) -> tuple[AgentPoolSnapshot, AgentPoolStoreCursor | None]:
            existing = unit.config()
            opened = None
            if existing is None:
                opened = unit.append(PoolOpened(config=config))
            elif existing != config:
                raise AgentError.config_conflict(self._runner.store_name)
            return unit.snapshot(), opened

        with about_pool(pool_id):
            snapshot, opened = self._runner.run(pool_id, write=True, work=work)
        if opened is not None:
            telemetry_hooks.appended("pool_opened", opened.sequence)
        return snapshot

    @traced("snapshot")
    def snapshot(self, pool_id: str) -> AgentPoolSnapshot:
        """See :meth:`AgentPoolStore.snapshot`."""
        pool_id = arguments.identifier("pool_id", pool_id)
        return self._read(pool_id, lambda unit: unit.snapshot())

    @traced("snapshot_json")
    def snapshot_json(self, pool_id: str) -> str:
        """The pool's snapshot as wire JSON: ``snapshot(pool_id).model_dump_json()``.

        The same text, byte for byte, with the same errors, without building the snapshot's
        models: the SQL store assembles it from the wire JSON its projections hold (each
        checked as it is read). For serving a snapshot (an HTTP response, the CLI), and for
        large pools, where it is several times faster and holds a fraction of the memory.
        """
        pool_id = arguments.identifier("pool_id", pool_id)
        return self._read(pool_id, lambda unit: unit.snapshot_json())

    def _look_up(self, pool_id: str, lookup: Lookup, key: str, work: Callable[[PoolUnit], T]) -> T:
        def checked(unit: PoolUnit) -> T:
            self._opened(unit)
            return work(unit)

        with about_pool(pool_id):
            return self._runner.look_up(pool_id, lookup, key, checked)

    def _append(
        self,
        pool_id: str,
        payload: AgentPoolStoreRecordPayload,
        models: Mapping[str, BaseModel],
    ) -> AgentPoolStoreCursor:
        """Append ``payload``, built from the model arguments ``models`` (checked here)."""
        payload_json = arguments.record_json(payload, models)

        def work(unit: PoolUnit) -> AgentPoolStoreCursor:
            self._opened(unit)
            return unit.append(payload, payload_json)

        with about_pool(pool_id):
            cursor = self._runner.append(pool_id, payload, payload_json, work)
        telemetry_hooks.appended(payload.type, cursor.sequence)
        return cursor

    @traced("record_pool_created")
    def record_pool_created(self, pool_id: str) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.record_pool_created`."""
        return self._append(arguments.identifier("pool_id", pool_id), PoolCreated(), {})

    @traced("join_member")
    def join_member(self, pool_id: str, member: AgentPoolMember) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.join_member`."""
        pool_id = arguments.identifier("pool_id", pool_id)
        member = arguments.instance("member", member, AgentPoolMember)
        return self._append(pool_id, MemberJoined(member=member), {"member": member})

    @traced("leave_member")
    def leave_member(
        self, pool_id: str, run_id: str
    ) -> tuple[AgentPoolMember, AgentPoolStoreCursor]:
        """See :meth:`AgentPoolStore.leave_member`."""
        pool_id = arguments.identifier("pool_id", pool_id)
        run_id = arguments.identifier("run_id", run_id)

        def work(unit: PoolUnit) -> tuple[AgentPoolMember, AgentPoolStoreCursor]:
            self._opened(unit)
            member = unit.member(run_id)
            if member is None:
                raise AgentError.not_a_member()
            return member, unit.append(MemberLeft(member=member))

        with about_pool(pool_id):
            left = self._runner.run(pool_id, write=True, work=work)
        telemetry_hooks.appended("member_left", left[1].sequence)
        return left

    @traced("message_receipt")
    def message_receipt(self, pool_id: str, idempotency_key: str) -> MessageReceipt | None:
        """See :meth:`AgentPoolStore.message_receipt`."""
        pool_id = arguments.identifier("pool_id", pool_id)
        key = arguments.identifier("idempotency_key", idempotency_key)
        return self._look_up(
            pool_id, "message_receipt", key, lambda unit: unit.message_receipt(key)
        )

    @traced("record_message")
    def record_message(
        self, pool_id: str, message: RunMessage, receipt: MessageReceipt
    ) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.record_message`."""
        pool_id = arguments.identifier("pool_id", pool_id)
        models = {
            "message": arguments.instance("message", message, RunMessage),
            "receipt": arguments.instance("receipt", receipt, MessageReceipt),
        }
        stored = AgentPoolStoredMessage(message=message, receipt=receipt)
        return self._append(pool_id, RunMessageRecorded(stored=stored), models)

    @traced("wake_registration")
    def wake_registration(self, pool_id: str, idempotency_key: str) -> WakeRegistration | None:
        """See :meth:`AgentPoolStore.wake_registration`."""
        pool_id = arguments.identifier("pool_id", pool_id)
        key = arguments.identifier("idempotency_key", idempotency_key)
        return self._look_up(
            pool_id, "wake_registration", key, lambda unit: unit.wake_registration(key)
        )

    @traced("wake")
    def wake(self, pool_id: str, condition_id: str) -> AgentPoolStoredWake | None:
        """See :meth:`AgentPoolStore.wake`."""
        pool_id = arguments.identifier("pool_id", pool_id)
        condition_id = arguments.identifier("condition_id", condition_id)
        return self._look_up(pool_id, "wake", condition_id, lambda unit: unit.wake(condition_id))

    @traced("record_wake")
    def record_wake(
        self,
        pool_id: str,
        condition: WakeCondition,
        compiled_filter: CompiledEventFilter,
        registration: WakeRegistration,
    ) -> AgentPoolStoreCursor:
        """See :meth:`AgentPoolStore.record_wake`."""
        pool_id = arguments.identifier("pool_id", pool_id)
        models = {
            "condition": arguments.instance("condition", condition, WakeCondition),
            "compiled_filter": arguments.instance(
                "compiled_filter", compiled_filter, CompiledEventFilter
            ),
            "registration": arguments.instance("registration", registration, WakeRegistration),
        }
        stored = AgentPoolStoredWake(
            condition=condition, compiled_filter=compiled_filter, registration=registration
        )
        return self._append(pool_id, WakeRecorded(stored=stored), models)

    def watch(self, pool_id: str, cursor: CursorArg = None) -> Iterator[AgentPoolStoreRecord]:
        """See :meth:`AgentPoolStore.watch`.

        Arguments are checked when called; records are read lazily, :data:`WATCH_BATCH`
        per transaction.
        """
        pool_id = arguments.identifier("pool_id", pool_id)
        after = arguments.cursor_sequence(cursor)
        return self._watch(pool_id, after)

    def _watch(
        self, pool_id: str, after: int, *, following: bool = False
    ) -> Iterator[AgentPoolStoreRecord]:
        if after >= MAX_STORED_SEQUENCE:
            return  # no stored record can come after it
        read = (
            functools.partial(_followed_records_after, pool_id=pool_id)
            if following
            else _records_after
        )
        while True:
            batch = self._watch_batch(pool_id, after, read)
            for record in batch:
                after = record.cursor.sequence
                yield record
            if len(batch) < WATCH_BATCH:
                return

    @traced("watch", describe=records_read)
    def _watch_batch(
        self, pool_id: str, after: int, read: Callable[..., Sequence[AgentPoolStoreRecord]]
    ) -> Sequence[AgentPoolStoreRecord]:
        """One batch of :meth:`watch` (``read``: the unit's work): one transaction, one span."""
        with about_pool(pool_id):
            return self._runner.run(
                pool_id, write=False, work=functools.partial(read, sequence=after)
            )

    @traced("next_event_sequence")
    def next_event_sequence(self, pool_id: str) -> int:
        """See :meth:`AgentPoolStore.next_event_sequence`."""
        pool_id = arguments.identifier("pool_id", pool_id)

        def work(unit: PoolUnit) -> int:
            self._opened(unit)
            return unit.next_event_sequence()

        with about_pool(pool_id):
            return self._runner.next_event_sequence(pool_id, work)

    def follow(
        self,
        pool_id: str,
        cursor: CursorArg = None,
        *,
        timeout: float | None = None,
        stop: threading.Event | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> Follower:
        """Yield the pool's records after ``cursor`` as they commit, from any process.

        The iterator first yields what is already there, then waits for new records
        (PostgreSQL: ``LISTEN``; SQLite: ``PRAGMA data_version`` polled every
        ``poll_interval`` seconds) and re-reads with ``watch(pool_id, last_cursor)``, so no
        record is skipped or repeated. It ends when ``stop`` (a ``threading.Event``) is set
        (checked every ``poll_interval`` seconds while waiting, and after each record), or
        when ``timeout`` seconds pass without a new record (counted from the start, then
        from the last record yielded); with neither it runs until closed. Its dedicated
        connection is opened when iteration starts and closed when it ends or is closed.
        Arguments are checked when called. The in-memory store wakes on a condition variable.
        """
        pool, after = check_follow_arguments(pool_id, cursor, timeout, poll_interval)

        def open_waiter() -> Waiter:
            with about_pool(pool):
                return self._runner.open_waiter(pool, poll_interval)

        def loop(read: Reader, opener: Callable[[], Waiter]) -> Follower:
            return follow_records(
                read, after, opener, timeout=timeout, stop=stop, poll_interval=poll_interval
            )

        def read(sequence: int) -> Iterator[AgentPoolStoreRecord]:
            return self._watch(pool, sequence, following=True)

        if self._telemetry is None:
            return loop(read, open_waiter)
        return telemetry_follow.follow(self._telemetry, pool, read, open_waiter, loop)
