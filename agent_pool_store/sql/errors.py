"""Translation of driver and SQLAlchemy errors into :class:`AgentError`.

Transient failures (SQLite busy/locked, PostgreSQL serialization failures, deadlocks and
unique violations on the record log from a concurrent foreign writer) are retried by the
store; whatever leaves the public API is an AgentError whose message names no secret.
"""

from __future__ import annotations

from sqlalchemy import exc
from sqlalchemy.engine import URL

from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification
from agent_pool_store.sql.settings import safe_url, url_secrets

_PG_TRANSIENT = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_PG_LOCK_TIMEOUT = {"55P03", "57014"}  # lock_not_available, query_canceled (timeouts)
_PG_UNIQUE = "23505"


def _sqlstate(error: exc.DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def first_line(error: object) -> str:
    """The first line of an error's message (or its type's name)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def is_transient(error: exc.DBAPIError) -> bool:
    """Whether retrying the whole unit of work may succeed."""
    state = _sqlstate(error)
    if state is not None:
        return state in _PG_TRANSIENT or state == _PG_UNIQUE or state in _PG_LOCK_TIMEOUT
    if is_busy(error):
        return True
    message = str(error.orig).lower()
    if isinstance(error, exc.IntegrityError):
        return "unique" in message and "agent_pool_records" in message
    return False


def is_disconnect(error: exc.DBAPIError) -> bool:
    """Whether the connection was lost (rather than the server refusing the statement).

    After a statement or a ``COMMIT`` was sent, such an error says nothing about whether it
    took effect: the reply may be what was lost.
    """
    if error.connection_invalidated:
        return True
    return _sqlstate(error) is None and isinstance(error, exc.OperationalError | exc.InterfaceError)


def is_lock_timeout(error: exc.DBAPIError) -> bool:
    """Whether a PostgreSQL statement gave up waiting for a lock (``lock_timeout``)."""
    return _sqlstate(error) in _PG_LOCK_TIMEOUT


def is_busy(error: exc.DBAPIError) -> bool:
    """Whether SQLite gave up waiting for its write lock (busy timeout, or no wait possible)."""
    message = str(error.orig).lower()
    return isinstance(error, exc.OperationalError) and ("locked" in message or "busy" in message)


def timeout_error(what: str, seconds: float) -> AgentError:
    """The bounded wait for the write lock ran out."""
    return AgentError(
        AgentErrorKind.TIMEOUT,
        RetryClassification.RETRYABLE,
        f"{what}: another writer held the pool's write lock for more than {seconds:g}s",
    )


def driver_cause(error: BaseException, url: URL | None = None) -> BaseException | None:
    """The driver's own exception behind ``error``, fit to be an AgentError's ``__cause__``.

    It keeps its type, message and attributes (psycopg's ``sqlstate`` and ``diag``), so a
    caller can reach it (``error.__cause__``), but not its traceback or chain: a traceback
    of an AgentError shows the driver's one line, never frames from inside SQLAlchemy or
    the driver. ``error`` is SQLAlchemy's wrapper or the driver's exception itself. ``None``
    when there is none, or when its text holds a secret of ``url``.
    """
    cause: BaseException | None
    if isinstance(error, exc.DBAPIError):
        cause = error.orig
    else:
        cause = None if isinstance(error, exc.SQLAlchemyError) else error
    if not isinstance(cause, BaseException):
        return None
    if url is not None and any(secret in str(cause) for secret in url_secrets(url)):
        return None
    cause.__cause__ = None
    cause.__suppress_context__ = True
    return cause.with_traceback(None)


def translate(error: exc.SQLAlchemyError, what: str) -> AgentError:
    """An AgentError for a non-transient database error.

    Raise it ``from driver_cause(error, url)``, so that the driver's error stays reachable.
    """
    if isinstance(error, exc.TimeoutError):  # the connection pool's checkout wait ran out
        return AgentError(
            AgentErrorKind.TIMEOUT,
            RetryClassification.RETRYABLE,
            f"{what}: no connection of the engine's pool became free in time: {first_line(error)}",
        )
    if isinstance(error, exc.DBAPIError):
        detail = first_line(error.orig)
        if "readonly database" in detail or _sqlstate(error) == "25006":
            return AgentError(
                AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                RetryClassification.HOST_CONFIGURATION_NEEDED,
                f"{what}: the database is read-only, so nothing can be written: {detail}",
            )
        if isinstance(error, exc.ProgrammingError) or "no such table" in detail:
            return AgentError(
                AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                RetryClassification.HOST_CONFIGURATION_NEEDED,
                f"{what}: database schema problem (run the migrations?): {detail}",
            )
        if isinstance(error, exc.OperationalError | exc.InterfaceError):
            return AgentError(
                AgentErrorKind.HOST_CONFIGURATION_NEEDED,
                RetryClassification.RETRYABLE,
                f"{what}: database unavailable: {detail}",
            )
        return AgentError(
            AgentErrorKind.JOURNAL_FAILURE,
            RetryClassification.NOT_RETRYABLE,
            f"{what}: database error: {detail}",
        )
    return AgentError(
        AgentErrorKind.JOURNAL_FAILURE,
        RetryClassification.NOT_RETRYABLE,
        f"{what}: {type(error).__name__}: {error}",
    )


def follow_unavailable(url: URL, reason: str) -> AgentError:
    """A follower could not open or keep its dedicated connection."""
    return AgentError(
        AgentErrorKind.HOST_CONFIGURATION_NEEDED,
        RetryClassification.RETRYABLE,
        f"following {safe_url(url)}: database unavailable: {reason}",
    )
