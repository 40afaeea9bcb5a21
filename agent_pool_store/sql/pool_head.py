"""``PoolHead``: what a unit of work reads first about a pool, in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class PoolHead:
    """A pool's row (config, created flag, projection watermark) and whether it is current.

    Built by :meth:`absent` (no row yet), :meth:`of_row` (the head statement's row, see
    :data:`agent_pool_store.sql.statements.HEAD`) and :meth:`appended` (after this unit
    appended a record).
    """

    config_json: str | None
    """The stored config (``None``: the pool was never opened)."""
    created: bool
    projected_seq: int
    """The projection watermark: the last record applied to the projections."""
    behind: bool
    """Whether the log holds records past the watermark (another writer's, to catch up)."""
    log_sound: bool = True
    """Whether the log holds the record at the watermark and no record below seq 1 (see
    :func:`agent_pool_store.sql.statements.log_is_sound`)."""
    transaction_id: str | None = None
    """The unit's transaction id, where the dialect reads it with a locked head
    (PostgreSQL): what settles a ``COMMIT`` whose reply was lost."""

    @classmethod
    def absent(cls) -> PoolHead:
        """A pool without a row: nothing projected, nothing known to follow."""
        return cls(config_json=None, created=False, projected_seq=0, behind=False)

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> PoolHead:
        """From the head statement's row (:data:`agent_pool_store.sql.statements.HEAD`).

        ``(config_json, created, projected_seq, first unprojected seq or NULL, log sound)``;
        a sixth column, where the dialect reads one, is the unit's transaction id.
        """
        return cls(
            config_json=row[0],
            created=bool(row[1]),
            projected_seq=int(row[2]),
            behind=row[3] is not None,
            log_sound=bool(row[4]),
            transaction_id=row[5] if len(row) > 5 else None,
        )

    def appended(self, seq: int) -> PoolHead:
        """The head after this unit appended the record ``seq`` (and projected it)."""
        return replace(self, projected_seq=seq, behind=False)
