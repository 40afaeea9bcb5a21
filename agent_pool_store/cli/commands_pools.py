"""``pools``, ``snapshot`` and ``watch``: reading pools."""

from __future__ import annotations

import itertools
import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from types import FrameType

import click
from rich.console import Group
from rich.table import Table
from rich.text import Text

from agent_pool_store.cli.context import CliState, pass_state
from agent_pool_store.cli.durations import duration_option
from agent_pool_store.cli.output import Output
from agent_pool_store.domain import AgentPoolSnapshot, AgentPoolStoreRecord
from agent_pool_store.render import address_text, record_text, snapshot_text
from agent_pool_store.sql.admin import PoolSummary
from agent_pool_store.sql.store import SqlAgentPoolStore

RECORD_STYLES = {
    "pool_opened": "bold cyan",
    "pool_created": "cyan",
    "member_joined": "green",
    "member_left": "yellow",
    "run_message": "default",
    "wake": "magenta",
}


PAGE = 1000
"""Pools listed per store call: the command prints each page as it comes."""

COLUMNS = ("pool_id", "records", "members", "cursor", "created", "last_append")


def summary_json(summary: PoolSummary) -> str:
    """One pool as a JSON object (``last_append_at`` in ISO 8601, UTC)."""
    fields = asdict(summary)
    when = summary.last_append_at
    fields["last_append_at"] = None if when is None else when.isoformat()
    return json.dumps(fields, ensure_ascii=False)


def summary_row(summary: PoolSummary) -> list[object]:
    """One pool as a table row (the columns of :data:`COLUMNS`, then the problem)."""
    when = summary.last_append_at
    shown = None if when is None else when.isoformat(timespec="seconds")
    s = summary
    return [s.pool_id, s.records, s.members, s.cursor, s.created, shown, s.problem]


def listed_pools(
    store: SqlAgentPoolStore,
    *,
    idle_for: timedelta | None,
    after: str | None = None,
    limit: int | None = None,
) -> Iterator[PoolSummary]:
    """The store's pools, a page per call, from ``after`` on, at most ``limit``."""
    left = limit
    while left is None or left > 0:
        size = PAGE if left is None else min(PAGE, left)
        page = store.pools(idle_for=idle_for, limit=size, after=after)
        yield from page
        if len(page) < size:
            return
        after = page[-1].pool_id
        if left is not None:
            left -= len(page)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.option(
    "--idle-for",
    callback=duration_option,
    default=None,
    help="Only pools without an append for this long (30d, 12h, 1d12h, 90m, 45s).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many pools.")
@click.option("--after", default=None, help="Only pools whose id sorts after this one (pages).")
@pass_state
def pools(
    state: CliState,
    as_json: bool,
    idle_for: timedelta | None,
    limit: int | None,
    after: str | None,
) -> None:
    """List pools: record count, member count, last cursor, created flag, last append.

    Pools come in the database's order of ids, printed a page at a time as they are read.
    """
    output = state.output
    with state.open_store() as store:
        listed = listed_pools(store, idle_for=idle_for, after=after, limit=limit)
        if as_json:
            output.raw("[")
            for index, summary in enumerate(listed):
                output.raw(("," if index else "") + summary_json(summary))
            output.raw("]")
            return
        count = 0
        title = f"pools in {state.shown_url}" if output.rich else None
        for page in _pages(listed):
            rows = [summary_row(summary) for summary in page]
            problems = any(row[-1] for row in rows)
            output.table(
                [*COLUMNS, "problem"] if problems else COLUMNS,
                [row if problems else row[:-1] for row in rows],
                title=title,
                numeric=("records", "members", "cursor"),
                header=count == 0 or output.rich,
            )
            count += len(rows)
            title = None
    if count == 0:
        if output.rich:
            output.note(f"no pools in {state.shown_url}")
        else:
            output.table(COLUMNS, [])


def _pages(summaries: Iterator[PoolSummary]) -> Iterator[list[PoolSummary]]:
    while page := list(itertools.islice(summaries, PAGE)):
        yield page


