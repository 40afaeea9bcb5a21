"""Bad data in the database and bad arguments from callers.

- A stored record that cannot be read (malformed JSON, invalid identifier, unknown type),
  appended by another writer, fails every operation on its pool with InvalidStateTransition
  / RepairNeeded naming the pool and seq; another pool keeps working; no row is rewritten.
- A damaged projection row fails the look-ups that read it with RepairNeeded (never a
  pydantic error); ``rebuild`` repairs it.
- Invalid arguments fail with AgentError before anything is written.
- Identifiers full of SQL metacharacters are stored verbatim and are harmless.
- Secrets: a password in a URL never shows up in errors, reprs or logs.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

from agent_pool_store import (
    AgentError,
    AgentErrorKind,
    AgentPoolMember,
    AgentPoolStoreCursor,
    AgentPoolStoredWake,
    RetryClassification,
    SqlAgentPoolStore,
    WakeRegistrationStatus,
    open_store,
)
from tests.databases import PG_ADMIN_URL
from tests.factories import message_pair, wake_triple
from tests.reliability.workers import EQUAL_CONFIG, TABLES, Database, Raw, config_of

POOL = "pool.bad"
OTHER = "pool.good"
SECRET = "s3cr3t-PASSWORD"

MESSAGE, RECEIPT = message_pair("message.1")
CONDITION, COMPILED, REGISTRATION = wake_triple("wake.1")
MEMBER = AgentPoolMember(run_id="run.a", agent_id="agent.a", topics=("t.a",))


def populate(store: SqlAgentPoolStore, pool: str) -> int:
    store.open_pool(pool, EQUAL_CONFIG)
    store.join_member(pool, MEMBER)
    store.join_member(pool, AgentPoolMember(run_id="run.b", agent_id="agent.b"))
    store.record_message(pool, MESSAGE, RECEIPT)
    store.record_wake(pool, CONDITION, COMPILED, REGISTRATION)
    store.next_event_sequence(pool)
    return 5


def operations(pool: str, last_good: int) -> dict[str, Callable[[SqlAgentPoolStore], Any]]:
    """Every operation of the contract on ``pool``, as a caller would do it."""
    message, receipt = message_pair("message.new")
    condition, compiled, registration = wake_triple("wake.new")
    triggered = REGISTRATION.model_copy(update={"status": WakeRegistrationStatus.TRIGGERED})
    return {
        "open_pool": lambda s: s.open_pool(pool, EQUAL_CONFIG),
        "snapshot": lambda s: s.snapshot(pool),
        "message_receipt": lambda s: s.message_receipt(pool, MESSAGE.idempotency_key),
        "wake_registration": lambda s: s.wake_registration(pool, CONDITION.idempotency_key),
        "wake": lambda s: s.wake(pool, CONDITION.condition_id),
        "watch": lambda s: list(s.watch(pool)),
        "watch from the last good cursor": lambda s: list(s.watch(pool, last_good)),
        "record_pool_created": lambda s: s.record_pool_created(pool),
        "join_member": lambda s: s.join_member(
            pool, AgentPoolMember(run_id="run.new", agent_id="agent.new")
        ),
        "leave_member": lambda s: s.leave_member(pool, "run.a"),
        "record_message": lambda s: s.record_message(pool, message, receipt),
        "record_wake": lambda s: s.record_wake(pool, condition, compiled, registration),
        "record_wake again": lambda s: s.record_wake(pool, CONDITION, COMPILED, triggered),
        "next_event_sequence": lambda s: s.next_event_sequence(pool),
    }


def rows_of(raw: Raw, pool: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``pool`` in every table, sorted."""
    return {
        table: sorted(raw.execute(f"SELECT * FROM {table} WHERE pool_id = ?", (pool,)), key=repr)
        for table in TABLES
    }


def assert_repair_needed(error: AgentError, *parts: str) -> None:
    assert (error.kind, error.retry) == (
        AgentErrorKind.INVALID_STATE_TRANSITION,
        RetryClassification.REPAIR_NEEDED,
    ), repr(error)
    for part in parts:
        assert part in error.message, (part, error.message)


# --- unreadable records -----------------------------------------------------------------------

UNREADABLE = {
    "malformed json": ("member_joined", "{bad"),
    "invalid identifier": (
        "member_joined",
        '{"type":"member_joined","member":{"run_id":"","agent_id":"agent.x"}}',
    ),
    "control character in an identifier": (
        "run_message",
        '{"type":"member_joined","member":{"run_id":"run\\u0000x","agent_id":"agent.x"}}',
    ),
    "unknown record type": ("pool_exploded", '{"type":"pool_exploded"}'),
}


