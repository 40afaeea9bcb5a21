"""The ``otel`` extra as installed, or not: each case in a child process of its own.

- Without OpenTelemetry (its import blocked): the stores work, import none of it, report
  nothing; :class:`~agent_pool_store.telemetry.Telemetry` says what to install.
- Installed, with the global providers: a store opened before the application configures
  an SDK reports to it once it is configured (OpenTelemetry's proxies), and nothing before.
- The attribute names are OpenTelemetry's semantic conventions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from opentelemetry.semconv.attributes import db_attributes, error_attributes, server_attributes

from agent_pool_store import telemetry_names as names
from tests.reliability.workers import Database

ROOT = Path(__file__).resolve().parent.parent

BLOCK_OPENTELEMETRY = """
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
"""

WITHOUT = """
import asyncio, json, sys
from agent_pool_store import AgentError, AgentPoolMember, AgentPoolStoreConfig
from agent_pool_store import open_async_store, open_store, telemetry
from agent_pool_store.telemetry import Telemetry

url = sys.argv[1]
store = open_store(url)
store.open_pool("pool.plain", AgentPoolStoreConfig())
cursor = store.join_member("pool.plain", AgentPoolMember(run_id="run.a", agent_id="agent.a"))
try:
    store.snapshot("pool.never.opened")
except AgentError:
    pass
followed = [r.cursor.sequence for r in store.follow("pool.plain", timeout=0.1)]

async def async_cursor():
    async with await open_async_store(url) as opened:
        joined = await opened.join_member(
            "pool.plain", AgentPoolMember(run_id="run.b", agent_id="agent.a"))
        return [joined.sequence, opened._store._telemetry is not None]

try:
    Telemetry()
    refused = None
except AgentError as error:
    refused = [error.kind.value, error.retry.value, error.message]
print(json.dumps({
    "available": telemetry.AVAILABLE,
    "store_telemetry": store._telemetry is not None,
    "cursor": cursor.sequence,
    "followed": followed,
    "async_cursor": asyncio.run(async_cursor()),
    "refused": refused,
    "imported": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
}))
"""

GLOBAL_LATER = """
import json, sys
from agent_pool_store import AgentPoolMember, AgentPoolStoreConfig, open_store

store = open_store(sys.argv[1])  # before the application configures OpenTelemetry
store.open_pool("pool.global", AgentPoolStoreConfig())

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
with trace.get_tracer("host").start_as_current_span("request"):
    store.join_member("pool.global", AgentPoolMember(run_id="run.a", agent_id="agent.a"))
spans = exporter.get_finished_spans()
operations = [s.name for s in spans if s.name.startswith("agent_pool_store.")]
print(json.dumps({"operations": operations, "scope": spans[0].instrumentation_scope.name}))
"""


def run_child(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a new Python process at the repo root; its last stdout line, parsed."""
    completed = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return dict(json.loads(completed.stdout.splitlines()[-1]))


def test_without_opentelemetry_the_stores_work_and_import_none_of_it(database: Database) -> None:
    result = run_child(BLOCK_OPENTELEMETRY + WITHOUT, database.url)
    assert result["available"] is False
    assert result["store_telemetry"] is False
    assert result["imported"] == []
    assert result["cursor"] == 2
    assert result["followed"] == [1, 2]
    assert result["async_cursor"] == [3, False]
    kind, retry, message = result["refused"]
    assert (kind, retry) == ("HostConfigurationNeeded", "HostConfigurationNeeded")
    assert "agent-pool-store[otel]" in message


def test_the_blocker_blocks_only_opentelemetry(database: Database) -> None:
    """The same script, unblocked, sees OpenTelemetry: the test above is not vacuous."""
    result = run_child(WITHOUT, database.url)
    assert result["available"] is True
    assert result["store_telemetry"] is True
    assert result["async_cursor"] == [3, True]
    assert "opentelemetry.trace" in result["imported"]
    assert result["refused"] is None


def test_a_store_reports_to_global_providers_configured_after_it_opened(
    database: Database,
) -> None:
    result = run_child(GLOBAL_LATER, database.url)
    # open_pool ran before the SDK was configured: nothing of it was recorded
    assert result["operations"] == ["agent_pool_store.join_member"]
    assert result["scope"] == names.SCOPE


def test_the_database_attributes_are_the_semantic_conventions() -> None:
    assert names.DB_SYSTEM_NAME == db_attributes.DB_SYSTEM_NAME
    assert names.DB_NAMESPACE == db_attributes.DB_NAMESPACE
    assert names.DB_QUERY_TEXT == db_attributes.DB_QUERY_TEXT
    assert names.DB_OPERATION_NAME == db_attributes.DB_OPERATION_NAME
    assert names.DB_OPERATION_BATCH_SIZE == db_attributes.DB_OPERATION_BATCH_SIZE
    assert names.DB_RESPONSE_STATUS_CODE == db_attributes.DB_RESPONSE_STATUS_CODE
    assert names.SERVER_ADDRESS == server_attributes.SERVER_ADDRESS
    assert names.SERVER_PORT == server_attributes.SERVER_PORT
    assert names.ERROR_TYPE == error_attributes.ERROR_TYPE
    # the dialects' names are the conventions' values for db.system.name
    assert db_attributes.DbSystemNameValues.POSTGRESQL.value == "postgresql"
