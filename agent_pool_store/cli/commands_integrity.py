"""``verify`` and ``rebuild``: integrity of the projections against the record log."""

from __future__ import annotations

import click
from rich.text import Text

from agent_pool_store import arguments
from agent_pool_store.cli.context import CliState, pass_state
from agent_pool_store.errors import AgentError
from agent_pool_store.sql.integrity import VerificationReport


@click.command()
@click.argument("pool", required=False)
@pass_state
def verify(state: CliState, pool: str | None) -> None:
    """Check POOL (or every pool) against a replay of its log; exit 1 on any difference.

    Reports cursor gaps or repeats, unreadable records, records not applied yet, and
    projections that differ from the replay. Changes nothing.
    """
    output, state.pool = state.output, pool
    with state.open_store() as store:
        pools = [arguments.identifier("pool_id", pool)] if pool is not None else store.pool_ids()
        report = VerificationReport()
        with output.progress("verifying pools", len(pools)) as bar:
            for each in pools:
                report.add(store.verify(each))
                bar.advance(1)
    summary, *details = str(report).splitlines()
    if output.rich:
        output.render(Text(summary, style="bold green" if report.ok else "bold red"))
        if report.differences or report.pending:
            output.table(
                ["pool_id", "seq", "check", "detail"],
                [[d.pool_id, d.seq, d.check, d.detail] for d in report.differences]
                + [[d.pool_id, d.seq, d.check, d.detail] for d in report.pending],
            )
    else:
        output.line(summary)
        for line in details:
            output.line(line)
    if not report.ok:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("pool")
@pass_state
def rebuild(state: CliState, pool: str) -> None:
    """Recompute POOL's projections from its record log (repairs what verify reports)."""
    state.pool = pool
    pool_id = arguments.identifier("pool_id", pool)
    with state.open_store() as store:
        if store.count_records(pool_id) == 0:
            raise AgentError.invalid_argument(
                f"pool {pool_id!r} has no records; nothing to rebuild"
            )
        with state.output.progress(f"rebuilding {pool_id}", None):
            applied = store.rebuild(pool_id)
    state.output.line(f"rebuilt {pool_id}: {applied} record(s) applied")


COMMANDS = (verify, rebuild)
