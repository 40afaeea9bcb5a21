import csv
import json
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from agent_pool_store.domain import (
    RECORD_PAYLOAD,
    TERMINAL_EVENT_KINDS,
    AgentPoolMember,
    AgentPoolMessagePolicy,
    AgentPoolSnapshot,
    AgentPoolStoreConfig,
    AgentPoolStoreRecord,
    AgentPoolStoreRecordPayload,
    AgentPoolWakePolicy,
    CompiledEventFilter,
    ContentCaptureMode,
    DestinationKind,
    DestinationRef,
    EntityKind,
    EntityRef,
    EventCorrelation,
    EventDeliverySemantics,
    EventFamily,
    EventFilter,
    EventIndexField,
    EventKind,
    EventStreamScope,
    MessageReceipt,
    MessageResponseContract,
    MessageStatus,
    PayloadAccessMode,
    PolicyKind,
    PolicyRef,
    PoolCreated,
    PrivacyClass,
    ResumeInputPolicy,
    RetentionClass,
    RunAddress,
    RunAddressTarget,
    RunMessage,
    SourceKind,
    SubscriberOverflowPolicy,
    SubscriberQueue,
    TrustClass,
    WakeCondition,
    WakeRegistration,
    WakeRegistrationStatus,
    WireModel,
)
from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification

FIXTURES = Path(__file__).parent / "fixtures" / "rust-reference"

DEFAULT_FINGERPRINT = "sha256:d921a7778382804f8b8ce99b4794e8065e387815cf5a670b3084595989f67548"
DEFAULT_FILTER_ID = "filter.5893e28a60be796092a2aff3d1aeedd99c797fe02b8b21ed6afedabe44eb2f5c"