@pytest.mark.parametrize("name", list(UNREADABLE))
def test_unreadable_record_fails_its_pool_only(database: Database, name: str) -> None:
    kind, payload_json = UNREADABLE[name]
    store = database.open()
    last_good = populate(store, POOL)
    populate(store, OTHER)
    raw = database.raw()
    bad_seq = raw.append_record(POOL, kind, payload_json)  # a foreign writer's row
    assert bad_seq == last_good + 1
    before = rows_of(raw, POOL)

    for operation_name, operation in operations(POOL, last_good).items():
        with pytest.raises(AgentError) as caught:
            operation(store)
        assert_repair_needed(caught.value, repr(POOL), f"seq {bad_seq}")
        assert str(caught.value).startswith("InvalidStateTransition: "), operation_name
    # another store object, in a fresh state, says the same
    with pytest.raises(AgentError) as caught:
        database.open().snapshot(POOL)
    assert_repair_needed(caught.value, repr(POOL), f"seq {bad_seq}")

    for operation_name, operation in operations(OTHER, last_good).items():
        operation(store)  # the other pool keeps working
        assert store.verify(OTHER).ok, operation_name
    assert rows_of(raw, POOL) == before  # nothing rewritten, nothing dropped
    assert raw.execute(
        "SELECT kind, payload_json FROM agent_pool_records WHERE pool_id = ? AND seq = ?",
        (POOL, bad_seq),
    ) == [(kind, payload_json)]
    report = store.verify(POOL)
    assert [(d.check, d.seq) for d in report.differences if d.check != "pending"] == [
        ("payload", bad_seq)
    ]


def test_unreadable_record_inside_the_projected_range(database: Database) -> None:
    """A record rewritten after it was applied: watch fails, look-ups keep serving."""
    store = database.open()
    last = populate(store, POOL)
    raw = database.raw()
    raw.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = 2",
        ("{bad", POOL),
    )
    with pytest.raises(AgentError) as caught:
        list(store.watch(POOL))
    assert_repair_needed(caught.value, repr(POOL), "seq 2")
    assert [r.cursor.sequence for r in store.watch(POOL, 2)] == list(range(3, last + 1))
    assert [(d.check, d.seq) for d in store.verify(POOL).differences] == [
        ("payload", 2),
        ("projection", None),
    ]
    with pytest.raises(AgentError):
        store.rebuild(POOL)


# --- damaged projections ----------------------------------------------------------------------

PROJECTIONS: dict[str, tuple[str, str, list[str]]] = {
    # area: (UPDATE statement, key, operations that read the damaged row)
    "member": (
        "UPDATE agent_pool_store_members SET member_json = ? WHERE pool_id = ? AND run_id = ?",
        "run.a",
        ["snapshot", "leave_member"],
    ),
    "message": (
        "UPDATE agent_pool_store_messages SET stored_json = ? WHERE pool_id = ? AND message_id = ?",
        MESSAGE.message_id,
        ["snapshot"],
    ),
    "message receipt": (
        "UPDATE agent_pool_store_message_receipts SET receipt_json = ?"
        " WHERE pool_id = ? AND idempotency_key = ?",
        MESSAGE.idempotency_key,
        ["message_receipt"],
    ),
    "wake": (
        "UPDATE agent_pool_store_wakes SET stored_json = ? WHERE pool_id = ? AND condition_id = ?",
        CONDITION.condition_id,
        ["snapshot", "wake"],
    ),
    "wake registration": (
        "UPDATE agent_pool_store_wake_registrations SET registration_json = ?"
        " WHERE pool_id = ? AND idempotency_key = ?",
        CONDITION.idempotency_key,
        ["wake_registration"],
    ),
    "config": (
        "UPDATE agent_pool_store_pools SET config_json = ? WHERE pool_id = ? AND ? = ?",
        "",
        ["open_pool", "snapshot", "message_receipt", "join_member", "next_event_sequence"],
    ),
}


