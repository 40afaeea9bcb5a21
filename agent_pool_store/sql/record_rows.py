"""Log rows read in one transaction and parsed into records as the caller reaches them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from agent_pool_store.domain import AgentPoolStoreRecord
from agent_pool_store.sql.parsing import checked_row, parse_payload


class RecordRows(Sequence[AgentPoolStoreRecord]):
    """A pool's ``(seq, payload_json)`` rows, read as :class:`AgentPoolStoreRecord`.

    ``watch`` reads a thousand rows per transaction. Parsing them all up front would keep
    a thousand records' objects alive at once, and CPython's cyclic collector would traverse
    them again and again while the caller works through them; parsing each row when it is
    reached lets the caller's records be freed as it goes. A row whose payload cannot be
    read raises AgentError RepairNeeded when it is reached, after the records before it.
    """

    def __init__(self, pool_id: str, rows: Sequence[tuple[int, str]]) -> None:
        self.pool_id = pool_id
        self.rows = rows

    def _record(self, seq: int, payload_json: str) -> AgentPoolStoreRecord:
        seq, payload_json = checked_row(self.pool_id, seq, payload_json)
        payload = parse_payload(self.pool_id, seq, payload_json)
        return AgentPoolStoreRecord.model_validate(
            {"pool_id": self.pool_id, "cursor": {"sequence": seq}, "payload": payload}
        )

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> AgentPoolStoreRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[AgentPoolStoreRecord]: ...

    def __getitem__(
        self, index: int | slice
    ) -> AgentPoolStoreRecord | Sequence[AgentPoolStoreRecord]:
        if isinstance(index, slice):
            return RecordRows(self.pool_id, self.rows[index])
        return self._record(*self.rows[index])

    def __iter__(self) -> Iterator[AgentPoolStoreRecord]:
        for seq, payload_json in self.rows:
            yield self._record(seq, payload_json)
