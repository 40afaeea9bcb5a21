"""Pool summaries of the SQL store: what ``SqlAgentPoolStore.pools`` lists.

A page of pools is one statement, whatever the number of pools: the page's pool ids (those
with a row of ours or records, after ``:after`` in the database's order), each with its
record count, last cursor and member count (correlated index probes), its row's flags,
watermark and last append time, and whether its log is sound. Only a pool that this
statement finds behind (records another writer appended, not applied yet), without a row
of ours, or with an unsound log is served as before: caught up in a unit of work of its own
(or listed with its ``problem``), then read again.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Text, and_, bindparam, func, literal, or_, select, union
from sqlalchemy.engine import Row

from agent_pool_store.errors import AgentError, RetryClassification
from agent_pool_store.operations import PoolUnit
from agent_pool_store.sql import statements
from agent_pool_store.sql.pool_head import PoolHead
from agent_pool_store.sql.runner import SqlRunner
from agent_pool_store.sql.schema import MemberRow, table_of
from agent_pool_store.sql.unit_of_work import SqlUnitOfWork

PAGE = 1000
"""Pools read per statement."""

_POOLS, _RECORDS, _MEMBERS = statements.POOLS, statements.RECORDS, table_of(MemberRow)


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
    last_append_at: datetime | None = None
    """When the store last appended to the pool or applied another writer's records to it
    (UTC; ``None`` for a pool the store has no row of, such as a damaged foreign pool)."""


_AFTER = bindparam("after", type_=Text)
_LIMIT: Any = bindparam("limit", type_=Integer)


def _probe(*where: Any) -> Any:
    """The first record's seq matching ``where``, or NULL: one probe of the log's key.

    A correlated ``LIMIT 1`` subquery, as in ``statements.first_unprojected``: written as
    ``EXISTS``, PostgreSQL hashed it over the whole log once per page.
    """
    return select(_RECORDS.c.seq).where(*where).order_by(_RECORDS.c.seq).limit(1).scalar_subquery()


def _page_columns(page: Any, *, paged: bool = True) -> Any:
    """The listing's statement over ``page``, a subquery of pool ids (``pool_id``).

    ``paged``: the pool rows joined are those after ``:after`` (so PostgreSQL's merge join
    starts there rather than at the first pool).
    """
    pool_id = page.c.pool_id
    last = select(func.max(_RECORDS.c.seq)).where(_RECORDS.c.pool_id == pool_id)
    records = select(func.count()).select_from(_RECORDS).where(_RECORDS.c.pool_id == pool_id)
    members = select(func.count()).select_from(_MEMBERS).where(_MEMBERS.c.pool_id == pool_id)
    # statements.log_is_sound, on the joined row's watermark (its nested subquery would not
    # correlate with the page two levels up; nothing is locked here, so the row is the
    # statement's snapshot)
    watermark = _POOLS.c.projected_seq
    at_watermark = _probe(_RECORDS.c.pool_id == pool_id, _RECORDS.c.seq == watermark)
    below_one = _probe(_RECORDS.c.pool_id == pool_id, _RECORDS.c.seq < 1)
    sound = and_(or_(watermark == 0, at_watermark.is_not(None)), below_one.is_(None))
    joined = [_POOLS.c.pool_id == pool_id] + ([_POOLS.c.pool_id > _AFTER] if paged else [])
    return (
        select(
            pool_id,
            records.scalar_subquery().label("records"),
            func.coalesce(last.scalar_subquery(), 0).label("cursor"),
            members.scalar_subquery().label("members"),
            _POOLS.c.created,
            _POOLS.c.config_json.is_not(None).label("opened"),
            _POOLS.c.projected_seq,
            _POOLS.c.last_append_at,
            sound.label("sound"),
        )
        .select_from(page.outerjoin(_POOLS, and_(*joined)))
        .order_by(pool_id)
    )


def _first(query: Any) -> Any:
    return query.where(query.selected_columns[0] > _AFTER).order_by(query.selected_columns[0])


@functools.cache
def page_statement(idle: bool) -> Any:
    """Up to ``:limit`` pools after ``:after``.

    ``idle``: only pools with a row of ours whose last append is before ``:cutoff``.
    """
    if idle:
        ids = _first(select(_POOLS.c.pool_id)).where(
            _POOLS.c.last_append_at < bindparam("cutoff", type_=_POOLS.c.last_append_at.type)
        )
        page = ids.limit(_LIMIT).subquery("page")
    else:
        with_row = _first(select(_POOLS.c.pool_id)).limit(_LIMIT).subquery()
        with_records = _first(select(_RECORDS.c.pool_id).distinct()).limit(_LIMIT).subquery()
        both = union(select(with_row.c.pool_id), select(with_records.c.pool_id)).subquery()
        page = select(both.c.pool_id).order_by(both.c.pool_id).limit(_LIMIT).subquery("page")
    return _page_columns(page)


ONE_POOL = _page_columns(
    select(bindparam("pool_id", type_=Text).label("pool_id")).subquery("page"), paged=False
)
"""The listing's row of ``:pool_id`` alone."""


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC time (SQLite hands back naive UTC times)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _served(row: Row[Any]) -> PoolSummary | None:
    """The row's summary, or ``None`` when the pool must be caught up (or checked) first."""
    pool_id, records, cursor, members, created, opened, projected_seq, last, sound = tuple(row)
    if projected_seq is None or not sound or cursor != projected_seq:
        return None
    last = None if last is None else utc(last)
    return PoolSummary(pool_id, records, members, cursor, bool(created), bool(opened), None, last)


