"""sqltide's operation records as the Lambda API shows them, and what the service decides alone.

The SDK reads its checkpoints back as the model's ``Operation``: one shape per type, with the
result, the error and the times in a ``*Details`` member. :func:`operation` turns a store record
into that shape, either for the invocation's event (times in epoch milliseconds, as Lambda
delivers it) or for a REST answer (epoch seconds, which botocore reads as datetimes).

Some changes are the *service's* to make, not the function's: a wait ends when its time comes,
a callback times out, an invoked execution ends, a retry falls due. :func:`settle` says which
operations the service changes now (the invoker writes them before it invokes; a checkpoint
writes them with its updates); :func:`shown_status` presents a retry whose time has come as
``READY``; :func:`next_due` says when a suspended execution must be invoked again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..store import (
    ExecutionRecord,
    ExecutionStatus,
    OperationRecord,
    OperationStatus,
    OperationType,
    OperationUpdate,
)

S = OperationStatus
#: How an ended child execution ends the CHAINED_INVOKE operation that started it.
_INVOKE_ENDS = {
    ExecutionStatus.SUCCEEDED: S.SUCCEEDED,
    ExecutionStatus.FAILED: S.FAILED,
    ExecutionStatus.TIMED_OUT: S.TIMED_OUT,
    ExecutionStatus.STOPPED: S.STOPPED,
}


# -- errors ----------------------------------------------------------------------------------
def aws_error(error: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """sqltide's ``{type, message, data, stack}`` as the model's ``ErrorObject``."""
    if not error:
        return None
    out: dict[str, Any] = {}
    for ours, theirs in (("message", "ErrorMessage"), ("type", "ErrorType"), ("data", "ErrorData")):
        value = error.get(ours)
        if value is not None:
            out[theirs] = value if isinstance(value, str) else str(value)
    stack = error.get("stack")
    if isinstance(stack, list):
        out["StackTrace"] = [str(line) for line in stack]
    elif isinstance(stack, str):
        out["StackTrace"] = stack.splitlines()
    return out


def sqltide_error(error: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The model's ``ErrorObject`` as sqltide keeps errors (``{type, message, data, stack}``)."""
    if error is None:
        return None
    stack = error.get("StackTrace")
    return {
        "type": error.get("ErrorType"),
        "message": error.get("ErrorMessage"),
        "data": error.get("ErrorData"),
        "stack": list(stack) if isinstance(stack, list) else None,
    }


# -- operations as the SDK reads them --------------------------------------------------------
def shown_status(op: OperationRecord, now: float) -> OperationStatus:
    """The status the SDK sees: a retry whose time has come is READY (Lambda's word for it;
    the store keeps it PENDING with its ``next_attempt_at``)."""
    due = op.next_attempt_at is None or op.next_attempt_at <= now
    if op.status is S.PENDING and op.type is OperationType.STEP and due:
        return S.READY
    return op.status


def aws_attempt(op: OperationRecord) -> int:
    """``StepDetails.Attempt``: the attempts that ended (Lambda counts a running one only when
    it ends; sqltide records the attempt number from its start)."""
    if op.status is S.STARTED:
        return max(op.attempt - 1, 0)
    return op.attempt


def _time(value: float | None, millis: bool) -> float | int | None:
    if value is None:
        return None
    return round(value * 1000) if millis else value


def operation(op: OperationRecord, now: float, *, millis: bool = False) -> dict[str, Any]:
    """One operation in the model's ``Operation`` shape (``millis``: times as the invocation
    event carries them, epoch milliseconds; else epoch seconds, for REST answers)."""
    status = shown_status(op, now)
    out: dict[str, Any] = {
        "Id": op.id,
        "Type": op.type.value,
        "Status": status.value,
        "StartTimestamp": _time(op.started_at or op.updated_at or now, millis),
    }
    if op.parent_id:
        out["ParentId"] = op.parent_id
    if op.name:
        out["Name"] = op.name
    if op.sub_type:
        out["SubType"] = op.sub_type
    if status.is_terminal and op.ended_at is not None:
        out["EndTimestamp"] = _time(op.ended_at, millis)
    error = aws_error(op.error)
    details: dict[str, Any] = {}
    if op.type is OperationType.STEP:
        details["Attempt"] = aws_attempt(op)
        if op.status is S.PENDING and op.next_attempt_at is not None:
            details["NextAttemptTimestamp"] = _time(op.next_attempt_at, millis)
    elif op.type is OperationType.WAIT:
        if op.wake_at is not None:
            details["ScheduledEndTimestamp"] = _time(op.wake_at, millis)
    elif op.type is OperationType.CALLBACK:
        details["CallbackId"] = op.callback_id or ""
    if op.type is not OperationType.WAIT:
        if op.result is not None:
            details["Result"] = op.result
        if error is not None:
            details["Error"] = error
    member = _DETAILS.get(op.type)
    if member is not None:
        out[member] = details
    return out


