"""A pool snapshot's wire JSON, assembled from its parts' wire JSON.

A SQL store keeps every member, message and wake of a pool as the wire JSON of its model.
:func:`snapshot_json` puts those fragments together with what the snapshot adds (pool id,
created, topics, the config's policies, cursor) into exactly the text
``AgentPoolSnapshot.model_dump_json()`` gives, without building a model per fragment: for a
pool of many messages that is most of a snapshot's time, and of its memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pydantic_core import to_json

from agent_pool_store.domain.pool import AgentPoolMember, AgentPoolStoreConfig
from agent_pool_store.domain.records import AgentPoolSnapshot, AgentPoolStoreCursor

_FRAGMENT_FIELDS = ("members", "messages", "wakes")


def snapshot_json(
    pool_id: str,
    created: bool,
    config: AgentPoolStoreConfig,
    *,
    members: Sequence[tuple[AgentPoolMember, str]],
    messages: Sequence[str],
    wakes: Sequence[str],
    last_sequence: int,
) -> str:
    """``AgentPoolSnapshot.model_dump_json()`` of a pool, from its parts' wire JSON.

    ``members`` are the current members with their wire JSON, in run id order; ``messages``
    and ``wakes`` the wire JSON of the stored messages and wakes, in message id and
    condition id order (the snapshot's orders). ``last_sequence`` 0: no record yet.
    """
    topics = sorted({topic for member, _ in members for topic in member.topics})
    # the snapshot without its lists of fragments: its other fields as the model writes
    # them, and which fields it leaves out when empty
    shell = AgentPoolSnapshot(
        pool_id=pool_id,
        created=created,
        topics=tuple(topics),
        message_policy=config.message_policy,
        wake_policy=config.wake_policy,
        policy_refs=config.policy_refs,
        cursor=AgentPoolStoreCursor(sequence=last_sequence) if last_sequence else None,
    ).model_dump(mode="json")
    fragments = {
        "members": [json for _, json in members],
        "messages": messages,
        "wakes": wakes,
    }
    # one join at the end: the output is the only copy of the fragments' text
    pieces = ["{"]
    for name in AgentPoolSnapshot.model_fields:
        if name in _FRAGMENT_FIELDS:
            items = fragments[name]
            if not items and name not in shell:  # left out when empty, as the model does
                continue
            value = ["[", *_separated(items), "]"]
        elif name in shell:
            value = [to_json(shell[name]).decode()]
        else:
            continue
        if len(pieces) > 1:
            pieces.append(",")
        pieces.append(f'"{name}":')
        pieces += value
    pieces.append("}")
    return "".join(pieces)


def _separated(items: Sequence[str]) -> Iterator[str]:
    for index, item in enumerate(items):
        if index:
            yield ","
        yield item
