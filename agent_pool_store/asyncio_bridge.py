"""One core for sync and asyncio: the sync code, run in a greenlet, awaits the event loop.

The async stores (:mod:`agent_pool_store.async_face`) run the sync stores' code in a
greenlet with :func:`run_in_greenlet` (SQLAlchemy's ``greenlet_spawn``, what
``AsyncConnection.run_sync`` uses): every statement on an asyncio engine's connection is
awaited on the event loop by SQLAlchemy's driver adaptation, so the sync code blocks only its
greenlet, never the loop. What the stores' code awaits itself (a pause between retries, a
PostgreSQL notification, a follower's poll) goes through :func:`wait_for`, which does the
same. Both need the ``greenlet`` package, a dependency of this package
(``SQLAlchemy[asyncio]``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.util import await_only, greenlet_spawn

T = TypeVar("T")


def wait_for(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` from the async store's greenlet (the event loop runs meanwhile)."""
    return await_only(awaitable)


async def run_in_greenlet(function: Callable[..., T], *args: object) -> T:
    """Run the sync ``function(*args)`` in a greenlet whose waits await this event loop."""
    return await greenlet_spawn(function, *args)


def pause_in_greenlet(seconds: float) -> None:
    """``asyncio.sleep(seconds)``, awaited from the greenlet (other tasks run meanwhile)."""
    wait_for(asyncio.sleep(seconds))


def pause_for(engine: Engine) -> Callable[[float], None]:
    """How the store's code pauses on ``engine``.

    ``time.sleep``; on an asyncio engine's sync facade, ``asyncio.sleep`` awaited from the
    greenlet, so that other tasks run meanwhile.
    """
    return pause_in_greenlet if engine.dialect.is_async else time.sleep


def _let_others_run() -> None:
    wait_for(asyncio.sleep(0))


def others_may_run(engine: Engine) -> Callable[[], None] | None:
    """On an asyncio engine, what lets other tasks run in the middle of CPU-bound work.

    The sync core runs in a greenlet on the event loop's thread: its Python work (parsing a
    large snapshot's rows) holds the loop until it awaits. Long loops call this now and then
    (``asyncio.sleep(0)``). ``None`` on a sync engine: nothing to do.
    """
    return _let_others_run if engine.dialect.is_async else None
