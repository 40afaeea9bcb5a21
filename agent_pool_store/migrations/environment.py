"""What the Alembic ``env.py`` files run: online and offline migrations of our tables only.

The schema (PostgreSQL) is the one :func:`agent_pool_store.migrations.alembic_config` was
given; from the command line (``alembic`` in a checkout), ``-x schema=…``, else
``AGENT_POOL_STORE_SCHEMA``. Every migration then runs with ``search_path`` set to that schema
alone, created first if missing, and Alembic's version table lives there too.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from agent_pool_store.migrations import (
    VERSION_TABLE,
    check_offline_schema,
    migration_connection,
    schema_statements,
)
from agent_pool_store.sql.dialects.protocol import SqlDialect
from agent_pool_store.sql.dialects.registry import dialect_for
from agent_pool_store.sql.schema import Base
from agent_pool_store.sql.settings import DEFAULT_URL, EngineSettings
from alembic import context as alembic_context

URL_VARIABLE = "AGENT_POOL_STORE_URL"
"""Environment variable naming the database when no ``-x url=…`` is given."""
SCHEMA_VARIABLE = "AGENT_POOL_STORE_SCHEMA"
"""Environment variable naming the schema (PostgreSQL) when no ``-x schema=…`` is given."""


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


def _schema() -> str | None:
    """The schema to migrate: as :func:`alembic_config` was told, else from the command line."""
    attributes = alembic_context.config.attributes
    if "schema" in attributes:
        schema: str | None = attributes["schema"]
        return schema
    given = alembic_context.get_x_argument(as_dictionary=True).get("schema")
    return given or os.environ.get(SCHEMA_VARIABLE) or None


def _configure(connection: Connection, dialect: SqlDialect, schema: str | None) -> None:
    alembic_context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        render_as_batch=dialect.batch_migrations,
        include_name=_ours,
        compare_type=True,
    )


def run() -> None:
    """Run the migrations Alembic asked for (called from ``env.py``)."""
    schema = _schema()
    if alembic_context.is_offline_mode():
        url = _url()
        check_offline_schema(make_url(url).get_backend_name(), schema)
        alembic_context.configure(
            url=url,
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            version_table_schema=schema,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
        )
        with alembic_context.begin_transaction():
            for statement in schema_statements(schema):
                alembic_context.execute(statement)
            alembic_context.run_migrations()
        return
    connection = alembic_context.config.attributes.get("connection")
    if connection is not None:
        _run_online(connection, schema)
        return
    with migration_connection(_url(), schema) as connection:
        _run_online(connection, schema)


def _run_online(connection: Connection, schema: str | None) -> None:
    """The migrations on ``connection``, in ``schema`` (created first unless only read)."""
    dialect = dialect_for(connection.engine, EngineSettings(schema=schema))
    _configure(connection, dialect, schema)
    reads_only = bool(alembic_context.get_context().opts.get("dont_mutate"))  # `alembic current`
    with (
        alembic_context.begin_transaction(),
        dialect.in_schema(connection, create=not reads_only),
    ):
        alembic_context.run_migrations()
