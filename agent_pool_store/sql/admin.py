"""Pool summaries of the SQL store: what ``SqlAgentPoolStore.pools`` lists."""

from __future__ import annotations

from dataclasses import dataclass

from agent_pool_store.errors import AgentError, RetryClassification
from agent_pool_store.operations import PoolUnit
from agent_pool_store.sql.pool_head import PoolHead
from agent_pool_store.sql.runner import SqlPoolUnit, SqlRunner
from agent_pool_store.sql.unit_of_work import SqlUnitOfWork


@dataclass(frozen=True)
class PoolSummary:
    """One pool as :meth:`SqlAgentPoolStore.pools` lists it."""

    pool_id: str
    records: int
    """How many records the pool's log holds (foreign writers' records included)."""
    members: int
    """How many runs are currently members."""
    cursor: int
    """The sequence of the pool's last record (0: no record)."""
    created: bool
    """Whether a ``pool_created`` record exists."""
    opened: bool
    """Whether the pool has its ``pool_opened`` record."""
    problem: str | None = None
    """Why the pool cannot be served (e.g. an unreadable record); the counts are then read
    from the log and the last good projections."""


def pool_ids(runner: SqlRunner) -> list[str]:
    """Every pool id with records or a pool row, sorted."""
    return runner.read(lambda uow: uow.pools.pool_ids())


def _summary(unit: PoolUnit) -> PoolSummary:
    """A pool served by a unit of work (caught up first)."""
    assert isinstance(unit, SqlPoolUnit)
    uow, head, pool_id = unit.uow, unit.head, unit.pool_id
    return PoolSummary(
        pool_id=pool_id,
        records=uow.records.count(pool_id),
        members=unit.projections.member_count(),
        cursor=uow.records.last_seq(pool_id),
        created=head.created,
        opened=head.config_json is not None,
    )


def pool_summaries(runner: SqlRunner) -> list[PoolSummary]:
    """Every pool with its record count, member count, last cursor and created flag.

    Each pool is read in its own unit of work after catch-up, so records appended by
    another implementation are counted and applied. A pool whose log cannot be read is
    listed with ``problem`` set; the other pools are unaffected.
    """
    summaries = []
    for pool_id in pool_ids(runner):
        try:
            summaries.append(runner.run(pool_id, write=False, work=_summary))
        except AgentError as error:
            if error.retry is not RetryClassification.REPAIR_NEEDED:
                raise
            summaries.append(_damaged_summary(runner, pool_id, error.message))
    return summaries


def _damaged_summary(runner: SqlRunner, pool_id: str, problem: str) -> PoolSummary:
    """What can be read of a pool whose log or projections cannot be served."""

    def work(uow: SqlUnitOfWork) -> PoolSummary:
        head = uow.pools.head(pool_id, lock=False) or PoolHead.absent()
        try:
            cursor = uow.records.last_seq(pool_id)
        except AgentError:  # the last row's seq is not an integer: no cursor to show
            cursor = head.projected_seq
        return PoolSummary(
            pool_id=pool_id,
            records=uow.records.count(pool_id),
            members=uow.projections(pool_id).member_count(),
            cursor=cursor,
            created=head.created,
            opened=head.config_json is not None,
            problem=problem,
        )

    return runner.read(work)
