"""Records may carry the token of the append that wrote them (PostgreSQL lost replies).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

``agent_pool_records.append_token`` (nullable BIGINT) holds a random number that the
PostgreSQL one-statement append writes with its record. When the reply to that statement is
lost, the store looks for the token to tell whether the append landed, instead of appending
again. The reference inserts only its four columns, which the contract allows for a
nullable extra column; its records, SQLite's and every unit of work's keep NULL.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.add_column("agent_pool_records", sa.Column("append_token", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_pool_records") as batch:
        batch.drop_column("append_token")
