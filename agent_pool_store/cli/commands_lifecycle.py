"""``archive``, ``restore`` and ``delete``: whole pools out of the database and back.

See :mod:`agent_pool_store.sql.lifecycle` for what each guarantees.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import click

from agent_pool_store import arguments
from agent_pool_store.cli.commands_pools import COLUMNS, listed_pools, summary_row
from agent_pool_store.cli.context import CliState, pass_state
from agent_pool_store.cli.durations import duration_option
from agent_pool_store.errors import AgentError

NAME_BYTES = 200
"""The longest file name (before ``.jsonl.gz``) an archive of one pool gets in a directory."""


def archive_name(pool_id: str) -> str:
    """The file name of a pool's archive in an ``--idle-for`` directory.

    The pool id, percent-encoded (ids may hold ``/`` and any printable character); a long id
    is cut and given a hash of the whole id, so two pools never share a name.
    """
    name = quote(pool_id, safe="@+,=-_.")
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name) > NAME_BYTES:
        digest = hashlib.sha256(pool_id.encode("utf-8")).hexdigest()[:16]
        name = name[: NAME_BYTES - 17] + "-" + digest
    return name + ".jsonl.gz"


@click.command()
@click.argument("pools", nargs=-1, metavar="[POOL]...")
@click.option(
    "--output",
    "-o",
    "output_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The archive file (POOL...; .gz compresses), or with --idle-for a directory.",
)
@click.option(
    "--idle-for",
    callback=duration_option,
    default=None,
    help="Archive every pool without an append for this long (30d, 12h, 1d12h), one file each.",
)
@click.option("--dry-run", is_flag=True, help="With --idle-for: list the pools, archive nothing.")
@pass_state
def archive(
    state: CliState,
    pools: tuple[str, ...],
    output_path: Path | None,
    idle_for: timedelta | None,
    dry_run: bool,
) -> None:
    """Move pools out of the database into JSON Lines archive files.

    POOL... -o FILE writes the pools' logs and event counters to FILE (gzip when it ends in
    .gz), checks it, then deletes the pools, in one transaction. --idle-for D -o DIR does
    so for every pool idle that long, each into DIR/POOL.jsonl.gz. `restore` imports an
    archive again.
    """
    if bool(pools) == (idle_for is not None):
        raise click.UsageError("give either POOL... or --idle-for")
    if dry_run and idle_for is None:
        raise click.UsageError("--dry-run only applies with --idle-for")
    if output_path is None and not dry_run:
        raise click.UsageError("give the archive with -o (a file, or with --idle-for a directory)")
    output = state.output
    if idle_for is None:
        assert output_path is not None
        checked = [arguments.identifier("pool_id", pool) for pool in pools]
        if len(checked) == 1:
            state.pool = checked[0]
        with state.open_store() as store:
            report = store.archive(checked, output_path)
        for pool_id, records in report.pools.items():
            output.line(f"{pool_id}\t{records}")
        output.note(
            f"archived {report.records} record(s) of {len(report.pools)} pool(s) to {output_path}"
        )
        return
    _archive_idle(state, idle_for, output_path, dry_run=dry_run)


def _archive_idle(
    state: CliState, idle_for: timedelta, directory: Path | None, *, dry_run: bool
) -> None:
    output = state.output
    with state.open_store() as store:
        if dry_run:
            rows = [summary_row(s)[:-1] for s in listed_pools(store, idle_for=idle_for)]
            output.table(COLUMNS, rows, numeric=("records", "members", "cursor"))
            output.note(f"{len(rows)} pool(s) idle for {idle_for}; nothing was archived")
            return
        assert directory is not None
        directory.mkdir(parents=True, exist_ok=True)
        archived = records = 0
        failed: list[str] = []
        with output.progress("archiving idle pools", None) as bar:
            for summary in listed_pools(store, idle_for=idle_for):
                destination = directory / archive_name(summary.pool_id)
                try:
                    report = store.archive(summary.pool_id, destination, idle_for=idle_for)
                except AgentError as error:
                    failed.append(summary.pool_id)
                    output.note(f"{summary.pool_id}: not archived: {error.message}")
                    continue
                archived += 1
                records += report.records
                output.line(f"{summary.pool_id}\t{report.records}\t{destination}")
                bar.update(archived, None)
    output.note(f"archived {archived} pool(s), {records} record(s), to {directory}")
    if failed:
        raise click.ClickException(f"{len(failed)} pool(s) were not archived (see above)")


@click.command()
@click.argument("file", type=click.Path(path_type=Path), metavar="FILE")
@pass_state
def restore(state: CliState, file: Path) -> None:
    """Import an archive (or export) FILE again; gzip when its name ends in .gz.

    Pools that already have records are refused and nothing is written.
    """
    output = state.output
    phases = {
        "reading": "checking lines",
        "writing": "writing records",
        "projecting": "building projections",
    }
    with state.open_store(create=True) as store, output.progress(phases["reading"], None) as bar:

        def progress(phase: str, done: int, total: int | None) -> None:
            bar.update(done, total, phases.get(phase, phase))

        report = store.restore(file, progress=progress)
    for pool_id, count in report.pools.items():
        output.line(f"{pool_id}\t{count}")
    output.note(f"restored {report.records} record(s) into {len(report.pools)} pool(s)")


@click.command()
@click.argument("pool")
@click.option("--yes", is_flag=True, help="Really delete: the pool's records are gone for good.")
@pass_state
def delete(state: CliState, pool: str, yes: bool) -> None:
    """Delete POOL for good: its records, event counter and projections (needs --yes).

    For erasure requests; `archive` keeps a copy instead.
    """
    if not yes:
        raise click.UsageError("delete removes the pool's records for good: add --yes")
    state.pool = pool
    with state.open_store() as store:
        deleted = store.delete_pool(pool)
    state.output.note(f"deleted {pool}: {deleted} record(s)")


COMMANDS = (archive, restore, delete)
