"""The durable operations other than map and parallel, as ``DurableContext`` runs them.

Each follows the replay model of docs/adr/0008-durable-workflows.md: find the checkpoint at the
operation's id (checking it is the same operation), return or raise what it recorded, suspend
while it is pending, or run it and commit its checkpoint before handing its result on.
Results are round-tripped through their serdes on the first run too, so the first run sees
what every replay will see.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import (
    CallbackError,
    CallbackExternalError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    DurableOperationError,
    ExecutionError,
    InvokeError,
    NotFound,
    SerDesError,
    StepError,
    StepInterruptedError,
    SuspendExecution,
    TimedSuspendExecution,
    UnrecoverableError,
    ValidationError,
    WaitForConditionError,
)
from ..store import ExecutionStatus, OperationStatus, OperationType, OperationUpdate
from .config import (
    CallbackConfig,
    ChildConfig,
    Duration,
    InvokeConfig,
    StepConfig,
    StepSemantics,
    WaitForCallbackConfig,
)
from .retries import RetryDecision, RetryPresets
from .serdes import PassThroughSerDes, deserialize, round_trip, serialize
from .types import ErrorObject, StepContext, WaitForCallbackContext, WaitForConditionCheckContext

if TYPE_CHECKING:
    from ..store import OperationRecord
    from .context import Callback, DurableContext
    from .serdes import SerDes
    from .waits import WaitForConditionConfig

S = OperationStatus
_PASS_THROUGH: SerDes[Any] = PassThroughSerDes()
#: A step's config when it has none (a config is immutable: one serves every step).
_DEFAULT_STEP_CONFIG = StepConfig()


def original_name(func: Any) -> str | None:
    """The name a bound function was decorated under (``@durable_step``), if any."""
    name = getattr(func, "_original_name", None)
    return name if isinstance(name, str) else None


def _label(kind: str, name: str | None, op_id: str) -> str:
    return f"{kind} {name!r} (operation {op_id})" if name else f"{kind} (operation {op_id})"


def _where(ctx: DurableContext, op_id: str, what: str) -> dict[str, str]:
    return {"operation_id": op_id, "execution_id": ctx.state.execution_id, "what": what}


def _recorded_error(rec: OperationRecord, cls: type[DurableOperationError]) -> Exception:
    error = ErrorObject.from_dict(rec.error)
    if error.message is None:
        error = ErrorObject(f"the operation ended {rec.status}", error.type or str(rec.status))
    return error.to_operation_error(cls)


# -- step ------------------------------------------------------------------------------------
def step(
    ctx: DurableContext,
    func: Callable[[StepContext], Any],
    name: str | None,
    config: StepConfig | None,
) -> Any:
    if not callable(func):
        raise ValidationError(
            f"context.step needs a function (step_context) -> value, not {func!r}"
        )
    name = name or original_name(func)
    config = config or _DEFAULT_STEP_CONFIG
    state = ctx.state
    with ctx._operation(runs_code=True) as op_id:
        rec = state.expect(op_id, OperationType.STEP, "Step", name)
        where = _where(ctx, op_id, f"the result of {_label('step', name, op_id)}")
        attempt = 1
        if rec is not None:
            if rec.status is S.SUCCEEDED:
                return deserialize(config.serdes, rec.result, **where)
            if rec.status.is_terminal:
                raise _recorded_error(rec, StepError)
            if rec.status is S.PENDING:
                due = rec.next_attempt_at or 0.0
                if due > state.now():
                    raise TimedSuspendExecution(
                        f"{_label('step', name, op_id)} retries at {due}", due
                    )
                attempt = rec.attempt + 1
            elif rec.status is S.STARTED:
                if config.step_semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY:
                    interrupted = StepInterruptedError(
                        f"{_label('step', name, op_id)} was started by an earlier replay "
                        f"(attempt {rec.attempt}) that never ended it; an at-most-once step "
                        "does not run again unless its retry strategy says so",
                        op_id,
                    )
                    _retry_or_fail(ctx, op_id, rec, name, config, interrupted, rec.attempt)
                attempt = max(rec.attempt, 1)
            else:
                attempt = rec.attempt + 1
        return _run_step(ctx, op_id, rec, func, name, config, attempt, where)


def _run_step(
    ctx: DurableContext,
    op_id: str,
    rec: OperationRecord | None,
    func: Callable[[StepContext], Any],
    name: str | None,
    config: StepConfig,
    attempt: int,
    where: dict[str, str],
) -> Any:
    state = ctx.state
    if config.step_semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY:
        rec = _step_record(
            ctx, op_id, rec, name, S.STARTED, attempt=attempt, error=None, next_attempt_at=None
        )
        ctx._commit(OperationUpdate(rec, "started", {"attempt": attempt}))
    elif rec is None:
        # Nothing is written before an at-least-once step runs; this is what its first
        # checkpoint starts from (its start time).
        rec = state.new_operation(
            op_id, OperationType.STEP, "Step", name, ctx._parent_id, S.STARTED, attempt=attempt
        )
    step_context = StepContext(
        logger=ctx.logger.bound(operation_id=op_id, operation_name=name, attempt=attempt),
        attempt=attempt,
    )
    try:
        value = func(step_context)
    except UnrecoverableError:
        raise
    except Exception as exc:
        ctx._check_guards()
        _retry_or_fail(ctx, op_id, rec, name, config, exc, attempt)
    ctx._check_guards()
    try:
        text, result = round_trip(config.serdes, value, **where)
    except SerDesError as exc:
        # A result that cannot be written fails the step at once (a retry would write no
        # better); its checkpoint records the error, never part of the value.
        failed = _step_record(
            ctx,
            op_id,
            rec,
            name,
            S.FAILED,
            attempt=attempt,
            error=ErrorObject.from_exception(exc).to_dict(),
            next_attempt_at=None,
        )
        ctx._commit(
            OperationUpdate(failed, "failed", {"attempt": attempt, "error_type": "SerDesError"})
        )
        raise
    done = _step_record(
        ctx,
        op_id,
        rec,
        name,
        S.SUCCEEDED,
        attempt=attempt,
        result=text,
        error=None,
        next_attempt_at=None,
    )
    ctx._commit(OperationUpdate(done, "succeeded", {"attempt": attempt}))
    return result


def _step_record(
    ctx: DurableContext,
    op_id: str,
    rec: OperationRecord | None,
    name: str | None,
    status: OperationStatus,
    **fields: Any,
) -> OperationRecord:
    state = ctx.state
    if rec is None:
        return state.new_operation(
            op_id, OperationType.STEP, "Step", name, ctx._parent_id, status, **fields
        )
    return state.changed(rec, status, **fields)


def _retry_or_fail(
    ctx: DurableContext,
    op_id: str,
    rec: OperationRecord | None,
    name: str | None,
    config: StepConfig,
    exc: Exception,
    attempt: int,
) -> NoReturn:
    """Record a failed attempt: a retry (PENDING, then suspend) or the step's failure."""
    state = ctx.state
    strategy = config.retry_strategy or RetryPresets.default()
    error = ErrorObject.from_exception(exc)
    try:
        decision = strategy(exc, attempt)
    except Exception as strategy_error:  # a broken strategy ends the retries, visibly
        error = ErrorObject.from_exception(strategy_error)
        decision = RetryDecision.no_retry()
    if decision.should_retry:
        delay = max(1, decision.delay_seconds)
        due = state.now() + delay
        pending = _step_record(
            ctx,
            op_id,
            rec,
            name,
            S.PENDING,
            attempt=attempt,
            error=error.to_dict(),
            next_attempt_at=due,
        )
        ctx._commit(
            OperationUpdate(
                pending,
                "retry_scheduled",
                {"attempt": attempt, "delay_seconds": delay, "error_type": error.type},
            )
        )
        raise TimedSuspendExecution(
            f"{_label('step', name, op_id)} attempt {attempt} failed; next attempt at {due}", due
        )
    failed = _step_record(
        ctx,
        op_id,
        rec,
        name,
        S.FAILED,
        attempt=attempt,
        error=error.to_dict(),
        next_attempt_at=None,
    )
    ctx._commit(OperationUpdate(failed, "failed", {"attempt": attempt, "error_type": error.type}))
    raise error.to_operation_error(StepError)