def compact(value: Any) -> str:
    """The reference's compact JSON of a value loaded from a pretty fixture (key order kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def load_json(name: str) -> Any:
    with (FIXTURES / name).open(encoding="utf-8") as handle:
        return json.load(handle)


def load_records() -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with (FIXTURES / "records.tsv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


RECORDS = load_records()
FIXTURE_LOG = load_json("fixture-log.json")
ENUMS = load_json("enums.json")
RECORD_IDS = [f"{row['pool_id']}#{row['seq']}" for row in RECORDS]


def test_fixture_has_29_records_with_the_expected_columns() -> None:
    assert len(RECORDS) == 29
    assert all(list(row) == ["pool_id", "seq", "kind", "payload_json"] for row in RECORDS)


# --- records.tsv -----------------------------------------------------------------------------


@pytest.mark.parametrize("row", RECORDS, ids=RECORD_IDS)
def test_record_payload_round_trips_byte_identical(row: dict[str, str]) -> None:
    text = row["payload_json"]
    payload = RECORD_PAYLOAD.validate_json(text)
    assert payload.model_dump_json() == text


@pytest.mark.parametrize("row", RECORDS, ids=RECORD_IDS)
def test_record_kind_column_is_the_payload_type(row: dict[str, str]) -> None:
    payload = RECORD_PAYLOAD.validate_json(row["payload_json"])
    assert row["kind"] == json.loads(row["payload_json"])["type"] == payload.type


def test_records_cover_every_payload_variant() -> None:
    kinds = {row["kind"] for row in RECORDS}
    assert kinds == set(ENUMS["AgentPoolStoreRecordPayload"])


# --- snapshots and watch ---------------------------------------------------------------------

SNAPSHOT_FILES = [
    "coordinator-snapshot-final.json",
    "direct-snapshot-final.json",
    "direct-snapshot-after-open.json",
]


@pytest.mark.parametrize("name", SNAPSHOT_FILES)
def test_snapshot_round_trips_byte_identical(name: str) -> None:
    expected = compact(load_json(name))
    snapshot = AgentPoolSnapshot.model_validate_json(expected)
    assert snapshot.model_dump_json() == expected


WATCH_ITEMS = load_json("direct-watch-records.json")


@pytest.mark.parametrize("index", range(len(WATCH_ITEMS)))
def test_watch_record_round_trips_byte_identical(index: int) -> None:
    expected = compact(WATCH_ITEMS[index])
    record = AgentPoolStoreRecord.model_validate_json(expected)
    assert record.model_dump_json() == expected


def test_watch_records_are_the_stored_payloads_of_the_pool() -> None:
    records = [AgentPoolStoreRecord.model_validate_json(compact(item)) for item in WATCH_ITEMS]
    pool_id = records[0].pool_id
    rows = [row for row in RECORDS if row["pool_id"] == pool_id]
    assert [r.cursor.sequence for r in records] == [int(row["seq"]) for row in rows]
    assert [r.payload.model_dump_json() for r in records] == [row["payload_json"] for row in rows]


# --- compiled filters ------------------------------------------------------------------------


def _compiled_filters() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for row in RECORDS:
        payload = json.loads(row["payload_json"])
        if payload["type"] == "wake":
            found[f"{row['pool_id']}#{row['seq']}"] = payload["stored"]["compiled_filter"]
    found["log.default_filter_compiled"] = FIXTURE_LOG["default_filter_compiled"]
    found["log.rich_filter_compiled"] = FIXTURE_LOG["rich_filter_compiled"]
    found["log.wake_rich"] = FIXTURE_LOG["wake_rich"]["compiled_filter"]
    return found


COMPILED_FILTERS = _compiled_filters()


def test_fixtures_hold_compiled_filters_of_every_wake() -> None:
    assert len(COMPILED_FILTERS) == 9 + 3


@pytest.mark.parametrize("key", COMPILED_FILTERS)
def test_compiled_filter_recompiles_identically(key: str) -> None:
    compiled = CompiledEventFilter.model_validate_json(json.dumps(COMPILED_FILTERS[key]))
    recompiled = compiled.criteria.compile()
    assert recompiled.filter_fingerprint == compiled.filter_fingerprint
    assert recompiled.filter_id == compiled.filter_id
    assert recompiled.indexed_fields == compiled.indexed_fields
    assert recompiled == compiled


def test_default_filter_json_matches_reference() -> None:
    assert EventFilter().model_dump_json() == FIXTURE_LOG["default_filter_json"]


def test_default_filter_compiles_to_documented_constants() -> None:
    compiled = EventFilter().compile()
    assert compiled.filter_fingerprint == DEFAULT_FINGERPRINT
    assert compiled.filter_id == DEFAULT_FILTER_ID
    assert compiled.indexed_fields == ()
    reference = FIXTURE_LOG["default_filter_compiled"]
    assert (reference["filter_fingerprint"], reference["filter_id"]) == (
        DEFAULT_FINGERPRINT,
        DEFAULT_FILTER_ID,
    )


def test_rich_filter_criteria_json_matches_reference() -> None:
    compiled = CompiledEventFilter.model_validate_json(
        json.dumps(FIXTURE_LOG["rich_filter_compiled"])
    )
    expected = FIXTURE_LOG["rich_filter_criteria_json"]
    assert compiled.criteria.model_dump_json() == expected
    assert EventFilter.model_validate_json(expected).model_dump_json() == expected


def test_rich_filter_built_in_python_matches_reference() -> None:
    built = EventFilter(
        run_ids=["run.fixture.a"],
        families=[EventFamily.AGENT_POOL],
        kinds=[EventKind.RUN_MESSAGE_DELIVERED],
        source_kinds=[SourceKind.SDK],
        destination_kinds=[DestinationKind.AGENT],
        subject_kinds=[EntityKind.MESSAGE],
        related_entity_kinds=[EntityKind.RUN],
        tags=["feature:agent_pool"],
        privacy_classes=[PrivacyClass.CONTENT_REFS_ONLY],
        delivery_semantics=[EventDeliverySemantics.JOURNAL_BACKED],
        terminal_only=True,
    )
    assert built.model_dump_json() == FIXTURE_LOG["rich_filter_criteria_json"]
    compiled = built.compile()
    reference = FIXTURE_LOG["rich_filter_compiled"]
    assert compiled.filter_fingerprint == reference["filter_fingerprint"]
    assert compiled.filter_id == reference["filter_id"]
    assert [f.value for f in compiled.indexed_fields] == reference["indexed_fields"]


def test_filter_set_include_keeps_order_and_duplicates() -> None:
    built = EventFilter(run_ids=["b", "a", "b"], kinds=[])
    assert '"run_ids":{"include":["b","a","b"]}' in built.model_dump_json()
    assert '"kinds":{"include":[]}' in built.model_dump_json()
    indexed = built.compile().indexed_fields
    assert indexed == (EventIndexField.RUN_ID, EventIndexField.EVENT_KIND)


# --- enums -----------------------------------------------------------------------------------


def _tags(union: Any) -> list[str]:
    members = get_args(get_args(union)[0])
    return [member.model_fields["type"].default for member in members]


PYTHON_ENUMS: dict[str, list[str]] = {
    enum.__name__: [member.value for member in enum]
    for enum in (
        EventFamily,
        EventKind,
        EventDeliverySemantics,
        ContentCaptureMode,
        PayloadAccessMode,
        SubscriberOverflowPolicy,
        EventIndexField,
        EventStreamScope,
        EntityKind,
        SourceKind,
        DestinationKind,
        PolicyKind,
        PrivacyClass,
        RetentionClass,
        TrustClass,
        MessageStatus,
        ResumeInputPolicy,
        WakeRegistrationStatus,
        AgentErrorKind,
        RetryClassification,
    )
}
PYTHON_ENUMS["AgentPoolStoreRecordPayload"] = _tags(AgentPoolStoreRecordPayload)
PYTHON_ENUMS["RunAddressTarget"] = _tags(RunAddressTarget)

# Not compared value by value: "AgentError" lists the Rust error enum's variants (our
# AgentError is one exception class), "EventKind_is_terminal" is checked below.
NOT_ENUMS = {"AgentError", "EventKind_is_terminal"}


def test_every_reference_enum_is_checked() -> None:
    assert set(ENUMS) - NOT_ENUMS == set(PYTHON_ENUMS)


@pytest.mark.parametrize("name", PYTHON_ENUMS)
def test_enum_values_match_reference_in_order(name: str) -> None:
    assert PYTHON_ENUMS[name] == ENUMS[name]


def test_event_kind_has_119_values() -> None:
    assert len(EventKind) == 119


def test_is_terminal_matches_reference() -> None:
    terminal = set(ENUMS["EventKind_is_terminal"])
    assert len(terminal) == len(ENUMS["EventKind_is_terminal"])
    assert {kind.value for kind in EventKind if kind.is_terminal} == terminal
    assert {kind.value for kind in TERMINAL_EVENT_KINDS} == terminal
    assert not EventKind.RUN_STARTED.is_terminal
    assert EventKind.WAKE_CONDITION_FAILED.is_terminal


# --- reading rules ---------------------------------------------------------------------------


def _with_unknown_keys(value: Any) -> Any:
    """Add unknown keys to every JSON object that is a struct (not a filter set)."""
    if isinstance(value, list):
        return [_with_unknown_keys(item) for item in value]
    if isinstance(value, dict):
        converted = {key: _with_unknown_keys(item) for key, item in value.items()}
        if set(value) in ({"include"}, {"any"}):
            return converted  # serde reads an enum object with exactly one key
        return {"zz_unknown": {"nested": [1, "x", None]}, **converted, "zz_last": "value"}
    return value


@pytest.mark.parametrize("row", RECORDS, ids=RECORD_IDS)
def test_unknown_keys_are_ignored_in_payloads(row: dict[str, str]) -> None:
    text = row["payload_json"]
    noisy = json.dumps(_with_unknown_keys(json.loads(text)))
    assert "zz_unknown" in noisy
    payload = RECORD_PAYLOAD.validate_json(noisy)
    assert payload == RECORD_PAYLOAD.validate_json(text)
    assert payload.model_dump_json() == text


@pytest.mark.parametrize("name", SNAPSHOT_FILES)
def test_unknown_keys_are_ignored_in_snapshots(name: str) -> None:
    raw = load_json(name)
    snapshot = AgentPoolSnapshot.model_validate_json(json.dumps(_with_unknown_keys(raw)))
    assert snapshot.model_dump_json() == compact(raw)


MISSING_LISTS: dict[str, tuple[type[WireModel], str, str]] = {
    "member.policy_refs+topics": (AgentPoolMember, '{"run_id":"r","agent_id":"a"}', "topics"),
    "config.policy_refs": (
        AgentPoolStoreConfig,
        '{"message_policy":{"include_sender_in_pool_broadcast":false},'
        '"wake_policy":{"envelope_only":true}}',
        "policy_refs",
    ),
    "message_policy.required_policy_refs": (
        AgentPoolMessagePolicy,
        '{"include_sender_in_pool_broadcast":true}',
        "required_policy_refs",
    ),
    "receipt.delivered_to": (
        MessageReceipt,
        '{"message_id":"m","status":"accepted"}',
        "delivered_to",
    ),
    "address.related_refs": (
        RunAddress,
        '{"target":{"type":"pool","pool_id":"p"},'
        '"destination_ref":{"kind":"agent_pool","id":"p","privacy":"public","retention":"durable"}}',
        "related_refs",
    ),
    "correlation.entries": (EventCorrelation, "{}", "entries"),
    "destination.correlation": (
        DestinationRef,
        '{"kind":"topic","id":"t","privacy":"secret","retention":"ephemeral"}',
        "correlation",
    ),
}


@pytest.mark.parametrize("key", MISSING_LISTS)
def test_missing_list_means_empty(key: str) -> None:
    model, text, field = MISSING_LISTS[key]
    parsed = model.model_validate_json(text)
    assert getattr(parsed, field) == ()
    assert parsed.model_dump_json() == text
    with_empty = json.loads(text)
    with_empty[field] = []
    assert model.model_validate_json(json.dumps(with_empty)) == parsed


def test_member_missing_policy_refs_and_topics_are_both_empty() -> None:
    member = AgentPoolMember.model_validate_json('{"run_id":"r","agent_id":"a"}')
    assert (member.policy_refs, member.topics) == ((), ())


NULL_OPTIONALS: dict[str, tuple[type[WireModel], str, str]] = {
    "policy_ref.version": (PolicyRef, '{"kind":"host","id":"p","version":null}', "version"),
    "receipt.journal_cursor": (
        MessageReceipt,
        '{"message_id":"m","status":"failed","journal_cursor":null}',
        "journal_cursor",
    ),
    "registration.journal_cursor": (
        WakeRegistration,
        '{"condition_id":"c","run_id":"r","status":"registered","journal_cursor":null}',
        "journal_cursor",
    ),
    "response_contract.timeout_millis": (
        MessageResponseContract,
        '{"expected_responses":2,"timeout_millis":null}',
        "timeout_millis",
    ),
    "entity_ref.source": (
        EntityRef,
        '{"kind":"run","id":"r","source":null,"privacy":"public","redacted_summary":null}',
        "source",
    ),
    "destination_ref.redacted_summary": (
        DestinationRef,
        '{"kind":"agent","id":"a","privacy":"public","retention":"durable","redacted_summary":null}',
        "redacted_summary",
    ),
}


@pytest.mark.parametrize("key", NULL_OPTIONALS)
def test_null_optional_means_none_and_is_omitted(key: str) -> None:
    model, text, field = NULL_OPTIONALS[key]
    parsed = model.model_validate_json(text)
    assert getattr(parsed, field) is None
    without_nulls = {k: v for k, v in json.loads(text).items() if v is not None}
    assert parsed.model_dump_json() == compact(without_nulls)
    assert model.model_validate_json(compact(without_nulls)) == parsed


def _first_payload(kind: str) -> dict[str, Any]:
    row = next(row for row in RECORDS if row["kind"] == kind)
    result: dict[str, Any] = json.loads(row["payload_json"])
    return result


def test_null_optionals_of_run_message_and_wake_condition_mean_none() -> None:
    message = _first_payload("run_message")["stored"]["message"]
    message.update(reply_to=None, response_contract=None, expires_at_millis=None)
    parsed = RunMessage.model_validate_json(json.dumps(message))
    assert (parsed.reply_to, parsed.response_contract, parsed.expires_at_millis) == (None,) * 3
    assert '"reply_to"' not in parsed.model_dump_json()

    condition = _first_payload("wake")["stored"]["condition"]
    condition["timeout_millis"] = None
    parsed_condition = WakeCondition.model_validate_json(json.dumps(condition))
    assert parsed_condition.timeout_millis is None

    snapshot = load_json("direct-snapshot-after-open.json")
    snapshot["cursor"] = None
    assert AgentPoolSnapshot.model_validate_json(json.dumps(snapshot)).cursor is None


def test_filter_set_any_object_is_read_as_any() -> None:
    wire = json.loads(FIXTURE_LOG["default_filter_json"])
    for key in ("run_ids", "kinds", "tags", "delivery_semantics"):
        wire[key] = {"any": None}
    parsed = EventFilter.model_validate_json(json.dumps(wire))
    assert parsed.run_ids.is_any
    assert parsed == EventFilter()
    assert parsed.model_dump_json() == FIXTURE_LOG["default_filter_json"]
    assert parsed.compile().filter_fingerprint == DEFAULT_FINGERPRINT


def _without(value: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(value))
    target: Any = copy
    for key in path[:-1]:
        target = target[key]
    assert path[-1] in target, path
    del target[path[-1]]
    return copy


_MESSAGE = _first_payload("run_message")
_WAKE = _first_payload("wake")
_OPENED = _first_payload("pool_opened")
_SNAPSHOT = load_json("direct-snapshot-after-open.json")
_DEFAULT_FILTER = json.loads(FIXTURE_LOG["default_filter_json"])

MISSING_REQUIRED: dict[str, tuple[Any, dict[str, Any], tuple[str | int, ...]]] = {
    "payload.type": (RECORD_PAYLOAD, _OPENED, ("type",)),
    "pool_opened.config": (RECORD_PAYLOAD, _OPENED, ("config",)),
    "message.correlation": (RECORD_PAYLOAD, _MESSAGE, ("stored", "message", "correlation")),
    "message.from": (RECORD_PAYLOAD, _MESSAGE, ("stored", "message", "from")),
    "message.idempotency_key": (
        RECORD_PAYLOAD,
        _MESSAGE,
        ("stored", "message", "idempotency_key"),
    ),
    "destination_ref.privacy": (
        RECORD_PAYLOAD,
        _MESSAGE,
        ("stored", "message", "to", "destination_ref", "privacy"),
    ),
    "destination_ref.retention": (
        RECORD_PAYLOAD,
        _MESSAGE,
        ("stored", "message", "to", "destination_ref", "retention"),
    ),
    "target.type": (RECORD_PAYLOAD, _MESSAGE, ("stored", "message", "to", "target", "type")),
    "receipt.status": (RECORD_PAYLOAD, _MESSAGE, ("stored", "receipt", "status")),
    "message_policy.include_sender": (
        RECORD_PAYLOAD,
        _OPENED,
        ("config", "message_policy", "include_sender_in_pool_broadcast"),
    ),
    "wake_policy.envelope_only": (
        RECORD_PAYLOAD,
        _OPENED,
        ("config", "wake_policy", "envelope_only"),
    ),
    "config.wake_policy": (RECORD_PAYLOAD, _OPENED, ("config", "wake_policy")),
    "condition.filter.terminal_only": (
        RECORD_PAYLOAD,
        _WAKE,
        ("stored", "condition", "filter", "terminal_only"),
    ),
    "compiled.criteria.queue.capacity": (
        RECORD_PAYLOAD,
        _WAKE,
        ("stored", "compiled_filter", "criteria", "queue", "capacity"),
    ),
    "compiled.indexed_fields": (
        RECORD_PAYLOAD,
        _WAKE,
        ("stored", "compiled_filter", "indexed_fields"),
    ),
    "registration.status": (RECORD_PAYLOAD, _WAKE, ("stored", "registration", "status")),
    "snapshot.members": (AgentPoolSnapshot, _SNAPSHOT, ("members",)),
    "snapshot.topics": (AgentPoolSnapshot, _SNAPSHOT, ("topics",)),
    "snapshot.created": (AgentPoolSnapshot, _SNAPSHOT, ("created",)),
    "entity_ref.privacy": (
        RECORD_PAYLOAD,
        _MESSAGE,
        ("stored", "message", "to", "related_refs", 0, "privacy"),
    ),
}
MISSING_REQUIRED.update(
    {
        f"filter.{field}": (EventFilter, _DEFAULT_FILTER, (field,))
        for field in EventFilter.model_fields
    }
)
MISSING_REQUIRED.update(
    {
        f"queue.{field}": (SubscriberQueue, _DEFAULT_FILTER["queue"], (field,))
        for field in SubscriberQueue.model_fields
    }
)


def _validate(reader: Any, text: str) -> Any:
    if reader is RECORD_PAYLOAD:
        return RECORD_PAYLOAD.validate_json(text)
    return reader.model_validate_json(text)


@pytest.mark.parametrize("key", MISSING_REQUIRED)
def test_missing_required_field_is_a_validation_error(key: str) -> None:
    reader, document, path = MISSING_REQUIRED[key]
    _validate(reader, json.dumps(document))  # the complete document reads
    with pytest.raises(ValidationError):
        _validate(reader, json.dumps(_without(document, path)))


def test_event_filter_requires_all_17_fields() -> None:
    assert len(EventFilter.model_fields) == 17
    assert list(EventFilter.model_fields) == list(_DEFAULT_FILTER)


def test_non_ascii_is_written_as_is() -> None:
    run_id = "run.ünïcødé.日本.😀"
    member = AgentPoolMember(run_id=run_id, agent_id="agent.é", topics=["topic.€"])
    text = member.model_dump_json()
    assert text == '{"run_id":"run.ünïcødé.日本.😀","agent_id":"agent.é","topics":["topic.€"]}'
    assert "\\u" not in text
    assert AgentPoolMember.model_validate_json(text) == member


def test_escaped_non_ascii_is_read_and_written_unescaped() -> None:
    text = '{"run_id":"r\\u00e9\\ud83d\\ude00","agent_id":"a"}'
    member = AgentPoolMember.model_validate_json(text)
    assert member.run_id == "ré😀"
    assert member.model_dump_json() == '{"run_id":"ré😀","agent_id":"a"}'


def test_payload_type_is_the_discriminator() -> None:
    assert isinstance(RECORD_PAYLOAD.validate_json('{"type":"pool_created"}'), PoolCreated)
    assert PoolCreated().model_dump_json() == '{"type":"pool_created"}'
    with pytest.raises(ValidationError):
        RECORD_PAYLOAD.validate_json('{"type":"pool_deleted"}')


def test_address_constructors_match_reference_defaults() -> None:
    address = RunAddress.run("run.coord.b")
    assert address.model_dump_json() == compact(_MESSAGE["stored"]["message"]["to"])
    pool = RunAddress.pool("p")
    assert pool.destination_ref.kind is DestinationKind.AGENT_POOL
    assert pool.destination_ref.privacy is PrivacyClass.CONTENT_REFS_ONLY
    assert pool.destination_ref.retention is RetentionClass.HOST_POLICY
    assert [(r.kind, r.id, r.source) for r in pool.related_refs] == [
        (EntityKind.AGENT_POOL, "p", None)
    ]


def test_default_policies_match_reference() -> None:
    config = AgentPoolStoreConfig()
    assert config.model_dump_json() == compact(_OPENED["config"])
    assert AgentPoolWakePolicy().envelope_only is True
    assert AgentPoolMessagePolicy().include_sender_in_pool_broadcast is False


def test_message_receipt_and_registration_fixtures_read() -> None:
    receipt = MessageReceipt.model_validate_json(json.dumps(FIXTURE_LOG["coord_receipt"]))
    assert receipt.status is MessageStatus.DELIVERED
    assert receipt.delivered_to == ("run.coord.b",)
    registration = WakeRegistration.model_validate_json(json.dumps(FIXTURE_LOG["coord_timed_out"]))
    assert registration.status is WakeRegistrationStatus.TIMED_OUT
    assert registration.journal_cursor == "journal.10"
    condition = WakeCondition.model_validate_json(json.dumps(FIXTURE_LOG["wake_rich"]["condition"]))
    assert condition.policy_refs == (
        PolicyRef(kind=PolicyKind.PERMISSION, id="policy.fixture.message", version="v1"),
    )
    assert condition.filter.payload_access is PayloadAccessMode.REDACTED_SUMMARY
    assert condition.resume_with is ResumeInputPolicy.MATCHING_EVENT_REFS
    assert condition.timeout_millis == 30000


# --- AgentError ------------------------------------------------------------------------------


def test_agent_error_str_and_attributes() -> None:
    error = AgentError(AgentErrorKind.TIMEOUT, RetryClassification.RETRYABLE, "took too long")
    assert str(error) == "Timeout: took too long"
    assert error.kind is AgentErrorKind.TIMEOUT
    assert error.retry is RetryClassification.RETRYABLE
    assert error.message == "took too long"
    assert isinstance(error, Exception)
    with pytest.raises(AgentError, match=r"^Timeout: took too long$"):
        raise error


ERROR_ENTRIES = {key: value for key, value in FIXTURE_LOG.items() if key.endswith("_error")}


@pytest.mark.parametrize("key", ERROR_ENTRIES)
def test_agent_error_display_matches_reference(key: str) -> None:
    entry = ERROR_ENTRIES[key]
    classified = entry["serde"]["Classified"]
    message = classified["context"]["message"]
    error = AgentError(AgentErrorKind(entry["kind"]), RetryClassification(entry["retry"]), message)
    assert str(error) == entry["display"]
    assert (error.kind.value, error.retry.value) == (classified["kind"], classified["retry"])


@pytest.mark.parametrize(
    ("key", "make"),
    [
        ("config_conflict_error", lambda: AgentError.config_conflict("sqlite")),
        ("leave_missing_error", AgentError.not_a_member),
        ("unopened_join_error", lambda: AgentError.pool_not_opened("sqlite")),
        ("unopened_snapshot_error", lambda: AgentError.pool_not_opened("sqlite")),
    ],
)
def test_agent_error_constructors_match_reference(key: str, make: Any) -> None:
    error = make()
    entry = FIXTURE_LOG[key]
    assert str(error) == entry["display"]
    assert error.kind.value == entry["kind"]
    assert error.retry.value == entry["retry"]
