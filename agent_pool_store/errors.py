"""The library's one error type, :class:`AgentError`, and its two classification enums."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum


class AgentErrorKind(StrEnum):
    """What went wrong, with the reference implementation's PascalCase names."""

    INVALID_PACKAGE = "InvalidPackage"
    INVALID_STATE_TRANSITION = "InvalidStateTransition"
    PROVIDER_FAILURE = "ProviderFailure"
    PROJECTION_FAILURE = "ProjectionFailure"
    TOOL_FAILURE = "ToolFailure"
    APPROVAL_FAILURE = "ApprovalFailure"
    POLICY_DENIAL = "PolicyDenial"
    JOURNAL_FAILURE = "JournalFailure"
    TELEMETRY_FAILURE = "TelemetryFailure"
    ISOLATION_FAILURE = "IsolationFailure"
    STRUCTURED_OUTPUT_FAILURE = "StructuredOutputFailure"
    STREAM_RULE_FAILURE = "StreamRuleFailure"
    SUBAGENT_FAILURE = "SubagentFailure"
    EXTENSION_FAILURE = "ExtensionFailure"
    CANCELLATION = "Cancellation"
    CHILD_LIFECYCLE_FAILURE = "ChildLifecycleFailure"
    HOOK_FAILURE = "HookFailure"
    TIMEOUT = "Timeout"
    RECOVERY_REPAIR_NEEDED = "RecoveryRepairNeeded"
    HOST_CONFIGURATION_NEEDED = "HostConfigurationNeeded"


class RetryClassification(StrEnum):
    """Whether, and how, a caller may retry after an :class:`AgentError`."""

    RETRYABLE = "Retryable"
    NOT_RETRYABLE = "NotRetryable"
    REPAIR_NEEDED = "RepairNeeded"
    USER_ACTION_NEEDED = "UserActionNeeded"
    HOST_CONFIGURATION_NEEDED = "HostConfigurationNeeded"


class AgentError(Exception):
    """An error of the agent-pool store, classified by kind and retry advice.

    ``str(error)`` is ``"{Kind}: {message}"``, as in the reference implementation.
    """

    outcome_unknown: bool = False
    """``True`` when the operation may or may not have taken effect: its request reached the
    database, the reply was lost, and the store could not find out which. Never retry such
    an operation blindly (an append could be recorded twice): read the pool first (``watch``
    from the last cursor you know, a look-up by idempotency key). Such an error is
    JournalFailure / UserActionNeeded; every other error, Retryable ones included, means the
    operation did not take effect."""

    pool_id: str | None = None
    """The pool the failed call was about, when it was about one. Store operations set it
    (the message keeps the reference implementation's text); ``str(error)`` names it."""

    def __init__(
        self,
        kind: AgentErrorKind,
        retry: RetryClassification,
        message: str,
        *,
        pool_id: str | None = None,
    ) -> None:
        super().__init__(kind, retry, message)
        self.kind = kind
        self.retry = retry
        self.message = message
        if pool_id is not None:
            self.pool_id = pool_id

    def __str__(self) -> str:
        shown = f"{self.kind.value}: {self.message}"
        if self.pool_id is None or repr(self.pool_id) in self.message:
            return shown
        return f"{shown} (pool {self.pool_id!r})"

    def __repr__(self) -> str:
        pool = "" if self.pool_id is None else f", pool_id={self.pool_id!r}"
        return f"AgentError({self.kind.value}, {self.retry.value}, {self.message!r}{pool})"

    @classmethod
    def unknown_outcome(cls, message: str) -> AgentError:
        """The reply to a write was lost and whether it took effect cannot be told."""
        error = cls(AgentErrorKind.JOURNAL_FAILURE, RetryClassification.USER_ACTION_NEEDED, message)
        error.outcome_unknown = True
        return error

    @classmethod
    def invalid_argument(cls, message: str) -> AgentError:
        """An argument was rejected before anything was written."""
        return cls(
            AgentErrorKind.INVALID_STATE_TRANSITION, RetryClassification.NOT_RETRYABLE, message
        )

    @classmethod
    def pool_not_opened(cls, store_label: str) -> AgentError:
        """An operation on a pool this store never opened (fail closed)."""
        return cls(
            AgentErrorKind.HOST_CONFIGURATION_NEEDED,
            RetryClassification.HOST_CONFIGURATION_NEEDED,
            f"{store_label} agent pool store has not opened this pool",
        )

    @classmethod
    def config_conflict(cls, store_label: str) -> AgentError:
        """``open_pool`` with a config different from the pool's first one."""
        return cls(
            AgentErrorKind.INVALID_STATE_TRANSITION,
            RetryClassification.REPAIR_NEEDED,
            f"{store_label} agent pool store config conflicts with existing pool",
        )

    @classmethod
    def store_closed(cls, store_label: str) -> AgentError:
        """A call on a store after its ``close()``."""
        return cls(
            AgentErrorKind.INVALID_STATE_TRANSITION,
            RetryClassification.NOT_RETRYABLE,
            f"{store_label} agent pool store is closed: open a new store to go on",
        )

    @classmethod
    def not_a_member(cls) -> AgentError:
        """``leave_member`` of a run that is not a current member."""
        return cls(
            AgentErrorKind.INVALID_STATE_TRANSITION,
            RetryClassification.NOT_RETRYABLE,
            "run is not a member of this agent pool",
        )

    @classmethod
    def unreadable_record(cls, pool_id: str, seq: object, reason: str) -> AgentError:
        """A stored record of a pool cannot be read; the pool needs repair.

        ``seq`` is the record's stored sequence, whatever a foreign writer stored there.
        """
        shown = seq if isinstance(seq, int) else repr(seq)
        return cls(
            AgentErrorKind.INVALID_STATE_TRANSITION,
            RetryClassification.REPAIR_NEEDED,
            f"agent pool {pool_id!r} record seq {shown} cannot be read: {reason}",
            pool_id=pool_id,
        )

    @classmethod
    def pool_deleted(cls, pool_id: str, cursor: int) -> AgentError:
        """A followed pool was deleted (or archived): its log no longer reaches ``cursor``."""
        return cls(
            AgentErrorKind.INVALID_STATE_TRANSITION,
            RetryClassification.NOT_RETRYABLE,
            f"agent pool {pool_id!r} was deleted (or archived) while followed: it is no "
            f"longer opened, and its log no longer holds seq {cursor}",
            pool_id=pool_id,
        )

    @classmethod
    def damaged_projection(cls, pool_id: str, area: str, reason: str) -> AgentError:
        """A projection row of a pool cannot be read; ``rebuild`` repairs it from the log."""
        return cls(
            AgentErrorKind.INVALID_STATE_TRANSITION,
            RetryClassification.REPAIR_NEEDED,
            f"agent pool {pool_id!r} {area} projection cannot be read ({reason}); "
            "rebuild the pool's projections from its log",
            pool_id=pool_id,
        )


@contextmanager
def about_pool(pool_id: str) -> Iterator[None]:
    """An AgentError leaving the block names ``pool_id`` (unless it names a pool already)."""
    try:
        yield
    except AgentError as error:
        if error.pool_id is None:
            error.pool_id = pool_id
        raise
