"""What the store's layers call to report what happens inside an operation.

A store operation traced by :mod:`agent_pool_store.telemetry` makes its :class:`Recording` the
*active* one, in a context variable, while it runs; the hooks here report to it, and do
nothing when none is active (OpenTelemetry not installed, or code running outside a store
operation). So the runner, the driver and the follower's waiters call them without knowing
whether anything listens: each costs one context-variable read when nothing does.

The context variable goes where the operation goes: the async store's greenlets run in the
calling task's context, and its writer thread in a copy of it
(:func:`~agent_pool_store.asyncio_bridge.run_in_thread`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar, Token
from typing import Protocol

StatementAttributes = Callable[[], Mapping[str, str | int]]
"""Builds a statement span's attributes; called only when the span is recorded."""


class Recording(Protocol):
    """An operation being traced: what the hooks report to."""

    def retried(self, reason: str) -> None:
        """The operation's unit of work runs again."""
        ...

    def caught_up(self, first: int, last: int) -> None:
        """Records ``first..last`` of another writer were applied to the projections."""
        ...

    def appended(self, kind: str, sequence: int) -> None:
        """The operation committed a record of ``kind`` at ``sequence``."""
        ...

    def reconnected(self, reason: str) -> None:
        """A follower's connection was lost and opened again."""
        ...

    def statement(
        self, system: str, name: str, attributes: StatementAttributes
    ) -> AbstractContextManager[object]:
        """A span around statements run on the driver connection."""
        ...


_ACTIVE: ContextVar[Recording | None] = ContextVar("agent_pool_store_recording", default=None)

NOT_RECORDED: AbstractContextManager[object] = nullcontext()
"""What :func:`statement` returns when no operation is traced (reusable, does nothing)."""


def activate(recording: Recording) -> Token[Recording | None]:
    """Make ``recording`` the active one; give the token to :func:`deactivate`."""
    return _ACTIVE.set(recording)


def deactivate(token: Token[Recording | None]) -> None:
    """Restore the recording that was active before :func:`activate`."""
    _ACTIVE.reset(token)


def active() -> Recording | None:
    """The operation being traced in this context, if any."""
    return _ACTIVE.get()


def retried(reason: str) -> None:
    """The unit of work runs again: a span event (and the retries counter)."""
    recording = _ACTIVE.get()
    if recording is not None:
        recording.retried(reason)


def caught_up(first: int, last: int) -> None:
    """Another writer's records ``first..last`` were applied: a span event (and a counter)."""
    recording = _ACTIVE.get()
    if recording is not None:
        recording.caught_up(first, last)


def appended(kind: str, sequence: int) -> None:
    """The operation committed a record: its kind and cursor on the span (and a counter)."""
    recording = _ACTIVE.get()
    if recording is not None:
        recording.appended(kind, sequence)


def reconnected(reason: str) -> None:
    """A follower's connection was opened again: a span event (and a counter)."""
    recording = _ACTIVE.get()
    if recording is not None:
        recording.reconnected(reason)


def statement(
    system: str, name: str, attributes: StatementAttributes
) -> AbstractContextManager[object]:
    """A child span of the operation around driver-level statements, or nothing."""
    recording = _ACTIVE.get()
    if recording is None:
        return NOT_RECORDED
    return recording.statement(system, name, attributes)