@pytest.mark.parametrize("area", list(PROJECTIONS))
def test_damaged_projection_fails_with_repair_needed(database: Database, area: str) -> None:
    statement, key, readers = PROJECTIONS[area]
    store = database.open()
    last = populate(store, POOL)
    populate(store, OTHER)
    raw = database.raw()
    lookups = ("snapshot", "message_receipt", "wake", "wake_registration")
    healthy = {
        name: operation(store)
        for name, operation in operations(POOL, last).items()
        if name in readers and name in lookups
    }
    for damage in ("{bad", '{"unexpected": true}'):  # invalid JSON; JSON of the wrong shape
        raw.execute(statement, (damage, POOL, key) if key else (damage, POOL, "", ""))
        for name, operation in operations(POOL, last).items():
            if name not in readers:
                continue
            with pytest.raises(AgentError) as caught:
                operation(store)
            assert_repair_needed(caught.value, repr(POOL), "projection cannot be read", "rebuild")
        assert store.snapshot(OTHER).members  # the other pool is fine
        assert [d.check for d in store.verify(POOL).differences] == ["projection"]

        assert store.rebuild(POOL) == last
        assert store.verify().ok
        for name, result in healthy.items():
            assert operations(POOL, last)[name](store) == result, name


# --- invalid arguments ------------------------------------------------------------------------

MEMBER_DICT = {"run_id": "run.x", "agent_id": "agent.x"}
INVALID: dict[str, Callable[[SqlAgentPoolStore], Any]] = {
    "pool_id empty": lambda s: s.snapshot(""),
    "pool_id None": lambda s: s.open_pool(None, EQUAL_CONFIG),  # type: ignore[arg-type]
    "pool_id int": lambda s: s.join_member(5, MEMBER),  # type: ignore[arg-type]
    "pool_id bytes": lambda s: s.record_pool_created(b"pool.bad"),  # type: ignore[arg-type]
    "pool_id NUL": lambda s: s.join_member("pool\x00bad", MEMBER),
    "pool_id escape": lambda s: s.open_pool("pool\x1b[31m", EQUAL_CONFIG),
    "pool_id DEL": lambda s: s.next_event_sequence("pool\x7f"),
    "pool_id newline": lambda s: s.record_message("pool\n", MESSAGE, RECEIPT),
    "pool_id too long": lambda s: s.open_pool("p" * 513, EQUAL_CONFIG),
    "pool_id too long in bytes": lambda s: s.open_pool("é" * 257, EQUAL_CONFIG),
    "config None": lambda s: s.open_pool(POOL, None),  # type: ignore[arg-type]
    "config dict": lambda s: s.open_pool(POOL, {}),  # type: ignore[arg-type]
    "config of the wrong type": lambda s: s.open_pool(POOL, MEMBER),  # type: ignore[arg-type]
    "member None": lambda s: s.join_member(POOL, None),  # type: ignore[arg-type]
    "member dict": lambda s: s.join_member(POOL, MEMBER_DICT),  # type: ignore[arg-type]
    "run_id empty": lambda s: s.leave_member(POOL, ""),
    "run_id int": lambda s: s.leave_member(POOL, 3),  # type: ignore[arg-type]
    "run_id tab": lambda s: s.leave_member(POOL, "run\ta"),
    "message None": lambda s: s.record_message(POOL, None, RECEIPT),  # type: ignore[arg-type]
    "receipt None": lambda s: s.record_message(POOL, MESSAGE, None),  # type: ignore[arg-type]
    "message and receipt swapped": lambda s: s.record_message(
        POOL,
        RECEIPT,  # type: ignore[arg-type]
        MESSAGE,  # type: ignore[arg-type]
    ),
    "idempotency key empty": lambda s: s.message_receipt(POOL, ""),
    "idempotency key None": lambda s: s.wake_registration(POOL, None),  # type: ignore[arg-type]
    "condition id NUL": lambda s: s.wake(POOL, "wake\x00"),
    "condition None": lambda s: s.record_wake(
        POOL,
        None,  # type: ignore[arg-type]
        COMPILED,
        REGISTRATION,
    ),
    "filter not compiled": lambda s: s.record_wake(
        POOL,
        CONDITION,
        CONDITION.filter,  # type: ignore[arg-type]
        REGISTRATION,
    ),
    "registration is a receipt": lambda s: s.record_wake(
        POOL,
        CONDITION,
        COMPILED,
        RECEIPT,  # type: ignore[arg-type]
    ),
    "cursor negative": lambda s: s.watch(POOL, -1),
    "cursor str": lambda s: s.watch(POOL, "3"),  # type: ignore[arg-type]
    "cursor float": lambda s: s.watch(POOL, 1.5),  # type: ignore[arg-type]
    "cursor bool": lambda s: s.watch(POOL, True),
    "cursor dict": lambda s: s.watch(POOL, {"sequence": 1}),  # type: ignore[arg-type]
    "watch pool_id empty": lambda s: s.watch("", AgentPoolStoreCursor(sequence=0)),
    "rebuild pool_id None": lambda s: s.rebuild(None),  # type: ignore[arg-type]
    "verify pool_id empty": lambda s: s.verify(""),
}

