"""OpenTelemetry for the stores: a span per operation, its events, and the store's metrics.

Install the ``otel`` extra (``pip install 'agent-pool-store[otel]'``, which brings
``opentelemetry-api`` only) and every store reports to OpenTelemetry's global tracer and
meter providers: nothing is recorded until the application configures an SDK, and then
every store, opened before or after, reports to it. To report elsewhere, give a store a
:class:`Telemetry` of your own (``open_store(url, telemetry=Telemetry(tracer_provider=…,
meter_provider=…))``). Without the extra nothing of this module runs.

What is reported (names in :mod:`agent_pool_store.telemetry_names`; see
``docs/observability.md``):

- a span ``agent_pool_store.<operation>`` per store operation (``watch``: one per batch read),
  under the caller's current span, with ``db.system.name``, the pool id, the kind and cursor
  of the record an append wrote; retries and catch-ups as events; errors with their kind
  and retry classification;
- a ``CLIENT`` span per call of the driver inside it (:mod:`agent_pool_store.sql.statement_spans`);
- a span ``agent_pool_store.follow`` per follower, from its first read to its end, with its
  reconnects as events and its reads as children (:mod:`agent_pool_store.telemetry_follow`);
- metrics: operation duration, records appended, records caught up, retries, lock-wait
  timeouts, follow lag (records and seconds) and follower reconnects.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import Token
from importlib import metadata
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from agent_pool_store import telemetry_hooks
from agent_pool_store import telemetry_names as names
from agent_pool_store.domain import AgentPoolStoreRecord
from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.telemetry_hooks import Recording, StatementAttributes

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode

    AVAILABLE = True
    """Whether OpenTelemetry's API is installed (the ``otel`` extra)."""
except ImportError:  # pragma: no cover - exercised by tests/test_telemetry_install.py
    AVAILABLE = False

if TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue

P = ParamSpec("P")
T = TypeVar("T")

Attributes = Mapping[str, "AttributeValue"]

MAX_POOL_ID_SHOWN = 1024
"""A pool id argument longer than this (an invalid one) is left out of the span."""


def _version() -> str:
    try:
        return metadata.version("agent-pool-store")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return ""


class Telemetry:
    """Where a store reports: a tracer provider and a meter provider.

    Each left out (``None``) is OpenTelemetry's global one, which stays a no-op until the
    application sets an SDK's. Needs the ``otel`` extra (HostConfigurationNeeded without it).
    Give the same object to as many stores as you like.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        if not AVAILABLE:
            raise AgentError(
                AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                RetryClassification.HOST_CONFIGURATION_NEEDED,
                "telemetry needs OpenTelemetry: pip install 'agent-pool-store[otel]'",
            )
        version = _version()
        self.tracer = trace.get_tracer(names.SCOPE, version, tracer_provider)
        meter = metrics.get_meter(names.SCOPE, version, meter_provider)
        self.operation_duration = meter.create_histogram(
            names.OPERATION_DURATION,
            unit="s",
            description="Duration of store operations (a watch: of one batch read).",
            explicit_bucket_boundaries_advisory=names.DURATION_BUCKETS,
        )
        self.records_appended = meter.create_counter(
            names.RECORDS_APPENDED, unit="{record}", description="Records appended and committed."
        )
        self.records_caught_up = meter.create_counter(
            names.RECORDS_CAUGHT_UP,
            unit="{record}",
            description="Records of other writers applied to the projections by an operation.",
        )
        self.retries = meter.create_counter(
            names.RETRIES, unit="{retry}", description="Units of work run again."
        )
        self.lock_wait_timeouts = meter.create_counter(
            names.LOCK_WAIT_TIMEOUTS,
            unit="{timeout}",
            description="Operations that failed with Timeout: the pool's lock was held too long.",
        )
        self.follow_lag_records = meter.create_histogram(
            names.FOLLOW_LAG_RECORDS,
            unit="{record}",
            description="Records a follower's read found: how far behind the log it was.",
        )
        self.follow_lag_duration = meter.create_histogram(
            names.FOLLOW_LAG_DURATION,
            unit="s",
            description="Seconds from a follower's read to its delivery of each record found.",
            explicit_bucket_boundaries_advisory=names.DURATION_BUCKETS,
        )
        self.follow_reconnects = meter.create_counter(
            names.FOLLOW_RECONNECTS,
            unit="{reconnect}",
            description="Times a follower's listening connection was lost and opened again.",
        )


@functools.cache
def _global_telemetry() -> Telemetry:
    """The global providers' :class:`Telemetry`, made once."""
    return Telemetry()


