"""``python -m benchmarks.peers``: single-writer appends against the stores users would pick.

Every contender appends one small JSON record (the wire JSON of a ``record_message``
payload, about 600 bytes) per durable transaction to one stream, in interleaved rounds on
the same database (SQLite: WAL, ``synchronous=FULL``; PostgreSQL: the test server):

- **ours**: ``record_message`` to one pool (the sync store; the async store against the
  async peers);
- **eventsourcing** 9: its aggregate recorder's ``insert_events`` of one ``StoredEvent``
  (``SQLiteAggregateRecorder``, ``PostgresAggregateRecorder``);
- **LangGraph**'s checkpointers: ``put`` of one checkpoint carrying the record as a channel
  value (``SqliteSaver``, ``PostgresSaver``; ``aput`` of ``AsyncSqliteSaver``,
  ``AsyncPostgresSaver``);
- **raw driver**: ``INSERT`` and ``COMMIT`` with ``sqlite3`` / psycopg, no library (the
  ceiling of a store that writes one row per record, not a peer);
- **raw driver, our statements**: the statements of our append, as the store compiles them,
  on the raw driver with every parameter built before the timing
  (:mod:`benchmarks.raw_statements`): the ceiling of our design. Ours against it is the
  library's cost; it against the one-row raw driver is the design's.

The peers come with the ``bench`` extra (``pip install -e '.[bench]'``); a peer that is not
installed is left out with a line saying so. Those peers write one row (LangGraph's
PostgreSQL saver: two) per append; ours also keeps the pool's projections, which is what
makes its reads flat in history.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import sqlite3
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from agent_pool_store import AgentPoolStoreConfig, open_async_store, open_store
from benchmarks import payloads, raw_driver
from benchmarks.async_store import async_url
from benchmarks.databases import (
    on_each_dialect,
)
from benchmarks.raw_statements import our_statements
from benchmarks.results import PeerResult

RECORD = payloads.small_message("peer")[0].model_dump_json()
"""The record every contender appends (as text, bytes or a channel value)."""

Append = Callable[[], object]
"""One durable append; its result is awaited when it is awaitable."""


@dataclass(frozen=True)
class Contender:
    """A named way to append, and whether it is a peer (rather than ours or the ceiling)."""

    name: str
    append: Append
    peer: bool = True
    asynchronous: bool = False


def missing(*modules: str) -> str | None:
    """The first of ``modules`` that is not installed, or ``None``."""
    return next((name for name in modules if not _installed(name)), None)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is not there
        return False


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# --- the contenders --------------------------------------------------------------------------


async def ours(url: URL, stack: AsyncExitStack) -> list[Contender]:
    """Our sync and async stores, each appending to a pool of its own."""
    sync = open_store(url, auto_upgrade=True)
    stack.callback(sync.close)
    store = await open_async_store(async_url(url))
    stack.push_async_callback(store.close)
    pools = [f"pool.bench.peers.{uuid.uuid4().hex[:8]}" for _ in range(2)]
    sync.open_pool(pools[0], AgentPoolStoreConfig())
    await store.open_pool(pools[1], AgentPoolStoreConfig())

    def label() -> str:
        return uuid.uuid4().hex[:12]

    return [
        Contender(
            "ours",
            lambda: sync.record_message(pools[0], *payloads.small_message(label())),
            peer=False,
        ),
        Contender(
            "ours (async)",
            lambda: store.record_message(pools[1], *payloads.small_message(label())),
            peer=False,
            asynchronous=True,
        ),
    ]


def raw(url: URL, stack: AsyncExitStack, appends: int) -> list[Contender]:
    """The raw driver: one row per transaction, and our append's statements (``appends``)."""
    connection = raw_driver.connect(url)
    stack.callback(connection.close)
    sequence = iter(range(1, 10**9))
    name = "raw sqlite3" if url.get_backend_name() == "sqlite" else "raw psycopg"
    ours_raw, close = our_statements(url, appends)
    stack.callback(close)
    return [
        Contender(
            name,
            lambda: connection.insert_one("pool.bench.peers.raw", next(sequence), "x", RECORD),
            peer=False,
        ),
        Contender(f"{name}, our statements", ours_raw, peer=False),
    ]


def eventsourcing_recorder(url: URL, stack: AsyncExitStack) -> list[Contender]:
    """eventsourcing's aggregate recorder: ``insert_events`` of one stored event."""
    from eventsourcing.persistence import StoredEvent

    recorder: Any
    if url.get_backend_name() == "sqlite":
        from eventsourcing.sqlite import (
            SQLiteAggregateRecorder,
            SQLiteDatastore,
        )

        assert url.database is not None
        datastore: Any = SQLiteDatastore(url.database)
        recorder = SQLiteAggregateRecorder(datastore, events_table_name="es_stored_events")
    else:
        from eventsourcing.postgres import (
            PostgresAggregateRecorder,
            PostgresDatastore,
        )

        datastore = PostgresDatastore(
            url.database or "",
            url.host or "127.0.0.1",
            url.port or 5432,
            url.username or "postgres",
            url.password or "",
        )
        recorder = PostgresAggregateRecorder(datastore, events_table_name="es_stored_events")
    stack.callback(datastore.close)
    recorder.create_table()
    originator = uuid.uuid4()
    versions = iter(range(1, 10**9))
    state = RECORD.encode()

    def append() -> object:
        event = StoredEvent(originator, next(versions), "agent_pool.record", state)
        return recorder.insert_events([event])

    return [Contender("eventsourcing", append)]


def _checkpoint(step: int) -> tuple[Any, Any, Any]:
    from langgraph.checkpoint.base import empty_checkpoint

    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"record": RECORD}
    checkpoint["channel_versions"] = {"record": step}
    return checkpoint, {"source": "update", "step": step}, {"record": step}


