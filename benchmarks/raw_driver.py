"""The databases without the library: plain sqlite3 and psycopg connections.

They give the limit an append can reach (one record per transaction, committed durably with
the same settings the store uses) and serve the replay baseline. Both drivers run in
autocommit mode and the transaction statements are sent explicitly, so the two dialects
share the code: SQLite ``BEGIN IMMEDIATE`` (WAL, ``synchronous=FULL``, a busy timeout, as
:mod:`agent_pool_store.sql.dialects.sqlite` sets), PostgreSQL ``BEGIN``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from agent_pool_store import RECORD_PAYLOAD

INSERT = "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json) VALUES (?, ?, ?, ?)"
SELECT_LOG = "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? ORDER BY seq"


@dataclass
class RawConnection:
    """One DB-API connection in autocommit mode, with ``?`` placeholders on both dialects."""

    dialect: str
    connection: sqlite3.Connection | psycopg.Connection[Any]

    @property
    def begin_write(self) -> str:
        """The statement that starts a write transaction holding the write lock."""
        return "BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN"

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for statements without a result)."""
        if isinstance(self.connection, sqlite3.Connection):
            return self.connection.execute(sql, params).fetchall()
        cursor = self.connection.execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description is not None else []

    def insert_one(self, pool_id: str, seq: int, kind: str, payload_json: str) -> None:
        """Append one record in its own durable transaction."""
        self.execute(self.begin_write)
        try:
            self.execute(INSERT, (pool_id, seq, kind, payload_json))
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def read_log(self, pool_id: str) -> list[tuple[int, str]]:
        """Every ``(seq, payload_json)`` of a pool, in order."""
        return [(int(seq), str(text)) for seq, text in self.execute(SELECT_LOG, (pool_id,))]

    def close(self) -> None:
        self.connection.close()


def connect_sqlite(path: str, *, busy_timeout: float = 10.0) -> RawConnection:
    """sqlite3 on ``path`` with the store's settings: WAL, synchronous=FULL, busy timeout."""
    connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    return RawConnection("sqlite", connection)


def connect_postgresql(url: URL) -> RawConnection:
    """psycopg on the database of a SQLAlchemy URL, in autocommit mode."""
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return RawConnection("postgresql", psycopg.connect(conninfo, autocommit=True))


def connect(url: URL) -> RawConnection:
    """A raw connection to the database of a ``sqlite:///`` or ``postgresql`` URL."""
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        return connect_sqlite(url.database)
    return connect_postgresql(url)


def read_and_parse(connection: RawConnection, pool_id: str) -> int:
    """Read a pool's whole log and parse every payload; the number of records."""
    count = 0
    for _seq, text in connection.read_log(pool_id):
        RECORD_PAYLOAD.validate_json(text)
        count += 1
    return count
