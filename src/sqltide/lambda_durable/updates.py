"""The SDK's ``OperationUpdate``s, checked against the model and written as sqltide checkpoints.

A ``CheckpointDurableExecution`` carries a list of updates, each an action on one operation:
START, SUCCEED, FAIL, RETRY or CANCEL of a STEP, WAIT, CALLBACK, CONTEXT or CHAINED_INVOKE (and
SUCCEED or FAIL of the EXECUTION itself, for a result too large for the invocation's answer).
:func:`parse_updates` checks each against the model (names, lengths, patterns, ranges) before
anything is written; :class:`Translator` turns them, in order, into the whole rows sqltide's
store keeps (:class:`~sqltide.store.OperationUpdate`, with their history lines), as Lambda's
service does:

========== ======================================= ========================================
type       action                                  becomes
========== ======================================= ========================================
STEP       START                                   STARTED, attempt = the last one + 1
STEP       RETRY (``StepOptions``)                 PENDING until now + the delay, error kept
STEP       SUCCEED / FAIL                          SUCCEEDED (``Payload``) / FAILED (``Error``)
WAIT       START (``WaitOptions.WaitSeconds``)     STARTED, ends when its time comes
WAIT       CANCEL                                  CANCELLED
CALLBACK   START (``CallbackOptions``)             STARTED with a new callback id and timeouts
CONTEXT    START / SUCCEED / FAIL                  STARTED / SUCCEEDED / FAILED
CHAINED_   START (``ChainedInvokeOptions``)        STARTED, with the workflow's execution
INVOKE                                             started (once: its name is derived)
EXECUTION  SUCCEED / FAIL                          the execution ends
========== ======================================= ========================================

An update that would change nothing is nothing (a repeated START, a RETRY of an operation
already waiting for its retry, anything on an ended operation), so a request applied twice
writes once. What sqltide cannot do is refused with ``InvalidParameterValueException`` naming
it (the SDK then fails the execution with that message): ``ContextOptions.ReplayChildren``, a
CANCEL of anything but a WAIT, a member the model does not have.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import LambdaApiError, NotFound
from ..store import (
    ExecutionRecord,
    ExecutionStatus,
    OperationRecord,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from . import arns
from .wire import sqltide_error

S = OperationStatus
T = OperationType
_OPERATION_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_SUB_TYPE = re.compile(r"^[a-zA-Z0-9_-]{1,32}$")
_NAME = re.compile(r"^[\x20-\x7E]{1,256}$")
_CLIENT_TOKEN = re.compile(r"^[\x21-\x7E]{1,64}$")
#: The model's OperationPayload: at most 6 MiB.
MAX_PAYLOAD = 6_291_456
MAX_SECONDS = 31_622_400
MAX_CALLBACK_SECONDS = 99_999_999
_ACTIONS = ("START", "SUCCEED", "FAIL", "RETRY", "CANCEL")
_MEMBERS = frozenset(
    (
        "Id",
        "ParentId",
        "Name",
        "Type",
        "SubType",
        "Action",
        "Payload",
        "Error",
        "ContextOptions",
        "StepOptions",
        "WaitOptions",
        "CallbackOptions",
        "ChainedInvokeOptions",
    )
)
_OPTION_MEMBERS = {
    "ContextOptions": frozenset(("ReplayChildren",)),
    "StepOptions": frozenset(("NextAttemptDelaySeconds",)),
    "WaitOptions": frozenset(("WaitSeconds",)),
    "CallbackOptions": frozenset(("TimeoutSeconds", "HeartbeatTimeoutSeconds")),
    "ChainedInvokeOptions": frozenset(("FunctionName", "TenantId", "XAmznTraceId")),
}
#: Which actions sqltide takes on which type (the SDK sends no others).
_SUPPORTED = {
    T.STEP: ("START", "RETRY", "SUCCEED", "FAIL"),
    T.WAIT: ("START", "CANCEL"),
    T.CALLBACK: ("START",),
    T.CONTEXT: ("START", "SUCCEED", "FAIL"),
    T.CHAINED_INVOKE: ("START",),
    T.EXECUTION: ("SUCCEED", "FAIL"),
}

#: ``(workflow, execution name, payload, parent execution, operation id)`` → the child started
#: (the workflow service's ``start_child``: idempotent on the name; NotFound for a workflow
#: that is not loaded).
StartChild = Callable[[str, str, "str | None", ExecutionRecord, str], ExecutionRecord]


def bad(message: str) -> LambdaApiError:
    return LambdaApiError(message, details={"aws_type": "InvalidParameterValueException"})


def unsupported(what: str, why: str) -> LambdaApiError:
    return bad(f"{what} is not supported by sqltide: {why}")


# -- checking the request --------------------------------------------------------------------
def _text(value: Any, where: str, pattern: re.Pattern[str] | None = None, limit: int = 0) -> str:
    if not isinstance(value, str):
        raise bad(f"{where} must be a string")
    if limit and len(value) > limit:
        raise bad(f"{where} is longer than {limit} characters")
    if "\x00" in value:  # PostgreSQL's text cannot hold it
        raise bad(f"{where} must not hold NUL characters (\\u0000)")
    if pattern is not None and not pattern.match(value):
        raise bad(f"{where} {value[:100]!r} does not match the pattern {pattern.pattern}")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad(f"{where} must be an integer from {low} to {high}")
    return value


def parse_error(value: Any, where: str) -> dict[str, Any] | None:
    """An ``ErrorObject`` member checked, as sqltide keeps errors."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad(f"{where} must be an object (ErrorMessage, ErrorType, ErrorData, StackTrace)")
    unknown = sorted(set(value) - {"ErrorMessage", "ErrorType", "ErrorData", "StackTrace"})
    if unknown:
        raise bad(f"{where} has no member {unknown[0]!r}")
    for key in ("ErrorMessage", "ErrorType", "ErrorData"):
        if value.get(key) is not None:
            _text(value[key], f"{where}.{key}")
    stack = value.get("StackTrace")
    if stack is not None and not (
        isinstance(stack, list) and all(isinstance(s, str) for s in stack)
    ):
        raise bad(f"{where}.StackTrace must be a list of strings")
    return sqltide_error(value)


