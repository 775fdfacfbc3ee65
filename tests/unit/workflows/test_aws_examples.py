"""Handlers in the style of the AWS SDK's examples, re-written here for the same behaviour,
importing only from ``sqltide.workflows`` (where they import ``aws_durable_execution_sdk_python``)
and run over a real store, replay after replay."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sqltide.store import ExecutionStatus, OperationType, Store
from sqltide.workflows import StepError, durable_parallel_branch
from sqltide.workflows.config import (
    CallbackConfig,
    ChildConfig,
    CompletionConfig,
    CompletionStatus,
    Duration,
    MapConfig,
    ParallelConfig,
    StepConfig,
)
from sqltide.workflows.context import (
    DurableContext,
    StepContext,
    durable_step,
    durable_with_child_context,
)
from sqltide.workflows.execution import durable_execution
from sqltide.workflows.retries import RetryStrategyConfig, create_retry_strategy
from sqltide.workflows.serdes import SerDes, SerDesContext
from sqltide.workflows.types import WaitForCallbackContext
from sqltide.workflows.waits import (
    WaitForConditionConfig,
    WaitForConditionDecision,
    WaitStrategyConfig,
    create_wait_strategy,
)

from .conftest import Clock, Runner

Make = Callable[..., Runner]


def run(runner: Make, handler: Callable[..., Any], event: Any = None) -> Any:
    r = runner(handler)
    r.start(event if event is not None else {})
    rec = r.run_to_end()
    assert rec.status is ExecutionStatus.SUCCEEDED, rec.error
    return r.result()


# 1. a step, then a value computed from it
@durable_step
def greet(step_context: StepContext, who: str) -> str:
    return f"hello {who}"


@durable_execution
def hello_handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    return {"message": context.step(greet(event.get("name", "world")))}


# 2. polling with a retried step (steps_with_retry)
def lookup(step_context: StepContext, poll: int) -> dict[str, Any] | None:
    if poll == 1 and step_context.attempt == 1:
        raise RuntimeError("Random failure")
    return None if poll == 1 else {"id": "item", "poll": poll}


@durable_execution
def polling_handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    config = StepConfig(
        create_retry_strategy(
            RetryStrategyConfig(max_attempts=5, retryable_error_types=[RuntimeError])
        )
    )
    for poll in range(1, 6):
        found = context.step(
            lambda sc, p=poll: lookup(sc, p), name=f"get_item_poll_{poll}", config=config
        )
        if found:
            return {"success": True, "item": found, "pollsRequired": poll}
        context.wait(Duration.from_seconds(1))
    return {"error": "Item Not Found"}


# 3. a typed StepError caught, stable across a replay boundary (catch_typed_step_error)
@durable_execution
def typed_error_handler(event: Any, context: DurableContext) -> dict[str, Any]:
    def charge(_: StepContext) -> None:
        raise ValueError("payment declined")

    config = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=1)))
    outcome: dict[str, Any] = {"handled": False}
    try:
        context.step(charge, name="charge-card", config=config)
    except StepError as error:
        outcome = {
            "handled": True,
            "caught": type(error).__name__,
            "error_type": error.error_type,
            "message": error.message,
        }
    context.wait(duration=Duration.from_seconds(1), name="post-failure-cooldown")
    return outcome


# 4. many steps across parent and child contexts (comprehensive_operations/many_operations)
@durable_with_child_context
def child_group(child_context: DurableContext, group: int, steps: int) -> list[int]:
    return [
        child_context.step(lambda _, v=group * 100 + i: v, name=f"child-{group:02d}-step-{i:02d}")
        for i in range(steps)
    ]


@durable_execution
def many_operations_handler(event: Any, context: DurableContext) -> dict[str, Any]:
    steps = [context.step(lambda _, i=i: i, name=f"many-step-{i:03d}") for i in range(12)]
    groups = [
        context.run_in_child_context(child_group(g, 2), name=f"child-context-{g:02d}")
        for g in range(4)
    ]
    return {
        "topLevelStepTotal": sum(steps),
        "childStepTotal": sum(sum(g) for g in groups),
        "firstStep": steps[0],
        "lastStep": steps[-1],
    }


# 5. map with a custom completion predicate (map_with_should_complete)
def three_successes(status: CompletionStatus) -> bool:
    return status.success_count >= 3


@durable_execution
def map_should_complete_handler(event: Any, context: DurableContext) -> dict[str, Any]:
    results = context.map(
        inputs=list(range(1, 11)),
        func=lambda ctx, item, index, _: ctx.step(lambda _: item * 10, name=f"process-{index}"),
        name="map_should_complete",
        config=MapConfig(
            max_concurrency=2, completion_config=CompletionConfig(should_complete=three_successes)
        ),
    )
    return {
        "success_count": results.success_count,
        "completion_reason": results.completion_reason.value,
        "results": results.get_results(),
    }


# 6. parallel branches with names (durable_parallel_branch)
@durable_parallel_branch(name="fetch-user-data")
def fetch_user(ctx: DurableContext, user_id: str) -> dict[str, str]:
    return ctx.step(lambda _: {"id": user_id, "name": "Jane"}, name="load_user")


@durable_parallel_branch(name="fetch-orders")
def fetch_orders(ctx: DurableContext, user_id: str) -> list[str]:
    return ctx.step(lambda _: ["order1", "order2"], name="load_orders")


@durable_execution
def parallel_handler(event: Any, context: DurableContext) -> Any:
    results = context.parallel(
        functions=[fetch_user("u1"), fetch_orders("u1")],
        name="load-data",
        config=ParallelConfig(max_concurrency=2),
    )
    return results.get_results()


# 7. a map tolerating failures
@durable_execution
def map_tolerating_handler(event: Any, context: DurableContext) -> dict[str, Any]:
    def process(ctx: DurableContext, item: int, index: int, items: list[int]) -> int:
        def work(_: StepContext) -> int:
            if item % 3 == 0:
                raise ValueError(f"item {item} is bad")
            return item

        return ctx.step(
            work,
            name="work",
            config=StepConfig(
                retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=1))
            ),
        )

    result = context.map(
        list(range(1, 7)),
        process,
        config=MapConfig(completion_config=CompletionConfig(tolerated_failure_count=2)),
    )
    return {
        "reason": result.completion_reason.value,
        "ok": result.get_results(),
        "errors": sorted(e.message or "" for e in result.get_errors()),
    }


# 8. a callback created, handed out by a step, waited on
@durable_execution
def callback_handler(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(
        name="approval", config=CallbackConfig(timeout=Duration.from_minutes(10))
    )
    context.step(lambda _: {"send": callback.callback_id}, name="send-approval-request")
    return json.loads(callback.result() or "null")


# 9. wait_for_callback with a bound submitter
def submit_ticket(callback_id: str, ctx: WaitForCallbackContext, queue: str) -> None:
    ctx.logger.info("ticket for %s in %s", callback_id, queue)


@durable_execution
def wait_for_callback_handler(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(lambda cid, ctx: submit_ticket(cid, ctx, "ops"), name="ticket")


# 10. wait_for_condition polling a counter
@durable_execution
def wait_for_condition_handler(event: Any, context: DurableContext) -> Any:
    strategy = create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=lambda state: state["count"] < 3,
            initial_delay=Duration.from_seconds(5),
            max_attempts=10,
        )
    )
    return context.wait_for_condition(
        check=lambda state, ctx: {"count": state["count"] + 1, "attempt": ctx.attempt},
        config=WaitForConditionConfig(wait_strategy=strategy, initial_state={"count": 0}),
        name="count-to-three",
    )


# 11. a non-identity serdes: the first run returns what replay would (serdes_roundtrip)
class MarkerSerDes(SerDes[dict[str, Any]]):
    def serialize(self, value: dict[str, Any], _: SerDesContext) -> str:
        return json.dumps({k: v for k, v in value.items() if k != "round_tripped"})

    def deserialize(self, data: str, _: SerDesContext) -> dict[str, Any]:
        return {**json.loads(data), "round_tripped": True}


@durable_execution
def serdes_roundtrip_handler(event: Any, context: DurableContext) -> dict[str, bool]:
    serdes = MarkerSerDes()
    step = context.step(lambda _: {"op": "step"}, name="step", config=StepConfig(serdes=serdes))
    child = context.run_in_child_context(
        lambda _: {"op": "child"}, name="child", config=ChildConfig(serdes=serdes)
    )
    virtual = context.run_in_child_context(
        lambda _: {"op": "virtual"},
        name="virtual",
        config=ChildConfig(serdes=serdes, is_virtual=True),
    )
    condition = context.wait_for_condition(
        check=lambda _state, _ctx: {"op": "wait-for-condition"},
        config=WaitForConditionConfig(
            initial_state={},
            serdes=serdes,
            wait_strategy=lambda s, a: WaitForConditionDecision.stop_polling(),
        ),
        name="wait-for-condition",
    )
    return {
        name: value.get("round_tripped", False)
        for name, value in {
            "step": step,
            "child": child,
            "virtual": virtual,
            "condition": condition,
        }.items()
    }


# 12. context.logger and a step's logger, replay after replay
@durable_execution
def logging_handler(event: Any, context: DurableContext) -> str:
    context.logger.info("starting %s", event.get("job"))

    def work(step_context: StepContext) -> str:
        step_context.logger.info("working, attempt %d", step_context.attempt)
        return "worked"

    value = context.step(work, name="work")
    context.wait(Duration.from_seconds(2), name="cool-down")
    context.logger.info("finished with %s", value)
    return value


EXAMPLES: list[tuple[Callable[..., Any], Any, Any]] = [
    (hello_handler, {"name": "sqltide"}, {"message": "hello sqltide"}),
    (polling_handler, {}, {"success": True, "item": {"id": "item", "poll": 2}, "pollsRequired": 2}),
    (
        typed_error_handler,
        {},
        {
            "handled": True,
            "caught": "StepError",
            "error_type": "ValueError",
            "message": "payment declined",
        },
    ),
    (
        many_operations_handler,
        {},
        {"topLevelStepTotal": 66, "childStepTotal": 1204, "firstStep": 0, "lastStep": 11},
    ),
    (parallel_handler, {}, [{"id": "u1", "name": "Jane"}, ["order1", "order2"]]),
    (
        map_tolerating_handler,
        {},
        {
            "reason": "ALL_COMPLETED",
            "ok": [1, 2, 4, 5],
            "errors": ["item 3 is bad", "item 6 is bad"],
        },
    ),
    (wait_for_condition_handler, {}, {"count": 3, "attempt": 3}),
    (
        serdes_roundtrip_handler,
        {},
        {"step": True, "child": True, "virtual": True, "condition": True},
    ),
    (logging_handler, {"job": "nightly"}, "worked"),
]


@pytest.mark.parametrize(
    ("handler", "event", "expected"), EXAMPLES, ids=[h.__name__ for h, _, _ in EXAMPLES]
)
def test_example_handlers(
    runner: Make, handler: Callable[..., Any], event: Any, expected: Any
) -> None:
    assert run(runner, handler, event) == expected


def test_map_should_complete_example(runner: Make) -> None:
    out = run(runner, map_should_complete_handler)
    assert out["completion_reason"] == "MIN_SUCCESSFUL_REACHED"
    # Two run at once, so which three succeed first is up to the threads (item 4 may end
    # before item 3), and the one running beside the third success may end before the
    # decision: three or four results, each an item's, in item order.
    results = out["results"]
    assert out["success_count"] in (3, 4) and len(results) == out["success_count"]
    assert set(results) <= {10 * i for i in range(1, 11)} and results == sorted(results)


@pytest.mark.parametrize(
    "handler", [callback_handler, wait_for_callback_handler], ids=lambda h: h.__name__
)
def test_example_callback_handlers(
    runner: Make, store: Store, clock: Clock, handler: Callable[..., Any]
) -> None:
    r = runner(handler)
    r.start({})
    assert r.replay() is ExecutionStatus.RUNNING
    callback = next(o for o in r.ops().values() if o.type is OperationType.CALLBACK)
    store.complete_callback(
        callback.callback_id or "", "succeed", result='{"approved": true}', error=None, now=clock()
    )
    assert r.replay() is ExecutionStatus.SUCCEEDED
    expected = {"approved": True} if handler is callback_handler else '{"approved": true}'
    assert r.result() == expected
