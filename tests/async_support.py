"""Driving async stores from sync tests: each store on an event loop of its own, in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from agent_pool_store import open_async_store

T = TypeVar("T")

CONTRACT_OPERATIONS = (
    "open_pool",
    "snapshot",
    "record_pool_created",
    "join_member",
    "leave_member",
    "message_receipt",
    "record_message",
    "wake_registration",
    "wake",
    "record_wake",
    "watch",
    "next_event_sequence",
)
"""The twelve operations of the store contract."""

STORE_OPERATIONS = (*CONTRACT_OPERATIONS, "snapshot_json")
"""What every store offers: the twelve, and the snapshot as wire JSON."""

CALL_TIMEOUT = 120.0
"""Seconds a test waits for one call on the loop (a hang fails instead of blocking CI)."""


class LoopThread:
    """An asyncio event loop running in a daemon thread until :meth:`stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(CALL_TIMEOUT)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CALL_TIMEOUT)
        self.loop.close()


async def collect(records: AsyncIterator[T]) -> list[T]:
    """Every item of an async iterator."""
    return [record async for record in records]


class SyncOverAsync:
    """An async store seen through the sync contract: each call awaited on the store's loop.

    So that the contract suite, written once against ``AgentPoolStore``, reruns on the async
    stores. ``watch`` is checked when called and read to the end on the loop.
    """

    def __init__(self, opener: Callable[[], Awaitable[Any]], operations: tuple[str, ...]) -> None:
        self._loop = LoopThread()
        self._operations = operations

        async def opened() -> Any:
            return await opener()

        self.store = self._loop.run(opened())

    def __getattr__(self, name: str) -> Any:
        if name not in self._operations:
            raise AttributeError(name)
        method = getattr(self.store, name)
        if name == "watch":
            return lambda *args, **kwargs: iter(self._loop.run(collect(method(*args, **kwargs))))
        return lambda *args, **kwargs: self._loop.run(method(*args, **kwargs))

    def close(self) -> None:
        try:
            self._loop.run(self.store.close())
        finally:
            self._loop.stop()


def open_async_as_sync(url: str, **options: Any) -> Any:
    """The async SQL store on ``url``, driven through the sync contract (and ``verify``)."""
    return SyncOverAsync(
        lambda: open_async_store(url, **options), (*CONTRACT_OPERATIONS, "verify", "pools")
    )
