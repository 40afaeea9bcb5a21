"""The ``alembic`` command of a checkout (the repository's ``alembic.ini``), as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).parent.parent


def checkout_alembic(*args: str, **variables: str) -> str:
    """Run ``alembic ARGS`` in the repository root; its standard output (it must succeed).

    The environment is this one without any ``AGENT_POOL_STORE_*`` variable, plus
    ``variables`` (e.g. ``AGENT_POOL_STORE_URL=…``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_POOL_STORE_")}
    env.update(variables)
    done = subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
