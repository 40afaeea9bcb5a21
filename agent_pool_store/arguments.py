"""Checks on the arguments of store operations, made before anything is read or written."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from agent_pool_store.domain.identifiers import validate_identifier
from agent_pool_store.domain.records import AgentPoolStoreCursor
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


def model(name: str, value: object, expected: type[M]) -> M:
    """``value`` if it is a valid instance of the domain model ``expected``, else AgentError.

    The instance is checked again through its wire JSON, so a model built without validation
    (``model_construct``, ``model_copy(update=…)``) cannot put an unreadable record in a log.
    """
    if not isinstance(value, expected):
        raise AgentError.invalid_argument(
            f"{name} must be {expected.__name__}, not {type(value).__name__}"
        )
    try:
        type(value).model_validate_json(value.model_dump_json())
    except (ValidationError, ValueError, TypeError) as error:
        detail = error.errors()[0] if isinstance(error, ValidationError) else None
        reason = f"{'.'.join(map(str, detail['loc']))}: {detail['msg']}" if detail else str(error)
        raise AgentError.invalid_argument(f"invalid {name}: {reason}") from None
    return value


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
