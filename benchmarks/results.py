"""What a run measures: plain dataclasses, written out as JSON and rendered as markdown."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from benchmarks.timing import Stats

T = TypeVar("T")

OURS = ("sqlite", "postgresql", "memory")
"""Our stores: ``open_store`` on SQLite and PostgreSQL, and ``InMemoryAgentPoolStore``."""

REPLAY = {"sqlite": "replay-sqlite", "postgresql": "replay-postgresql"}
"""The replay baseline per dialect."""

RAW = {"sqlite": "raw-sqlite3", "postgresql": "raw-psycopg"}
"""The raw driver per dialect."""

LABELS = {
    "sqlite": "ours · SQLite",
    "postgresql": "ours · PostgreSQL",
    "memory": "ours · in-memory",
    "replay-sqlite": "replay baseline · SQLite",
    "replay-postgresql": "replay baseline · PostgreSQL",
    "raw-sqlite3": "raw sqlite3",
    "raw-psycopg": "raw psycopg",
}
"""How each backend is named in the report."""

DIALECT_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
"""How each SQL dialect is named in the report."""

CPU_SETTINGS = {
    "sqlite": "SQLite, synchronous=FULL (as deployed)",
    "sqlite-synchronous-off": "SQLite, synchronous=OFF",
    "postgresql": "PostgreSQL",
}
"""Where CPU per operation is measured (see :mod:`benchmarks.cpu`), and their names."""


@dataclass
class LookupResult:
    """One operation at one history length on one backend (``stats`` is None when skipped)."""

    backend: str
    operation: str
    size: int
    stats: Stats | None
    note: str = ""


@dataclass
class CatchUpResult:
    """The first call on a pool whose log was bulk-loaded: the projections are built."""

    backend: str
    pool: str
    size: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.size / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class AppendResult:
    """Single-writer appends, one record per durable transaction."""

    backend: str
    operation: str
    stats: Stats


@dataclass
class WriterResult:
    """Several processes appending at once for a fixed time."""

    dialect: str
    layout: str
    writers: int
    records: int
    seconds: float
    errors: int = 0

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class WatchResult:
    """Reading a whole pool's log (best and median of a few passes): ``watch``, the raw
    driver's SELECT + parse, or ``export_records``."""

    backend: str
    records: int
    median_seconds: float
    best_seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.median_seconds if self.median_seconds > 0 else 0.0


@dataclass
class CpuSplitResult:
    """One writer's appends: milliseconds of wall time, client CPU and server CPU per append."""

    backend: str
    appends: int
    wall_ms: float
    client_cpu_ms: float
    server_cpu_ms: float | None
    """``None`` when the server's processes could not be read (not on this machine)."""

    @property
    def waiting_ms(self) -> float | None:
        """Wall time not spent on either CPU: the commit's flush and the network."""
        if self.server_cpu_ms is None:
            return None
        return max(0.0, self.wall_ms - self.client_cpu_ms - self.server_cpu_ms)

    def ceiling(self, cores: int) -> float | None:
        """How many times one writer's rate writers on separate pools can reach, at best."""
        if self.server_cpu_ms is None:
            return None
        return cores * self.wall_ms / (self.client_cpu_ms + self.server_cpu_ms)


@dataclass
class SnapshotScaleResult:
    """A snapshot of a pool whose messages carry ``statuses`` receipt records each."""

    backend: str
    messages: int
    statuses: int
    records: int
    stats: Stats
    peak_kib: float


@dataclass
class PeerResult:
    """One contender's single-writer appends/s in the peers' interleaved run
    (:mod:`benchmarks.peers`; ``contender`` is the name that module gives)."""

    dialect: str
    contender: str
    per_second: float


@dataclass
class CpuResult:
    """One operation's cost in µs per call (:mod:`benchmarks.cpu`): wall time, our process's
    user and system CPU, and the server's CPU (PostgreSQL on this machine; else ``None``)."""

    setting: str
    """One of :data:`CPU_SETTINGS`."""
    operation: str
    wall_us: float
    user_us: float
    system_us: float
    server_us: float | None


