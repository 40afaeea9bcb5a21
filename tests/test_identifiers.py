import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from agent_pool_store.domain import (
    MAX_IDENTIFIER_BYTES,
    AgentPoolMember,
    CorrelationEntry,
    EventFilter,
    MessageReceipt,
    MessageStatus,
    PolicyKind,
    PolicyRef,
    RunAddress,
    WakeRegistration,
    WakeRegistrationStatus,
    validate_identifier,
)
from tests import strategies as s

E_ACUTE = "é"  # 2 bytes in UTF-8
EURO = "€"  # 3 bytes
EMOJI = "😀"  # 4 bytes

CONTROL_CHARACTERS = ["\u0000", "\u001f", "\u007f", "\u0085", "\u009f"]


def test_multi_byte_helpers_have_the_expected_sizes() -> None:
    assert [len(c.encode("utf-8")) for c in (E_ACUTE, EURO, EMOJI)] == [2, 3, 4]


# --- identifiers at the length limit ---------------------------------------------------------

VALID_AT_LIMIT = {
    "ascii-512": "a" * 512,
    "e-acute-256": E_ACUTE * 256,
    "euro-170+e-acute": EURO * 170 + E_ACUTE,
    "emoji-128": EMOJI * 128,
    "mixed": EMOJI * 100 + EURO * 30 + E_ACUTE * 11,
}

TOO_LONG = {
    "ascii-513": "a" * 513,
    "e-acute-256+a": E_ACUTE * 256 + "a",
    "euro-171": EURO * 171,
    "emoji-128+a": EMOJI * 128 + "a",
    "mixed": EMOJI * 100 + EURO * 30 + E_ACUTE * 11 + "a",
}


@pytest.mark.parametrize("value", VALID_AT_LIMIT.values(), ids=VALID_AT_LIMIT.keys())
def test_identifier_of_512_bytes_is_valid(value: str) -> None:
    assert len(value.encode("utf-8")) == MAX_IDENTIFIER_BYTES
    assert validate_identifier(value) == value
    member = AgentPoolMember(run_id=value, agent_id=value, topics=[value])
    assert member.run_id == value
    assert AgentPoolMember.model_validate_json(member.model_dump_json()) == member


@pytest.mark.parametrize("value", TOO_LONG.values(), ids=TOO_LONG.keys())
def test_identifier_of_513_bytes_is_rejected(value: str) -> None:
    assert len(value.encode("utf-8")) == 513
    with pytest.raises(ValueError, match=r"^identifier length 513 exceeds max 512$"):
        validate_identifier(value)


def test_length_error_reports_the_byte_length() -> None:
    with pytest.raises(ValueError, match=r"^identifier length 1000 exceeds max 512$"):
        validate_identifier(EMOJI * 250)


def test_empty_identifier_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^identifier is empty$"):
        validate_identifier("")


# --- control characters ----------------------------------------------------------------------

PREFIXES = ["", "a", E_ACUTE, EURO + "x", EMOJI + E_ACUTE + "run."]


