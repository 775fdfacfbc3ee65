"""Durable workflow executions as the store keeps them (docs/adr/0008-durable-workflows.md).

An execution runs a workflow function by *replays*: each replay re-runs the function from the
top, finds the operations already checkpointed (:class:`OperationRecord`) and returns their
results instead of running them again. Every change is written with a line of history
(:class:`HistoryRecord`) in the same transaction. The statuses and operation types are those
of the AWS durable execution SDK.

Each record converts itself to and from a row (``to_row`` / ``from_row``): enums as their
values, ``error`` and ``details`` as JSON text; results and inputs are stored as the serialized
text the workflow's serdes made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any


class ExecutionStatus(StrEnum):
    """Where an execution is (the AWS durable execution statuses)."""

    #: Started and not ended: being replayed, or suspended until ``next_run_at`` or an event.
    RUNNING = "RUNNING"
    #: The workflow function returned; ``result`` holds its value.
    SUCCEEDED = "SUCCEEDED"
    #: The workflow function raised; ``error`` says what.
    FAILED = "FAILED"
    #: Still running at ``timeout_at``.
    TIMED_OUT = "TIMED_OUT"
    #: Stopped on request.
    STOPPED = "STOPPED"

    @property
    def is_terminal(self) -> bool:
        return self is not ExecutionStatus.RUNNING


class OperationStatus(StrEnum):
    """Where one durable operation is (the AWS SDK's operation statuses)."""

    STARTED = "STARTED"
    #: Waiting for its next attempt (a retry) or its wake time.
    PENDING = "PENDING"
    READY = "READY"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"

    @property
    def is_terminal(self) -> bool:
        return self in OPERATION_ENDED


#: The operation statuses that are final: an ended operation never changes again.
OPERATION_ENDED = frozenset(
    {
        OperationStatus.SUCCEEDED,
        OperationStatus.FAILED,
        OperationStatus.CANCELLED,
        OperationStatus.TIMED_OUT,
        OperationStatus.STOPPED,
    }
)


class OperationType(StrEnum):
    """What kind of durable operation (the AWS SDK's operation types)."""

    EXECUTION = "EXECUTION"
    CONTEXT = "CONTEXT"
    STEP = "STEP"
    WAIT = "WAIT"
    CALLBACK = "CALLBACK"
    CHAINED_INVOKE = "CHAINED_INVOKE"


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(slots=True)
class ExecutionRecord:
    """One row of ``executions``: a run of a workflow, started once per (workflow, name)."""

    id: str
    workflow: str
    name: str
    principal: str
    status: ExecutionStatus
    created_at: float
    updated_at: float
    #: Serialized by the workflow's serdes (JSON text by default).
    input: str | None = None
    #: Serialized by the workflow's serdes.
    result: str | None = None
    #: ``{"type", "message", "data", "stack"}``, as the AWS ``ErrorObject``.
    error: dict[str, Any] | None = None
    ended_at: float | None = None
    timeout_at: float | None = None
    #: Set when it ends: ``ended_at`` + retention; retention deletes it after that.
    expires_at: float | None = None
    #: When it is to be replayed next; None: it waits for an outside event (a callback, a
    #: child's end), or a replay is running it now.
    next_run_at: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    #: How many replays were claimed.
    replays: int = 0
    #: Set for a child started by ``context.invoke`` of another execution.
    parent_id: str | None = None
    parent_operation_id: str | None = None

    def to_row(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in EXECUTION_COLUMNS}
        row["status"] = self.status.value
        row["error"] = _dumps(self.error)
        return row

    @classmethod
    def from_row(cls, row: Any) -> ExecutionRecord:
        data = {name: row[name] for name in EXECUTION_COLUMNS}
        data["status"] = ExecutionStatus(data["status"])
        data["error"] = _loads(data["error"])
        return cls(**data)


@dataclass(slots=True)
class OperationRecord:
    """One row of ``execution_operations``: a durable operation's checkpoint.

    ``id`` is deterministic (its position in its context, prefixed by the context's id:
    ``3``, ``3-1``); ``seq`` is its creation order in the execution, given by the store.
    """

    execution_id: str
    id: str
    type: OperationType
    sub_type: str
    status: OperationStatus
    seq: int = 0
    parent_id: str | None = None
    name: str | None = None
    #: 1-based once started.
    attempt: int = 0
    #: Serialized by the workflow's serdes.
    result: str | None = None
    error: dict[str, Any] | None = None
    next_attempt_at: float | None = None
    wake_at: float | None = None
    callback_id: str | None = None
    callback_timeout_at: float | None = None
    #: A callback must be heartbeated before this; each heartbeat moves it by the callback's
    #: heartbeat timeout (``heartbeat_timeout_at - updated_at`` when it was set).
    heartbeat_timeout_at: float | None = None
    child_execution_id: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    updated_at: float | None = None

    def to_row(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in OPERATION_COLUMNS}
        row["type"] = self.type.value
        row["status"] = self.status.value
        row["error"] = _dumps(self.error)
        return row

    @classmethod
    def from_row(cls, row: Any) -> OperationRecord:
        data = {name: row[name] for name in OPERATION_COLUMNS}
        data["type"] = OperationType(data["type"])
        data["status"] = OperationStatus(data["status"])
        data["error"] = _loads(data["error"])
        return cls(**data)

    @classmethod
    def from_values(cls, values: Any) -> OperationRecord:
        """The record of a row's values in :data:`OPERATION_COLUMNS` order (a replay loads
        every checkpoint of its execution: this is the cheap way, about a third of
        :meth:`from_row`'s time)."""
        rec = cls(*values)
        rec.type = _OPERATION_TYPES[rec.type]
        rec.status = _OPERATION_STATUSES[rec.status]
        if rec.error is not None:
            rec.error = json.loads(rec.error)  # type: ignore[arg-type]
        return rec


@dataclass(frozen=True, slots=True)
class OperationUpdate:
    """One checkpoint: an operation's whole row as it must be after it, and the line of
    history that says what happened (``started``, ``succeeded``, ``failed``,
    ``retry_scheduled``, ``wait_started``, ``callback_created``, …)."""

    operation: OperationRecord
    event: str
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One row of ``execution_history``, append-only, numbered per execution from 1."""

    execution_id: str
    seq: int
    at: float
    event: str
    operation_id: str | None = None
    attempt: int | None = None
    details: dict[str, Any] | None = None

    def to_row(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in HISTORY_COLUMNS}
        row["details"] = _dumps(self.details)
        return row

    @classmethod
    def from_row(cls, row: Any) -> HistoryRecord:
        data = {name: row[name] for name in HISTORY_COLUMNS}
        data["details"] = _loads(data["details"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    """What :meth:`~sqltide.store.interfaces.executions.ExecutionStore.list_executions`
    selects (every field given must match; ``created_after`` inclusive, ``created_before``
    exclusive)."""

    principal: str | None = None
    workflow: str | None = None
    status: ExecutionStatus | None = None
    created_after: float | None = None
    created_before: float | None = None


EXECUTION_COLUMNS = tuple(f.name for f in fields(ExecutionRecord))
OPERATION_COLUMNS = tuple(f.name for f in fields(OperationRecord))
_OPERATION_TYPES: dict[str, OperationType] = {t.value: t for t in OperationType}
_OPERATION_STATUSES: dict[str, OperationStatus] = {s.value: s for s in OperationStatus}
HISTORY_COLUMNS = tuple(f.name for f in fields(HistoryRecord))
