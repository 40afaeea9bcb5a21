import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_pool_store.domain import (
    MAX_IDENTIFIER_BYTES,
    RECORD_PAYLOAD,
    AgentPoolStoreRecord,
    WireModel,
    validate_identifier,
)
from tests import strategies as s

MODEL_STRATEGIES = {
    "PolicyRef": s.policy_refs,
    "CorrelationEntry": s.correlation_entries,
    "EventCorrelation": s.event_correlations,
    "SourceRef": s.source_refs,
    "DestinationRef": s.destination_refs,
    "EntityRef": s.entity_refs,
    "AgentPoolMessagePolicy": s.agent_pool_message_policies,
    "AgentPoolWakePolicy": s.agent_pool_wake_policies,
    "AgentPoolStoreConfig": s.agent_pool_store_configs,
    "AgentPoolMember": s.agent_pool_members,
    "RunAddressTarget": s.run_address_targets,
    "RunAddress": s.run_addresses,
    "MessageResponseContract": s.message_response_contracts,
    "RunMessage": s.run_messages,
    "MessageReceipt": s.message_receipts,
    "AgentPoolStoredMessage": s.agent_pool_stored_messages,
    "SubscriberQueue": s.subscriber_queues,
    "EventFilter": s.event_filters,
    "CompiledEventFilter": s.compiled_event_filters,
    "WakeCondition": s.wake_conditions,
    "WakeRegistration": s.wake_registrations,
    "AgentPoolStoredWake": s.agent_pool_stored_wakes,
    "AgentPoolStoreRecordPayload": s.record_payloads,
    "AgentPoolStoreCursor": s.agent_pool_store_cursors,
    "AgentPoolStoreRecord": s.agent_pool_store_records,
    "AgentPoolSnapshot": s.agent_pool_snapshots,
}

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def canonical(text: str) -> str:
    """The reference's serde_json form of the same JSON value (key order kept)."""
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("name", MODEL_STRATEGIES)
@FAST
@given(data=st.data())
def test_model_round_trips_through_wire_json(name: str, data: st.DataObject) -> None:
    model = data.draw(MODEL_STRATEGIES[name](), label=name)
    assert isinstance(model, WireModel)
    dumped = model.model_dump_json()

    reread = type(model).model_validate_json(dumped)
    assert reread == model
    # Stable: writing the re-read model gives the same bytes.
    assert reread.model_dump_json() == dumped
    # Compact, key order as written, non-ASCII as-is, serde_json's escapes.
    assert canonical(dumped) == dumped


@FAST
@given(payload=s.record_payloads())
def test_payload_round_trips_through_the_tagged_union(payload: WireModel) -> None:
    dumped = payload.model_dump_json()
    assert json.loads(dumped)["type"] == payload.type  # type: ignore[attr-defined]
    reread = RECORD_PAYLOAD.validate_json(dumped)
    assert reread == payload
    assert type(reread) is type(payload)
    assert reread.model_dump_json() == dumped


@FAST
@given(record=s.agent_pool_store_records())
def test_record_payload_is_embedded_verbatim(record: AgentPoolStoreRecord) -> None:
    dumped = record.model_dump_json()
    payload_json = record.payload.model_dump_json()
    assert dumped.endswith(f',"payload":{payload_json}}}')


@FAST
@given(compiled=s.compiled_event_filters())
def test_compiling_is_deterministic_and_read_back_unchanged(compiled: WireModel) -> None:
    reread = type(compiled).model_validate_json(compiled.model_dump_json())
    assert reread.criteria.compile() == compiled  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(identifier=s.identifiers())
def test_identifier_strategy_generates_valid_identifiers(identifier: str) -> None:
    assert 0 < len(identifier.encode("utf-8")) <= MAX_IDENTIFIER_BYTES
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in identifier)
    assert validate_identifier(identifier) == identifier
