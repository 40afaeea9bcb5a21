"""Identifier validation: non-empty, at most 512 UTF-8 bytes, no control characters."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

MAX_IDENTIFIER_BYTES = 512
"""The largest identifier, in UTF-8 bytes."""


def _is_control(char: str) -> bool:
    code = ord(char)
    return code <= 0x1F or 0x7F <= code <= 0x9F


def validate_identifier(value: str) -> str:
    """Return ``value`` if it is a valid identifier, else raise ``ValueError``.

    The messages are the reference's: ``identifier is empty``, ``identifier length N exceeds
    max 512`` (N in bytes) and ``identifier contains control character at byte I``.
    """
    if not value:
        raise ValueError("identifier is empty")
    encoded = value.encode("utf-8")
    if len(encoded) > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"identifier length {len(encoded)} exceeds max {MAX_IDENTIFIER_BYTES}")
    for index, char in enumerate(value):
        if _is_control(char):
            byte_offset = len(value[:index].encode("utf-8"))
            raise ValueError(f"identifier contains control character at byte {byte_offset}")
    return value


Identifier = Annotated[str, AfterValidator(validate_identifier)]
"""A validated identifier; every named identifier type below is this."""

AgentPoolId = Identifier
RunId = Identifier
AgentId = Identifier
TopicId = Identifier
MessageId = Identifier
WakeConditionId = Identifier
IdempotencyKey = Identifier
ContentRef = Identifier
JournalCursor = Identifier
PolicyId = Identifier
CorrelationKey = Identifier
CorrelationValue = Identifier
SessionId = Identifier
TurnId = Identifier

EventTag = str
"""Event tags are plain strings, not validated."""
EventFilterId = str
"""Compiled filter ids are plain strings, not validated."""
EventFilterFingerprint = str
"""Compiled filter fingerprints are plain strings, not validated."""
