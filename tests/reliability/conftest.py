"""The ``database`` fixture of the reliability scenarios: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import sqlite_url
from tests.reliability.workers import Database


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
