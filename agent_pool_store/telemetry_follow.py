"""A follower's telemetry: its span, its reads under it, its reconnects, its lag.

:func:`follow` wraps the follow loop (``follow_loop.follow_records``) of a store whose
operations are traced (:mod:`agent_pool_store.telemetry`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from agent_pool_store import telemetry_names as names
from agent_pool_store.domain import AgentPoolStoreRecord
from agent_pool_store.follow_loop import Follower, Waiter
from agent_pool_store.telemetry import CurrentSpan, OperationRecording, StoreTelemetry

Reader = Callable[[int], Iterable[AgentPoolStoreRecord]]
"""How a follower reads: the records after a sequence (``watch``)."""
FollowLoop = Callable[[Reader, Callable[[], Waiter]], Follower]
"""The follow loop over a reader and a waiter opener (``follow_loop.follow_records``)."""


def follow(
    store: StoreTelemetry,
    pool_id: str,
    read: Reader,
    open_waiter: Callable[[], Waiter],
    loop: FollowLoop,
) -> Follower:
    """``loop(read, open_waiter)`` (the follow loop) observed: see :class:`_Following`."""
    return _Following(store, pool_id).run(read, open_waiter, loop)


class _Following:
    """A follower's span, from its first read to its end, and its lag.

    The span is never left current while the consumer holds a record: it is made current
    only around the follower's own work (opening and closing its waiter, waiting, reading),
    so its reads (``agent_pool_store.watch``) and its reconnect events land in it, and
    whatever the consumer does lands wherever the consumer's spans go.
    """

    def __init__(self, store: StoreTelemetry, pool_id: str) -> None:
        self._store = store
        self._pool_id = pool_id
        self._recording: OperationRecording | None = None
        self.records = 0

    def _current(self) -> CurrentSpan:
        assert self._recording is not None
        return CurrentSpan(self._recording)

    def run(
        self,
        read: Reader,
        open_waiter: Callable[[], Waiter],
        loop: FollowLoop,
    ) -> Follower:
        self._recording = self._store.start("follow", self._pool_id)
        error: BaseException | None = None
        try:
            yield from loop(self._observed_read(read), self._observed_waiter(open_waiter))
        except BaseException as raised:
            error = raised
            raise
        finally:
            self._recording.span.set_attribute(names.RECORDS, self.records)
            self._recording.end(error)

    def _observed_waiter(self, open_waiter: Callable[[], Waiter]) -> Callable[[], Waiter]:
        def opened() -> Waiter:
            current = self._current()
            try:
                return _ObservedWaiter(open_waiter(), self)
            finally:
                current.leave()

        return opened

    def _observed_read(self, read: Reader) -> Callable[[int], Iterator[AgentPoolStoreRecord]]:
        telemetry = self._store.telemetry
        attributes = self._store.system_attributes

        def observed(after: int) -> Iterator[AgentPoolStoreRecord]:
            started = time.monotonic()
            found = 0
            current = self._current()
            try:
                records = iter(read(after))
            finally:
                current.leave()
            try:
                while True:
                    current = self._current()
                    try:
                        record = next(records, None)
                    finally:
                        current.leave()
                    if record is None:
                        return
                    found += 1
                    telemetry.follow_lag_duration.record(time.monotonic() - started, attributes)
                    yield record
            finally:
                if found:
                    self.records += found
                    telemetry.follow_lag_records.record(found, attributes)

        return observed


class _ObservedWaiter:
    """A follower's waiter, run with the follower's span current (its reconnects land there)."""

    def __init__(self, waiter: Waiter, following: _Following) -> None:
        self._waiter = waiter
        self._following = following

    def arm(self) -> None:
        self._waiter.arm()

    def wait(self, seconds: float) -> bool:
        current = self._following._current()
        try:
            return self._waiter.wait(seconds)
        finally:
            current.leave()

    def close(self) -> None:
        current = self._following._current()
        try:
            self._waiter.close()
        finally:
            current.leave()
