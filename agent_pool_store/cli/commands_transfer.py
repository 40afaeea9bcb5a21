"""``export`` and ``import``: record logs as JSON Lines (see ``agent_pool_store.sql.transfer``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import click

from agent_pool_store import arguments
from agent_pool_store.cli.context import CliState, pass_state
from agent_pool_store.errors import AgentError
from agent_pool_store.sql.archive_file import lines_of_export


@contextmanager
def _destination(path: Path | None) -> Iterator[BinaryIO]:
    """Stdout, or ``path`` written as ``path.partial`` and renamed once complete."""
    if path is None:
        sys.stdout.flush()
        yield sys.stdout.buffer
        return
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as stream:
        try:
            yield stream
        except BaseException:
            stream.close()
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, path)


@click.command(name="export")
@click.argument("pool", required=False)
@click.option("--all", "all_pools", is_flag=True, help="Export every pool.")
@click.option(
    "--output",
    "-o",
    "output_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to this file (complete or not at all) instead of stdout.",
)
@pass_state
def export_command(
    state: CliState, pool: str | None, all_pools: bool, output_path: Path | None
) -> None:
    """Write the records of POOL (or of --all pools) as JSON Lines.

    One record per line: {"pool_id":…,"seq":…,"payload":…}, the payload exactly as stored.
    """
    if (pool is None) == (not all_pools):
        raise click.UsageError("give either POOL or --all")
    pool_id = arguments.identifier("pool_id", pool) if pool is not None else None
    written, pools_seen = 0, set()
    with state.open_store() as store:
        total = store.count_records(pool_id)
        if pool_id is not None and total == 0:
            raise AgentError.invalid_argument(f"pool {pool_id!r} has no records; nothing exported")
        with (
            _destination(output_path) as stream,
            state.output.progress("exporting records", total) as bar,
        ):
            for line in store.export_records(pool_id):
                stream.write(line.encode("utf-8") + b"\n")
                # the pool id's JSON string ends at the first ',"seq":' (its quotes are
                # escaped); a pool's event-counter line has none
                if ',"seq":' not in line:
                    continue
                written += 1
                if written % 100 == 0:
                    bar.update(written, max(total, written))
                pools_seen.add(line[: line.index(',"seq":')])
            stream.flush()
    where = f" to {output_path}" if output_path is not None else ""
    state.output.note(f"exported {written} record(s) of {len(pools_seen)} pool(s){where}")


def _read_lines(source: str) -> list[str]:
    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    return lines_of_export(data)


@click.command(name="import")
@click.argument("file", metavar="FILE")
@pass_state
def import_command(state: CliState, file: str) -> None:
    """Import a JSON Lines export (FILE, or - for stdin) into pools without records.

    Every cursor is kept. Pools that already have records are refused and nothing is
    written; so is a file with any bad line.
    """
    lines = _read_lines(file)
    output = state.output
    phases = {
        "reading": "checking lines",
        "writing": "writing records",
        "projecting": "building projections",
    }
    with (
        state.open_store(create=True) as store,
        output.progress(phases["reading"], len(lines)) as bar,
    ):

        def progress(phase: str, done: int, total: int | None) -> None:
            bar.update(done, total, phases.get(phase, phase))

        report = store.import_records(lines, progress=progress)
    rows = [[pool_id, count] for pool_id, count in report.pools.items()]
    if output.rich:
        output.table(
            ["pool_id", "records"],
            rows,
            title=f"imported into {state.shown_url}",
            numeric=("records",),
        )
    else:
        for pool_id, count in rows:
            output.line(f"{pool_id}\t{count}")
    output.note(f"imported {report.records} record(s) into {len(report.pools)} pool(s)")


COMMANDS = (export_command, import_command)
