"""The shell examples of docs/cli.md run as written.

Every ``agent-pool-store …`` line of the page's ``sh`` blocks is run in order, as a reader
would type them, in a temporary directory. Each database URL the page names (hosts that do
not exist here) stands for a SQLite file of its own; the pools the examples name exist in
every database except the ones the examples import into. Pipes to other tools are dropped,
``--follow`` gets a short ``--timeout``. Transcript lines (``$ …``) whose shown output is an
error must fail with one error line; every other command must succeed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent_pool_store import AgentPoolMember, AgentPoolStoreConfig, open_store
from agent_pool_store.cli import cli

ROOT = Path(__file__).parent.parent
PAGE = ROOT / "docs" / "cli.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
URL = re.compile(r"(?:postgresql(?:\+psycopg)?|sqlite)://\S+")
POOLS = ("pool.newsroom", "pool.cli")


def examples() -> list[tuple[str, bool]]:
    """``(command line, shown output is an error)`` in page order; exports as ``export …``."""
    found: list[tuple[str, bool]] = []
    for block in BLOCK.findall(PAGE.read_text(encoding="utf-8")):
        lines = block.splitlines()
        transcript = any(line.startswith("$ ") for line in lines)
        for index, line in enumerate(lines):
            if transcript and not line.startswith("$ "):
                continue  # shown output, not a command
            command = line.removeprefix("$ ").strip()
            if command.startswith("export AGENT_POOL_STORE_URL="):
                found.append((command, False))
            elif command.startswith("agent-pool-store"):
                shown = []
                if line.startswith("$ "):
                    for after in lines[index + 1 :]:
                        if after.startswith("$ "):
                            break
                        shown.append(after)
                found.append((command.split("|")[0].strip(), "error" in " ".join(shown)))
    return found


def populate(url: str) -> None:
    with open_store(url) as store:
        for pool in POOLS:
            store.open_pool(pool, AgentPoolStoreConfig())
            store.record_pool_created(pool)
            store.join_member(pool, AgentPoolMember(run_id="run.a", agent_id="agent.a"))


def test_the_page_has_examples() -> None:
    assert len(examples()) >= 10


def test_cli_examples_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lines = examples()
    urls: dict[str, str] = {}
    for command, _ in lines:
        for url in URL.findall(command):
            urls.setdefault(url, f"sqlite:///{tmp_path / f'database-{len(urls)}.sqlite'}")
    import_targets = {
        urls[url] for command, _ in lines if " import " in command for url in URL.findall(command)
    }
    for url in {*urls.values(), f"sqlite:///{tmp_path / 'agent-pool.sqlite'}"} - import_targets:
        populate(url)

    env = {"AGENT_POOL_STORE_URL": None}
    runner = CliRunner()
    for written, fails in lines:
        command = written
        for url, local in urls.items():
            command = command.replace(url, local)
        if command.startswith("export "):
            env["AGENT_POOL_STORE_URL"] = command.split("=", 1)[1]
            continue
        args = shlex.split(command)[1:]
        if "--follow" in args:
            if "--timeout" in args:
                args[args.index("--timeout") + 1] = "0.2"
            else:
                args += ["--timeout", "0.2"]
        result = runner.invoke(cli, args, env=env, catch_exceptions=False)
        if fails:
            assert result.exit_code != 0, (command, result.stdout)
            assert len(result.stderr.strip().splitlines()) == 1, (command, result.stderr)
        else:
            assert result.exit_code == 0, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr


EMBEDDING = ROOT / "docs" / "embedding.md"


def test_embedding_shell_examples_run_as_written() -> None:
    """docs/embedding.md's commands print offline SQL: they run verbatim, connecting nowhere."""
    lines = [
        line
        for block in BLOCK.findall(EMBEDDING.read_text(encoding="utf-8"))
        for line in block.splitlines()
        if line.startswith("agent-pool-store ")
    ]
    assert lines
    for line in lines:
        assert "--sql" in line, line  # no example here may need a database
        result = CliRunner().invoke(cli, shlex.split(line)[1:])
        assert result.exit_code == 0, (line, result.output)
        assert "agent_pool_records" in result.output
