"""Alembic environment for a checkout; the migrations themselves ship in the package."""

from agent_pool_store.migrations.environment import run

run()
