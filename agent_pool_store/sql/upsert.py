"""``INSERT … ON CONFLICT`` on a table's primary key, built once per dialect and table.

``ON CONFLICT`` has no dialect-neutral construct in SQLAlchemy: each builder takes the
dialect's ``insert`` function (``sqlalchemy.dialects.sqlite.insert`` or
``sqlalchemy.dialects.postgresql.insert``; a dialect offers it as ``SqlDialect.insert``). The
statements take their values as execution parameters, so SQLAlchemy's compiled cache is hit
without rebuilding a construct for every call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table

InsertConstruct = Callable[[Table], Any]
"""A dialect's ``insert(table)`` with ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""


@functools.cache
def upsert_statement(insert: InsertConstruct, table: Table) -> Any:
    """Insert a row, or on a primary-key conflict overwrite its other columns."""
    keys = [column.name for column in table.primary_key.columns]
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys},
    )


@functools.cache
def increment_statement(insert: InsertConstruct, table: Table, column: str) -> Any:
    """Insert a row, or on a primary-key conflict add 1 to ``column``; returns ``column``."""
    keys = [c.name for c in table.primary_key.columns]
    return (
        insert(table)
        .on_conflict_do_update(index_elements=keys, set_={column: table.c[column] + 1})
        .returning(table.c[column])
    )


@functools.cache
def insert_ignore_statement(insert: InsertConstruct, table: Table) -> Any:
    """Insert a row unless one with the same primary key exists."""
    return insert(table).on_conflict_do_nothing()
