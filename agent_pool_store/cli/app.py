"""The ``agent-pool-store`` click group: global options and error handling.

Every failure ends as one line on stderr and a non-zero exit status, with no traceback:
2 for a usage error (unknown option, missing argument, bad value), 1 for everything else
(AgentError, unreadable file, bad import line, database errors). Passwords in the database
URL are masked in everything printed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click
from alembic.util import CommandError
from sqlalchemy import exc
from sqlalchemy.engine import URL, make_url

from agent_pool_store.cli import (
    commands_integrity,
    commands_lifecycle,
    commands_pools,
    commands_schema,
    commands_transfer,
)
from agent_pool_store.cli.context import CliState
from agent_pool_store.cli.output import Output
from agent_pool_store.errors import AgentError, AgentErrorKind
from agent_pool_store.sql.errors import translate
from agent_pool_store.sql.settings import DEFAULT_URL, check_schema, safe_url, url_secrets

PROG = "agent-pool-store"
URL_ENV = "AGENT_POOL_STORE_URL"
SCHEMA_ENV = "AGENT_POOL_STORE_SCHEMA"
DEBUG_ENV = "AGENT_POOL_STORE_DEBUG"
"""Set to 1 to get the traceback of an unexpected error instead of one line."""

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandFailedError(click.ClickException):
    """A command failed; ``message`` is one line, already free of secrets."""

    exit_code = EXIT_FAILURE


def _redact(text: str, url: URL | None) -> str:
    """``text`` with the URL's secrets (and the unmasked URL) replaced by ``***``."""
    secrets = url_secrets(url) if url is not None else []
    if url is None or not secrets:
        return text
    text = text.replace(url.render_as_string(hide_password=False), safe_url(url))
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines) if lines else "(no message)"


def _describe(error: BaseException, state: CliState | None) -> str:
    """One line for an exception raised by a command."""
    if isinstance(error, AgentError):
        text = str(error)
        if state is not None and state.pool is not None and repr(state.pool) not in text:
            text = f"pool {state.pool!r}: {text}"
        if error.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED and "upgrade head" in text:
            schema = f" --schema {state.schema}" if state is not None and state.schema else ""
            text += f" (from the command line: {PROG}{schema} migrate)"
        return text
    if isinstance(error, exc.SQLAlchemyError):
        where = state.shown_url if state is not None else "the database"
        return str(translate(error, where))
    if isinstance(error, CommandError):
        return f"migrations: {error}"
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text: {error.reason} at byte {error.start}"
    if isinstance(error, OSError):
        name = f" {error.filename}" if error.filename else ""
        return f"cannot access{name}: {error.strerror or error}"
    return f"unexpected {type(error).__name__}: {error} (set {DEBUG_ENV}=1 for a traceback)"


class App(click.Group):
    """The command group, with one-line errors and masked secrets."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as error:
            if os.environ.get(DEBUG_ENV) == "1" and not isinstance(
                error, AgentError | OSError | exc.SQLAlchemyError | CommandError
            ):
                raise
            state = ctx.find_object(CliState)
            message = _describe(error, state)
            raise CommandFailedError(
                _redact(_one_line(message), state.url if state else None)
            ) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; exits with 0, 1 (failure), 2 (usage) or 130 (interrupted)."""
        try:
            result = super().main(
                args, prog_name or PROG, complete_var, standalone_mode=False, **extra
            )
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else PROG
            _fail(
                f"{where}: usage error: {_one_line(error.format_message())} (see --help)",
                EXIT_USAGE,
            )
        except click.ClickException as error:
            _fail(f"{PROG}: error: {_one_line(error.format_message())}", error.exit_code)
        except click.Abort:
            _fail(f"{PROG}: interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError:
            _silence_stdout()
            sys.exit(EXIT_FAILURE)
        code = result if isinstance(result, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


def _fail(message: str, code: int) -> NoReturn:
    try:
        click.echo(message, err=True)
    finally:
        sys.exit(code)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _parse_url(_ctx: click.Context, _param: click.Parameter, value: str) -> URL:
    try:
        return make_url(value)
    except (exc.ArgumentError, ValueError):
        # the value itself is not echoed: it may hold a password
        raise click.BadParameter(
            "not a database URL (use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB)"
        ) from None


def _parse_schema(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if not value:
        return None  # unset, or set to nothing
    try:
        return check_schema(value)
    except AgentError as error:
        raise click.BadParameter(error.message) from None


@click.group(cls=App, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar=URL_ENV,
    default=DEFAULT_URL,
    show_default=True,
    callback=_parse_url,
    metavar="URL",
    help=f"Database URL; else ${URL_ENV}. Its password is never printed.",
)
@click.option(
    "--schema",
    envvar=SCHEMA_ENV,
    default=None,
    callback=_parse_schema,
    metavar="NAME",
    help=f"PostgreSQL schema holding the store's tables (migrate creates it); else ${SCHEMA_ENV}.",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for another writer before failing.",
)
@click.option("--plain", is_flag=True, help="Plain text even on a terminal (no tables, no bars).")
@click.version_option(package_name="agent-pool-store", prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context, url: URL, schema: str | None, lock_timeout: float, plain: bool) -> None:
    """Inspect and administer an agent-pool store (SQLite or PostgreSQL)."""
    ctx.obj = CliState(
        url=url, lock_timeout=lock_timeout, output=Output(plain=plain), schema=schema
    )


for _module in (
    commands_schema,
    commands_pools,
    commands_transfer,
    commands_lifecycle,
    commands_integrity,
):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
