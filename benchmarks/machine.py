"""What a run ran on: processor, memory, versions, load."""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL


def _proc_field(path: str, name: str) -> str | None:
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        return None
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def postgresql_version(url: URL | None) -> str:
    """The server's version, or why it is unknown."""
    if url is None:
        return "not used"
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()


def revision() -> str:
    """The checkout's commit, and whether the library had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "agent_pool_store"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} (agent_pool_store/ has uncommitted changes)" if dirty else commit


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def load_note(machine: dict[str, str]) -> str | None:
    """A warning when other work shared the machine (1-minute load above the core count)."""
    cores = int(machine.get("cores") or 1)
    loads = [
        float(value.split("/")[0])
        for key, value in machine.items()
        if key.startswith("load average")
    ]
    if not loads or max(loads) <= cores:
        return None
    return (
        f"Other work shared this machine during the run (1-minute load average up to "
        f"{max(loads):.1f} on {cores} cores): absolute numbers are inflated and noisier than "
        "on an idle machine; contenders timed in interleaved rounds are hit alike."
    )


def describe(mode: str, postgresql_url: URL | None) -> dict[str, str]:
    """Machine facts and versions, for the report's header."""
    memory = _proc_field("/proc/meminfo", "MemTotal")
    memory_gib = f"{int(memory.split()[0]) / 1024 / 1024:.1f} GiB" if memory else "unknown"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": mode,
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "ram": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgresql_version(postgresql_url),
        "sqlalchemy": _version("SQLAlchemy"),
        "psycopg": _version("psycopg"),
        "pydantic": _version("pydantic"),
        "agent-pool-store": f"{_version('agent-pool-store')} at {revision()}",
        "peers": ", ".join(
            f"{package} {_version(package)}"
            for package in (
                "eventsourcing",
                "langgraph-checkpoint-sqlite",
                "langgraph-checkpoint-postgres",
            )
        ),
        "load average at start (1/5/15 min)": load_average(),
    }
