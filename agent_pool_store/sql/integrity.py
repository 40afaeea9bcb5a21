"""Integrity checks and repair.

``verify`` compares projections with a fresh replay of the log; ``rebuild`` recomputes a
pool's projections from its log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

from agent_pool_store.domain import PoolState
from agent_pool_store.errors import AgentError
from agent_pool_store.sql.parsing import checked_row, parse_payload
from agent_pool_store.sql.unit_of_work import SqlUnitOfWork

VERIFY_BATCH = 1000
"""Records read per statement while verifying."""


@dataclass(frozen=True)
class Difference:
    """One problem found by :meth:`SqlAgentPoolStore.verify`."""

    pool_id: str
    check: str
    """``cursor`` (gap or repeat), ``payload`` (unreadable record), ``pending`` (records past
    the projection watermark), or ``projection`` (a projection differs from the replay)."""
    detail: str
    seq: int | None = None

    def __str__(self) -> str:
        where = f" seq {self.seq}" if self.seq is not None else ""
        return f"{self.pool_id}{where}: {self.check}: {self.detail}"


@dataclass
class VerificationReport:
    """What :meth:`SqlAgentPoolStore.verify` checked and every difference it found."""

    pools: list[str] = field(default_factory=list)
    records: int = 0
    differences: list[Difference] = field(default_factory=list)
    """Damage: what ``ok`` is about."""
    pending: list[Difference] = field(default_factory=list)
    """Information, not damage: records another writer appended that the projections have
    not applied yet (check ``pending``); the next operation on the pool applies them."""

    @property
    def ok(self) -> bool:
        """Whether no damage was found (pending records are not damage)."""
        return not self.differences

    def add(self, other: VerificationReport) -> None:
        """Add another report's pools, records and findings to this one."""
        self.pools.extend(other.pools)
        self.records += other.records
        self.differences.extend(other.differences)
        self.pending.extend(other.pending)

    def __str__(self) -> str:
        head = (
            f"verified {len(self.pools)} pool(s), {self.records} record(s): "
            f"{'ok' if self.ok else f'{len(self.differences)} difference(s)'}"
        )
        found = [*self.differences, *self.pending]
        return "\n".join([head, *(f"  {difference}" for difference in found)])


def _compare(
    pool_id: str, name: str, expected: dict[str, str], actual: dict[str, str]
) -> list[Difference]:
    differences = []
    for key in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(key), actual.get(key)
        if want == have:
            continue
        if have is None:
            detail = f"{name} {key!r} missing from the projection"
        elif want is None:
            detail = f"{name} {key!r} in the projection but not in the log"
        else:
            detail = f"{name} {key!r} differs from the log: projection {have} != replay {want}"
        differences.append(Difference(pool_id, "projection", detail))
    return differences


def _log_rows(uow: SqlUnitOfWork, pool_id: str) -> Iterator[tuple[object, object]]:
    """The pool's log rows after seq 0 as stored, :data:`VERIFY_BATCH` per statement."""
    after: object = 0
    while True:
        try:
            rows: Sequence[tuple[object, object]] = uow.records.rows_after(
                pool_id, cast("int", after), VERIFY_BATCH
            )
        except AgentError:  # a payload the driver cannot decode: decode the batch here
            rows = uow.records.rows_decoded_here(pool_id, after, VERIFY_BATCH)
        yield from rows
        if len(rows) < VERIFY_BATCH:
            return
        after = rows[-1][0]


def _checked(pool_id: str, stored_seq: object, stored_json: object) -> tuple[int, str] | Difference:
    """A row's seq and payload text, or the difference that says why it cannot be read."""
    try:
        if stored_json is None and isinstance(stored_seq, int) and stored_seq >= 1:
            raise AgentError.unreadable_record(
                pool_id, stored_seq, "its payload_json is not valid UTF-8"
            )
        return checked_row(pool_id, stored_seq, stored_json)
    except AgentError as error:
        if isinstance(stored_seq, int) and not isinstance(stored_seq, bool) and stored_seq >= 1:
            return Difference(pool_id, "payload", error.message, stored_seq)
        return Difference(pool_id, "cursor", error.message)


def verify_pool(uow: SqlUnitOfWork, pool_id: str) -> VerificationReport:
    """Check one pool: contiguous cursors, readable payloads, projections equal a replay.

    Rows a foreign writer left unreadable (a seq below 1 or not an integer, a payload that is
    not text or not UTF-8) are differences too; the check goes on past them.
    """
    head = uow.pools.head(pool_id, lock=False)
    watermark = head.projected_seq if head else 0
    differences = [
        Difference(pool_id, "cursor", f"record seq {seq!r} is below 1: sequences start at 1")
        for seq in uow.records.below_one(pool_id)
    ]
    state = PoolState()
    expected_seq, count = 1, 0
    for stored_seq, stored_json in _log_rows(uow, pool_id):
        count += 1
        checked = _checked(pool_id, stored_seq, stored_json)
        if isinstance(checked, Difference):
            differences.append(checked)
            if checked.seq is not None:
                expected_seq = checked.seq + 1
            continue
        seq, payload_json = checked
        if seq != expected_seq:
            differences.append(
                Difference(pool_id, "cursor", f"expected seq {expected_seq}, found {seq}", seq)
            )
        expected_seq = seq + 1
        try:
            payload = parse_payload(pool_id, seq, payload_json)
        except AgentError as error:
            differences.append(Difference(pool_id, "payload", error.message, seq))
            continue
        if seq <= watermark:
            state.apply(seq, payload)
    report = VerificationReport(pools=[pool_id], records=count, differences=differences)
    last = expected_seq - 1
    if last > watermark:
        report.pending.append(
            Difference(
                pool_id,
                "pending",
                f"records {watermark + 1}..{last} are not in the projections yet "
                "(appended by another writer; the next operation or rebuild applies them)",
            )
        )
    if head is None:
        return report
    if watermark > last:
        differences.append(
            Difference(pool_id, "projection", f"watermark {watermark} is past the log's end {last}")
        )
    projection = uow.projections(pool_id).raw(head)
    replay = {
        "config": {"": state.config.model_dump_json()} if state.config else {},
        "created": {"": "true"} if state.created else {},
        "member": {k: v.model_dump_json() for k, v in state.members.items()},
        "message": {k: v.model_dump_json() for k, v in state.messages.items()},
        "message receipt": {k: v.model_dump_json() for k, v in state.message_receipts.items()},
        "wake": {k: v.model_dump_json() for k, v in state.wakes.items()},
        "wake registration": {k: v.model_dump_json() for k, v in state.wake_registrations.items()},
    }
    for name, expected in replay.items():
        differences.extend(_compare(pool_id, name, expected, projection[name]))
    return report


def rebuild_pool(uow: SqlUnitOfWork, pool_id: str) -> None:
    """Forget the pool's projections and watermark (the caller then catches up from 0)."""
    uow.projections(pool_id).clear()
    uow.pools.update(pool_id, config_json=None, created=False, projected_seq=0)
