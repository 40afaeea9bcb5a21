"""The ``agent-pool-store`` command line: migrate, inspect, follow, export, import, verify.

``main()`` is the console script's entry point; ``cli`` is the click group (for
``click.testing.CliRunner``). See ``docs/cli.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent_pool_store.cli.app import cli


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and exit."""
    cli.main(args=list(argv) if argv is not None else None)


__all__ = ["cli", "main"]