# -- wait --------------------------------------------------------------------------------------
def wait(ctx: DurableContext, duration: Duration, name: str | None) -> None:
    if not isinstance(duration, Duration):
        raise ValidationError(f"context.wait takes a Duration, not {duration!r}")
    seconds = duration.to_seconds()
    if seconds < 1:
        raise ValidationError(f"a wait must be at least 1 second, got {seconds}")
    state = ctx.state
    with ctx._operation() as op_id:
        rec = state.expect(op_id, OperationType.WAIT, "Wait", name)
        now = state.now()
        if rec is None:
            due = now + seconds
            started = state.new_operation(
                op_id, OperationType.WAIT, "Wait", name, ctx._parent_id, S.STARTED, wake_at=due
            )
            ctx._commit(OperationUpdate(started, "wait_started", {"seconds": seconds}))
            raise TimedSuspendExecution(f"{_label('wait', name, op_id)} until {due}", due)
        if rec.status.is_terminal:
            return
        due = rec.wake_at if rec.wake_at is not None else now
        if due > now:
            raise TimedSuspendExecution(f"{_label('wait', name, op_id)} until {due}", due)
        # Nothing reads this back: it goes with the next checkpoint.
        state.queue(OperationUpdate(state.changed(rec, S.SUCCEEDED), "wait_succeeded"))


