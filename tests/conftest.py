"""Shared fixtures: reference fixtures and the store backends every contract test runs on."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from agent_pool_store import (
    AgentPoolStore,
    AsyncInMemoryAgentPoolStore,
    InMemoryAgentPoolStore,
    SqlAgentPoolStore,
    open_async_store,
    open_store,
)
from tests.async_support import STORE_OPERATIONS, SyncOverAsync
from tests.databases import (  # noqa: F401 - fixtures
    PG_SCHEMA,
    pg_database,
    pg_schema_database,
    pg_schema_url,
    pg_url,
    sqlite_file,
    sqlite_template,
    sqlite_url,
)
from tests.reliability.workers import Database
from tests.telemetry_support import collected  # noqa: F401 - fixture

REFERENCE = Path(__file__).parent / "fixtures" / "rust-reference"


@dataclass(frozen=True)
class ReferenceRow:
    pool_id: str
    seq: int
    kind: str
    payload_json: str


def reference_rows() -> list[ReferenceRow]:
    """The 29 rows of the reference's ``agent_pool_records``, in file order."""
    csv.field_size_limit(1 << 24)
    with (REFERENCE / "records.tsv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            ReferenceRow(row["pool_id"], int(row["seq"]), row["kind"], row["payload_json"])
            for row in reader
        ]


def compact_reference_json(name: str) -> str:
    """A reference JSON file re-serialised compactly, key order kept."""
    data = json.loads((REFERENCE / name).read_text(encoding="utf-8"))
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Backend:
    """One store implementation: ``open()`` gives a new handle on the same backing store."""

    name: str
    opener: Callable[[], AgentPoolStore]
    handles: list[AgentPoolStore] = field(default_factory=list)

    def open(self) -> AgentPoolStore:
        handle = self.opener()
        self.handles.append(handle)
        return handle

    def close(self) -> None:
        for handle in self.handles:
            close = getattr(handle, "close", None)
            if close is not None:
                close()


def _memory_backend() -> Backend:
    root = InMemoryAgentPoolStore()
    first = [True]

    def opener() -> AgentPoolStore:
        if first[0]:
            first[0] = False
            return root
        return root.another_handle()

    return Backend("memory", opener)


def _sqlite_backend(request: pytest.FixtureRequest) -> Backend:
    url = sqlite_url(request.getfixturevalue("sqlite_file"))
    return Backend("sqlite", lambda: open_store(url))


def _postgresql_backend(request: pytest.FixtureRequest) -> Backend:
    url = request.getfixturevalue("pg_url")
    return Backend("postgresql", lambda: open_store(url))


def _postgresql_units_backend(request: pytest.FixtureRequest) -> Backend:
    """PostgreSQL with the one-statement paths off: every call is a unit of work."""
    url = request.getfixturevalue("pg_url")
    return Backend("postgresql-units", lambda: open_store(url, postgresql_one_statement=False))


class HostTransactionPerCall:
    """A store whose every operation runs through ``bind`` in a host transaction of its own.

    ``session=True`` binds an ORM Session (``with Session(engine) as s, s.begin()``), else
    a Core connection (``engine.begin()``); the host commits when the call returns and
    rolls back when it raises. ``watch`` is read to the end inside the transaction.
    """

    def __init__(self, store: SqlAgentPoolStore, *, session: bool) -> None:
        self.store = store
        self.session = session

    def close(self) -> None:
        self.store.close()

    def __getattr__(self, name: str) -> Any:
        if name not in STORE_OPERATIONS:
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with ExitStack() as stack:
                if self.session:
                    host: Any = stack.enter_context(Session(self.store.engine))
                    stack.enter_context(host.begin())
                else:
                    host = stack.enter_context(self.store.engine.begin())
                result = getattr(self.store.bind(host), name)(*args, **kwargs)
                return iter(list(result)) if name == "watch" else result

        return call


def _sqlite_bound_backend(request: pytest.FixtureRequest) -> Backend:
    """SQLite through ``bind``: each call in an ORM Session's transaction."""
    url = sqlite_url(request.getfixturevalue("sqlite_file"))
    return Backend(
        "sqlite-bound",
        lambda: cast(AgentPoolStore, HostTransactionPerCall(open_store(url), session=True)),
    )


