"""``migrate`` and ``current``: the packaged Alembic migrations."""

from __future__ import annotations

import click

from agent_pool_store import migrations
from agent_pool_store.cli.context import CliState, pass_state


def _show_revisions(state: CliState, current: str | None) -> None:
    head = migrations.head()
    output = state.output
    output.line(f"url: {state.shown_url}")
    if state.schema is not None:
        output.line(f"schema: {state.schema}")
    output.line(f"current: {current or 'none'}", style="bold green" if current == head else "bold")
    output.line(f"head: {head}")


@click.command()
@click.option(
    "--revision",
    default="head",
    show_default=True,
    help="Revision to upgrade the database to; with --sql also a range START:END.",
)
@click.option(
    "--sql",
    is_flag=True,
    help="Print the SQL script of the upgrade for the URL's dialect; connect to nothing.",
)
@pass_state
def migrate(state: CliState, revision: str, sql: bool) -> None:
    """Upgrade the database schema with the packaged migrations (or print their SQL).

    With --schema (PostgreSQL), that schema is migrated, and created if it does not exist.
    """
    if sql:
        script = migrations.upgrade_sql(state.url, revision, schema=state.schema)
        state.output.raw(script.rstrip("\n"))
        return
    before = migrations.current(state.url, schema=state.schema)
    with state.output.progress("migrating", None):
        migrations.upgrade(state.url, revision, schema=state.schema)
    after = migrations.current(state.url, schema=state.schema)
    if before == after:
        state.output.note(f"already at revision {after or 'none'}")
    else:
        state.output.note(f"upgraded from revision {before or 'none'} to {after}")
    _show_revisions(state, after)


@click.command()
@pass_state
def current(state: CliState) -> None:
    """Show the database's schema revision and the latest one this package ships."""
    state.require_database()
    _show_revisions(state, migrations.current(state.url, schema=state.schema))


COMMANDS = (migrate, current)