# Domain models are validated when built, but ``model_copy(update=...)`` and
# ``model_construct`` skip validation. The store re-checks model arguments through their wire
# JSON, so such a model is rejected instead of being appended as an unreadable record (it
# used to be appended, which made the pool unreadable for good: fixed in dbc0f97).
UNVALIDATED: dict[str, Callable[[SqlAgentPoolStore], Any]] = {
    "member run_id empty via model_copy": lambda s: s.join_member(
        POOL, MEMBER.model_copy(update={"run_id": ""})
    ),
    "member topic with NUL via model_copy": lambda s: s.join_member(
        POOL, MEMBER.model_copy(update={"topics": ("t\x00",)})
    ),
    "message_id empty via model_copy": lambda s: s.record_message(
        POOL, MESSAGE.model_copy(update={"message_id": ""}), RECEIPT
    ),
    "condition via model_construct": lambda s: s.record_wake(
        POOL,
        CONDITION.model_construct(**{**dict(CONDITION), "condition_id": ""}),
        COMPILED,
        REGISTRATION,
    ),
}


def rejection_problem(
    store: SqlAgentPoolStore, raw: Raw, call: Callable[[SqlAgentPoolStore], Any]
) -> str | None:
    """What is wrong with how ``call`` was rejected (None: AgentError, nothing written)."""
    before = raw.dump()
    try:
        result = call(store)
        if isinstance(result, Iterator):
            list(result)
    except AgentError as error:
        if (error.kind, error.retry) != (
            AgentErrorKind.INVALID_STATE_TRANSITION,
            RetryClassification.NOT_RETRYABLE,
        ):
            return f"wrong classification: {error!r}"
    except Exception as error:
        return f"not an AgentError: {error!r}"
    else:
        return "accepted"
    if raw.dump() != before:
        return "rejected, but something was written"
    return None


def test_invalid_arguments_are_rejected_before_anything_is_written(database: Database) -> None:
    store = database.open()
    populate(store, POOL)
    raw = database.raw()
    problems = {name: rejection_problem(store, raw, call) for name, call in INVALID.items()}
    assert {name: problem for name, problem in problems.items() if problem} == {}
    assert store.verify().ok


def test_watch_checks_its_arguments_when_called(database: Database) -> None:
    store = database.open()
    with pytest.raises(AgentError):
        store.watch(POOL, -1)  # not only when iterated


@pytest.mark.parametrize("name", list(UNVALIDATED))
def test_unvalidated_models_are_rejected_before_anything_is_written(
    database: Database, name: str
) -> None:
    store = database.open()
    populate(store, POOL)
    assert rejection_problem(store, database.raw(), UNVALIDATED[name]) is None
    assert store.verify().ok


@pytest.mark.parametrize(
    ("name", "argument"),
    [
        ("member run_id empty via model_copy", "member"),
        ("message_id empty via model_copy", "message"),
        ("condition via model_construct", "condition"),
    ],
)
def test_an_unvalidated_model_is_named_in_the_error(
    database: Database, name: str, argument: str
) -> None:
    """The record is checked once for all its arguments; the error names the one at fault."""
    store = database.open()
    populate(store, POOL)
    with pytest.raises(AgentError) as caught:
        UNVALIDATED[name](store)
    assert caught.value.message.startswith(f"invalid {argument}: "), caught.value.message
    assert "identifier is empty" in caught.value.message


def test_an_unvalidated_receipt_is_named_in_the_error(database: Database) -> None:
    store = database.open()
    populate(store, POOL)
    receipt = RECEIPT.model_copy(update={"journal_cursor": "j\x00"})
    with pytest.raises(AgentError) as caught:
        store.record_message(POOL, MESSAGE, receipt)
    assert caught.value.message.startswith("invalid receipt: journal_cursor: "), (
        caught.value.message
    )


