"""Check-and-append is atomic: racing ``open_pool`` and ``leave_member`` calls.

Eight contenders (threads on four store objects, or eight processes) are released at once
by a barrier, in several rounds (times ``AGENT_POOL_STORE_STRESS``), each round on a new pool:

- ``open_pool`` with equal configs: one ``pool_opened`` record, everyone gets the snapshot;
- ``open_pool`` with different configs: exactly one wins, every other gets
  InvalidStateTransition / RepairNeeded "config conflicts with existing pool";
- ``leave_member`` of one run: exactly one succeeds, every other gets
  InvalidStateTransition / NotRetryable "run is not a member of this agent pool".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent_pool_store import (
    AgentErrorKind,
    AgentPoolMember,
    AgentPoolStoreConfig,
    PoolOpened,
    RetryClassification,
    SqlAgentPoolStore,
)
from tests.reliability.workers import (
    EQUAL_CONFIG,
    STRESS,
    Children,
    Database,
    config_of,
    race_once,
    report_figures,
)

CONTENDERS = 8
ROUNDS = 3 * STRESS
LEAVER = AgentPoolMember(run_id="run.leaver", agent_id="agent.leaver", topics=("t.leave",))
KINDS = ("open_equal", "open_different", "leave")

pytestmark = pytest.mark.timeout(300 * STRESS)


def specs_for(kind: str, pool: str, tag: str) -> list[dict[str, Any]]:
    """What each contender does in one round."""
    if kind == "leave":
        return [{"op": "leave", "pool": pool, "run_id": LEAVER.run_id}] * CONTENDERS
    return [
        {
            "op": "open",
            "pool": pool,
            "config": (
                EQUAL_CONFIG if kind == "open_equal" else config_of(f"{tag}.{index}")
            ).model_dump_json(),
        }
        for index in range(CONTENDERS)
    ]


def prepare(store: SqlAgentPoolStore, kind: str, pool: str) -> None:
    """Leave rounds race on an opened pool where the run is a member."""
    if kind == "leave":
        store.open_pool(pool, EQUAL_CONFIG)
        store.join_member(pool, LEAVER)


def check_round(
    store: SqlAgentPoolStore, kind: str, pool: str, specs: list[dict[str, Any]], outcomes: list[Any]
) -> None:
    records = list(store.watch(pool))
    kinds = [record.payload.type for record in records]
    winners = [index for index, outcome in enumerate(outcomes) if outcome["ok"]]
    losers = [outcome for outcome in outcomes if not outcome["ok"]]
    if kind == "open_equal":
        assert losers == [], outcomes
        assert kinds == ["pool_opened"]
        assert {outcome["cursor"] for outcome in outcomes} == {1}
        return
    if kind == "open_different":
        assert len(winners) == 1, outcomes
        for loser in losers:
            assert (loser["kind"], loser["retry"]) == (
                AgentErrorKind.INVALID_STATE_TRANSITION.value,
                RetryClassification.REPAIR_NEEDED.value,
            ), loser
            assert loser["message"].endswith("config conflicts with existing pool"), loser
        assert kinds == ["pool_opened"]
        winner = AgentPoolStoreConfig.model_validate_json(specs[winners[0]]["config"])
        assert isinstance(records[0].payload, PoolOpened)
        assert records[0].payload.config == winner
        assert store.snapshot(pool).policy_refs == winner.policy_refs
        return
    assert len(winners) == 1, outcomes
    assert outcomes[winners[0]] == {"ok": True, "cursor": 3, "member": LEAVER.run_id}
    for loser in losers:
        assert (loser["kind"], loser["retry"]) == (
            AgentErrorKind.INVALID_STATE_TRANSITION.value,
            RetryClassification.NOT_RETRYABLE.value,
        ), loser
        assert loser["message"] == "run is not a member of this agent pool", loser
    assert kinds == ["pool_opened", "member_joined", "member_left"]
    assert store.snapshot(pool).members == ()


def race_threads(
    stores: list[SqlAgentPoolStore], specs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run each spec in its own thread, all released by one barrier."""
    barrier = threading.Barrier(len(specs))
    outcomes: list[dict[str, Any]] = [{} for _ in specs]

    def contend(index: int) -> Callable[[], None]:
        def run() -> None:
            barrier.wait(timeout=60)
            outcomes[index] = race_once(stores[index % len(stores)], specs[index])

        return run

    threads = [threading.Thread(target=contend(index)) for index in range(len(specs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("kind", KINDS)
def test_threads_race(database: Database, kind: str) -> None:
    stores = [database.open() for _ in range(4)]  # two threads per store object
    checker = database.open()
    for round_ in range(ROUNDS):
        pool = f"pool.race.{kind}.{round_}"
        prepare(checker, kind, pool)
        specs = specs_for(kind, pool, f"t{round_}")
        outcomes = race_threads(stores, specs)
        check_round(checker, kind, pool, specs, outcomes)
    assert checker.verify().ok


@pytest.mark.slow
def test_processes_race(database: Database, tmp_path: Path) -> None:
    checker = database.open()
    rounds = [(kind, f"pool.race.{kind}.{r}") for r in range(ROUNDS) for kind in KINDS]
    per_round = [specs_for(kind, pool, f"r{r}") for r, (kind, pool) in enumerate(rounds)]
    for kind, pool in rounds:
        prepare(checker, kind, pool)
    with Children(tmp_path) as children:
        for index in range(CONTENDERS):
            children.spawn(
                "racer",
                f"racer{index}",
                url=database.url,
                tag=f"racer{index}",
                rounds=[specs[index] for specs in per_round],
            )
        for _ in rounds:
            children.barrier()
        results = children.results()
    for number, (kind, pool) in enumerate(rounds):
        outcomes = [result["outcomes"][number] for result in results]
        check_round(checker, kind, pool, per_round[number], outcomes)
    assert checker.verify().ok
    report_figures(
        "check_and_append",
        database.dialect,
        processes=CONTENDERS,
        rounds=len(rounds),
        contended_calls=len(rounds) * CONTENDERS,
    )