def idle_cutoff(idle_for: timedelta) -> datetime:
    """Now less ``idle_for`` (UTC), by this process's clock.

    SQLite's times are this host's (the writing process's clock); PostgreSQL's are the
    server's, so the hosts that list and the server keep their clocks synchronised (idle
    periods are hours or days).
    """
    return datetime.now(UTC) - idle_for


def iter_pool_summaries(
    runner: SqlRunner,
    *,
    idle_for: timedelta | None = None,
    after: str | None = None,
    page: int = PAGE,
) -> Iterator[PoolSummary]:
    """Pools after ``after`` in the database's order of ids, a page per statement.

    ``idle_for``: only pools whose last append is older than that (see :func:`idle_cutoff`);
    a pool found behind is caught up first, which makes it active again, so it is left out.
    """
    cutoff = None if idle_for is None else idle_cutoff(idle_for)
    statement = page_statement(cutoff is not None)
    position = after if after is not None else ""
    while True:
        parameters: dict[str, Any] = {"after": position, "limit": page}
        if cutoff is not None:
            parameters["cutoff"] = cutoff

        def read(uow: SqlUnitOfWork, parameters: dict[str, Any] = parameters) -> list[Row[Any]]:
            return list(uow.connection.execute(statement, parameters))

        rows = runner.read(read, action="listing pools")
        for row in rows:
            summary = _served(row) or _caught_up(runner, row.pool_id)
            if cutoff is None or (
                summary.last_append_at is not None and summary.last_append_at < cutoff
            ):
                yield summary
        if len(rows) < page:
            return
        position = rows[-1].pool_id


def pool_summaries(
    runner: SqlRunner,
    *,
    idle_for: timedelta | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> list[PoolSummary]:
    """Up to ``limit`` pools after ``after`` (see :func:`iter_pool_summaries`)."""
    page = PAGE if limit is None else max(1, min(limit, PAGE))
    found = iter_pool_summaries(runner, idle_for=idle_for, after=after, page=page)
    return list(found if limit is None else itertools.islice(found, limit))


def pool_ids(runner: SqlRunner) -> list[str]:
    """Every pool id with records or a pool row, sorted."""
    return runner.read(lambda uow: uow.pools.pool_ids())


def _one(runner: SqlRunner, pool_id: str) -> Row[Any]:
    return runner.read(
        lambda uow: uow.connection.execute(ONE_POOL, {"pool_id": pool_id}).one(), "listing pools"
    )


def _caught_up(runner: SqlRunner, pool_id: str) -> PoolSummary:
    """A pool served by a unit of work (caught up first), or listed with its problem."""

    def nothing(unit: PoolUnit) -> None:
        return None

    try:
        runner.run(pool_id, write=False, work=nothing)
    except AgentError as error:
        if error.retry is not RetryClassification.REPAIR_NEEDED:
            raise
        return _damaged_summary(runner, pool_id, error.message)
    row = _one(runner, pool_id)
    summary = _served(row)
    if summary is None:  # another writer appended again meanwhile: list what is there
        return _damaged_summary(runner, pool_id, None)
    return summary


def _damaged_summary(runner: SqlRunner, pool_id: str, problem: str | None) -> PoolSummary:
    """What can be read of a pool whose log or projections cannot be served."""

    def work(uow: SqlUnitOfWork) -> PoolSummary:
        head = uow.pools.head(pool_id, lock=False) or PoolHead.absent()
        try:
            cursor = uow.records.last_seq(pool_id)
        except AgentError:  # the last row's seq is not an integer: no cursor to show
            cursor = head.projected_seq
        last_append_at = uow.connection.execute(
            select(_POOLS.c.last_append_at).where(_POOLS.c.pool_id == literal(pool_id))
        ).scalar()
        return PoolSummary(
            pool_id=pool_id,
            records=uow.records.count(pool_id),
            members=uow.projections(pool_id).member_count(),
            cursor=cursor,
            created=head.created,
            opened=head.config_json is not None,
            problem=problem,
            last_append_at=None if last_append_at is None else utc(last_append_at),
        )

    return runner.read(work)
