"""The store inside a host application's transaction: ``SqlAgentPoolStore.bind``.

:class:`BoundAgentPoolStore` has the contract's twelve operations (it satisfies
:class:`~agent_pool_store.contract.AgentPoolStore`) and runs each of them on the host's
:class:`~sqlalchemy.Connection` or ORM :class:`~sqlalchemy.orm.Session`, in the host's
transaction, through :class:`BoundRunner`:

- each operation is a :class:`~agent_pool_store.sql.unit_of_work.HostUnitOfWork`: a
  savepoint of the host's transaction, released when the operation succeeds and rolled back
  when it fails, so a failed operation leaves the host's transaction usable and unchanged;
- the store never commits, rolls back or closes what the host owns: what an operation wrote
  is committed, or rolled back, with the host's transaction;
- writes take the pool's lock in the host's transaction (PostgreSQL: the pool's row, held
  until the host's transaction ends; SQLite: the database's write lock);
- nothing the host may roll back is remembered: the view has its own config cache (text
  read in the transaction, to the config it parses to), never the store's, and takes no
  shortcut that runs outside the host's transaction (the one-statement paths).

Operations are not retried: a Retryable error (a lock wait past ``lock_timeout``, a
serialization failure) asks the host to roll back and run its transaction again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, exc
from sqlalchemy.orm import Session

from agent_pool_store.domain import AgentPoolStoreCursor, AgentPoolStoreRecordPayload
from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.follow_loop import Waiter
from agent_pool_store.operations import Lookup, PoolStoreOperations, PoolUnit
from agent_pool_store.sql.errors import (
    driver_cause,
    first_line,
    is_busy,
    is_lock_timeout,
    is_transient,
    timeout_error,
    translate,
)
from agent_pool_store.sql.runner import CatchUpNeededError, SqlPoolUnit, SqlRunner
from agent_pool_store.sql.unit_of_work import HostUnitOfWork
from agent_pool_store.telemetry import StoreTelemetry

T = TypeVar("T")

HostTransaction = Connection | Session
"""What a store can be bound to: a Core connection or an ORM session of the store's engine."""


class BoundRunner(SqlRunner):
    """Runs the store's work in the host's transaction (see the module docstring)."""

    def __init__(self, runner: SqlRunner, host: HostTransaction) -> None:
        super().__init__(runner.engine, runner.dialect, runner.settings)
        if not isinstance(host, Connection | Session):
            raise AgentError.invalid_argument(
                f"bind() takes a sqlalchemy Connection or orm Session, not {type(host).__name__}"
            )
        self._store_runner = runner
        self._host = host

    def _check_open(self) -> None:
        if self._store_runner.closed:
            raise AgentError.store_closed(self.store_name)

    def _connection(self) -> Connection:
        """The host's connection, in its transaction (a session begins one if it has none)."""
        connection = self._host if isinstance(self._host, Connection) else self._host.connection()
        if connection.engine.pool is not self.engine.pool:
            raise AgentError(
                AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                RetryClassification.HOST_CONFIGURATION_NEEDED,
                f"{self._what()}: bind() needs a connection of the store's own engine: open "
                "the store on the host's engine (open_store(engine)) or give the host's "
                "session the store's engine (store.engine)",
            )
        return connection

    def append(
        self,
        pool_id: str,
        payload: AgentPoolStoreRecordPayload,
        payload_json: str,
        work: Callable[[PoolUnit], AgentPoolStoreCursor],
    ) -> AgentPoolStoreCursor:
        """Always a unit of work: the one-statement path would commit on its own."""
        return self.run(pool_id, write=True, work=work)

    def look_up(self, pool_id: str, lookup: Lookup, key: str, work: Callable[[PoolUnit], T]) -> T:
        """Always a unit of work, which sees what the host's transaction wrote."""
        return self.run(pool_id, write=False, work=work)

    def next_event_sequence(self, pool_id: str, work: Callable[[PoolUnit], int]) -> int:
        """Always a unit of work: the number commits, or not, with the host's transaction."""
        return self.run(pool_id, write=True, work=work)

    def open_waiter(self, pool_id: str, poll_interval: float) -> Waiter:
        """Refused: a follower waits for other transactions' commits on its own connection."""
        raise AgentError(
            AgentErrorKind.HOST_CONFIGURATION_NEEDED,
            RetryClassification.NOT_RETRYABLE,
            f"{self._what()}: follow() waits for commits outside any one transaction; call "
            "it on the store, not on a bound view",
        )

    def run(
        self,
        pool_id: str,
        *,
        write: bool,
        work: Callable[[PoolUnit], T],
        catch_up: bool = True,
        deadline: float | None = None,
    ) -> T:
        """Run ``work`` in a savepoint of the host's transaction.

        A read that finds records to catch up with runs again as a write. A read checks,
        after ``work``, that no other transaction committed to the pool meanwhile (the
        host's transaction may see each statement's own snapshot, READ COMMITTED), and
        runs again if one did. Errors are not retried (see the module docstring).
        """
        self._check_open()
        if deadline is None:
            deadline = time.monotonic() + self.settings.lock_timeout
        while True:
            try:
                with HostUnitOfWork(self._connection(), self.dialect, write=write) as uow:
                    unit = self._prepare(uow, pool_id, catch_up=catch_up)
                    result = work(unit)
                    if write or self._unchanged(uow, unit):
                        return result
            except CatchUpNeededError:
                write = True
            except exc.DBAPIError as error:
                raise self._failed(error) from driver_cause(error, self.engine.url)
            except exc.SQLAlchemyError as error:
                raise translate(error, self._what()) from driver_cause(error, self.engine.url)
            if time.monotonic() >= deadline:
                raise timeout_error(self._what(), self.settings.lock_timeout)

    def _failed(self, error: exc.DBAPIError) -> AgentError:
        """The error a failed unit leaves with: retrying means the host's transaction."""
        if is_lock_timeout(error) or is_busy(error):
            return timeout_error(self._what(), self.settings.lock_timeout)
        if is_transient(error):  # a serialization failure, a deadlock, a colliding seq
            return AgentError(
                AgentErrorKind.JOURNAL_FAILURE,
                RetryClassification.RETRYABLE,
                f"{self._what()}: {first_line(error.orig)}; roll the host's transaction back "
                "and run it again",
            )
        return translate(error, self._what())

    @staticmethod
    def _unchanged(uow: HostUnitOfWork, unit: SqlPoolUnit) -> bool:
        """Whether the pool's watermark is still the one the unit read first."""
        now = uow.pools.head(unit.pool_id, lock=False)
        return (0 if now is None else now.projected_seq) == unit.head.projected_seq


class BoundAgentPoolStore(PoolStoreOperations[BoundRunner]):
    """The store's twelve operations in a host's transaction; made by ``store.bind(…)``.

    See :mod:`agent_pool_store.sql.binding`. ``follow`` is refused (call it on the store).
    """

    def __init__(
        self, runner: SqlRunner, host: HostTransaction, telemetry: StoreTelemetry | None = None
    ) -> None:
        super().__init__(BoundRunner(runner, host), telemetry)

    def __repr__(self) -> str:
        return f"BoundAgentPoolStore({self._runner.store_name!r})"
