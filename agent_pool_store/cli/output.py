"""Output for people and for pipes: rich on a terminal, plain text when piped.

Rich tables and progress bars on a terminal; plain text (tab-separated where tabular) when
the output is piped or ``--plain`` is given.

Data goes to stdout; progress bars, notes and errors to stderr, so piping stdout (``watch
--json``, ``export``) never carries anything but data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text


class Output:
    """Where and how a command writes.

    ``rich`` is true when stdout is a terminal (and ``--plain`` was not given); progress bars
    are shown only when stderr is a terminal.
    """

    def __init__(self, *, plain: bool = False) -> None:
        self.console = Console(highlight=False, soft_wrap=True)
        self.err_console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.rich = not plain and self.console.is_terminal
        self.rich_err = not plain and self.err_console.is_terminal

    def line(self, text: str, *, style: str | None = None) -> None:
        """One line of data on stdout (``style`` applies on a terminal only)."""
        if self.rich:
            self.console.print(Text(text, style=style or ""))
        else:
            click.echo(text)

    def raw(self, text: str) -> None:
        """One line on stdout exactly as given (JSON), never styled."""
        click.echo(text)

    def render(self, renderable: RenderableType) -> None:
        """A rich renderable on stdout (only call when :attr:`rich`)."""
        self.console.print(renderable)

    def note(self, text: str) -> None:
        """A message for the person at the terminal, on stderr."""
        if self.rich_err:
            self.err_console.print(Text(text, style="dim"))
        else:
            click.echo(text, err=True)

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[object]],
        *,
        title: str | None = None,
        numeric: Sequence[str] = (),
        header: bool = True,
    ) -> None:
        """A table: rich on a terminal, else a tab-separated header and rows.

        ``header=False``: plain rows only (a further page of a table already begun).
        """
        if self.rich:
            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(
                    column, justify="right" if column in numeric else "left", overflow="fold"
                )
            for row in rows:
                table.add_row(*(Text(_cell(value)) for value in row))
            self.console.print(table)
            return
        if header:
            click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join(_cell(value) for value in row))

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Bar]:
        """A progress bar on stderr, removed when the block ends.

        A spinner while the total is unknown; does nothing when stderr is not a terminal.
        """
        if not self.rich_err:
            yield Bar(None, None)
            return
        columns = [
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=self.err_console, transient=True) as progress:
            yield Bar(progress, progress.add_task(description, total=total))


class Bar:
    """One progress bar (inert when there is no terminal)."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: int) -> None:
        """Move forward by ``amount``."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def update(self, done: int, total: int | None, description: str | None = None) -> None:
        """Set the position, the total and optionally the description."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total, description=description)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "-"
    return str(value)
