"""Checks on the arguments of store operations, made before anything is read or written."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from agent_pool_store.domain.identifiers import validate_identifier
from agent_pool_store.domain.records import RECORD_PAYLOAD, AgentPoolStoreCursor
from agent_pool_store.errors import AgentError

M = TypeVar("M", bound=BaseModel)

MAX_U64 = 2**64 - 1
"""The largest cursor sequence of the wire format."""


def identifier(name: str, value: object) -> str:
    """``value`` as a valid identifier, or AgentError naming the argument."""
    if not isinstance(value, str):
        raise AgentError.invalid_argument(f"{name} must be a string, not {type(value).__name__}")
    try:
        return validate_identifier(value)
    except ValueError as error:
        raise AgentError.invalid_argument(f"invalid {name}: {error}") from None


def instance(name: str, value: object, expected: type[M]) -> M:
    """``value`` if it is an instance of the domain model ``expected``, else AgentError.

    Its content is checked with the record it goes into (:func:`record_json`).
    """
    if not isinstance(value, expected):
        raise AgentError.invalid_argument(
            f"{name} must be {expected.__name__}, not {type(value).__name__}"
        )
    return value


def model(name: str, value: object, expected: type[M]) -> M:
    """``value`` if it is a valid instance of the domain model ``expected``, else AgentError.

    The instance is checked again through its wire JSON, so a model built without validation
    (``model_construct``, ``model_copy(update=…)``) cannot put an unreadable record in a log.
    """
    checked = instance(name, value, expected)
    try:
        type(checked).model_validate_json(checked.model_dump_json())
    except (ValidationError, ValueError, TypeError) as error:
        raise AgentError.invalid_argument(f"invalid {name}: {_reason(error)}") from None
    return checked


def record_json(payload: BaseModel, models: Mapping[str, BaseModel]) -> str:
    """The wire JSON of a record ``payload`` built from the model arguments ``models``.

    The JSON is read back as a record payload, once for all arguments, so a model built
    without validation (``model_construct``, ``model_copy(update=…)``) cannot put an
    unreadable record in a log. If it does not read, each argument is checked on its own
    (:func:`model`), so the error names the argument at fault.
    """
    try:
        text = payload.model_dump_json()
        RECORD_PAYLOAD.validator.validate_json(text)
    except (ValidationError, ValueError, TypeError) as error:
        for name, value in models.items():
            model(name, value, type(value))
        raise AgentError.invalid_argument(f"invalid record: {_reason(error)}") from None
    return text


def _reason(error: Exception) -> str:
    detail = error.errors()[0] if isinstance(error, ValidationError) else None
    return f"{'.'.join(map(str, detail['loc']))}: {detail['msg']}" if detail else str(error)


def cursor_sequence(value: object) -> int:
    """The sequence of a watch position (cursor, int or None), or AgentError."""
    if value is None:
        return 0
    if isinstance(value, AgentPoolStoreCursor):
        return value.sequence
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise AgentError.invalid_argument(f"cursor must not be negative, got {value}")
        if value > MAX_U64:
            raise AgentError.invalid_argument(f"cursor must fit in 64 bits, got {value}")
        return value
    raise AgentError.invalid_argument(
        f"cursor must be AgentPoolStoreCursor, int or None, not {type(value).__name__}"
    )


def duration(name: str, value: object) -> timedelta | None:
    """A ``timedelta`` or a number of seconds (>= 0) as a ``timedelta``; ``None`` stays."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise AgentError.invalid_argument(
            f"{name} must be a timedelta or seconds, not {type(value).__name__}"
        )
    if not seconds >= 0 or seconds == float("inf"):
        raise AgentError.invalid_argument(f"{name} must be a finite duration >= 0, got {value!r}")
    return timedelta(seconds=seconds)


def optional_count(name: str, value: object) -> int | None:
    """``None``, or an int >= 1, or AgentError."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise AgentError.invalid_argument(f"{name} must be an integer >= 1, got {value!r}")
    return value
