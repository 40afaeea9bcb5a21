"""``snapshot_json(pool_id)`` is ``snapshot(pool_id).model_dump_json()``, byte for byte.

On every backend (memory, SQLite, PostgreSQL, bound, in a schema, async), through a pool's
life: opened and empty, with members and their topics, messages and wakes (non-ASCII text
included), a member gone, statuses re-recorded; and with the same errors. The SQL stores
assemble it from their projections' stored JSON (``domain/snapshot_json.py``), so this is
what checks that assembly. A hypothesis property on random histories is in
``tests/test_sql_properties.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from agent_pool_store import (
    AgentError,
    AgentPoolMember,
    AgentPoolStore,
    AgentPoolStoreConfig,
    MessageStatus,
    PolicyKind,
    PolicyRef,
    RetryClassification,
    WakeRegistrationStatus,
    open_store,
)
from tests.databases import sqlite_url
from tests.factories import message_pair, wake_triple

POOL = "pool.json"


def assert_same(store: Any, pool: str = POOL) -> str:
    wire = store.snapshot(pool).model_dump_json()
    assert store.snapshot_json(pool) == wire
    return str(wire)


def test_snapshot_json_is_the_snapshots_wire_json(store: AgentPoolStore) -> None:
    stores: Any = store
    with pytest.raises(AgentError) as model_error:
        store.snapshot("pool.never.opened")
    with pytest.raises(AgentError) as json_error:
        stores.snapshot_json("pool.never.opened")
    assert (json_error.value.kind, json_error.value.retry) == (
        model_error.value.kind,
        model_error.value.retry,
    )

    config = AgentPoolStoreConfig(policy_refs=(PolicyRef(kind=PolicyKind.PERMISSION, id="p.ç"),))
    store.open_pool(POOL, config)
    empty = assert_same(store)
    assert '"members":[]' in empty and '"messages"' not in empty and '"wakes"' not in empty

    store.record_pool_created(POOL)
    for run_id, topics in (("run.b", ("t.z", "t.é")), ("run.a", ("t.a",)), ("run.c", ())):
        store.join_member(POOL, AgentPoolMember(run_id=run_id, agent_id="agent.x", topics=topics))
    for index in (3, 1, 2):
        store.record_message(
            POOL, *message_pair(f"message.{index}", content_ref=f"contenu.{index}.ü")
        )
    store.record_message(POOL, *message_pair("message.1", MessageStatus.DELIVERED))
    for index in (2, 1):
        store.record_wake(POOL, *wake_triple(f"wake.{index}"))
    store.record_wake(POOL, *wake_triple("wake.1", WakeRegistrationStatus.CANCELLED))
    store.leave_member(POOL, "run.b")
    full = assert_same(store)
    assert full.index("run.a") < full.index("run.c")  # in key order
    assert full.index("message.1") < full.index("message.2") < full.index("message.3")


@pytest.mark.sqlite
def test_a_damaged_fragment_fails_as_the_snapshot_does(sqlite_file: Any) -> None:
    store = open_store(sqlite_url(sqlite_file))
    try:
        store.open_pool(POOL, AgentPoolStoreConfig())
        store.record_message(POOL, *message_pair("message.1"))
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE agent_pool_store_messages SET stored_json = '{'"))
        errors = []
        for read in (store.snapshot, store.snapshot_json):
            with pytest.raises(AgentError) as raised:
                read(POOL)
            errors.append(raised.value)
        assert [error.retry for error in errors] == [RetryClassification.REPAIR_NEEDED] * 2
        assert errors[0].message == errors[1].message
    finally:
        store.close()
