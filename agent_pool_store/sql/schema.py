"""Declarative SQLAlchemy models: the two tables shared with the reference, and our own.

``agent_pool_records`` and ``agent_pool_event_seq`` keep the reference's names and columns
(``seq`` is BIGINT on PostgreSQL, INTEGER on SQLite; ``payload_json`` is TEXT so the bytes
are kept exactly). Every other table is ours, named ``agent_pool_store_*``: a row per pool
with the projection watermark, and projections that make every look-up one index read.
Projection rows hold wire JSON and the sequence of the record that last wrote them.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SequenceNumber = BigInteger().with_variant(Integer(), "sqlite")
"""A record sequence: BIGINT, but INTEGER on SQLite as in the reference schema."""


class Base(DeclarativeBase):
    """Declarative base with the naming convention used by the migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RecordRow(Base):
    """One record of a pool's log (the reference's table)."""

    __tablename__ = "agent_pool_records"

    pool_id: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(Text)
    payload_json: Mapped[str] = mapped_column(Text)
    append_token: Mapped[int | None] = mapped_column(BigInteger)
    """Ours (nullable, migration 0004): the random token of the PostgreSQL one-statement
    append that wrote the record, so a lost reply can be settled; NULL otherwise."""


class EventSequenceRow(Base):
    """The last event sequence handed out per pool (the reference's table)."""

    __tablename__ = "agent_pool_event_seq"

    pool_id: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(SequenceNumber)


class PoolRow(Base):
    """Per pool: config, created flag and the sequence up to which projections are current."""

    __tablename__ = "agent_pool_store_pools"

    pool_id: Mapped[str] = mapped_column(Text, primary_key=True)
    config_json: Mapped[str | None] = mapped_column(Text)
    created: Mapped[bool] = mapped_column(Boolean, server_default=false())
    projected_seq: Mapped[int] = mapped_column(SequenceNumber, server_default=text("0"))
    last_append_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.current_timestamp()
    )
    """When the watermark last advanced (an append, a catch-up, an import; ``rebuild`` keeps
    it; migration 0006): the database's clock on PostgreSQL, the writing process's on SQLite
    (the same host)."""


class ProjectionColumns:
    """Columns of every projection table.

    ``pool_id`` comes first in the primary key; ``seq`` is the sequence of the record that
    last wrote the row.
    """

    pool_id: Mapped[str] = mapped_column(Text, primary_key=True, sort_order=-1)
    seq: Mapped[int] = mapped_column(SequenceNumber, sort_order=1)


class MemberRow(ProjectionColumns, Base):
    """A current member (with its topics, in the member's JSON)."""

    __tablename__ = "agent_pool_store_members"

    run_id: Mapped[str] = mapped_column(Text, primary_key=True)
    member_json: Mapped[str] = mapped_column(Text)


class MessageRow(ProjectionColumns, Base):
    """The latest stored message per message id."""

    __tablename__ = "agent_pool_store_messages"

    message_id: Mapped[str] = mapped_column(Text, primary_key=True)
    stored_json: Mapped[str] = mapped_column(Text)


class MessageReceiptRow(ProjectionColumns, Base):
    """The latest receipt per message idempotency key."""

    __tablename__ = "agent_pool_store_message_receipts"

    idempotency_key: Mapped[str] = mapped_column(Text, primary_key=True)
    receipt_json: Mapped[str] = mapped_column(Text)


class WakeRow(ProjectionColumns, Base):
    """The latest stored wake per condition id."""

    __tablename__ = "agent_pool_store_wakes"

    condition_id: Mapped[str] = mapped_column(Text, primary_key=True)
    stored_json: Mapped[str] = mapped_column(Text)


class WakeRegistrationRow(ProjectionColumns, Base):
    """The latest registration per wake idempotency key."""

    __tablename__ = "agent_pool_store_wake_registrations"

    idempotency_key: Mapped[str] = mapped_column(Text, primary_key=True)
    registration_json: Mapped[str] = mapped_column(Text)


class FollowerRow(Base):
    """A pool followed live on PostgreSQL, by the backend of a listening connection.

    The append trigger notifies only pools that have a row here (migration 0003).
    """

    __tablename__ = "agent_pool_store_followers"

    pool_id: Mapped[str] = mapped_column(Text, primary_key=True)
    backend_pid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class."""
    return cast(Table, model.__table__)


@functools.cache
def key_and_json(table: Table) -> tuple[str, str]:
    """The key and JSON column names of a projection table."""
    key, json = (c.name for c in table.columns if c.name not in ("pool_id", "seq"))
    return key, json


PROJECTION_TABLES = tuple(
    table_of(model)
    for model in (MemberRow, MessageRow, MessageReceiptRow, WakeRow, WakeRegistrationRow)
)
"""Tables derived from the record log (rebuildable)."""
