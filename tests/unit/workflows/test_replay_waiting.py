"""Operations that wait for something: callbacks, wait_for_callback, wait_for_condition,
invoke of another workflow (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sqltide.errors import CallbackConflict
from sqltide.store import ExecutionRecord, ExecutionStatus, OperationStatus, Store
from sqltide.workflows import (
    CallbackConfig,
    CallbackError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    DurableContext,
    InvokeError,
    StepError,
    WaitForCallbackConfig,
    WaitForCallbackContext,
    WaitForConditionError,
    durable_wait_for_callback,
)
from sqltide.workflows.config import Duration, JitterStrategy
from sqltide.workflows.replay import Replay
from sqltide.workflows.retries import RetryPresets
from sqltide.workflows.serdes import JsonSerDes
from sqltide.workflows.waits import (
    WaitForConditionCheckContext,
    WaitForConditionConfig,
    WaitStrategyConfig,
    create_wait_strategy,
)

from .conftest import T0, Clock, Runner

Make = Callable[..., Runner]
S = OperationStatus
RUNNING, SUCCEEDED, FAILED = (
    ExecutionStatus.RUNNING,
    ExecutionStatus.SUCCEEDED,
    ExecutionStatus.FAILED,
)


def callback_flow(config: CallbackConfig | None = None) -> Callable[[Any, DurableContext], Any]:
    def flow(event: Any, ctx: DurableContext) -> Any:
        callback = ctx.create_callback(name="approval", config=config)
        ctx.step(lambda _: callback.callback_id, name="notify")
        try:
            return {"result": callback.result()}
        except CallbackError as error:
            return {"error": type(error).__name__, "message": error.message}

    return flow


def test_a_callback_suspends_until_it_is_completed(
    store: Store, runner: Make, clock: Clock
) -> None:
    r = runner(callback_flow(CallbackConfig(timeout=Duration.from_hours(1))))
    r.start()
    assert r.replay() is RUNNING
    op = r.op("approval")
    assert op.status is S.STARTED and op.callback_id
    assert op.callback_timeout_at == T0 + 3600 and op.heartbeat_timeout_at is None
    assert r.execution().next_run_at == T0 + 3600  # its timeout: nothing sooner
    clock.advance(120)
    store.complete_callback(
        op.callback_id, "succeed", result='{"ok": true}', error=None, now=clock()
    )
    assert r.execution().next_run_at == clock()  # woken at once
    assert r.replay() is SUCCEEDED
    assert r.result() == {"result": '{"ok": true}'}  # as sent: the AWS default
    assert r.op("notify").result == json.dumps(op.callback_id)
    with pytest.raises(CallbackConflict):
        store.complete_callback(op.callback_id, "succeed", result="again", error=None, now=clock())


def test_a_callback_result_read_by_its_serdes(store: Store, runner: Make, clock: Clock) -> None:
    r = runner(callback_flow(CallbackConfig(serdes=JsonSerDes())))
    r.start()
    assert r.replay() is RUNNING
    assert r.execution().next_run_at is None  # no timeout: only the completion wakes it
    callback_id = r.op("approval").callback_id
    assert callback_id
    store.complete_callback(callback_id, "succeed", result='{"ok": true}', error=None, now=clock())
    assert r.replay() is SUCCEEDED and r.result() == {"result": {"ok": True}}


def test_a_failed_callback_raises_callback_external_error(
    store: Store, runner: Make, clock: Clock
) -> None:
    r = runner(callback_flow())
    r.start()
    r.replay()
    error = {"type": "Rejected", "message": "the manager said no", "data": None, "stack": None}
    store.complete_callback(
        r.op("approval").callback_id or "", "fail", result=None, error=error, now=clock()
    )
    assert r.replay() is SUCCEEDED
    assert r.result() == {"error": "CallbackExternalError", "message": "the manager said no"}


def test_a_callback_times_out(runner: Make, clock: Clock) -> None:
    r = runner(callback_flow(CallbackConfig(timeout=Duration(60))))
    r.start()
    r.replay()
    r.to_next()
    assert clock() == T0 + 60
    assert r.replay() is SUCCEEDED
    result = r.result()
    assert result["error"] == "CallbackTimeoutError" and "timed out" in result["message"]
    assert r.op("approval").status is S.TIMED_OUT


def test_heartbeats_keep_a_callback_alive_until_they_stop(
    store: Store, runner: Make, clock: Clock
) -> None:
    config = CallbackConfig(timeout=Duration(600), heartbeat_timeout=Duration(30))
    r = runner(callback_flow(config))
    r.start()
    r.replay()
    assert r.execution().next_run_at == T0 + 30  # the earlier of the two timeouts
    callback_id = r.op("approval").callback_id or ""
    clock.advance(20)
    store.complete_callback(callback_id, "heartbeat", result=None, error=None, now=clock())
    assert r.op("approval").heartbeat_timeout_at == T0 + 50
    r.to_next()
    assert clock() == T0 + 50
    assert r.replay() is SUCCEEDED
    assert r.result()["error"] == "CallbackTimeoutError"
    assert "heartbeat" in r.result()["message"]


def test_wait_for_callback_submits_once_and_returns_the_result(
    store: Store, runner: Make, clock: Clock
) -> None:
    submitted: list[tuple[str, str]] = []

    @durable_wait_for_callback
    def ask(callback_id: str, ctx: WaitForCallbackContext, who: str) -> None:
        ctx.logger.info("asking %s", who)
        submitted.append((callback_id, who))

    def flow(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_callback(
            ask("manager"), name="approval", config=WaitForCallbackConfig(timeout=Duration(300))
        )

    r = runner(flow)
    r.start()
    assert r.replay() is RUNNING
    ops = r.ops()
    assert [(o.id, o.sub_type, o.name) for o in ops.values()] == [
        ("1", "WaitForCallback", "approval"),
        ("1-1", "Callback", "approval create callback id"),
        ("1-2", "Step", "approval submitter"),
    ]
    assert submitted == [(ops["1-1"].callback_id, "manager")]
    store.complete_callback(
        ops["1-1"].callback_id or "", "succeed", result="yes", error=None, now=clock()
    )
    assert r.replay() is SUCCEEDED and r.result() == "yes"
    assert len(submitted) == 1


@pytest.mark.parametrize("failure", ["submitter", "timeout"])
def test_wait_for_callback_failures_are_typed(runner: Make, failure: str) -> None:
    def submit(callback_id: str, ctx: WaitForCallbackContext) -> None:
        if failure == "submitter":
            raise ConnectionError("the queue is down")

    def flow(event: Any, ctx: DurableContext) -> Any:
        config = WaitForCallbackConfig(timeout=Duration(30), retry_strategy=RetryPresets.none())
        try:
            ctx.wait_for_callback(submit, name="approval", config=config)
        except CallbackSubmitterError as error:
            return ["submitter", error.message, isinstance(error, CallbackError)]
        except CallbackTimeoutError as error:
            return ["timeout", error.message, isinstance(error, CallbackError)]
        return ["none"]

    r = runner(flow)
    r.start()
    rec = r.run_to_end()
    assert rec.status is SUCCEEDED
    kind, message, is_callback_error = r.result()
    assert kind == failure and is_callback_error
    if failure == "submitter":
        assert message == "the queue is down"
    assert not issubclass(CallbackSubmitterError, StepError)


def poll_config(max_attempts: int = 10) -> WaitForConditionConfig[dict[str, Any]]:
    return WaitForConditionConfig(
        wait_strategy=create_wait_strategy(
            WaitStrategyConfig(
                should_continue_polling=lambda s: s["status"] != "FINISHED",
                max_attempts=max_attempts,
                initial_delay=Duration(10),
                backoff_rate=1,
                jitter_strategy=JitterStrategy.NONE,
            )
        ),
        initial_state={"status": "SUBMITTED", "polls": 0},
    )


def test_wait_for_condition_is_one_operation_with_attempts(runner: Make, clock: Clock) -> None:
    checks: list[tuple[int, int]] = []

    def check(state: dict[str, Any], ctx: WaitForConditionCheckContext) -> dict[str, Any]:
        checks.append((ctx.attempt, state["polls"]))
        polls = state["polls"] + 1
        return {"status": "FINISHED" if polls == 3 else "STARTED", "polls": polls}

    def flow(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_condition(check, poll_config(), name="statement")

    r = runner(flow)
    r.start()
    dues = []
    for _ in range(2):
        assert r.replay() is RUNNING
        op = r.op("statement")
        assert op.status is S.PENDING and json.loads(op.result or "")["polls"] == op.attempt
        dues.append(r.execution().next_run_at)
        r.to_next()
    assert dues == [T0 + 10, T0 + 20]
    assert r.replay() is SUCCEEDED
    assert r.result() == {"status": "FINISHED", "polls": 3}
    assert checks == [(1, 0), (2, 1), (3, 2)]  # each check got the state the last one made
    assert len(r.ops()) == 1 and r.op("statement").attempt == 3


def test_wait_for_condition_gives_up(runner: Make) -> None:
    def flow(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.wait_for_condition(lambda s, c: s, poll_config(max_attempts=2), name="never")
        except WaitForConditionError as error:
            return error.message

    r = runner(flow)
    r.start()
    assert r.run_to_end().status is SUCCEEDED
    assert "gave up after 2 attempts" in r.result()
    assert r.op("never").status is S.FAILED


def test_invoke_without_the_service_fails_clearly(runner: Make) -> None:
    r = runner(lambda event, ctx: ctx.invoke("other", {"x": 1}))
    r.start()
    assert r.replay() is FAILED
    error = r.execution().error
    assert error["type"] == "ExecutionError" and "start_child" in error["message"]


def test_invoke_starts_a_child_execution_and_waits_for_its_result(
    store: Store, runner: Make, clock: Clock
) -> None:
    def child_flow(event: Any, ctx: DurableContext) -> Any:
        if event["n"] < 0:
            raise ValueError("negative")
        return {"double": ctx.step(lambda _: event["n"] * 2, name="double")}

    def start_child(
        workflow: str, name: str, payload: str | None, parent: ExecutionRecord, op_id: str
    ) -> ExecutionRecord:
        rec = ExecutionRecord(
            id=f"child-{name}",
            workflow=workflow,
            name=name,
            principal=parent.principal,
            status=ExecutionStatus.RUNNING,
            created_at=clock(),
            updated_at=clock(),
            input=payload,
            parent_id=parent.id,
            parent_operation_id=op_id,
        )
        return store.start_execution(rec)[0]

    def parent_flow(event: Any, ctx: DurableContext) -> Any:
        good = ctx.invoke("child", {"n": 21}, name="good")
        try:
            ctx.invoke("child", {"n": -1}, name="bad")
        except InvokeError as error:
            return [good, error.error_type, error.message]

    parent = runner(parent_flow, workflow="parent", start_child=start_child)
    parent.start()
    for expected_child in ("good", "bad"):
        assert parent.replay() is RUNNING
        assert parent.execution().next_run_at is None  # until the child ends
        op = parent.op(expected_child)
        assert op.child_execution_id == f"child-{parent.id}-{op.id}"
        child = store.claim_executions(["child"], "w9", 1, 30, clock())[0]
        Replay(store, child, child_flow, owner="w9", clock=clock, retention_seconds=60).run()
        assert parent.execution().next_run_at == clock()  # the child's end woke it
    assert parent.replay() is SUCCEEDED
    assert parent.result() == [{"double": 42}, "ValueError", "negative"]
    assert parent.op("good").status is S.SUCCEEDED and parent.op("bad").status is S.FAILED