# -- callbacks -------------------------------------------------------------------------------
def create_callback(
    ctx: DurableContext, name: str | None, config: CallbackConfig | None
) -> Callback[Any]:
    from .context import Callback

    config = config or CallbackConfig()
    state = ctx.state
    with ctx._operation() as op_id:
        rec = state.expect(op_id, OperationType.CALLBACK, "Callback", name)
        if rec is None:
            now = state.now()
            timeout, heartbeat = config.timeout_seconds, config.heartbeat_timeout_seconds
            rec = state.new_operation(
                op_id,
                OperationType.CALLBACK,
                "Callback",
                name,
                ctx._parent_id,
                S.STARTED,
                callback_id=str(uuid.uuid4()),
                callback_timeout_at=now + timeout if timeout else None,
                heartbeat_timeout_at=now + heartbeat if heartbeat else None,
            )
            # The id goes to an outside system: it must be durable first.
            ctx._commit(
                OperationUpdate(
                    rec,
                    "callback_created",
                    {"timeout_seconds": timeout, "heartbeat_timeout_seconds": heartbeat},
                )
            )
        assert rec.callback_id is not None
        return Callback(ctx, op_id, rec.callback_id, config.serdes, name)


def callback_result(ctx: DurableContext, callback: Callback[Any]) -> Any:
    state = ctx.state
    op_id = callback.operation_id
    rec = state.get(op_id)
    label = _label("callback", callback.name, op_id)
    if rec is None:
        raise CallbackError(f"{label} has no checkpoint")
    if rec.status is S.SUCCEEDED:
        return deserialize(
            callback.serdes or _PASS_THROUGH,
            rec.result,
            **_where(ctx, op_id, f"the result of {label}"),
        )
    error = ErrorObject.from_dict(rec.error)
    if rec.status is S.TIMED_OUT:
        raise CallbackTimeoutError(
            error.message or f"{label} timed out", data=error.data, stack_trace=error.stack_trace
        )
    if rec.status.is_terminal:
        raise CallbackExternalError(
            error.message or f"{label} failed ({rec.status})",
            data=error.data,
            stack_trace=error.stack_trace,
        )
    now = state.now()
    reason = None
    if rec.callback_timeout_at is not None and now >= rec.callback_timeout_at:
        reason = f"{label} timed out: no result within its timeout"
    elif rec.heartbeat_timeout_at is not None and now >= rec.heartbeat_timeout_at:
        reason = f"{label} timed out: no heartbeat within its heartbeat timeout"
    if reason is not None:
        timed_out = state.changed(
            rec,
            S.TIMED_OUT,
            error={"type": "CallbackTimeoutError", "message": reason, "data": None, "stack": None},
        )
        ctx._commit(OperationUpdate(timed_out, "callback_timed_out"))
        raise CallbackTimeoutError(reason)
    dues = [t for t in (rec.callback_timeout_at, rec.heartbeat_timeout_at) if t is not None]
    if dues:
        raise TimedSuspendExecution(f"{label} waits for its result", min(dues))
    raise SuspendExecution(f"{label} waits for its result")