def _snapshot_tables(snapshot: AgentPoolSnapshot) -> Group:
    cursor = snapshot.cursor.sequence if snapshot.cursor else 0
    head = Text.assemble(
        ("pool ", "dim"),
        (snapshot.pool_id, "bold"),
        ("  created ", "dim"),
        (str(snapshot.created).lower(), "green" if snapshot.created else "yellow"),
        ("  cursor ", "dim"),
        (str(cursor), "bold"),
        ("\ntopics ", "dim"),
        (", ".join(snapshot.topics) or "-", ""),
        ("\npolicies ", "dim"),
        (", ".join(f"{ref.kind.value}:{ref.id}" for ref in snapshot.policy_refs) or "-", ""),
    )
    members = Table(title=f"members ({len(snapshot.members)})", title_justify="left")
    for column in ("run_id", "agent_id", "topics"):
        members.add_column(column, overflow="fold")
    for member in snapshot.members:
        members.add_row(member.run_id, member.agent_id, ", ".join(member.topics) or "-")
    messages = Table(title=f"messages ({len(snapshot.messages)})", title_justify="left")
    for column in ("message_id", "from", "to", "status", "delivered_to"):
        messages.add_column(column, overflow="fold")
    for stored in snapshot.messages:
        message, receipt = stored.message, stored.receipt
        messages.add_row(
            message.message_id,
            message.from_,
            address_text(message.to),
            receipt.status.value,
            ", ".join(receipt.delivered_to) or "-",
        )
    wakes = Table(title=f"wakes ({len(snapshot.wakes)})", title_justify="left")
    for column in ("condition_id", "run_id", "status", "filter"):
        wakes.add_column(column, overflow="fold")
    for wake in snapshot.wakes:
        wakes.add_row(
            wake.condition.condition_id,
            wake.condition.run_id,
            wake.registration.status.value,
            wake.compiled_filter.filter_id,
        )
    return Group(head, members, messages, wakes)


@click.command()
@click.argument("pool")
@click.option("--json", "as_json", is_flag=True, help="The snapshot's wire JSON.")
@pass_state
def snapshot(state: CliState, pool: str, as_json: bool) -> None:
    """Show a pool's snapshot: members, topics, messages, wakes, cursor."""
    state.pool = pool
    output = state.output
    with state.open_store() as store:
        if as_json:  # assembled from the stored JSON, no model per message
            output.raw(store.snapshot_json(pool))
            return
        taken = store.snapshot(pool)
    if output.rich:
        output.render(_snapshot_tables(taken))
    else:
        for line in snapshot_text(taken).split("\n"):
            output.line(line)


def _print_record(output: Output, record: AgentPoolStoreRecord, as_json: bool) -> None:
    if as_json:
        output.raw(record.model_dump_json())
    else:
        output.line(record_text(record), style=RECORD_STYLES.get(record.payload.type))


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while following, so both end the command cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command()
@click.argument("pool")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Only records with a sequence above this cursor.",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new records until interrupted.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="With --follow: stop after this many seconds without a new record.",
)
@click.option("--json", "as_json", is_flag=True, help="One AgentPoolStoreRecord JSON per line.")
@pass_state
def watch(  # noqa: PLR0917 - click passes options as arguments
    state: CliState, pool: str, after: int, follow: bool, timeout: float | None, as_json: bool
) -> None:
    """Print a pool's records after a cursor, one per line; with --follow, as they commit.

    Ctrl-C (or SIGTERM) ends --follow with exit status 0.
    """
    if timeout is not None and not follow:
        raise click.UsageError("--timeout only applies with --follow")
    state.pool = pool
    output = state.output
    with state.open_store() as store:
        if not follow:
            for record in store.watch(pool, after):
                _print_record(output, record, as_json)
            return
        records = store.follow(pool, after, timeout=timeout)
        try:
            with _terminate_as_interrupt():
                for record in records:
                    _print_record(output, record, as_json)
        except KeyboardInterrupt:
            pass
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()


COMMANDS = (pools, snapshot, watch)
