"""What the Alembic ``env.py`` files run: online and offline migrations of our tables only."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Connection

from agent_pool_store.migrations import VERSION_TABLE, migration_connection
from agent_pool_store.sql.dialects.registry import dialect_for
from agent_pool_store.sql.schema import Base
from agent_pool_store.sql.settings import DEFAULT_URL, EngineSettings
from alembic import context as alembic_context

URL_VARIABLE = "AGENT_POOL_STORE_URL"
"""Environment variable naming the database when no ``-x url=…`` is given."""


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    """Autogenerate looks only at this library's tables, not the host application's."""
    if type_ == "table":
        return name in Base.metadata.tables
    return True


def _url() -> str:
    config = alembic_context.config
    return (
        alembic_context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get(URL_VARIABLE)
        or config.get_main_option("sqlalchemy.url")
        or DEFAULT_URL
    )


def _configure(connection: Connection) -> None:
    alembic_context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=dialect_for(connection.engine, EngineSettings()).batch_migrations,
        include_name=_ours,
        compare_type=True,
    )


def run() -> None:
    """Run the migrations Alembic asked for (called from ``env.py``)."""
    if alembic_context.is_offline_mode():
        alembic_context.configure(
            url=_url(),
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
        )
        with alembic_context.begin_transaction():
            alembic_context.run_migrations()
        return
    connection = alembic_context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with alembic_context.begin_transaction():
            alembic_context.run_migrations()
        return
    with migration_connection(_url()) as connection:
        _configure(connection)
        with alembic_context.begin_transaction():
            alembic_context.run_migrations()
