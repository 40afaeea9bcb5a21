"""Each pool row records when the pool last changed (for retention: ``pools --idle-for``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

``agent_pool_store_pools.last_append_at`` (timestamp with time zone) is set whenever the
store advances the pool's watermark: an append, a catch-up of another writer's records, an
import (``rebuild`` keeps it). A new row starts at the time it is created; existing rows
start at the time of this migration (the store cannot know older activity). It lives in our
own table, so the two tables shared with the reference are unchanged.

On SQLite the table is rebuilt (batch mode): SQLite's ``ALTER TABLE ADD COLUMN`` takes no
default that is not a constant.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    column = sa.Column(
        "last_append_at",
        sa.DateTime(timezone=True),
        server_default=sa.func.current_timestamp(),
        nullable=True,
    )
    if op.get_context().dialect.name != "sqlite":
        op.add_column("agent_pool_store_pools", column)
        return
    with op.batch_alter_table(
        "agent_pool_store_pools", recreate="always", copy_from=_pools_0005()
    ) as batch:
        batch.add_column(column)


def _pools_0005() -> sa.Table:
    """The pools table as revisions 0001..0005 left it (no reflection: offline mode works)."""
    return sa.Table(
        "agent_pool_store_pools",
        sa.MetaData(),
        sa.Column("pool_id", sa.Text(), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=True),
        sa.Column("created", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("projected_seq", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("pool_id", name="pk_agent_pool_store_pools"),
    )


def downgrade() -> None:
    copy_from = _pools_0005() if op.get_context().dialect.name == "sqlite" else None
    if copy_from is not None:
        copy_from.append_column(sa.Column("last_append_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("agent_pool_store_pools", copy_from=copy_from) as batch:
        batch.drop_column("last_append_at")