# Arguments that used to get past the checks and fail inside the driver (a lone surrogate
# cannot be encoded; a sequence above 2**63-1 does not fit the column): now AgentError.
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda s: s.open_pool("pool\ud800", EQUAL_CONFIG),
            id="pool_id with a lone surrogate",
        ),
        pytest.param(
            lambda s: s.leave_member(POOL, "run\udfff"),
            id="run_id with a lone surrogate",
        ),
        pytest.param(
            lambda s: s.message_receipt(POOL, "key\ud800"),
            id="idempotency key with a lone surrogate",
        ),
        pytest.param(
            lambda s: s.watch(POOL, 2**64),
            id="cursor past the largest u64",
        ),
    ],
)
def test_invalid_arguments_that_reach_the_driver(
    database: Database, call: Callable[[SqlAgentPoolStore], Any]
) -> None:
    store = database.open()
    populate(store, POOL)
    assert rejection_problem(store, database.raw(), call) is None


@pytest.mark.parametrize("sequence", [2**63, 2**64 - 1])
def test_watch_from_a_cursor_past_any_stored_sequence(database: Database, sequence: int) -> None:
    """A valid u64 cursor past the end of the log: no records (the contract's ``> cursor``)."""
    store = database.open()
    populate(store, POOL)
    assert list(store.watch(POOL, AgentPoolStoreCursor(sequence=sequence))) == []


# --- SQL metacharacters -----------------------------------------------------------------------

NASTY = [
    "pool'; DROP TABLE agent_pool_records; --",
    'pool"; DELETE FROM agent_pool_store_pools; --',
    "pool%",
    "pool_",
    "poolX",
    "pool\\",
    "pool\\'; --",
    "pool' OR '1'='1",
    "pool/* comment */",
    "pool$1 ? :name %s %(x)s {0}",
    "pool ❄ ünïcödé 🐍",
]


def test_sql_metacharacters_are_stored_verbatim(database: Database) -> None:
    store = database.open()
    raw = database.raw()
    for index, pool in enumerate(NASTY):
        run = f"{pool}.run"
        member = AgentPoolMember(run_id=run, agent_id=f"{pool}.agent", topics=(f"{pool}.t",))
        message, receipt = message_pair(
            f"{pool}.message", idempotency_key=f"{pool}.key", sender=run
        )
        condition, compiled, registration = wake_triple(
            f"{pool}.wake", idempotency_key=f"{pool}.wkey", run_id=run
        )
        store.open_pool(pool, config_of(str(index)))
        assert store.join_member(pool, member).sequence == 2
        assert store.record_message(pool, message, receipt).sequence == 3
        assert store.record_wake(pool, condition, compiled, registration).sequence == 4
        assert store.next_event_sequence(pool) == 1
        snapshot = store.snapshot(pool)
        assert snapshot.pool_id == pool
        assert snapshot.members == (member,)
        assert snapshot.topics == (f"{pool}.t",)
        assert store.message_receipt(pool, f"{pool}.key") == receipt
        assert store.wake_registration(pool, f"{pool}.wkey") == registration
        assert store.wake(pool, f"{pool}.wake") == AgentPoolStoredWake(
            condition=condition, compiled_filter=compiled, registration=registration
        )
        assert [r.cursor.sequence for r in store.watch(pool)] == [1, 2, 3, 4]
        assert all(r.pool_id == pool for r in store.watch(pool))
    # wildcards match nothing but themselves: each pool sees only its own rows
    for pool in NASTY:
        assert [m.run_id for m in store.snapshot(pool).members] == [f"{pool}.run"]
        for other in NASTY:
            if other != pool:
                assert store.message_receipt(pool, f"{other}.key") is None
    left, cursor = store.leave_member("pool%", "pool%.run")
    assert (left.run_id, cursor.sequence) == ("pool%.run", 5)
    assert [m.run_id for m in store.snapshot("pool_").members] == ["pool_.run"]

    stored = raw.execute("SELECT DISTINCT pool_id FROM agent_pool_records")
    assert sorted(pool for (pool,) in stored) == sorted(NASTY)  # verbatim, byte for byte
    runs = raw.execute("SELECT run_id FROM agent_pool_store_members ORDER BY run_id")
    assert sorted(run for (run,) in runs) == sorted(f"{p}.run" for p in NASTY if p != "pool%")
    assert raw.counts()["agent_pool_records"] == 4 * len(NASTY) + 1  # every table is still there
    report = store.verify()
    assert report.ok and sorted(report.pools) == sorted(NASTY)


# --- secrets ----------------------------------------------------------------------------------


def pg_url_with(user: str, database: str, *, port: int | None = None) -> str:
    admin = make_url(PG_ADMIN_URL)
    url = URL.create(
        "postgresql+psycopg",
        username=user,
        password=SECRET,
        host=admin.host,
        port=port or admin.port,
        database=database,
    )
    return url.render_as_string(hide_password=False)


