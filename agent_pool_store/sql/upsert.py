"""``INSERT … ON CONFLICT`` on the primary key, for the dialect of a session."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _insert(session: Session, table: Table, values: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).values(values)


def upsert_statement(
    session: Session, table: Table, values: dict[str, Any], set_: dict[str, Any] | None = None
) -> Any:
    """Insert ``values``, or on a primary-key conflict apply ``set_`` (default: the values)."""
    keys = [column.name for column in table.primary_key.columns]
    statement = _insert(session, table, values)
    if set_ is None:
        set_ = {name: statement.excluded[name] for name in values if name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=set_)


def insert_ignore_statement(session: Session, table: Table, values: dict[str, Any]) -> Any:
    """Insert ``values`` unless a row with the same primary key exists."""
    return _insert(session, table, values).on_conflict_do_nothing()
