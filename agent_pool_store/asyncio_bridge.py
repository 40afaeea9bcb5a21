"""One core for sync and asyncio: the sync code, run in a greenlet, awaits the event loop.

The async stores (:mod:`agent_pool_store.async_face`) run the sync stores' code in a
greenlet with :func:`run_in_greenlet` (SQLAlchemy's ``greenlet_spawn``, what
``AsyncConnection.run_sync`` uses): every statement on an asyncio engine's connection is
awaited on the event loop by SQLAlchemy's driver adaptation, so the sync code blocks only its
greenlet, never the loop. What the stores' code awaits itself (a pause between retries, a
PostgreSQL notification, a follower's poll) goes through :func:`wait_for`, which does the
same. Both need the ``greenlet`` package, a dependency of this package
(``SQLAlchemy[asyncio]``).

What must block a thread (SQLite's ``fsync`` at ``COMMIT``, its wait for the write lock)
runs in a worker thread with :func:`run_in_thread`, awaited the same way.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import TypeVar

from sqlalchemy.util import await_only, greenlet_spawn
from sqlalchemy.util.concurrency import in_greenlet

T = TypeVar("T")


def wait_for(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` from the async store's greenlet (the event loop runs meanwhile)."""
    return await_only(awaitable)


async def run_in_greenlet(function: Callable[..., T], *args: object) -> T:
    """Run the sync ``function(*args)`` in a greenlet whose waits await this event loop."""
    return await greenlet_spawn(function, *args)


def on_event_loop() -> bool:
    """Whether the calling code runs in an async store's greenlet, on the event loop's thread.

    Such code must not block: it awaits instead (:func:`wait_for`).
    """
    return in_greenlet()


async def run_in_thread(executor: Executor, function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` in a thread of ``executor``, awaited.

    The caller's context variables go with it. If the awaiting task is cancelled before the
    call started, it never runs; once started, it runs to its end (nothing can stop a
    thread), and the cancellation is raised when it has ended, so that whatever it did is
    settled, and what it held (a connection) is free again, before the caller goes on.
    """
    call = functools.partial(contextvars.copy_context().run, function, *args)
    running = executor.submit(call)
    waiting = asyncio.wrap_future(running)
    try:
        return await asyncio.shield(waiting)
    except asyncio.CancelledError:
        if running.cancel():  # not started: it never will
            raise
        while not waiting.done():
            try:
                await asyncio.wait([waiting])
            except asyncio.CancelledError:
                continue  # cancelled again: still wait for the thread
        if not waiting.cancelled():
            waiting.exception()  # seen: the caller gets the cancellation, not this
        raise


def _sleep_on_loop(seconds: float) -> None:
    wait_for(asyncio.sleep(seconds))


def pause(seconds: float) -> None:
    """Sleep ``seconds``, without blocking the event loop when called on it.

    ``asyncio.sleep`` awaited from an async store's greenlet (other tasks run meanwhile),
    ``time.sleep`` anywhere else.
    """
    if on_event_loop():
        _sleep_on_loop(seconds)
    else:
        time.sleep(seconds)


def others_may_run() -> Callable[[], None] | None:
    """In an async store's greenlet, what lets other tasks run in CPU-bound work.

    The sync core runs in a greenlet on the event loop's thread: its Python work (parsing a
    large snapshot's rows) holds the loop until it awaits. Long loops call this now and then
    (``asyncio.sleep(0)``). ``None`` elsewhere: nothing to do.
    """
    return functools.partial(_sleep_on_loop, 0) if on_event_loop() else None