def assert_no_secret(error: BaseException, caplog: pytest.LogCaptureFixture, *more: str) -> None:
    assert isinstance(error, AgentError), f"not an AgentError: {type(error).__name__}"
    formatted = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), error.message, formatted, caplog.text, *more):
        assert SECRET not in text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in repr(record.args)


def assert_no_driver_traceback(error: BaseException) -> None:
    """One traceback, ours; the driver's error is reachable as ``__cause__``, frameless.

    The cause is the driver's own exception (psycopg's, with its SQLSTATE), not
    SQLAlchemy's wrapper, and shows as one line: no frame from inside SQLAlchemy or the
    driver is printed.
    """
    assert isinstance(error, AgentError), f"not an AgentError: {type(error).__name__}"
    assert error.__suppress_context__
    cause = error.__cause__
    if cause is not None:
        assert type(cause).__module__.split(".")[0] in ("psycopg", "sqlite3"), type(cause)
        assert cause.__traceback__ is None and cause.__cause__ is None
    formatted = "".join(traceback.format_exception(error))
    assert formatted.count("Traceback") == 1
    assert "sqlalchemy.exc." not in formatted
    for package in ("sqlalchemy", "psycopg"):
        assert f"{package}/" not in formatted.replace("\\", "/")


@pytest.fixture
def verbose_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at DEBUG, SQLAlchemy's own loggers included."""
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "alembic", "psycopg"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


@pytest.mark.postgresql
@pytest.mark.parametrize("auto_upgrade", [True, None])
@pytest.mark.parametrize(
    "url",
    [
        pytest.param(pg_url_with("nosuchrole", "test"), id="unknown role"),
        pytest.param(pg_url_with("postgres", "aps_no_such_database"), id="unknown database"),
        pytest.param(pg_url_with("postgres", "test", port=1), id="nothing listening"),
    ],
)
def test_failed_open_shows_no_password(
    pg_database: URL,
    verbose_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    url: str,
    auto_upgrade: bool | None,
) -> None:
    with pytest.raises(Exception) as caught:
        open_store(url, auto_upgrade=auto_upgrade)
    error = caught.value
    captured = capsys.readouterr()
    assert_no_secret(error, verbose_logs, captured.out, captured.err)
    assert_no_driver_traceback(error)
    assert isinstance(error, AgentError)
    assert error.kind is AgentErrorKind.HOST_CONFIGURATION_NEEDED
    assert "***" in error.message  # the URL is named, masked


@pytest.mark.postgresql
def test_store_with_a_password_masks_it(
    pg_url: URL, verbose_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    url = pg_url.set(password=SECRET).render_as_string(hide_password=False)
    assert SECRET in url
    with open_store(url) as store:  # trust authentication accepts any password
        assert SECRET not in repr(store)
        assert SECRET not in str(store.url)
        assert "***" in repr(store)
        populate(store, POOL)
        assert store.verify().ok
        with pytest.raises(AgentError) as caught:
            store.snapshot("pool.never.opened")
    captured = capsys.readouterr()
    assert_no_secret(caught.value, verbose_logs, captured.out, captured.err)
    assert verbose_logs.records  # the loggers did run


@pytest.mark.sqlite
def test_unopenable_sqlite_file_raises_agent_error(
    tmp_path: Any, verbose_logs: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(Exception) as caught:
        open_store(f"sqlite:///{tmp_path / 'no' / 'such' / 'directory' / 'x.sqlite'}")
    assert_no_driver_traceback(caught.value)


def test_unreadable_rows_of_wildcard_named_pools_stay_in_their_pools(database: Database) -> None:
    """Unreadable rows in pools ``pool%`` and ``pool_`` do not touch the pool ``pool``."""
    store = database.open()
    populate(store, "pool")
    raw = database.raw()
    raw.append_record("pool%", "member_joined", "{bad")
    raw.append_record("pool_", "member_joined", "{bad")
    assert store.snapshot("pool").members[0] == MEMBER
    assert store.join_member("pool", MEMBER).sequence == 6
    assert [r.cursor.sequence for r in store.watch("pool")] == list(range(1, 7))
    for pool in ("pool%", "pool_"):
        with pytest.raises(AgentError) as caught:
            store.snapshot(pool)
        assert_repair_needed(caught.value, repr(pool), "seq 1")