def wait_for_callback(
    ctx: DurableContext,
    submitter: Callable[[str, WaitForCallbackContext], Any],
    name: str | None,
    config: WaitForCallbackConfig | None,
) -> Any:
    if not callable(submitter):
        raise ValidationError(f"wait_for_callback needs a submitter function, not {submitter!r}")
    name = name or original_name(submitter)
    prefix = f"{name} " if name else ""

    def body(child: DurableContext) -> Any:
        callback = child.create_callback(name=f"{prefix}create callback id", config=config)

        def submit(step_context: StepContext) -> Any:
            return submitter(
                callback.callback_id, WaitForCallbackContext(logger=step_context.logger)
            )

        step_config = (
            StepConfig(retry_strategy=config.retry_strategy, serdes=config.serdes)
            if config is not None
            else None
        )
        try:
            child.step(submit, name=f"{prefix}submitter", config=step_config)
        except StepError as exc:
            raise CallbackSubmitterError(
                exc.message or "the callback's submitter failed",
                data=exc.data,
                stack_trace=exc.stack_trace,
            ) from exc
        return callback.result()

    try:
        return ctx.run_in_child_context(body, name, ChildConfig(sub_type="WaitForCallback"))
    except ChildContextError as exc:
        # The child records the callback error it raised; the caller gets that error itself.
        if isinstance(exc.__cause__, CallbackError):
            raise exc.__cause__ from None
        raise


# -- wait_for_condition ------------------------------------------------------------------------
def wait_for_condition(
    ctx: DurableContext,
    check: Callable[[Any, WaitForConditionCheckContext], Any],
    config: WaitForConditionConfig[Any],
    name: str | None,
) -> Any:
    if check is None or not callable(check):
        raise ValidationError("wait_for_condition needs a check function (state, ctx) -> state")
    if config is None:
        raise ValidationError("wait_for_condition needs a WaitForConditionConfig")
    state = ctx.state
    with ctx._operation(runs_code=True) as op_id:
        rec = state.expect(op_id, OperationType.STEP, "WaitForCondition", name)
        label = _label("wait_for_condition", name, op_id)
        where = _where(ctx, op_id, f"the state of {label}")
        attempt = 1
        if rec is not None:
            if rec.status is S.SUCCEEDED:
                return deserialize(config.serdes, rec.result, **where)
            if rec.status.is_terminal:
                raise _recorded_error(rec, WaitForConditionError)
            due = rec.next_attempt_at or 0.0
            if rec.status is S.PENDING and due > state.now():
                raise TimedSuspendExecution(f"{label} polls again at {due}", due)
            attempt = rec.attempt + 1
        try:
            if rec is not None and rec.result is not None:
                current = deserialize(config.serdes, rec.result, **where)
            else:
                current = round_trip(config.serdes, config.initial_state, **where)[1]
            check_context = WaitForConditionCheckContext(
                logger=ctx.logger.bound(operation_id=op_id, operation_name=name, attempt=attempt),
                attempt=attempt,
            )
            new_state = check(current, check_context)
            decision = config.wait_strategy(new_state, attempt)
            text, value = round_trip(config.serdes, new_state, **where)
        except UnrecoverableError:
            raise
        except Exception as exc:
            _condition_failed(ctx, op_id, rec, name, attempt, exc)
        ctx._check_guards()
        if not decision.should_continue:
            done = _condition_record(
                ctx,
                op_id,
                rec,
                name,
                S.SUCCEEDED,
                attempt=attempt,
                result=text,
                next_attempt_at=None,
                error=None,
            )
            ctx._commit(OperationUpdate(done, "succeeded", {"attempt": attempt}))
            return value
        delay = max(1, decision.delay_seconds)
        due = state.now() + delay
        pending = _condition_record(
            ctx, op_id, rec, name, S.PENDING, attempt=attempt, result=text, next_attempt_at=due
        )
        ctx._commit(
            OperationUpdate(
                pending, "retry_scheduled", {"attempt": attempt, "delay_seconds": delay}
            )
        )
        raise TimedSuspendExecution(f"{label} polls again at {due}", due)


