"""Initial schema: the reference's record tables, pools and projections.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

The two tables shared with the Rust reference (``agent_pool_records``,
``agent_pool_event_seq``) are created only when missing, so a database the reference wrote
is upgraded in place with every record kept; downgrading leaves them and their data alone.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

PROJECTIONS = {
    "agent_pool_store_members": ("run_id", "member_json"),
    "agent_pool_store_messages": ("message_id", "stored_json"),
    "agent_pool_store_message_receipts": ("idempotency_key", "receipt_json"),
    "agent_pool_store_wakes": ("condition_id", "stored_json"),
    "agent_pool_store_wake_registrations": ("idempotency_key", "registration_json"),
}


def upgrade() -> None:
    # op.get_context(), not alembic.context: these scripts also run from a host's env.py
    offline = op.get_context().as_sql
    existing = [] if offline else sa.inspect(op.get_bind()).get_table_names()
    if "agent_pool_records" not in existing:
        op.create_table(
            "agent_pool_records",
            sa.Column("pool_id", sa.Text(), nullable=False),
            sa.Column("seq", SEQ, nullable=False, autoincrement=False),
            sa.Column("kind", sa.Text(), nullable=False),
            sa.Column("payload_json", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("pool_id", "seq", name=op.f("pk_agent_pool_records")),
        )
    if "agent_pool_event_seq" not in existing:
        op.create_table(
            "agent_pool_event_seq",
            sa.Column("pool_id", sa.Text(), nullable=False),
            sa.Column("seq", SEQ, nullable=False),
            sa.PrimaryKeyConstraint("pool_id", name=op.f("pk_agent_pool_event_seq")),
        )
    op.create_table(
        "agent_pool_store_pools",
        sa.Column("pool_id", sa.Text(), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=True),
        sa.Column("created", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("projected_seq", SEQ, server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("pool_id", name=op.f("pk_agent_pool_store_pools")),
    )
    for table, (key, json_column) in PROJECTIONS.items():
        op.create_table(
            table,
            sa.Column("pool_id", sa.Text(), nullable=False),
            sa.Column(key, sa.Text(), nullable=False),
            sa.Column(json_column, sa.Text(), nullable=False),
            sa.Column("seq", SEQ, nullable=False),
            sa.PrimaryKeyConstraint("pool_id", key, name=op.f(f"pk_{table}")),
        )


def downgrade() -> None:
    for table in PROJECTIONS:
        op.drop_table(table)
    op.drop_table("agent_pool_store_pools")
