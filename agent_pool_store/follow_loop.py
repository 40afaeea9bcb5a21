"""Following a pool: the loop behind every store's ``follow``, independent of the backend.

A follower keeps the cursor of the last record it yielded and only ever re-reads the log
with ``watch(pool_id, last_cursor)``, so it can neither skip nor repeat a record. Between
reads it sleeps on a :class:`Waiter`, which only tells it *when* reading again is worth it
(PostgreSQL ``LISTEN``, SQLite ``PRAGMA data_version``, a condition variable in memory); a
spurious wake-up costs one empty read, never a wrong answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterable
from typing import Protocol

from agent_pool_store import arguments
from agent_pool_store.contract import CursorArg
from agent_pool_store.domain import AgentPoolStoreRecord
from agent_pool_store.errors import AgentError

DEFAULT_POLL_INTERVAL = 0.05
"""Seconds between change checks (SQLite) and between checks of the ``stop`` event."""

Follower = Generator[AgentPoolStoreRecord, None, None]
"""What ``follow`` returns: an iterator of records that can also be ``close()``d."""

_IDLE_SLICE = 1.0
"""Longest single wait when neither ``stop`` nor ``timeout`` asks for shorter ones."""


class Waiter(Protocol):
    """Tells a follower when the log may have changed."""

    def arm(self) -> None:
        """Called right before each read: remember the current state to compare against."""
        ...

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds``; return whether the log may have changed since :meth:`arm`."""
        ...

    def close(self) -> None:
        """Release what the waiter holds (a connection, …)."""
        ...


class ConditionWaiter:
    """Waits on a :class:`threading.Condition` guarding a version counter (in-memory store)."""

    def __init__(self, condition: threading.Condition, version: Callable[[], int]) -> None:
        self._condition = condition
        self._version = version
        self._seen = 0

    def arm(self) -> None:
        with self._condition:
            self._seen = self._version()

    def wait(self, seconds: float) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: self._version() != self._seen, seconds)

    def close(self) -> None:
        """Nothing to release."""


class PollingWaiter:
    """Compares a version counter every ``poll_interval`` seconds, pausing with ``pause``.

    For the in-memory store on asyncio, where ``pause`` awaits ``asyncio.sleep`` (a
    condition variable would block the event loop).
    """

    def __init__(
        self, version: Callable[[], int], pause: Callable[[float], None], poll_interval: float
    ) -> None:
        self._version = version
        self._pause = pause
        self._poll_interval = poll_interval
        self._seen = 0

    def arm(self) -> None:
        self._seen = self._version()

    def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self._version() == self._seen:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._pause(min(self._poll_interval, left))
        return True

    def close(self) -> None:
        """Nothing to release."""


def check_follow_arguments(
    pool_id: object, cursor: CursorArg, timeout: float | None, poll_interval: float
) -> tuple[str, int]:
    """The pool id and start sequence of a follow, or AgentError for a bad argument."""
    pool = arguments.identifier("pool_id", pool_id)
    after = arguments.cursor_sequence(cursor)
    if timeout is not None and (isinstance(timeout, bool) or not timeout >= 0):
        raise AgentError.invalid_argument(f"timeout must be None or >= 0, got {timeout!r}")
    if isinstance(poll_interval, bool) or not poll_interval > 0:
        raise AgentError.invalid_argument(f"poll_interval must be > 0, got {poll_interval!r}")
    return pool, after


def follow_records(
    read: Callable[[int], Iterable[AgentPoolStoreRecord]],
    after: int,
    open_waiter: Callable[[], Waiter],
    *,
    timeout: float | None,
    stop: threading.Event | None,
    poll_interval: float,
) -> Follower:
    """Yield the records after ``after`` as they commit (see ``SqlAgentPoolStore.follow``).

    ``read(sequence)`` returns the records after ``sequence`` in order (``watch``).
    ``open_waiter`` is called when iteration starts; the waiter is closed when the iterator
    ends, is closed, or is garbage-collected.
    """
    waiter = open_waiter()
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        changed = True  # read once before the first wait
        last_look = False  # the read after the deadline, for a commit the waiter missed
        while True:
            if stop is not None and stop.is_set():
                return
            if changed:
                waiter.arm()
                got = False
                for record in read(after):
                    yield record
                    after = record.cursor.sequence
                    got = True
                    if stop is not None and stop.is_set():
                        return
                if got:
                    if timeout is not None:
                        deadline, last_look = time.monotonic() + timeout, False
                    continue  # more may have come while the consumer worked
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                if last_look:
                    return
                changed = last_look = True
                continue
            seconds = poll_interval if stop is not None else _IDLE_SLICE
            if deadline is not None:
                seconds = min(seconds, deadline - now)
            changed = waiter.wait(seconds)
    finally:
        waiter.close()
