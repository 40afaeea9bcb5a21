"""Identifier validation: non-empty, at most 512 UTF-8 bytes, no control characters."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

MAX_IDENTIFIER_BYTES = 512
"""The largest identifier, in UTF-8 bytes."""


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Unicode category Cc: U+0000-U+001F and U+007F-U+009F."""


def validate_identifier(value: str) -> str:
    """Return ``value`` if it is a valid identifier, else raise ``ValueError``.

    The messages are the reference's: ``identifier is empty``, ``identifier length N exceeds
    max 512`` (N in bytes) and ``identifier contains control character at byte I``.
    """
    if value.isascii() and value.isprintable() and 0 < len(value) <= MAX_IDENTIFIER_BYTES:
        return value  # the common case: printable ASCII is one byte per character, no Cc
    if not value:
        raise ValueError("identifier is empty")
    if not value.isascii():  # ASCII: one byte per character, nothing to encode
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as error:
            raise ValueError(
                f"identifier is not valid Unicode (lone surrogate at character {error.start})"
            ) from None
        if size > MAX_IDENTIFIER_BYTES:
            raise ValueError(f"identifier length {size} exceeds max {MAX_IDENTIFIER_BYTES}")
    elif len(value) > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"identifier length {len(value)} exceeds max {MAX_IDENTIFIER_BYTES}")
    control = _CONTROL.search(value)
    if control is not None:
        byte_offset = len(value[: control.start()].encode("utf-8"))
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
