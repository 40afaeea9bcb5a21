"""``INSERT … ON CONFLICT`` on a table's primary key, built once per dialect and table.

The statements take their values as execution parameters, so SQLAlchemy's compiled cache is
hit without rebuilding a construct for every call.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def _insert(dialect: str, table: Table) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@functools.cache
def upsert_statement(dialect: str, table: Table) -> Any:
    """Insert a row, or on a primary-key conflict overwrite its other columns."""
    keys = [column.name for column in table.primary_key.columns]
    statement = _insert(dialect, table)
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys},
    )


@functools.cache
def increment_statement(dialect: str, table: Table, column: str) -> Any:
    """Insert a row, or on a primary-key conflict add 1 to ``column``; returns ``column``."""
    keys = [c.name for c in table.primary_key.columns]
    statement = _insert(dialect, table)
    return statement.on_conflict_do_update(
        index_elements=keys, set_={column: table.c[column] + 1}
    ).returning(table.c[column])


@functools.cache
def insert_ignore_statement(dialect: str, table: Table) -> Any:
    """Insert a row unless one with the same primary key exists."""
    return _insert(dialect, table).on_conflict_do_nothing()
