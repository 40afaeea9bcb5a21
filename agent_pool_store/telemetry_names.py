"""The names the store reports under: span, event, attribute and instrument names.

The database attributes are OpenTelemetry's stable semantic conventions for database
clients (``db.*``, ``server.*``, ``error.type``); ``tests/test_telemetry_names.py`` checks
each against the ``opentelemetry-semantic-conventions`` package, which the ``otel`` extra
does not need at run time (it pins an exact ``opentelemetry-api`` version). Everything the
conventions do not cover is under ``agent_pool_store.``.
"""

from __future__ import annotations

SCOPE = "agent_pool_store"
"""The instrumentation scope of the store's tracer and meter."""

# -- OpenTelemetry semantic conventions (stable, database client) ------------------------------
DB_SYSTEM_NAME = "db.system.name"
"""``sqlite`` or ``postgresql``: the SQL stores' dialect names are the conventions' values."""
DB_NAMESPACE = "db.namespace"
DB_QUERY_TEXT = "db.query.text"
DB_OPERATION_NAME = "db.operation.name"
DB_OPERATION_BATCH_SIZE = "db.operation.batch.size"
DB_RESPONSE_STATUS_CODE = "db.response.status_code"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# -- spans ----------------------------------------------------------------------------------
OPERATION_SPAN_PREFIX = "agent_pool_store."
"""A store operation's span is ``agent_pool_store.<operation>`` (``agent_pool_store.watch`` per
batch read, ``agent_pool_store.follow`` for a whole follower)."""

# -- attributes -----------------------------------------------------------------------------
OPERATION = "agent_pool_store.operation"
POOL_ID = "agent_pool_store.pool.id"
RECORD_KIND = "agent_pool_store.record.kind"
CURSOR = "agent_pool_store.cursor"
"""The sequence of the record an append wrote, or the last record a watch batch read."""
RECORDS = "agent_pool_store.records"
"""How many records a watch batch read, or a follower yielded."""
ERROR_KIND = "agent_pool_store.error.kind"
ERROR_RETRY = "agent_pool_store.error.retry"
ERROR_OUTCOME_UNKNOWN = "agent_pool_store.error.outcome_unknown"
RETRY_REASON = "agent_pool_store.retry.reason"
CATCH_UP_FIRST = "agent_pool_store.catch_up.first"
CATCH_UP_LAST = "agent_pool_store.catch_up.last"
RECONNECT_REASON = "agent_pool_store.reconnect.reason"

# -- events ---------------------------------------------------------------------------------
RETRY_EVENT = "agent_pool_store.retry"
"""The unit of work runs again (a transient failure, a lost connection, a read to catch up)."""
CATCH_UP_EVENT = "agent_pool_store.catch_up"
"""Records another writer appended were applied to the projections."""
RECONNECT_EVENT = "agent_pool_store.follow.reconnect"
"""A follower's listening connection was lost and opened again."""

# -- instruments ----------------------------------------------------------------------------
OPERATION_DURATION = "agent_pool_store.operation.duration"
RECORDS_APPENDED = "agent_pool_store.records.appended"
RECORDS_CAUGHT_UP = "agent_pool_store.records.caught_up"
RETRIES = "agent_pool_store.retries"
LOCK_WAIT_TIMEOUTS = "agent_pool_store.lock_wait.timeouts"
FOLLOW_LAG_RECORDS = "agent_pool_store.follow.lag.records"
FOLLOW_LAG_DURATION = "agent_pool_store.follow.lag.duration"
FOLLOW_RECONNECTS = "agent_pool_store.follow.reconnects"

DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
"""Seconds: the histogram's advised bucket boundaries (an append takes about a millisecond)."""
