"""How much a run measures: the full run and the quick (smoke) run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

FULL_SIZES = (100, 10_000, 100_000)
QUICK_SIZES = (100, 2_000)
DIALECTS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Settings:
    """Sizes and repetitions of a run."""

    mode: str
    sizes: tuple[int, ...] = FULL_SIZES
    """History lengths (records per pool) for look-ups and snapshots; the largest is watched."""
    writers: tuple[int, ...] = (1, 2, 4, 8)
    """Process counts for the multi-writer runs."""
    rounds: int = 10
    """Interleaved rounds: each round times every contender in turn, ``block`` calls each."""
    block: int = 20
    append_block: int = 50
    replay_budget: float = 4.0
    """Seconds spent timing the replay baseline per operation and size."""
    replay_limit: float = 2.0
    """A replay call predicted or measured above this many seconds is skipped."""
    writer_seconds: float = 3.0
    watch_passes: int = 2
    status_messages: int = 100
    """Messages in the snapshot-scaling pools."""
    status_counts: tuple[int, int] = (2, 50)
    """Receipt records per message in the two snapshot-scaling pools."""
    snapshot_reps: int = 30
    peer_appends: int = 300
    """Appends per contender per round in the peers' run (:mod:`benchmarks.peers`)."""
    peer_rounds: int = 5
    cpu_calls: int = 2_000
    """Calls per operation per round in the CPU run (:mod:`benchmarks.cpu`)."""
    cpu_rounds: int = 3
    snapshot_messages: int = 10_000
    """Messages in the pool whose snapshot is timed per message (:mod:`benchmarks.snapshots`)."""
    snapshot_rounds: int = 3
    dialects: tuple[str, ...] = DIALECTS

    @classmethod
    def full(cls) -> Settings:
        return cls(mode="full")

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            mode="quick",
            sizes=QUICK_SIZES,
            rounds=3,
            block=10,
            append_block=15,
            replay_budget=0.3,
            writer_seconds=1.0,
            watch_passes=2,
            status_messages=40,
            snapshot_reps=10,
            peer_appends=30,
            peer_rounds=1,
            cpu_calls=200,
            cpu_rounds=1,
            snapshot_messages=1_000,
            snapshot_rounds=1,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        """Settings as :func:`dataclasses.asdict` wrote them (lists back to tuples)."""
        values: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        return cls(**values)

    def with_overrides(
        self,
        *,
        sizes: tuple[int, ...] | None = None,
        writers: tuple[int, ...] | None = None,
        writer_seconds: float | None = None,
        dialects: tuple[str, ...] | None = None,
    ) -> Settings:
        """These settings with the given fields replaced (``None`` keeps a field)."""
        return replace(
            self,
            sizes=tuple(sorted(sizes)) if sizes else self.sizes,
            writers=tuple(sorted(writers)) if writers else self.writers,
            writer_seconds=self.writer_seconds if writer_seconds is None else writer_seconds,
            dialects=dialects or self.dialects,
        )