@dataclass
class SnapshotSizeResult:
    """A snapshot of a pool of ``messages`` messages: the figures of
    :func:`benchmarks.snapshots.measure`, by the names it gives them."""

    dialect: str
    messages: int
    figures: dict[str, float]


@dataclass
class Check:
    """A target computed from the numbers: PASS, MISS, or N/A when it could not be measured."""

    name: str
    value: str
    target: str
    status: str


@dataclass
class Results:
    """Everything one run measured."""

    mode: str
    machine: dict[str, str]
    settings: dict[str, Any]
    lookups: list[LookupResult] = field(default_factory=list)
    catch_up: list[CatchUpResult] = field(default_factory=list)
    appends: list[AppendResult] = field(default_factory=list)
    writers: list[WriterResult] = field(default_factory=list)
    watch: list[WatchResult] = field(default_factory=list)
    snapshot_scale: list[SnapshotScaleResult] = field(default_factory=list)
    cpu_split: list[CpuSplitResult] = field(default_factory=list)
    peers: list[PeerResult] = field(default_factory=list)
    cpu: list[CpuResult] = field(default_factory=list)
    export: list[WatchResult] = field(default_factory=list)
    snapshot_sizes: list[SnapshotSizeResult] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lookup(self, backend: str, operation: str, size: int) -> LookupResult | None:
        return next(
            (
                r
                for r in self.lookups
                if (r.backend, r.operation, r.size) == (backend, operation, size)
            ),
            None,
        )

    def append(self, backend: str, operation: str) -> AppendResult | None:
        return next(
            (r for r in self.appends if (r.backend, r.operation) == (backend, operation)), None
        )

    def peer_rates(self, dialect: str) -> dict[str, float]:
        """Appends/s by contender in the peers' run on ``dialect``, in the order measured."""
        return {r.contender: r.per_second for r in self.peers if r.dialect == dialect}

    def cpu_of(self, setting: str, operation: str) -> CpuResult | None:
        """The CPU figures of ``operation`` measured on ``setting``, if measured."""
        return next((r for r in self.cpu if (r.setting, r.operation) == (setting, operation)), None)

    def to_json(self) -> dict[str, Any]:
        """The results as JSON-ready data, derived rates included."""
        data = asdict(self)
        for name in ("catch_up", "writers", "watch", "export"):
            for row, result in zip(data[name], getattr(self, name), strict=True):
                row["per_second"] = (
                    result.records_per_s if name == "catch_up" else result.per_second
                )
        for row, append in zip(data["appends"], self.appends, strict=True):
            row["per_second"] = append.stats.per_second
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        """Results read back from :meth:`to_json` (checks are left to be evaluated again)."""
        return cls(
            mode=data["mode"],
            machine=data["machine"],
            settings=data["settings"],
            lookups=[_row(LookupResult, row) for row in data["lookups"]],
            catch_up=[_row(CatchUpResult, row) for row in data["catch_up"]],
            appends=[_row(AppendResult, row) for row in data["appends"]],
            writers=[_row(WriterResult, row) for row in data["writers"]],
            watch=[_row(WatchResult, row) for row in data["watch"]],
            snapshot_scale=[_row(SnapshotScaleResult, row) for row in data["snapshot_scale"]],
            cpu_split=[_row(CpuSplitResult, row) for row in data.get("cpu_split", [])],
            peers=[_row(PeerResult, row) for row in data.get("peers", [])],
            cpu=[_row(CpuResult, row) for row in data.get("cpu", [])],
            export=[_row(WatchResult, row) for row in data.get("export", [])],
            snapshot_sizes=[
                _row(SnapshotSizeResult, row) for row in data.get("snapshot_sizes", [])
            ],
            notes=data["notes"],
        )


def _row(kind: type[T], row: dict[str, Any]) -> T:
    """A result row from its JSON (derived values such as ``per_second`` are dropped)."""
    values = {f.name: row[f.name] for f in fields(kind)}  # type: ignore[arg-type]
    if isinstance(values.get("stats"), dict):
        values["stats"] = Stats(**values["stats"])
    return kind(**values)