def _condition_record(
    ctx: DurableContext,
    op_id: str,
    rec: OperationRecord | None,
    name: str | None,
    status: OperationStatus,
    **fields: Any,
) -> OperationRecord:
    if rec is None:
        return ctx.state.new_operation(
            op_id, OperationType.STEP, "WaitForCondition", name, ctx._parent_id, status, **fields
        )
    return ctx.state.changed(rec, status, **fields)


def _condition_failed(
    ctx: DurableContext,
    op_id: str,
    rec: OperationRecord | None,
    name: str | None,
    attempt: int,
    exc: Exception,
) -> NoReturn:
    ctx._check_guards()
    error = ErrorObject.from_exception(exc)
    failed = _condition_record(
        ctx,
        op_id,
        rec,
        name,
        S.FAILED,
        attempt=attempt,
        error=error.to_dict(),
        next_attempt_at=None,
    )
    ctx._commit(OperationUpdate(failed, "failed", {"attempt": attempt, "error_type": error.type}))
    raise error.to_operation_error(WaitForConditionError)


# -- child contexts --------------------------------------------------------------------------
def run_in_child_context(
    ctx: DurableContext,
    func: Callable[[DurableContext], Any],
    name: str | None,
    config: ChildConfig[Any] | None,
) -> Any:
    if not callable(func):
        raise ValidationError(f"run_in_child_context needs a function (context), not {func!r}")
    name = name or original_name(func)
    config = config or ChildConfig()
    with ctx._operation() as op_id:
        return child_operation(
            ctx,
            op_id,
            func,
            sub_type=config.sub_type or "RunInChildContext",
            name=name,
            serdes=config.serdes,
            virtual=config.is_virtual,
        )


def child_operation(
    ctx: DurableContext,
    op_id: str,
    func: Callable[[DurableContext], Any],
    *,
    sub_type: str,
    name: str | None,
    serdes: SerDes[Any] | None,
    virtual: bool = False,
    guard: Any = None,
) -> Any:
    """Run ``func`` in the child context ``op_id`` of ``ctx`` (a CONTEXT operation unless
    ``virtual``); ``guard`` is an event that orphans the child once set (map, parallel)."""
    state = ctx.state
    where = _where(ctx, op_id, f"the result of {_label('child context', name, op_id)}")
    if not virtual:
        rec = state.expect(op_id, OperationType.CONTEXT, sub_type, name)
        if rec is not None and rec.status is S.SUCCEEDED:
            return deserialize(serdes, rec.result, **where)
        if rec is not None and rec.status.is_terminal:
            raise _recorded_error(rec, ChildContextError)
        if rec is None:
            state.queue(
                OperationUpdate(
                    state.new_operation(
                        op_id, OperationType.CONTEXT, sub_type, name, ctx._parent_id, S.STARTED
                    ),
                    "started",
                )
            )
    child = ctx._child(op_id, virtual=virtual, guard=guard)
    try:
        text, value = round_trip(serdes, func(child), **where)
    except UnrecoverableError:
        raise
    except Exception as exc:
        error = ErrorObject.from_exception(exc)
        child._check_guards()
        if not virtual:
            current = state.get(op_id)
            assert current is not None
            # Derived from checkpoints already written (the failed step's): a replay that
            # lost this one would come to the same, so it need not be written before use.
            state.queue(
                OperationUpdate(
                    state.changed(current, S.FAILED, error=error.to_dict()),
                    "failed",
                    {"error_type": error.type},
                )
            )
        failure = error.to_operation_error(ChildContextError)
        raise failure from failure.__cause__
    child._check_guards()
    if not virtual:
        current = state.get(op_id)
        assert current is not None
        state.queue(OperationUpdate(state.changed(current, S.SUCCEEDED, result=text), "succeeded"))
    return value