def store_telemetry(telemetry: Telemetry | None, system: str | None) -> StoreTelemetry | None:
    """What a store on the database system ``system`` (``None``: in memory) reports through.

    ``telemetry``, or the global providers' when it is ``None``; ``None`` without the
    ``otel`` extra: the store then reports nothing, at no cost.
    """
    if telemetry is None:
        if not AVAILABLE:
            return None
        telemetry = _global_telemetry()
    return StoreTelemetry(telemetry, system)


def _qualified(error: BaseException) -> str:
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _error_attributes(error: BaseException) -> dict[str, AttributeValue]:
    """``error.type`` and, for an AgentError, its kind and retry classification."""
    if isinstance(error, AgentError):
        return {
            names.ERROR_TYPE: error.kind.value,
            names.ERROR_KIND: error.kind.value,
            names.ERROR_RETRY: error.retry.value,
            names.ERROR_OUTCOME_UNKNOWN: error.outcome_unknown,
        }
    return {names.ERROR_TYPE: _qualified(error)}


def _ended_normally(error: BaseException | None) -> bool:
    """A follower closed or cancelled by its consumer has not failed."""
    return error is None or isinstance(error, GeneratorExit | asyncio.CancelledError)


class _StatementSpan:
    """Ends a statement span; marks it failed if the driver raised."""

    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def __enter__(self) -> Span:
        return self._span

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        span = self._span
        if error is not None and span.is_recording():
            span.set_attribute(names.ERROR_TYPE, _qualified(error))
            code = getattr(error, "sqlstate", None) or getattr(error, "sqlite_errorname", None)
            if isinstance(code, str):
                span.set_attribute(names.DB_RESPONSE_STATUS_CODE, code)
            span.set_status(Status(StatusCode.ERROR, _qualified(error)))
        span.end()


class OperationRecording:
    """One traced operation (or follower): its span, and what the hooks report to it.

    Made by :meth:`StoreTelemetry.start`; for the telemetry modules only.
    """

    __slots__ = ("_caught_up", "_store", "attributes", "context", "span")

    def __init__(self, store: StoreTelemetry, span: Span, attributes: Attributes) -> None:
        self._store = store
        self.span = span
        self.context = trace.set_span_in_context(span)
        """The context with the span current: its statements' parent."""
        self.attributes = attributes
        """The operation's metric attributes: its name and database system."""
        self._caught_up = 0

    def retried(self, reason: str) -> None:
        self.span.add_event(names.RETRY_EVENT, {names.RETRY_REASON: reason})
        self._store.telemetry.retries.add(1, self.attributes)
        self._caught_up = 0  # the unit rolled back: what it applied counts when it commits

    def caught_up(self, first: int, last: int) -> None:
        self.span.add_event(
            names.CATCH_UP_EVENT, {names.CATCH_UP_FIRST: first, names.CATCH_UP_LAST: last}
        )
        self._caught_up += last - first + 1

    def appended(self, kind: str, sequence: int) -> None:
        self.span.set_attributes({names.RECORD_KIND: kind, names.CURSOR: sequence})
        self._store.telemetry.records_appended.add(1, self._store.kind_attributes(kind))

    def reconnected(self, reason: str) -> None:
        self.span.add_event(names.RECONNECT_EVENT, {names.RECONNECT_REASON: reason})
        self._store.telemetry.follow_reconnects.add(1, self._store.system_attributes)

    def statement(
        self, system: str, name: str, attributes: StatementAttributes
    ) -> AbstractContextManager[object]:
        if not self.span.is_recording():  # nothing records the operation: nor its statements
            return telemetry_hooks.NOT_RECORDED
        span = self._store.telemetry.tracer.start_span(
            name,
            self.context,
            SpanKind.CLIENT,
            attributes={names.DB_SYSTEM_NAME: system, **attributes()},
        )
        return _StatementSpan(span)

    def end(self, error: BaseException | None) -> dict[str, AttributeValue] | None:
        """End the span (failed unless ``error`` is a normal end); the error's attributes."""
        span = self.span
        failure = None
        if _ended_normally(error):
            if self._caught_up:
                self._store.telemetry.records_caught_up.add(
                    self._caught_up, self._store.system_attributes
                )
        else:
            assert error is not None
            failure = _error_attributes(error)
            if span.is_recording():
                span.set_attributes(failure)
                span.record_exception(error)
                description = str(error) if isinstance(error, AgentError) else _qualified(error)
                span.set_status(Status(StatusCode.ERROR, description))
            if isinstance(error, AgentError) and error.kind is AgentErrorKind.TIMEOUT:
                self._store.telemetry.lock_wait_timeouts.add(1, self.attributes)
        span.end()
        return failure