@pytest.mark.parametrize("control", CONTROL_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("prefix", PREFIXES, ids=lambda p: f"{len(p.encode())}-bytes-before")
def test_control_character_is_rejected_at_its_byte_offset(prefix: str, control: str) -> None:
    offset = len(prefix.encode("utf-8"))
    expected = f"identifier contains control character at byte {offset}"
    with pytest.raises(ValueError, match=rf"^{expected}$"):
        validate_identifier(prefix + control + "tail" + EURO)


def test_first_control_character_is_reported() -> None:
    with pytest.raises(ValueError, match=r"at byte 3$"):
        validate_identifier(E_ACUTE + "a\u0085b\u0000")


@pytest.mark.parametrize(
    "value",
    ["\u00a0", "a\u00a0b", " ", "\u00ad", "\u2028", "\u200b", "\ufeff", EMOJI, "a b"],
    ids=["nbsp", "nbsp-inside", "space", "soft-hyphen", "line-sep", "zwsp", "bom", "emoji", "sp"],
)
def test_non_control_characters_are_fine(value: str) -> None:
    assert validate_identifier(value) == value
    assert AgentPoolMember(run_id=value, agent_id="a").run_id == value


@settings(max_examples=100, deadline=None)
@given(
    prefix=s.short_identifiers(),
    control=s.control_characters(),
    suffix=st.text(s.IDENTIFIER_CHARACTERS, max_size=4),
)
def test_control_character_offset_property(prefix: str, control: str, suffix: str) -> None:
    with pytest.raises(ValueError) as raised:
        validate_identifier(prefix + control + suffix)
    offset = len(prefix.encode("utf-8"))
    assert str(raised.value) == f"identifier contains control character at byte {offset}"


# --- models reject invalid identifiers when constructed and when read ------------------------

INVALID = {
    "empty": ("", "identifier is empty"),
    "too-long": (EURO * 171, "identifier length 513 exceeds max 512"),
    "nul": (EURO + "\u0000", "identifier contains control character at byte 3"),
    "c1": (E_ACUTE + E_ACUTE + "\u0085", "identifier contains control character at byte 4"),
    "del": ("ab\u007f", "identifier contains control character at byte 2"),
}

# Each builder puts the identifier in one field of a model, as Python kwargs.
Builder = Callable[[str], tuple[type[BaseModel], dict[str, Any]]]
BUILDERS: dict[str, Builder] = {
    "member.run_id": lambda v: (AgentPoolMember, {"run_id": v, "agent_id": "agent.a"}),
    "member.agent_id": lambda v: (AgentPoolMember, {"run_id": "run.a", "agent_id": v}),
    "member.topics": lambda v: (
        AgentPoolMember,
        {"run_id": "run.a", "agent_id": "agent.a", "topics": ["topic.ok", v]},
    ),
    "policy_ref.id": lambda v: (PolicyRef, {"kind": PolicyKind.HOST, "id": v}),
    "correlation.value": lambda v: (CorrelationEntry, {"key": "k", "value": v}),
    "receipt.delivered_to": lambda v: (
        MessageReceipt,
        {"message_id": "m", "status": MessageStatus.DELIVERED, "delivered_to": [v]},
    ),
    "receipt.journal_cursor": lambda v: (
        MessageReceipt,
        {"message_id": "m", "status": MessageStatus.ACCEPTED, "journal_cursor": v},
    ),
    "registration.condition_id": lambda v: (
        WakeRegistration,
        {"condition_id": v, "run_id": "r", "status": WakeRegistrationStatus.REGISTERED},
    ),
    "filter.run_ids": lambda v: (EventFilter, {"run_ids": ["run.ok", v]}),
    "filter.correlation_keys": lambda v: (EventFilter, {"correlation_keys": [v]}),
}


def _single_error_message(error: ValidationError) -> str:
    errors = error.errors()
    assert len(errors) == 1, errors
    return str(errors[0]["ctx"]["error"])


@pytest.mark.parametrize("field", BUILDERS)
@pytest.mark.parametrize(("value", "message"), INVALID.values(), ids=INVALID.keys())
def test_constructing_a_model_rejects_invalid_identifier(
    field: str, value: str, message: str
) -> None:
    model, kwargs = BUILDERS[field](value)
    with pytest.raises(ValidationError) as raised:
        model(**kwargs)
    assert _single_error_message(raised.value) == message


@pytest.mark.parametrize("field", BUILDERS)
@pytest.mark.parametrize(("value", "message"), INVALID.values(), ids=INVALID.keys())
def test_reading_json_rejects_invalid_identifier(field: str, value: str, message: str) -> None:
    model, kwargs = BUILDERS[field]("placeholder.id")
    text = model(**kwargs).model_dump_json()
    assert text.count('"placeholder.id"') == 1
    # json.dumps escapes U+0000-U+001F (raw ones are not valid JSON) and keeps the rest as-is.
    bad_text = text.replace('"placeholder.id"', json.dumps(value, ensure_ascii=False))
    with pytest.raises(ValidationError) as raised:
        model.model_validate_json(bad_text)
    assert _single_error_message(raised.value) == message


@pytest.mark.parametrize(("value", "message"), INVALID.values(), ids=INVALID.keys())
@pytest.mark.parametrize("constructor", ["run", "agent", "topic", "pool"])
def test_address_constructors_reject_invalid_identifier(
    constructor: str, value: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        getattr(RunAddress, constructor)(value)


def test_unvalidated_strings_accept_what_identifiers_reject() -> None:
    # EventTag, EventFilterId, EventFilterFingerprint and free text are not identifiers.
    tags = ["", "\u0000", "a" * 600]
    event_filter = EventFilter(tags=tags)
    assert event_filter.tags.include == tuple(tags)
    assert EventFilter.model_validate_json(event_filter.model_dump_json()) == event_filter

    compiled = event_filter.compile().model_copy(update={"filter_id": "", "filter_fingerprint": ""})
    reread = type(compiled).model_validate_json(compiled.model_dump_json())
    assert (reread.filter_id, reread.filter_fingerprint) == ("", "")

    ref = PolicyRef(kind=PolicyKind.HOST, id="p", version="\u0000")
    assert PolicyRef.model_validate_json(ref.model_dump_json()).version == "\u0000"