@dataclass(frozen=True, slots=True)
class Update:
    """One ``OperationUpdate`` as the request gave it, checked."""

    id: str
    type: OperationType
    action: str
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    payload: str | None = None
    error: dict[str, Any] | None = None
    options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def option(self, member: str, key: str, default: Any = None) -> Any:
        return self.options.get(member, {}).get(key, default)

    @property
    def label(self) -> str:
        named = f" {self.name!r}" if self.name else ""
        return f"{self.action} of {self.type.value} operation{named} ({self.id})"


def parse_updates(value: Any) -> list[Update]:
    """The request's ``Updates``, each checked against the model."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad("Updates must be a list of OperationUpdate")
    return [_parse_update(item, f"Updates[{i}]") for i, item in enumerate(value)]


def _parse_update(item: Any, where: str) -> Update:
    if not isinstance(item, dict):
        raise bad(f"{where} must be an OperationUpdate object")
    unknown = sorted(set(item) - _MEMBERS)
    if unknown:
        raise unsupported(
            f"{where}.{unknown[0]}", "the member is not in the Lambda model sqltide serves"
        )
    for key in ("Id", "Type", "Action"):
        if item.get(key) is None:
            raise bad(f"{where}.{key} is required")
    op_id = _text(item["Id"], f"{where}.Id", _OPERATION_ID)
    try:
        op_type = T(item["Type"])
    except ValueError:
        raise bad(f"{where}.Type must be one of {', '.join(t.value for t in T)}") from None
    action = item["Action"]
    if action not in _ACTIONS:
        raise bad(f"{where}.Action must be one of {', '.join(_ACTIONS)}")
    options: dict[str, dict[str, Any]] = {}
    for member, keys in _OPTION_MEMBERS.items():
        raw = item.get(member)
        if raw is None:
            continue
        if not isinstance(raw, dict):
            raise bad(f"{where}.{member} must be an object")
        extra = sorted(set(raw) - keys)
        if extra:
            raise unsupported(f"{where}.{member}.{extra[0]}", "the member is not in the model")
        options[member] = raw
    step = options.get("StepOptions", {})
    if step.get("NextAttemptDelaySeconds") is not None:
        _int(
            step["NextAttemptDelaySeconds"],
            f"{where}.StepOptions.NextAttemptDelaySeconds",
            1,
            MAX_SECONDS,
        )
    wait = options.get("WaitOptions", {})
    if wait.get("WaitSeconds") is not None:
        _int(wait["WaitSeconds"], f"{where}.WaitOptions.WaitSeconds", 1, MAX_SECONDS)
    for key, value in options.get("CallbackOptions", {}).items():
        if value is not None:
            _int(value, f"{where}.CallbackOptions.{key}", 0, MAX_CALLBACK_SECONDS)
    replay = options.get("ContextOptions", {}).get("ReplayChildren")
    if replay is not None and not isinstance(replay, bool):
        raise bad(f"{where}.ContextOptions.ReplayChildren must be a boolean")
    invoke = options.get("ChainedInvokeOptions")
    if invoke is not None:
        if invoke.get("FunctionName") is None:
            raise bad(f"{where}.ChainedInvokeOptions.FunctionName is required")
        _text(invoke["FunctionName"], f"{where}.ChainedInvokeOptions.FunctionName", limit=256)
    payload = item.get("Payload")
    if payload is not None:
        _text(payload, f"{where}.Payload", limit=MAX_PAYLOAD)
    return Update(
        id=op_id,
        type=op_type,
        action=action,
        parent_id=None
        if item.get("ParentId") is None
        else _text(item["ParentId"], f"{where}.ParentId", _OPERATION_ID),
        name=None if item.get("Name") is None else _text(item["Name"], f"{where}.Name", _NAME),
        sub_type=None
        if item.get("SubType") is None
        else _text(item["SubType"], f"{where}.SubType", _SUB_TYPE),
        payload=payload,
        error=parse_error(item.get("Error"), f"{where}.Error"),
        options=options,
    )


def parse_client_token(value: Any) -> str | None:
    if value is None:
        return None
    return _text(value, "ClientToken", _CLIENT_TOKEN)


# -- translating -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Finish:
    """An EXECUTION update: the execution ends with this."""

    status: ExecutionStatus
    result: str | None
    error: dict[str, Any] | None


class Translator:
    """Turns one request's updates, in order, into store checkpoints for ``execution``.

    ``ops`` are its operations by id as the store has them (updated here as the batch goes, so
    a START and a SUCCEED of one step in one request make one row); ``start_child`` starts the
    execution of a CHAINED_INVOKE.
    """

    def __init__(
        self,
        execution: ExecutionRecord,
        ops: dict[str, OperationRecord],
        now: float,
        start_child: StartChild,
    ):
        self.execution = execution
        self.ops = ops
        self.now = now
        self.start_child = start_child
        self.finish: Finish | None = None
        self.written: list[OperationUpdate] = []

    def check(self, updates: list[Update]) -> None:
        """Refuse the whole request, before anything is done, for an update sqltide cannot take
        or one of another type than the operation at its id."""
        types = {op_id: op.type for op_id, op in self.ops.items()}
        for u in updates:
            if u.action not in _SUPPORTED[u.type]:
                raise unsupported(
                    u.label,
                    f"sqltide takes {' and '.join(_SUPPORTED[u.type])} of a {u.type.value} "
                    "operation (the AWS SDK sends no other)",
                )
            if u.type is T.CONTEXT and u.option("ContextOptions", "ReplayChildren"):
                raise unsupported(
                    f"ContextOptions.ReplayChildren ({u.label})",
                    "a child context, map or parallel whose result is over the SDK's 256 KB "
                    "checkpoint limit is rebuilt by replaying its children, which sqltide's "
                    "store does not record; return a smaller result (or a reference to it)",
                )
            if u.type is T.EXECUTION:
                continue
            known = types.setdefault(u.id, u.type)
            if known is not u.type:
                raise bad(f"{u.label}: operation {u.id} is a {known.value} in this execution")

    def apply(self, updates: list[Update]) -> list[OperationUpdate]:
        """The checkpoints of ``updates`` (also in :attr:`written`), after :meth:`check` (so a
        refused request starts nothing, not even an invoked execution); an EXECUTION update
        sets :attr:`finish`."""
        self.check(updates)
        for u in updates:
            if u.type is T.EXECUTION:
                status = (
                    ExecutionStatus.SUCCEEDED if u.action == "SUCCEED" else ExecutionStatus.FAILED
                )
                self.finish = Finish(status, u.payload, u.error)
                continue
            current = self.ops.get(u.id)
            if current is not None and current.status.is_terminal:
                continue  # ended: final (a repeated request, or an outside event won)
            out = self._one(u, current)
            if out is not None:
                self.ops[u.id] = out.operation
                self.written.append(out)
        return self.written

    def _new(self, u: Update, status: OperationStatus, **fields: Any) -> OperationRecord:
        return OperationRecord(
            execution_id=self.execution.id,
            id=u.id,
            type=u.type,
            sub_type=u.sub_type or "",
            status=status,
            parent_id=u.parent_id,
            name=u.name,
            started_at=self.now,
            updated_at=self.now,
            **fields,
        )

    def _changed(
        self, u: Update, current: OperationRecord | None, status: OperationStatus, **fields: Any
    ) -> OperationRecord:
        if current is None:
            return self._new(u, status, ended_at=self.now if status.is_terminal else None, **fields)
        if status.is_terminal:
            fields.setdefault("ended_at", self.now)
        return dataclasses.replace(current, status=status, updated_at=self.now, **fields)

    def _one(self, u: Update, current: OperationRecord | None) -> OperationUpdate | None:
        now = self.now
        if u.type is T.STEP:
            return self._step(u, current)
        if u.type is T.WAIT:
            if u.action == "CANCEL":
                return OperationUpdate(self._changed(u, current, S.CANCELLED), "wait_cancelled")
            if current is not None:
                return None  # started already
            seconds = int(u.option("WaitOptions", "WaitSeconds", 1) or 1)
            rec = self._new(u, S.STARTED, wake_at=now + seconds)
            return OperationUpdate(rec, "wait_started", {"seconds": seconds})
        if u.type is T.CALLBACK:
            if current is not None:
                return None  # created already: it keeps its id
            timeout = int(u.option("CallbackOptions", "TimeoutSeconds", 0) or 0)
            heartbeat = int(u.option("CallbackOptions", "HeartbeatTimeoutSeconds", 0) or 0)
            rec = self._new(
                u,
                S.STARTED,
                callback_id=arns.new_callback_id(),
                callback_timeout_at=now + timeout if timeout else None,
                heartbeat_timeout_at=now + heartbeat if heartbeat else None,
            )
            details = {"timeout_seconds": timeout, "heartbeat_timeout_seconds": heartbeat}
            return OperationUpdate(rec, "callback_created", details)
        if u.type is T.CONTEXT:
            if u.action == "START":
                return (
                    None
                    if current is not None
                    else OperationUpdate(self._new(u, S.STARTED), "started")
                )
            if u.action == "SUCCEED":
                done = self._changed(u, current, S.SUCCEEDED, result=u.payload)
                return OperationUpdate(done, "succeeded")
            failed = self._changed(u, current, S.FAILED, error=u.error)
            return OperationUpdate(failed, "failed", {"error_type": (u.error or {}).get("type")})
        # CHAINED_INVOKE START
        if current is not None:
            return None
        return self._invoke(u)

    def _step(self, u: Update, current: OperationRecord | None) -> OperationUpdate | None:
        now = self.now
        attempt = current.attempt if current is not None else 0
        if u.action == "START":
            if current is not None and current.status is S.STARTED:
                return None  # started already (a repeated request)
            rec = self._changed(
                u, current, S.STARTED, attempt=attempt + 1, error=None, next_attempt_at=None
            )
            return OperationUpdate(rec, "started", {"attempt": attempt + 1})
        attempt = max(attempt, 1)
        if u.action == "RETRY":
            if current is not None and current.status is S.PENDING:
                return None  # its retry is recorded already (a repeated request)
            delay = int(u.option("StepOptions", "NextAttemptDelaySeconds", 1) or 1)
            rec = self._changed(
                u,
                current,
                S.PENDING,
                attempt=attempt,
                error=u.error,
                result=u.payload
                if u.payload is not None
                else (current.result if current else None),
                next_attempt_at=now + delay,
            )
            details = {
                "attempt": attempt,
                "delay_seconds": delay,
                "error_type": (u.error or {}).get("type"),
            }
            return OperationUpdate(rec, "retry_scheduled", details)
        if u.action == "SUCCEED":
            rec = self._changed(
                u,
                current,
                S.SUCCEEDED,
                attempt=attempt,
                result=u.payload,
                error=None,
                next_attempt_at=None,
            )
            return OperationUpdate(rec, "succeeded", {"attempt": attempt})
        rec = self._changed(
            u, current, S.FAILED, attempt=attempt, error=u.error, next_attempt_at=None
        )
        return OperationUpdate(
            rec, "failed", {"attempt": attempt, "error_type": (u.error or {}).get("type")}
        )

    def _invoke(self, u: Update) -> OperationUpdate:
        function = str(u.option("ChainedInvokeOptions", "FunctionName"))
        workflow = arns.target_workflow(function)
        try:
            child = self.start_child(
                workflow, f"{self.execution.id}-{u.id}", u.payload, self.execution, u.id
            )
        except NotFound as exc:
            error = {
                "type": type(exc).__name__,
                "message": exc.message,
                "data": None,
                "stack": None,
            }
            rec = self._new(u, S.FAILED, error=error, ended_at=self.now)
            return OperationUpdate(
                rec, "failed", {"error_type": error["type"], "workflow": workflow}
            )
        rec = self._new(u, S.STARTED, child_execution_id=child.id)
        return OperationUpdate(
            rec, "invoke_started", {"workflow": workflow, "execution_id": child.id}
        )