_DETAILS = {
    OperationType.STEP: "StepDetails",
    OperationType.WAIT: "WaitDetails",
    OperationType.CALLBACK: "CallbackDetails",
    OperationType.CONTEXT: "ContextDetails",
    OperationType.CHAINED_INVOKE: "ChainedInvokeDetails",
}


def execution_operation(rec: ExecutionRecord, *, millis: bool = False) -> dict[str, Any]:
    """The EXECUTION operation Lambda lists first: its id is the execution's (the ARN's last
    segment), and it carries the input (none for an execution started without one, or with
    ``null``: the SDK then hands the handler ``{}``, as Lambda does)."""
    out: dict[str, Any] = {
        "Id": rec.id,
        "Type": OperationType.EXECUTION.value,
        "Status": OperationStatus.STARTED.value,
        "StartTimestamp": _time(rec.created_at, millis),
    }
    if rec.input is not None and rec.input.strip() != "null":
        out["ExecutionDetails"] = {"InputPayload": rec.input}
    return out


# -- what the service decides alone ----------------------------------------------------------
def settle(
    ops: Iterable[OperationRecord],
    now: float,
    child: Callable[[str], ExecutionRecord | None],
) -> list[OperationUpdate]:
    """The changes that are the service's to make now: waits whose time has come end
    SUCCEEDED, callbacks past their timeout or heartbeat timeout end TIMED_OUT, invokes whose
    execution ended end as it did (``child`` reads an execution by id)."""
    out: list[OperationUpdate] = []
    for op in ops:
        if op.status is not S.STARTED:
            continue
        if op.type is OperationType.WAIT and op.wake_at is not None and op.wake_at <= now:
            out.append(OperationUpdate(_ended(op, S.SUCCEEDED, now), "wait_succeeded"))
        elif op.type is OperationType.CALLBACK:
            reason = None
            if op.callback_timeout_at is not None and op.callback_timeout_at <= now:
                reason = "no result within its timeout"
            elif op.heartbeat_timeout_at is not None and op.heartbeat_timeout_at <= now:
                reason = "no heartbeat within its heartbeat timeout"
            if reason is not None:
                label = f"callback {op.name!r}" if op.name else "the callback"
                error = {
                    "type": "CallbackTimeoutError",
                    "message": f"{label} timed out: {reason}",
                    "data": None,
                    "stack": None,
                }
                out.append(
                    OperationUpdate(_ended(op, S.TIMED_OUT, now, error=error), "callback_timed_out")
                )
        elif op.type is OperationType.CHAINED_INVOKE and op.child_execution_id:
            ended = child(op.child_execution_id)
            if ended is None or ended.status is ExecutionStatus.RUNNING:
                continue
            status = _INVOKE_ENDS[ended.status]
            details = {"execution_id": ended.id}
            if status is S.SUCCEEDED:
                done = _ended(op, status, now, result=ended.result)
                out.append(OperationUpdate(done, "succeeded", details))
            else:
                error = dict(ended.error or {}) or {
                    "type": str(ended.status),
                    "message": f"execution {ended.id} ended {ended.status}",
                    "data": None,
                    "stack": None,
                }
                failed = _ended(op, status, now, error=error)
                out.append(OperationUpdate(failed, "failed", details))
    return out


def _ended(
    op: OperationRecord, status: OperationStatus, now: float, **fields: Any
) -> OperationRecord:
    return dataclasses.replace(op, status=status, ended_at=now, updated_at=now, **fields)


def next_due(ops: Iterable[OperationRecord], now: float, idle_retry: float) -> float | None:
    """When an execution whose invocation ended PENDING must be invoked again: the earliest
    wait end, retry, or callback (heartbeat) timeout; None when it waits only for an outside
    event (a callback without a timeout, an invoked execution: their end wakes it); and
    ``now + idle_retry`` when nothing it could wait for is pending (invoke again later)."""
    times: list[float] = []
    outside = False
    for op in ops:
        if op.type is OperationType.WAIT and op.status is S.STARTED:
            times.append(op.wake_at if op.wake_at is not None else now)
        elif op.type is OperationType.STEP and op.status is S.PENDING:
            times.append(op.next_attempt_at if op.next_attempt_at is not None else now)
        elif op.type is OperationType.CALLBACK and op.status is S.STARTED:
            limits = [t for t in (op.callback_timeout_at, op.heartbeat_timeout_at) if t is not None]
            if limits:
                times.append(min(limits))
            else:
                outside = True
        elif op.type is OperationType.CHAINED_INVOKE and op.status is S.STARTED:
            outside = True
    if times:
        return min(times)
    return None if outside else now + idle_retry