def _config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}


async def langgraph_savers(url: URL, stack: AsyncExitStack) -> list[Contender]:
    """LangGraph's checkpointers: ``put`` (and the async twins' ``aput``) of one checkpoint."""
    steps = iter(range(1, 10**9))
    saver: Any
    async_saver: Any
    if url.get_backend_name() == "sqlite":
        import aiosqlite
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        assert url.database is not None
        connection = sqlite3.connect(url.database, check_same_thread=False)
        stack.callback(connection.close)
        saver = SqliteSaver(connection)
        async_connection = await aiosqlite.connect(url.database)
        stack.push_async_callback(async_connection.close)
        async_saver = AsyncSqliteSaver(async_connection)
        saver.setup()
        await async_saver.setup()
    else:
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row

        options: Any = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        connection_pg = psycopg.connect(_libpq(url), **options)
        stack.callback(connection_pg.close)
        saver = PostgresSaver(connection_pg)
        async_pg = await psycopg.AsyncConnection.connect(_libpq(url), **options)
        stack.push_async_callback(async_pg.close)
        async_saver = AsyncPostgresSaver(async_pg)
        saver.setup()
        await async_saver.setup()
    configs = [_config("thread.sync"), _config("thread.async")]
    return [
        Contender("LangGraph", lambda: saver.put(configs[0], *_checkpoint(next(steps)))),
        Contender(
            "LangGraph (async)",
            lambda: async_saver.aput(configs[1], *_checkpoint(next(steps))),
            asynchronous=True,
        ),
    ]


# --- measuring --------------------------------------------------------------------------------


async def _rate(append: Append, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        result = append()
        if inspect.isawaitable(result):
            await result
    return calls / (time.perf_counter() - started)


PEERS: tuple[tuple[str, tuple[str, ...], Callable[..., Any]], ...] = (
    ("eventsourcing", ("eventsourcing",), eventsourcing_recorder),
    (
        "LangGraph",
        ("langgraph.checkpoint.sqlite", "langgraph.checkpoint.postgres"),
        langgraph_savers,
    ),
)
"""Each peer: its name, the modules it needs, and what makes its contenders."""


def not_installed() -> list[str]:
    """A line for each peer that is not installed (it is left out of the measurement)."""
    return [
        f"{name} skipped: {absent} is not installed (pip install -e '.[bench]')"
        for name, modules, _ in PEERS
        if (absent := missing(*modules)) is not None
    ]


async def measure(url: URL, appends: int, rounds: int) -> dict[str, float]:
    """Median appends/s of every contender installed, in interleaved rounds."""
    async with AsyncExitStack() as stack:
        warm_up = 5
        contenders = [*await ours(url, stack), *raw(url, stack, warm_up + appends * rounds)]
        for line in not_installed():
            print(line)
        for _, modules, make in PEERS:
            if missing(*modules) is None:
                made = make(url, stack)
                contenders += await made if isinstance(made, Awaitable) else made
        for contender in contenders:  # warm up: connections, prepared statements, caches
            await _rate(contender.append, warm_up)
        rates: dict[str, list[float]] = {contender.name: [] for contender in contenders}
        for _ in range(rounds):
            for contender in contenders:
                rates[contender.name].append(await _rate(contender.append, appends))
        return {name: statistics.median(values) for name, values in rates.items()}


def faster_peer(rates: dict[str, float], *, asynchronous: bool = False) -> str | None:
    """The name of the fastest sync (or async) peer in ``rates``; ``None`` if there is none."""
    peers = [
        name
        for name in rates
        if not name.startswith(("ours", "raw")) and name.endswith(" (async)") == asynchronous
    ]
    return max(peers, key=lambda name: rates[name], default=None)


def ratios(rates: dict[str, float]) -> dict[str, float]:
    """Ours against the faster peer (sync and async), and the design's and library's shares."""
    found: dict[str, float] = {}
    for ours_name, asynchronous in (("ours", False), ("ours (async)", True)):
        faster = faster_peer(rates, asynchronous=asynchronous)
        if faster is not None and ours_name in rates:
            found[f"{ours_name} / {faster}"] = rates[ours_name] / rates[faster]
    for raw_name in ("raw sqlite3", "raw psycopg"):
        statements = f"{raw_name}, our statements"
        if statements in rates and raw_name in rates:
            found[f"{statements} / {raw_name} (the design)"] = rates[statements] / rates[raw_name]
            if "ours" in rates:
                found[f"ours / {statements} (the library)"] = rates["ours"] / rates[statements]
    return found


def measure_results(dialect: str, url: URL, appends: int, rounds: int) -> list[PeerResult]:
    """:func:`measure` on the database at ``url``, as result rows of the main run."""
    rates = asyncio.run(measure(url, appends, rounds))
    return [PeerResult(dialect, contender, rate) for contender, rate in rates.items()]


def run(appends: int, rounds: int) -> dict[str, dict[str, float]]:
    """SQLite, and PostgreSQL when its server is reachable."""
    return on_each_dialect(lambda url: asyncio.run(measure(url, appends, rounds)))


def main(argv: list[str] | None = None) -> None:
    """Run and print appends/s per contender and ours against the faster peer."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args(argv)
    results = run(*((30, 1) if arguments.quick else (300, 5)))
    for dialect, rates in results.items():
        print(f"\n{dialect}\n\n| contender | appends/s |\n|---|---:|")
        for name, rate in rates.items():
            print(f"| {name} | {rate:,.0f} |")
        for name, value in ratios(rates).items():
            print(f"| **{name}** | **{value:.2f}x** |")


if __name__ == "__main__":
    main()
