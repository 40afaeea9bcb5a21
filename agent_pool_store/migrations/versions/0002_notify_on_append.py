"""PostgreSQL: NOTIFY on every appended record, so followers wake without polling.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

An ``AFTER INSERT`` trigger on ``agent_pool_records`` sends ``pg_notify('agent_pool_records',
pool_id)`` inside the appending transaction (delivered at commit), for our appends and for
any other writer's. The notification only wakes a follower, which re-reads from its cursor.
Other dialects: nothing to do.
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

CHANNEL = "agent_pool_records"


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION agent_pool_store_notify_append() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.pool_id);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER agent_pool_store_notify_append AFTER INSERT ON agent_pool_records "
        "FOR EACH ROW EXECUTE FUNCTION agent_pool_store_notify_append()"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS agent_pool_store_notify_append ON agent_pool_records")
    op.execute("DROP FUNCTION IF EXISTS agent_pool_store_notify_append()")
