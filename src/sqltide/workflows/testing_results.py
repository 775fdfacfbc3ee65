"""What a workflow test looks at (an execution's result and its operations, as a tree) and
what it sends (inputs, callback results and errors).

The AWS testing library's result model (``DurableFunctionTestResult``, ``StepOperation``,
``WaitOperation``, ``CallbackOperation``, ``ContextOperation``, ``InvokeOperation``), built
from the checkpoints the store holds. Payloads are the text the serdes wrote (``result``, as
on AWS); ``value`` reads them back. :mod:`sqltide.workflows.testing` makes these.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from ..errors import DurableExecutionsError, DurableFunctionsTestError
from ..store import (
    ExecutionRecord,
    ExecutionStatus,
    OperationRecord,
    OperationStatus,
    OperationType,
)
from . import serdes
from .execution import InvocationStatus
from .types import ErrorObject

__all__ = [
    "CallbackOperation",
    "ContextOperation",
    "DurableFunctionTestResult",
    "InvokeOperation",
    "Operation",
    "OperationStatus",
    "OperationSubType",
    "OperationType",
    "StepOperation",
    "WaitOperation",
]


class OperationSubType(StrEnum):
    """What an operation is beyond its type (the AWS SDK's ``OperationSubType``)."""

    STEP = "Step"
    WAIT = "Wait"
    CALLBACK = "Callback"
    RUN_IN_CHILD_CONTEXT = "RunInChildContext"
    MAP = "Map"
    MAP_ITERATION = "MapIteration"
    PARALLEL = "Parallel"
    PARALLEL_BRANCH = "ParallelBranch"
    WAIT_FOR_CALLBACK = "WaitForCallback"
    WAIT_FOR_CONDITION = "WaitForCondition"
    CHAINED_INVOKE = "ChainedInvoke"


def _timestamp(t: float | None) -> dt.datetime | None:
    return None if t is None else dt.datetime.fromtimestamp(t, tz=dt.UTC)


def _sub_type(value: str) -> OperationSubType | str:
    try:
        return OperationSubType(value)
    except ValueError:
        return value


OpT = TypeVar("OpT", bound="Operation")


class _Lookup:
    """Finding operations by name among ``operations`` and everything under them."""

    def _top(self) -> Sequence[Operation]:
        raise NotImplementedError

    def _where(self) -> str:
        raise NotImplementedError

    def get_all_operations(self) -> list[Operation]:
        """Every operation at any depth, in the order they were created."""
        found = list(_walk(self._top()))
        found.sort(key=lambda op: op.seq)
        return found

    def _find(self, name: str, kind: type[OpT], label: str) -> OpT:
        top = [op for op in self._top() if op.name == name and isinstance(op, kind)]
        if top:
            return top[0]
        nested = [op for op in self.get_all_operations() if op.name == name]
        for op in nested:
            if isinstance(op, kind):
                return op
        if nested:
            other = nested[0]
            raise DurableFunctionsTestError(
                f"the operation named {name!r} in {self._where()} is a {other.operation_type} "
                f"({other.sub_type}), not {label}",
                details={"name": name, "type": str(other.operation_type)},
            )
        names = sorted({op.name for op in self.get_all_operations() if op.name})
        raise DurableFunctionsTestError(
            f"no {label} named {name!r} in {self._where()}; named operations: "
            f"{', '.join(repr(n) for n in names) or 'none'}",
            details={"name": name, "names": names},
        )

    def get_operation_by_name(self, name: str) -> Operation:
        """The operation named ``name``: at the top first, else the first one created at any
        depth (a name used in every map item finds the first item's)."""
        return self._find(name, Operation, "operation")

    def get_step(self, name: str) -> StepOperation:
        """The step (or ``wait_for_condition``) named ``name``."""
        return self._find(name, StepOperation, "step")

    def get_wait(self, name: str) -> WaitOperation:
        return self._find(name, WaitOperation, "wait")

    def get_context(self, name: str) -> ContextOperation:
        """The child context named ``name`` (``run_in_child_context``, a map or parallel, one
        of their items or branches, a ``wait_for_callback``)."""
        return self._find(name, ContextOperation, "child context")

    def get_callback(self, name: str) -> CallbackOperation:
        return self._find(name, CallbackOperation, "callback")

    def get_invoke(self, name: str) -> InvokeOperation:
        return self._find(name, InvokeOperation, "invoke")


def _walk(ops: Sequence[Operation]) -> Iterator[Operation]:
    for op in ops:
        yield op
        yield from _walk(op.child_operations)


@dataclass(frozen=True, kw_only=True)
class Operation(_Lookup):
    """One checkpointed operation of an execution, with the operations created inside it."""

    operation_id: str
    operation_type: OperationType
    status: OperationStatus
    parent_id: str | None = None
    name: str | None = None
    sub_type: OperationSubType | str | None = None
    start_timestamp: dt.datetime | None = None
    end_timestamp: dt.datetime | None = None
    #: How many attempts it made (steps and ``wait_for_condition``; 1-based).
    attempt: int = 0
    #: The checkpointed result as the serdes wrote it (a callback's: as it was sent).
    result: str | None = None
    error: ErrorObject | None = None
    child_operations: list[Operation] = field(default_factory=list)
    #: Its creation order in the execution.
    seq: int = 0
    #: The checkpoint it was read from.
    record: OperationRecord | None = field(default=None, repr=False, compare=False)

    @property
    def value(self) -> Any:
        """``result`` read back by the default serdes (None when there is none)."""
        return serdes.deserialize(None, self.result, what=f"the result of {self._where()}")

    @property
    def children(self) -> list[Operation]:
        """The operations created directly inside this one (``child_operations``)."""
        return self.child_operations

    @property
    def duration(self) -> float | None:
        """Seconds from its start to its end, on the runner's clock (None until it ends)."""
        if self.start_timestamp is None or self.end_timestamp is None:
            return None
        return (self.end_timestamp - self.start_timestamp).total_seconds()

    def _top(self) -> Sequence[Operation]:
        return self.child_operations

    def _where(self) -> str:
        label = f"operation {self.operation_id}"
        return f"{label} ({self.name!r})" if self.name else label


@dataclass(frozen=True, kw_only=True)
class StepOperation(Operation):
    """A step, or a ``wait_for_condition`` (its ``result`` is the last state)."""

    #: When the next attempt is due, while one is pending.
    next_attempt_timestamp: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class WaitOperation(Operation):
    scheduled_end_timestamp: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class CallbackOperation(Operation):
    callback_id: str | None = None
    timeout_timestamp: dt.datetime | None = None
    heartbeat_timeout_timestamp: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ContextOperation(Operation):
    """A child context: ``run_in_child_context``, a map or parallel and each of their items or
    branches, a ``wait_for_callback``."""


@dataclass(frozen=True, kw_only=True)
class InvokeOperation(Operation):
    #: The id of the execution ``context.invoke`` started.
    child_execution_id: str | None = None


def build_operations(records: Sequence[OperationRecord]) -> list[Operation]:
    """The top-level operations, each holding the operations created inside it."""
    by_parent: dict[str | None, list[OperationRecord]] = {}
    ids = {rec.id for rec in records}
    for rec in sorted(records, key=lambda r: r.seq):
        parent = rec.parent_id if rec.parent_id in ids else None
        by_parent.setdefault(parent, []).append(rec)

    def make(rec: OperationRecord) -> Operation:
        common: dict[str, Any] = {
            "operation_id": rec.id,
            "operation_type": rec.type,
            "status": rec.status,
            "parent_id": rec.parent_id,
            "name": rec.name,
            "sub_type": _sub_type(rec.sub_type),
            "start_timestamp": _timestamp(rec.started_at),
            "end_timestamp": _timestamp(rec.ended_at),
            "attempt": rec.attempt,
            "result": rec.result,
            "error": ErrorObject.from_dict(rec.error) if rec.error else None,
            "child_operations": [make(child) for child in by_parent.get(rec.id, [])],
            "seq": rec.seq,
            "record": rec,
        }
        if rec.type is OperationType.STEP:
            return StepOperation(**common, next_attempt_timestamp=_timestamp(rec.next_attempt_at))
        if rec.type is OperationType.WAIT:
            return WaitOperation(**common, scheduled_end_timestamp=_timestamp(rec.wake_at))
        if rec.type is OperationType.CALLBACK:
            return CallbackOperation(
                **common,
                callback_id=rec.callback_id,
                timeout_timestamp=_timestamp(rec.callback_timeout_at),
                heartbeat_timeout_timestamp=_timestamp(rec.heartbeat_timeout_at),
            )
        if rec.type is OperationType.CONTEXT:
            return ContextOperation(**common)
        if rec.type is OperationType.CHAINED_INVOKE:
            return InvokeOperation(**common, child_execution_id=rec.child_execution_id)
        return Operation(**common)

    return [make(rec) for rec in by_parent.get(None, [])]


@dataclass(frozen=True)
class DurableFunctionTestResult(_Lookup):
    """An execution as a test sees it: its status, result or error, and its operations.

    ``result`` is the text the workflow's result was serialized to (JSON for plain values, as
    on AWS): ``value`` is it read back. ``operations`` are the top-level operations; those
    created inside a child context, map or parallel are their ``child_operations``.
    """

    status: InvocationStatus
    operations: list[Operation]
    result: str | None = None
    error: ErrorObject | None = None
    execution_status: ExecutionStatus = ExecutionStatus.RUNNING
    execution_id: str = ""
    #: The execution's record in the store (its timestamps, timeout, replay count, ...).
    execution: ExecutionRecord | None = field(default=None, repr=False, compare=False)

    @classmethod
    def create(
        cls, execution: ExecutionRecord, records: Sequence[OperationRecord]
    ) -> DurableFunctionTestResult:
        return cls(
            status=InvocationStatus.of(execution.status),
            operations=build_operations(records),
            result=execution.result,
            error=ErrorObject.from_dict(execution.error) if execution.error else None,
            execution_status=execution.status,
            execution_id=execution.id,
            execution=execution,
        )

    @property
    def value(self) -> Any:
        """The workflow's result read back by the default serdes (None without one)."""
        return serdes.deserialize(None, self.result, what="the workflow's result")

    @property
    def replays(self) -> int:
        """How many replays the execution took."""
        return self.execution.replays if self.execution is not None else 0

    def _top(self) -> Sequence[Operation]:
        return self.operations

    def _where(self) -> str:
        return f"execution {self.execution_id}"


# -- what a test sends ------------------------------------------------------------------------
def check_seconds(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise DurableFunctionsTestError(f"{what} must be a positive number of seconds")


def input_text(value: Any) -> str | None:
    """An execution's input as the store keeps it."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8")
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            raise DurableFunctionsTestError(
                "input: a str is taken as the input's JSON text (as the AWS runner takes it) "
                f"and {value[:80]!r} is not JSON; pass json.dumps(...) or the value itself",
                details={"input": value[:200]},
            ) from None
        return value
    return serdes.serialize(None, value, what="the input")


def callback_text(result: Any) -> str | None:
    if result is None or isinstance(result, str):
        return result
    if isinstance(result, bytes | bytearray):
        return bytes(result).decode("utf-8")
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False)


def error_dict(error: Any) -> dict[str, Any] | None:
    """A callback failure's or a stop's error, as the store records it."""
    if error is None:
        return None
    if isinstance(error, ErrorObject):
        return error.to_dict()
    if isinstance(error, DurableExecutionsError):
        return {
            "type": type(error).__name__,
            "message": error.message,
            "data": error.data,
            "stack": error.stack_trace,
        }
    if isinstance(error, BaseException):
        return ErrorObject(str(error), type(error).__name__).to_dict()
    if isinstance(error, str):
        return ErrorObject(error, "Error").to_dict()
    if isinstance(error, dict):
        return ErrorObject.from_dict(error).to_dict()
    raise DurableFunctionsTestError(
        f"an error is an ErrorObject, an exception, a message or a dict, not {error!r}"
    )
