"""The test runner users test their workflows with (``sqltide.workflows.testing``).

Each test drives a workflow the way a user's test would: through the runner only, on the
runner's own store (a private SQLite file) and its clock that skips waits, and checks what the
runner reports against what the workflow must have done.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sqltide.errors import CallbackConflict, CallbackNotFound, DurableFunctionsTestError
from sqltide.workflows import (
    BatchResult,
    CallbackConfig,
    CallbackError,
    CompletionConfig,
    DurableContext,
    InvokeError,
    MapConfig,
    ParallelConfig,
    Registry,
    StepConfig,
    StepContext,
    StepSemantics,
    WaitForCallbackConfig,
    durable_execution,
    durable_parallel_branch,
    durable_step,
    durable_with_child_context,
)
from sqltide.workflows.config import Duration, JitterStrategy
from sqltide.workflows.execution import InvocationStatus
from sqltide.workflows.retries import RetryPresets, RetryStrategyConfig, create_retry_strategy
from sqltide.workflows.testing import (
    CallbackOperation,
    ContextOperation,
    DurableChildContextTestRunner,
    DurableFunctionTestRunner,
    InvokeOperation,
    OperationStatus,
    OperationSubType,
    OperationType,
    SkipClock,
    StepOperation,
    WaitOperation,
)

from .test_seed_001 import HANDLER, FakeRedshiftData

S = OperationStatus
NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


# -- seed 001 ------------------------------------------------------------------------------------
@pytest.fixture
def seed_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[FakeRedshiftData], Any]]:
    """The seed's handler file, loaded as ``sqltide serve --workflows`` loads it, with boto3
    replaced by a stub whose client is the one given."""
    loaded: list[str] = []

    def load(client: FakeRedshiftData) -> Any:
        stub = types.ModuleType("boto3")
        stub.client = lambda service, **kw: client  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "boto3", stub)
        monkeypatch.setenv("WORKGROUP_NAME", "analytics")
        monkeypatch.setenv("DATABASE_NAME", "dev")
        before = set(sys.modules)
        registry = Registry()
        assert registry.load([str(HANDLER)]) == []
        loaded.extend(set(sys.modules) - before)
        wf = registry.get("lambda_handler")
        assert wf is not None
        return wf.fn

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


def test_the_seed_handler_polls_for_a_simulated_hour_without_waiting(
    seed_handler: Callable[[FakeRedshiftData], Any],
) -> None:
    # The batch runs for an hour: 359 polls see it running, the 360th (the seed's last) done.
    client = FakeRedshiftData(["STARTED"] * 359 + ["FINISHED"])
    began = time.perf_counter()
    with DurableFunctionTestRunner(seed_handler(client)) as runner:
        result = runner.run(input={})
    took = time.perf_counter() - began
    assert result.status is InvocationStatus.SUCCEEDED
    assert result.value == {
        "statusCode": 200,
        "body": {
            "message": "All queries executed successfully",
            "query_id": "stmt-1",
            "statement_count": 2,
            "status": "FINISHED",
        },
    }
    assert json.loads(result.result or "") == result.value  # the text, as on AWS
    execution = result.execution
    assert execution is not None and execution.ended_at is not None
    assert execution.ended_at - execution.created_at == 359 * 10  # an hour on the clock
    assert result.replays == 360  # one per wait, each from the top
    assert len(client.submitted) == 1 and len(client.described) == 360
    submit = result.get_step("execute_batch_query")
    assert submit.status is S.SUCCEEDED and submit.attempt == 1 and submit.value == "stmt-1"
    polls = [op for op in result.operations if op.name == "check_query_status"]
    waits = [op for op in result.operations if isinstance(op, WaitOperation)]
    assert len(polls) == 360 and len(waits) == 359
    assert polls[-1].value == {"status": "FINISHED", "completed": True}
    assert waits[0].duration == 10.0 and waits[0].scheduled_end_timestamp == waits[0].end_timestamp
    # Real time: the replays themselves (the 360th replays 719 checkpoints), no waiting.
    assert took < 30, took


def test_a_query_that_never_finishes_fails_after_an_hour(
    seed_handler: Callable[[FakeRedshiftData], Any],
) -> None:
    client = FakeRedshiftData(["STARTED"])
    with DurableFunctionTestRunner(seed_handler(client)) as runner:
        result = runner.run(input={})
    assert result.status is InvocationStatus.FAILED
    assert result.error is not None and result.error.type == "Exception"
    assert result.error.message == "Query timed out after 3600 seconds"
    assert len(client.described) == 360 and len(client.submitted) == 1


# -- steps, retries ------------------------------------------------------------------------------
def flaky(fails: int, calls: list[int]) -> Callable[[StepContext], str]:
    def work(step_context: StepContext) -> str:
        calls.append(step_context.attempt)
        if step_context.attempt <= fails:
            raise ConnectionError(f"attempt {step_context.attempt} lost the connection")
        return f"done on attempt {step_context.attempt}"

    return work


RETRY_HOURLY = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=4,
            initial_delay=Duration.from_hours(1),
            max_delay=Duration.from_hours(1),
            jitter_strategy=JitterStrategy.NONE,
        )
    )
)


def test_retries_are_replayed_after_their_delays_on_the_skipped_clock() -> None:
    calls: list[int] = []

    def flow(event: Any, ctx: DurableContext) -> str:
        return ctx.step(flaky(2, calls), name="fetch", config=RETRY_HOURLY)

    clock = SkipClock(start=1_000_000)
    with DurableFunctionTestRunner(flow, clock=clock) as runner:
        result = runner.run()
    assert result.status is InvocationStatus.SUCCEEDED
    assert result.value == "done on attempt 3"
    assert calls == [1, 2, 3]
    step = result.get_step("fetch")
    assert step.attempt == 3 and step.error is None and step.next_attempt_timestamp is None
    assert clock() == 1_000_000 + 2 * 3600  # two hour-long retry delays, skipped
    assert result.replays == 3


def test_a_step_that_gives_up_reports_its_attempts_and_error() -> None:
    calls: list[int] = []

    def flow(event: Any, ctx: DurableContext) -> str:
        return ctx.step(flaky(10, calls), name="fetch", config=RETRY_HOURLY)

    with DurableFunctionTestRunner(flow) as runner:
        result = runner.run()
    assert result.status is InvocationStatus.FAILED
    assert calls == [1, 2, 3, 4]
    step = result.get_step("fetch")
    assert step.status is S.FAILED and step.attempt == 4
    assert step.error is not None and step.error.type == "ConnectionError"
    assert step.error.message == "attempt 4 lost the connection"
    assert result.error is not None and result.error.type == "StepError"
    assert result.error.message == "attempt 4 lost the connection"


def test_a_crash_mid_step_is_recovered_like_a_killed_worker() -> None:
    class Crash(BaseException):
        pass

    runs: list[str] = []

    def flow(event: Any, ctx: DurableContext) -> list[str]:
        def once(_: StepContext) -> str:
            runs.append("once")
            if len(runs) == 1:
                raise Crash()
            return "ran"

        first = ctx.step(
            once,
            name="at-most-once",
            config=StepConfig(
                retry_strategy=RetryPresets.none(),
                step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
            ),
        )
        return [first]

    with DurableFunctionTestRunner(flow) as runner:
        eid = runner.start()
        with pytest.raises(Crash):
            runner.wait_for_result(eid)
        assert runner.get_result(eid).status is InvocationStatus.PENDING
        result = runner.wait_for_result(eid)  # the lease runs out, the execution is recovered
    assert result.status is InvocationStatus.FAILED
    step = result.get_step("at-most-once")
    assert step.error is not None and step.error.type == "StepInterruptedError"
    assert runs == ["once"]  # at most once: never again


# -- callbacks -----------------------------------------------------------------------------------
def approval_flow(config: CallbackConfig | None = None) -> Callable[[Any, DurableContext], Any]:
    def flow(event: Any, ctx: DurableContext) -> Any:
        callback = ctx.create_callback(name="approval", config=config)
        ctx.step(lambda _: f"mail {callback.callback_id}", name="notify")
        try:
            return {"answer": callback.result()}
        except CallbackError as error:
            return {"error": type(error).__name__, "message": error.message}

    return flow


def test_a_callback_answered_by_the_test() -> None:
    with DurableFunctionTestRunner(approval_flow(CallbackConfig(timeout=Duration(600)))) as r:
        eid = r.run_async(input={"order": 7})
        assert r.get_result(eid).get_step("notify").status is S.SUCCEEDED  # ran at once
        callback_id = r.wait_for_callback(eid, name="approval")
        pending = r.get_result(eid)
        assert pending.status is InvocationStatus.PENDING
        callback = pending.get_callback("approval")
        assert callback.callback_id == callback_id and callback.status is S.STARTED
        r.send_callback_success(callback_id, b'{"approved": true}')
        result = r.wait_for_result(eid)
        with pytest.raises(CallbackConflict):
            r.send_callback_success(callback_id, "again")
        with pytest.raises(CallbackNotFound):
            r.send_callback_success("no-such-callback")
    assert result.status is InvocationStatus.SUCCEEDED
    assert result.value == {"answer": '{"approved": true}'}  # as sent (the AWS default)
    assert result.get_callback("approval").result == '{"approved": true}'


def test_run_stops_at_a_callback_without_a_timeout_and_goes_on_when_answered() -> None:
    with DurableFunctionTestRunner(approval_flow()) as r:
        first = r.run()
        assert first.status is InvocationStatus.PENDING and first.result is None
        callback = first.get_callback("approval")
        r.send_callback_failure(callback.callback_id or "", ValueError("the manager said no"))
        result = r.wait_for_result(first.execution_id)
    assert result.value == {"error": "CallbackExternalError", "message": "the manager said no"}
    assert result.get_callback("approval").status is S.FAILED


def test_unanswered_callbacks_time_out_on_the_skipped_clock() -> None:
    config = CallbackConfig(timeout=Duration.from_days(2), heartbeat_timeout=Duration(60))
    with DurableFunctionTestRunner(approval_flow(config)) as r:
        # run() skips to the heartbeat timeout: nobody answers in a run()
        assert r.run().value["error"] == "CallbackTimeoutError"
        # answered with heartbeats, it lives on as long as they come
        eid = r.run_async()
        callback_id = r.wait_for_callback(eid)
        for _ in range(3):
            r.advance_time(50)
            r.send_callback_heartbeat(callback_id)
        assert r.get_result(eid).status is InvocationStatus.PENDING
        r.advance_time(61)
        result = r.wait_for_result(eid)
    assert result.value["error"] == "CallbackTimeoutError"
    assert "heartbeat" in result.value["message"]
    assert result.get_callback("approval").status is S.TIMED_OUT


def test_wait_for_callback_finds_a_submitted_callback_by_its_name() -> None:
    sent: list[str] = []

    def flow(event: Any, ctx: DurableContext) -> Any:
        ctx.wait(Duration.from_hours(3))  # skipped on the way to the callback
        return ctx.wait_for_callback(
            lambda callback_id, _: sent.append(callback_id),
            name="payment",
            config=WaitForCallbackConfig(timeout=Duration.from_hours(1)),
        )

    with DurableFunctionTestRunner(flow) as r:
        eid = r.run_async()
        callback_id = r.wait_for_callback(eid, name="payment")
        assert sent == [callback_id]  # the submitter ran before the id was handed out
        r.send_callback_success(callback_id, "paid")
        result = r.wait_for_result(eid)
        with pytest.raises(DurableFunctionsTestError, match="ended already"):
            r.wait_for_callback(eid, name="payment")
    assert result.value == "paid"
    context = result.get_context("payment")
    assert context.sub_type is OperationSubType.WAIT_FOR_CALLBACK
    inner = context.get_callback("payment create callback id")
    assert isinstance(inner, CallbackOperation) and inner.callback_id == callback_id
    assert context.get_step("payment submitter").status is S.SUCCEEDED


def test_waiting_for_an_answer_that_never_comes_times_out_saying_what_it_waits_for() -> None:
    with DurableFunctionTestRunner(approval_flow()) as r:
        r.register_durable_function("quick", lambda event, ctx: "done")
        eid = r.run_async()
        with pytest.raises(TimeoutError, match=r"callback 'approval' \(id .+\) is not answered"):
            r.wait_for_result(eid, timeout=0.2)
        with pytest.raises(DurableFunctionsTestError, match="ended SUCCEEDED without"):
            r.wait_for_callback(r.start(function_name="quick"), timeout=5)


def test_an_answer_from_another_thread_wakes_a_waiting_test() -> None:
    with DurableFunctionTestRunner(approval_flow()) as r:
        eid = r.run_async()
        callback_id = r.wait_for_callback(eid)
        answer = threading.Timer(0.05, r.send_callback_success, (callback_id, "later"))
        answer.start()
        try:
            result = r.wait_for_result(eid, timeout=30)
        finally:
            answer.join()
    assert result.value == {"answer": "later"}


# -- invoke, map, parallel, child contexts -------------------------------------------------------
@durable_execution
def price(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    if event["sku"] == "none":
        raise LookupError(f"no price for {event['sku']}")
    return {"price": ctx.step(lambda _: 25, name="lookup")}


@durable_execution
def place_order(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    quote = ctx.invoke("price", {"sku": event["sku"]}, name="quote")
    try:
        ctx.invoke("price", {"sku": "none"}, name="missing")
    except InvokeError as error:
        missing = error.error_type
    try:
        ctx.invoke("unknown", {}, name="nowhere")
    except InvokeError as error:
        unknown = error.error_type
    return {"charged": quote["price"], "missing": missing, "unknown": unknown}


def test_invoke_runs_a_registered_workflow_as_a_child_execution() -> None:
    with DurableFunctionTestRunner(place_order) as runner:
        assert runner.register_durable_function("price", price) is runner
        result = runner.run(input={"sku": "book-1"})
        quote = result.get_invoke("quote")
        child = runner.get_result(quote.child_execution_id or "")
    assert result.value == {
        "charged": 25,
        "missing": "LookupError",
        "unknown": "WorkflowNotFound",
    }
    assert isinstance(quote, InvokeOperation) and quote.status is S.SUCCEEDED
    assert quote.value == {"price": 25}
    assert result.get_invoke("missing").status is S.FAILED
    assert child.status is InvocationStatus.SUCCEEDED and child.get_step("lookup").value == 25
    assert child.execution is not None and child.execution.parent_id == result.execution_id


def test_invoke_targets_from_a_registry() -> None:
    registry = Registry()
    registry.add(price)
    with DurableFunctionTestRunner(place_order, registry=registry) as runner:
        assert runner.run(input={"sku": "pen"}).value["charged"] == 25


def test_map_and_parallel_results_and_their_operations() -> None:
    @durable_parallel_branch(name="totals")
    def totals(ctx: DurableContext, n: int) -> int:
        ctx.wait(Duration.from_minutes(30))
        return ctx.step(lambda _: n * 10, name="sum")

    def item(ctx: DurableContext, sku: str, index: int, items: list[str]) -> str:
        if sku == "bad":
            ctx.step(lambda _: 1 / 0, name="check", config=NO_RETRY)
        return ctx.step(lambda _: sku.upper(), name="check")

    def flow(event: Any, ctx: DurableContext) -> Any:
        checked: BatchResult[str] = ctx.map(
            ["a", "bad", "c"],
            item,
            name="skus",
            config=MapConfig(max_concurrency=1, completion_config=CompletionConfig.all_completed()),
        )
        both = ctx.parallel(
            [totals(3), lambda c: c.step(lambda _: "quick", name="q")],
            name="both",
            config=ParallelConfig(max_concurrency=2),
        )
        return {"map": checked.get_results(), "failed": checked.failure_count, "both": both}

    with DurableFunctionTestRunner(flow) as runner:
        result = runner.run()
    assert result.status is InvocationStatus.SUCCEEDED
    assert result.value["map"] == ["A", "C"] and result.value["failed"] == 1
    assert result.value["both"].get_results() == [30, "quick"]  # the extended serdes
    skus = result.get_context("skus")
    assert isinstance(skus, ContextOperation) and skus.sub_type is OperationSubType.MAP
    items = skus.child_operations
    assert [op.name for op in items] == ["map-item-0", "map-item-1", "map-item-2"]
    assert [op.status for op in items] == [S.SUCCEEDED, S.FAILED, S.SUCCEEDED]
    assert items[1].error is not None and items[1].error.type == "ZeroDivisionError"
    assert items[2].get_step("check").value == "C"
    assert result.get_step("check").value == "A"  # the first one created
    branch = result.get_context("both").get_context("totals")
    assert branch.sub_type is OperationSubType.PARALLEL_BRANCH
    wait = branch.children[0]
    assert isinstance(wait, WaitOperation) and wait.duration == 1800.0
    everything = result.get_all_operations()
    assert [op.seq for op in everything] == sorted(op.seq for op in everything)
    assert {op.operation_type for op in everything} == {
        OperationType.CONTEXT,
        OperationType.STEP,
        OperationType.WAIT,
    }


def test_a_child_context_function_alone() -> None:
    @durable_step
    def double(step_context: StepContext, n: int) -> int:
        return n * 2

    @durable_with_child_context
    def block(ctx: DurableContext, n: int) -> int:
        ctx.wait(Duration.from_hours(2))
        return ctx.step(double(n))

    with DurableChildContextTestRunner(block, 21) as runner:
        result = runner.run()
    assert result.value == 42
    step = result.get_step("double")
    assert isinstance(step, StepOperation) and step.value == 42


# -- lookups, inputs, status ---------------------------------------------------------------------
def test_lookups_say_what_is_there() -> None:
    def flow(event: Any, ctx: DurableContext) -> Any:
        ctx.wait(Duration(1), name="pause")
        return ctx.step(lambda _: event, name="echo")

    with DurableFunctionTestRunner(flow) as runner:
        result = runner.run(input='{"a": [1, 2]}')  # a str is the input's JSON text
        assert result.value == {"a": [1, 2]}
        assert runner.run(input=["a", 1]).value == ["a", 1]
        with pytest.raises(DurableFunctionsTestError, match="not JSON"):
            runner.run(input="hello")
        assert runner.run(input=json.dumps("hello")).value == "hello"
    assert result.get_operation_by_name("pause").operation_type is OperationType.WAIT
    with pytest.raises(DurableFunctionsTestError, match=r"no step named 'nope'.*'echo', 'pause'"):
        result.get_step("nope")
    with pytest.raises(DurableFunctionsTestError, match="is a WAIT"):
        result.get_step("pause")


def test_timeouts_and_stops() -> None:
    def slow(event: Any, ctx: DurableContext) -> str:
        ctx.wait(Duration.from_hours(2))
        return "late"

    with DurableFunctionTestRunner(slow, execution_timeout=3600) as runner:
        timed_out = runner.run()
        eid = runner.run_async()
        stopped = runner.stop_execution(eid)
        assert runner.run(execution_timeout=3 * 3600).value == "late"
    assert timed_out.status is InvocationStatus.TIMED_OUT
    assert timed_out.error is not None and timed_out.error.type == "TimeoutError"
    assert timed_out.operations[0].status is S.STARTED
    assert stopped.status is InvocationStatus.STOPPED
    assert stopped.error is not None and stopped.error.type == "ExecutionStopped"


def test_the_same_execution_name_gives_the_same_execution() -> None:
    runs: list[int] = []

    def flow(event: Any, ctx: DurableContext) -> int:
        return ctx.step(lambda _: runs.append(1) or len(runs), name="count")

    with DurableFunctionTestRunner(flow) as runner:
        first = runner.run(execution_name="nightly-2026-01-01")
        again = runner.run(execution_name="nightly-2026-01-01")
    assert first.execution_id == again.execution_id and again.value == 1 and runs == [1]


def test_real_time_when_asked() -> None:
    def flow(event: Any, ctx: DurableContext) -> str:
        ctx.wait(Duration(1))
        return "waited"

    began = time.monotonic()
    with DurableFunctionTestRunner(flow, skip_time=False) as runner:
        result = runner.run(timeout=30)
    assert result.value == "waited"
    assert time.monotonic() - began >= 1.0


def test_runners_share_nothing_and_run_in_parallel() -> None:
    barrier = threading.Barrier(4, timeout=30)
    results: dict[int, Any] = {}

    def flow(event: Any, ctx: DurableContext) -> int:
        ctx.wait(Duration.from_hours(event))
        return ctx.step(lambda _: event * 100, name="work")

    def one(n: int) -> None:
        with DurableFunctionTestRunner(flow, clock=SkipClock(start=0)) as runner:
            barrier.wait()  # all four run at once
            result = runner.run(input=n)
            results[n] = (result.value, result.execution.ended_at if result.execution else None)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {n: (n * 100, n * 3600.0) for n in range(1, 5)}


def test_on_each_store_by_url(store_url: str) -> None:
    def flow(event: Any, ctx: DurableContext) -> Any:
        ctx.wait(Duration.from_minutes(5))
        return ctx.step(lambda _: {"n": event["n"] + 1}, name="inc")

    with DurableFunctionTestRunner(flow, store_url=store_url) as runner:
        result = runner.run(input={"n": 1})
        history = [h.event for h in runner.get_execution_history(result.execution_id)]
    assert result.value == {"n": 2} and result.replays == 2
    assert history[0] == "execution_started" and history[-1] == "execution_succeeded"


def test_a_closed_runner_removes_its_store() -> None:
    runner = DurableFunctionTestRunner(lambda event, ctx: event)
    folder = runner._folder
    assert folder is not None and Path(folder).is_dir()
    assert runner.function_name == "handler"
    assert runner.run(input=5).value == 5
    runner.close()
    assert not Path(folder).exists()
    with pytest.raises(DurableFunctionsTestError, match="closed"):
        runner.run()