class CurrentSpan:
    """Makes a span the current one and its recording the active one, until :meth:`leave`."""

    __slots__ = ("_context", "_recording")

    def __init__(self, recording: OperationRecording) -> None:
        self._context = otel_context.attach(recording.context)
        self._recording: Token[Recording | None] = telemetry_hooks.activate(recording)

    def leave(self) -> None:
        telemetry_hooks.deactivate(self._recording)
        otel_context.detach(self._context)


class StoreTelemetry:
    """A :class:`Telemetry` bound to one store's database system: what the store calls."""

    def __init__(self, telemetry: Telemetry, system: str | None) -> None:
        self.telemetry = telemetry
        self.system = system
        self.system_attributes: Attributes = (
            {} if system is None else {names.DB_SYSTEM_NAME: system}
        )
        self._by_operation: dict[str, Attributes] = {}
        self._by_kind: dict[str, Attributes] = {}

    def operation_attributes(self, operation: str) -> Attributes:
        """The metric attributes of ``operation`` on this store (made once)."""
        found = self._by_operation.get(operation)
        if found is None:
            found = {names.OPERATION: operation, **self.system_attributes}
            self._by_operation[operation] = found
        return found

    def kind_attributes(self, kind: str) -> Attributes:
        """The attributes of an appended record of ``kind`` (made once)."""
        found = self._by_kind.get(kind)
        if found is None:
            found = {names.RECORD_KIND: kind, **self.system_attributes}
            self._by_kind[kind] = found
        return found

    def start(self, operation: str, pool_id: object) -> OperationRecording:
        attributes = self.operation_attributes(operation)
        span_attributes = dict(attributes)
        if isinstance(pool_id, str) and len(pool_id) <= MAX_POOL_ID_SHOWN:
            span_attributes[names.POOL_ID] = pool_id
        span = self.telemetry.tracer.start_span(
            names.OPERATION_SPAN_PREFIX + operation, attributes=span_attributes
        )
        return OperationRecording(self, span, attributes)

    def run(
        self,
        operation: str,
        pool_id: object,
        describe: Callable[[Any], Attributes] | None,
        call: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``call(*args, **kwargs)`` as the operation's span, current while it runs."""
        recording = self.start(operation, pool_id)
        current = CurrentSpan(recording)
        started = time.perf_counter()
        try:
            result = call(*args, **kwargs)
        except BaseException as error:
            self._ended(recording, time.perf_counter() - started, error)
            raise
        else:
            if describe is not None and recording.span.is_recording():
                recording.span.set_attributes(describe(result))
            self._ended(recording, time.perf_counter() - started, None)
            return result
        finally:
            current.leave()

    def _ended(
        self, recording: OperationRecording, seconds: float, error: BaseException | None
    ) -> None:
        failure = recording.end(error)
        attributes = (
            recording.attributes
            if failure is None
            else {
                **recording.attributes,
                names.ERROR_TYPE: failure[names.ERROR_TYPE],
            }
        )
        self.telemetry.operation_duration.record(seconds, attributes)


class Traced(Protocol):
    """A store whose operations :func:`traced` can wrap."""

    _telemetry: StoreTelemetry | None


S = TypeVar("S", bound=Traced)


def traced(
    operation: str, describe: Callable[[Any], Attributes] | None = None
) -> Callable[[Callable[Concatenate[S, P], T]], Callable[Concatenate[S, P], T]]:
    """Trace a store method as the operation ``operation`` (its first argument: the pool id).

    ``describe(result)`` gives attributes of the span from the result, when it is recorded.
    Without telemetry (``store._telemetry is None``) the method runs as it is.
    """

    def decorate(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
        @functools.wraps(method)
        def call(store: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            telemetry = store._telemetry
            if telemetry is None:
                return method(store, *args, **kwargs)
            pool_id = args[0] if args else kwargs.get("pool_id")
            return telemetry.run(operation, pool_id, describe, method, store, *args, **kwargs)

        return call

    return decorate


def records_read(batch: Sequence[AgentPoolStoreRecord]) -> Attributes:
    """A watch batch's span attributes: how many records it read, and the last one's cursor."""
    if not batch:
        return {names.RECORDS: 0}
    return {names.RECORDS: len(batch), names.CURSOR: batch[-1].cursor.sequence}
