"""``pools``, ``snapshot`` and ``watch``: reading pools."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from types import FrameType

import click
from rich.console import Group
from rich.table import Table
from rich.text import Text

from agent_pool_store.cli.context import CliState, pass_state
from agent_pool_store.cli.output import Output
from agent_pool_store.domain import AgentPoolSnapshot, AgentPoolStoreRecord
from agent_pool_store.render import address_text, record_text, snapshot_text

RECORD_STYLES = {
    "pool_opened": "bold cyan",
    "pool_created": "cyan",
    "member_joined": "green",
    "member_left": "yellow",
    "run_message": "default",
    "wake": "magenta",
}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@pass_state
def pools(state: CliState, as_json: bool) -> None:
    """List every pool with its record count, member count, last cursor and created flag."""
    with state.open_store() as store:
        summaries = store.pools()
    output = state.output
    if as_json:
        output.raw(json.dumps([asdict(summary) for summary in summaries], ensure_ascii=False))
        return
    columns = ["pool_id", "records", "members", "cursor", "created"]
    problems = any(summary.problem for summary in summaries)
    rows = [
        [s.pool_id, s.records, s.members, s.cursor, s.created] + ([s.problem] if problems else [])
        for s in summaries
    ]
    if output.rich and not rows:
        output.note(f"no pools in {state.shown_url}")
        return
    output.table(
        [*columns, "problem"] if problems else columns,
        rows,
        title=f"pools in {state.shown_url}" if output.rich else None,
        numeric=("records", "members", "cursor"),
    )


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