def _postgresql_bound_backend(request: pytest.FixtureRequest) -> Backend:
    """PostgreSQL through ``bind``: each call in a Core connection's transaction."""
    url = request.getfixturevalue("pg_url")
    return Backend(
        "postgresql-bound",
        lambda: cast(AgentPoolStore, HostTransactionPerCall(open_store(url), session=False)),
    )


def _postgresql_schema_backend(request: pytest.FixtureRequest) -> Backend:
    """PostgreSQL with the store's tables in a schema of their own (``schema=``)."""
    url = request.getfixturevalue("pg_schema_url")
    return Backend("postgresql-schema", lambda: open_store(url, schema=PG_SCHEMA))


def _postgresql_schema_bound_backend(request: pytest.FixtureRequest) -> Backend:
    """PostgreSQL through ``bind`` (an ORM Session's transaction) on the host's engine, whose
    connections know nothing of the store's schema: each call sets and restores it."""
    engine = create_engine(request.getfixturevalue("pg_schema_url"))
    request.addfinalizer(engine.dispose)
    return Backend(
        "postgresql-schema-bound",
        lambda: cast(
            AgentPoolStore,
            HostTransactionPerCall(open_store(engine, schema=PG_SCHEMA), session=True),
        ),
    )


def _async_memory_backend() -> Backend:
    """The in-memory store's async face; further handles share its pools."""
    root: list[AsyncInMemoryAgentPoolStore] = []

    async def opener() -> AsyncInMemoryAgentPoolStore:
        root.append(AsyncInMemoryAgentPoolStore() if not root else root[0].another_handle())
        return root[-1]

    return Backend(
        "async-memory", lambda: cast(AgentPoolStore, SyncOverAsync(opener, STORE_OPERATIONS))
    )


def _async_sql_backend(name: str, url: str, **options: Any) -> Backend:
    return Backend(
        name,
        lambda: cast(
            AgentPoolStore,
            SyncOverAsync(lambda: open_async_store(url, **options), STORE_OPERATIONS),
        ),
    )


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Backend]] = {
    "memory": lambda request: _memory_backend(),
    "sqlite": _sqlite_backend,
    "postgresql": _postgresql_backend,
    "postgresql-units": _postgresql_units_backend,
    "sqlite-bound": _sqlite_bound_backend,
    "postgresql-bound": _postgresql_bound_backend,
    "postgresql-schema": _postgresql_schema_backend,
    "postgresql-schema-bound": _postgresql_schema_bound_backend,
    "async-memory": lambda request: _async_memory_backend(),
    "async-sqlite": lambda request: _async_sql_backend(
        "async-sqlite", sqlite_url(request.getfixturevalue("sqlite_file"))
    ),
    "async-postgresql": lambda request: _async_sql_backend(
        "async-postgresql",
        request.getfixturevalue("pg_url").render_as_string(hide_password=False),
    ),
    "async-postgresql-units": lambda request: _async_sql_backend(
        "async-postgresql-units",
        request.getfixturevalue("pg_url").render_as_string(hide_password=False),
        postgresql_one_statement=False,
    ),
}

BACKEND_MARKS = {
    "sqlite": pytest.mark.sqlite,
    "postgresql": pytest.mark.postgresql,
    "postgresql-units": pytest.mark.postgresql,
    "sqlite-bound": pytest.mark.sqlite,
    "postgresql-bound": pytest.mark.postgresql,
    "postgresql-schema": pytest.mark.postgresql,
    "postgresql-schema-bound": pytest.mark.postgresql,
    "async-sqlite": pytest.mark.sqlite,
    "async-postgresql": pytest.mark.postgresql,
    "async-postgresql-units": pytest.mark.postgresql,
}


@pytest.fixture(
    params=[pytest.param(name, marks=BACKEND_MARKS.get(name, ())) for name in sorted(BACKENDS)]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Every store backend, each isolated for this test."""
    made = BACKENDS[request.param](request)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def store(backend: Backend) -> AgentPoolStore:
    """A store handle on this test's backend."""
    return backend.open()


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ]
)
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A fresh, migrated database of each dialect (PostgreSQL: the run's, emptied)."""
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_file")
        made = Database("sqlite", sqlite_url(path), str(path))
    else:
        url = request.getfixturevalue("pg_url")
        made = Database(
            "postgresql",
            url.render_as_string(hide_password=False),
            url.set(drivername="postgresql").render_as_string(hide_password=False),
        )
    try:
        yield made
    finally:
        made.close()
