"""Stored JSON read back into domain models; unreadable JSON is RepairNeeded naming the pool."""

from __future__ import annotations

from typing import TypeVar, cast

from pydantic import BaseModel, ValidationError

from agent_pool_store.domain import RECORD_PAYLOAD, AgentPoolStoreRecordPayload
from agent_pool_store.errors import AgentError

M = TypeVar("M", bound=BaseModel)


def _reason(error: ValidationError) -> str:
    details = error.errors()
    return details[0]["msg"] if details else str(error)


def parse_projection(pool_id: str, model: type[M], json: str, area: str) -> M:
    """A stored projection, or AgentError RepairNeeded naming the pool."""
    try:
        return model.model_validate_json(json)
    except ValidationError as error:
        raise AgentError.damaged_projection(pool_id, area, _reason(error)) from None


def checked_row(pool_id: str, seq: object, payload_json: object) -> tuple[int, str]:
    """A log row as the store reads it: an integer ``seq`` of 1 or more, a text payload.

    A row a foreign writer left otherwise (SQLite stores what it is given: a ``seq`` as
    text, a payload as a BLOB; any database: a ``seq`` of 0 or below) is AgentError
    RepairNeeded naming the pool and the sequence as stored.
    """
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise AgentError.unreadable_record(pool_id, seq, "its seq is not an integer")
    if seq < 1:
        raise AgentError.unreadable_record(pool_id, seq, "sequences start at 1")
    if not isinstance(payload_json, str):
        reason = f"its payload_json is stored as {type(payload_json).__name__}, not text"
        raise AgentError.unreadable_record(pool_id, seq, reason)
    return seq, payload_json


def parse_payload(pool_id: str, seq: int, payload_json: str) -> AgentPoolStoreRecordPayload:
    """A stored payload, or AgentError RepairNeeded naming the pool and sequence."""
    try:
        # The adapter's own validator: TypeAdapter.validate_json adds about 0.4 µs a call in
        # Python, a few percent of a whole-log watch.
        payload = RECORD_PAYLOAD.validator.validate_json(payload_json)
    except ValidationError as error:
        raise AgentError.unreadable_record(pool_id, seq, _reason(error)) from None
    return cast("AgentPoolStoreRecordPayload", payload)
