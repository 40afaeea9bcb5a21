"""Alembic environment of the packaged migrations."""

from agent_pool_store.migrations.environment import run

run()