# -- invoke ------------------------------------------------------------------------------------
def invoke(
    ctx: DurableContext,
    function_name: str,
    payload: Any,
    name: str | None,
    config: InvokeConfig[Any, Any] | None,
) -> Any:
    if not isinstance(function_name, str) or not function_name:
        raise ValidationError(f"invoke needs a workflow name, not {function_name!r}")
    config = config or InvokeConfig()
    state = ctx.state
    with ctx._operation() as op_id:
        rec = state.expect(op_id, OperationType.CHAINED_INVOKE, "ChainedInvoke", name)
        label = _label(f"invoke of {function_name!r}", name, op_id)
        where = _where(ctx, op_id, f"the result of {label}")
        if rec is not None and rec.status is S.SUCCEEDED:
            return deserialize(config.serdes_result, rec.result, **where)
        if rec is not None and rec.status.is_terminal:
            raise _recorded_error(rec, InvokeError)
        if rec is None:
            if state.start_child is None:
                raise ExecutionError(
                    f"{label}: context.invoke starts another workflow through the workflow "
                    "service, which this replay was not given (Replay(start_child=...))"
                )
            text = serialize(
                config.serdes_payload, payload, **_where(ctx, op_id, f"the payload of {label}")
            )
            child_name = f"{state.execution_id}-{op_id}"
            try:
                child = state.start_child(function_name, child_name, text, state.execution, op_id)
            except NotFound as exc:
                error = ErrorObject(exc.message, type(exc).__name__)
                failed = state.new_operation(
                    op_id,
                    OperationType.CHAINED_INVOKE,
                    "ChainedInvoke",
                    name,
                    ctx._parent_id,
                    S.FAILED,
                    error=error.to_dict(),
                    ended_at=state.now(),
                )
                ctx._commit(OperationUpdate(failed, "failed", {"error_type": error.type}))
                failure = error.to_operation_error(InvokeError)
                raise failure from failure.__cause__
            rec = state.new_operation(
                op_id,
                OperationType.CHAINED_INVOKE,
                "ChainedInvoke",
                name,
                ctx._parent_id,
                S.STARTED,
                child_execution_id=child.id,
            )
            ctx._commit(
                OperationUpdate(
                    rec, "invoke_started", {"workflow": function_name, "execution_id": child.id}
                )
            )
        child_id = rec.child_execution_id
        ended = state.store.get_execution(child_id) if child_id else None
        if ended is not None and ended.status is ExecutionStatus.RUNNING:
            raise SuspendExecution(f"{label} waits for execution {ended.id}")
        if ended is not None and ended.status is ExecutionStatus.SUCCEEDED:
            done = state.changed(rec, S.SUCCEEDED, result=ended.result)
            ctx._commit(OperationUpdate(done, "succeeded", {"execution_id": ended.id}))
            return deserialize(config.serdes_result, ended.result, **where)
        if ended is None:
            error = ErrorObject(f"{label}: its execution {child_id} is gone", "ExecutionNotFound")
            status = S.FAILED
        else:
            error = ErrorObject.from_dict(ended.error)
            if error.message is None:
                error = ErrorObject(f"execution {ended.id} ended {ended.status}", str(ended.status))
            status = {
                ExecutionStatus.TIMED_OUT: S.TIMED_OUT,
                ExecutionStatus.STOPPED: S.STOPPED,
            }.get(ended.status, S.FAILED)
        ctx._commit(OperationUpdate(state.changed(rec, status, error=error.to_dict()), "failed"))
        raise error.to_operation_error(InvokeError)
