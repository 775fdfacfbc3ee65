"""map, parallel and child contexts over a real store: threads, max_concurrency, completion
rules, suspension and resumption of items (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from sqltide.store import ExecutionStatus, OperationStatus, OperationType
from sqltide.workflows import (
    BatchResult,
    ChildContextError,
    CompletionConfig,
    DurableContext,
    MapConfig,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    StepConfig,
    durable_parallel_branch,
    durable_with_child_context,
)
from sqltide.workflows.config import Duration
from sqltide.workflows.retries import RetryPresets

from .conftest import T0, Clock, Runner

Make = Callable[..., Runner]
S = OperationStatus
RUNNING, SUCCEEDED, FAILED = (
    ExecutionStatus.RUNNING,
    ExecutionStatus.SUCCEEDED,
    ExecutionStatus.FAILED,
)
NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


def summary(result: BatchResult[Any]) -> dict[str, Any]:
    return {
        "reason": result.completion_reason.value,
        "statuses": [(i.index, i.status.value) for i in result.all],
        "results": result.get_results(),
        "errors": [e.message for e in result.get_errors()],
    }


def test_map_runs_items_concurrently_and_replays_them_from_checkpoints(
    runner: Make, clock: Clock
) -> None:
    barrier = threading.Barrier(3, timeout=10)  # the three items must run at once
    runs: list[int] = []
    lock = threading.Lock()

    def square(ctx: DurableContext, item: int, index: int, items: list[int]) -> int:
        def compute(_: Any) -> int:
            with lock:
                runs.append(item)
            barrier.wait()
            return item * item

        return ctx.step(compute, name=f"square-{index}")

    def flow(event: Any, ctx: DurableContext) -> Any:
        result = ctx.map([2, 3, 4], square, name="squares")
        ctx.wait(Duration(5))
        return summary(result)

    r = runner(flow)
    r.start()
    assert r.replay() is RUNNING
    ops = r.ops()
    assert ops["1"].sub_type == "Map" and ops["1"].status is S.SUCCEEDED
    assert [ops[f"1-{i}"].name for i in (1, 2, 3)] == ["map-item-0", "map-item-1", "map-item-2"]
    assert all(ops[f"1-{i}-1"].parent_id == f"1-{i}" for i in (1, 2, 3))
    r.to_next()
    assert r.replay() is SUCCEEDED
    assert sorted(runs) == [2, 3, 4]  # not run again on the second replay
    assert r.result() == {
        "reason": "ALL_COMPLETED",
        "statuses": [(0, "SUCCEEDED"), (1, "SUCCEEDED"), (2, "SUCCEEDED")],
        "results": [4, 9, 16],
        "errors": [],
    }


def failing_map(config: MapConfig[int] | None) -> Callable[[Any, DurableContext], Any]:
    def item_fn(ctx: DurableContext, item: int, index: int, items: list[int]) -> int:
        def work(_: Any) -> int:
            if item < 0:
                raise ValueError(f"bad item {item}")
            return item

        return ctx.step(work, name="work", config=NO_RETRY)

    def flow(event: Any, ctx: DurableContext) -> Any:
        return summary(ctx.map(event, item_fn, name="items", config=config))

    return flow


@pytest.mark.parametrize(
    ("config", "reason", "statuses"),
    [
        # fail fast (the default): one at a time, it stops after the first failure
        (
            MapConfig(max_concurrency=1),
            "FAILURE_TOLERANCE_EXCEEDED",
            [(0, "SUCCEEDED"), (1, "FAILED")],
        ),
        (
            MapConfig(max_concurrency=1, completion_config=CompletionConfig.all_completed()),
            "ALL_COMPLETED",
            [(0, "SUCCEEDED"), (1, "FAILED"), (2, "SUCCEEDED"), (3, "FAILED")],
        ),
        (
            MapConfig(
                max_concurrency=1, completion_config=CompletionConfig(tolerated_failure_count=1)
            ),
            "FAILURE_TOLERANCE_EXCEEDED",
            [(0, "SUCCEEDED"), (1, "FAILED"), (2, "SUCCEEDED"), (3, "FAILED")],
        ),
        (
            MapConfig(max_concurrency=1, completion_config=CompletionConfig(min_successful=1)),
            "MIN_SUCCESSFUL_REACHED",
            [(0, "SUCCEEDED")],
        ),
    ],
)
def test_map_completion_rules(
    runner: Make, config: MapConfig[int], reason: str, statuses: list[tuple[int, str]]
) -> None:
    r = runner(failing_map(config))
    r.start([1, -2, 3, -4])
    assert r.replay() is SUCCEEDED  # the map succeeds; its result tells what failed
    result = r.result()
    assert result["reason"] == reason and result["statuses"] == statuses
    assert all(message.startswith("bad item") for message in result["errors"])
    started = {op.id for op in r.ops().values() if op.sub_type == "MapIteration"}
    assert started == {f"1-{i + 1}" for i, _ in statuses}  # items never started left no trace


def test_max_concurrency_bounds_items_in_flight(runner: Make) -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]
    pair = threading.Barrier(2, timeout=10)

    def item_fn(ctx: DurableContext, item: int, index: int, items: list[int]) -> int:
        def work(_: Any) -> int:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            pair.wait()  # two items in flight at once, always: the limit is reached
            with lock:
                running[0] -= 1
            return item

        return ctx.step(work, name="work")

    r = runner(
        lambda event, ctx: ctx.map(
            list(range(8)), item_fn, config=MapConfig(max_concurrency=2)
        ).get_results()
    )
    r.start()
    assert r.replay() is SUCCEEDED
    assert r.result() == list(range(8)) and peak[0] == 2


def test_suspended_items_keep_their_slots_and_resume(runner: Make, clock: Clock) -> None:
    runs: list[str] = []
    lock = threading.Lock()

    def item_fn(ctx: DurableContext, item: str, index: int, items: list[str]) -> str:
        def before(_: Any) -> None:
            with lock:
                runs.append(f"{item}:before")

        ctx.step(before, name="before")
        ctx.wait(Duration(10 * (index + 1)), name="nap")
        return ctx.step(lambda _: item.upper(), name="after")

    def flow(event: Any, ctx: DurableContext) -> Any:
        return ctx.map(["a", "b", "c"], item_fn, config=MapConfig(max_concurrency=2)).get_results()

    r = runner(flow)
    r.start()
    assert r.replay() is RUNNING  # a and b wait; c has no slot yet
    assert sorted(runs) == ["a:before", "b:before"]
    assert "1-3" not in r.ops()
    assert r.execution().next_run_at == T0 + 10  # the earliest item wait
    r.to_next()
    assert r.replay() is RUNNING  # a ended, c started and waits (30 s); b waits until T0 + 20
    assert sorted(runs) == ["a:before", "b:before", "c:before"]
    assert r.execution().next_run_at == T0 + 20
    assert r.run_to_end().status is SUCCEEDED
    assert r.result() == ["A", "B", "C"]
    assert len(runs) == 3


def test_parallel_defaults_to_all_successful_and_names_its_branches(runner: Make) -> None:
    @durable_parallel_branch(name="users")
    def users(ctx: DurableContext, n: int) -> list[int]:
        return ctx.step(lambda _: list(range(n)), name="load")

    def boom(ctx: DurableContext) -> None:
        ctx.step(lambda _: 1 / 0, name="divide", config=NO_RETRY)

    def flow(event: Any, ctx: DurableContext) -> Any:
        ok = ctx.parallel([users(2), ParallelBranch(lambda c: "plain", name=None)], name="load")
        bad = ctx.parallel([boom], name="fails", config=ParallelConfig(max_concurrency=1))
        try:
            bad.throw_if_error()
        except ChildContextError as error:
            return [ok.get_results(), error.error_type, summary(bad)["reason"]]

    r = runner(flow)
    r.start()
    assert r.replay() is SUCCEEDED
    assert r.result() == [[[0, 1], "plain"], "ZeroDivisionError", "FAILURE_TOLERANCE_EXCEEDED"]
    names = {op.id: op.name for op in r.ops().values()}
    assert names["1"] == "load" and names["1-1"] == "users" and names["1-2"] == "parallel-branch-1"
    assert r.ops()["1-1"].sub_type == "ParallelBranch"


def test_first_successful_completes_early_and_orphans_the_rest(runner: Make, clock: Clock) -> None:
    def fast(ctx: DurableContext) -> str:
        return ctx.step(lambda _: "fast", name="answer")

    def slow(ctx: DurableContext) -> str:
        ctx.wait(Duration(60), name="slowly")
        return ctx.step(lambda _: "slow", name="answer")

    def flow(event: Any, ctx: DurableContext) -> Any:
        result = ctx.parallel(
            [slow, fast],
            config=ParallelConfig(completion_config=CompletionConfig.first_successful()),
        )
        return summary(result)

    r = runner(flow)
    r.start()
    rec = r.run_to_end()
    assert rec.status is SUCCEEDED
    result = r.result()
    assert result["reason"] == "MIN_SUCCESSFUL_REACHED" and result["results"] == ["fast"]
    assert (1, "SUCCEEDED") in result["statuses"]


def test_should_complete_can_fail_the_batch(runner: Make) -> None:
    def flow(event: Any, ctx: DurableContext) -> Any:
        config = MapConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(should_complete=lambda s: s.success_count >= 2),
        )
        result = ctx.map(list(range(5)), lambda c, item, i, items: item, config=config)
        return summary(result)

    r = runner(flow)
    r.start()
    assert r.replay() is SUCCEEDED
    assert r.result()["results"] == [0, 1]
    assert r.result()["reason"] == "MIN_SUCCESSFUL_REACHED"


def test_flat_nesting_records_no_item_contexts(runner: Make) -> None:
    def flow(event: Any, ctx: DurableContext) -> Any:
        config = MapConfig(nesting_type=NestingType.FLAT)
        return ctx.map(
            [1, 2], lambda c, item, i, items: c.step(lambda _: item, name="v"), config=config
        ).get_results()

    r = runner(flow)
    r.start()
    assert r.replay() is SUCCEEDED and r.result() == [1, 2]
    ops = r.ops()
    assert sorted(ops) == ["1", "1-1-1", "1-2-1"]
    assert ops["1-1-1"].parent_id == "1"  # reported to the map, ids kept under the item


def test_child_contexts_group_operations_and_replay_them(runner: Make, clock: Clock) -> None:
    runs: list[str] = []

    @durable_with_child_context
    def group(ctx: DurableContext, label: str) -> list[str]:
        out = []
        for i in range(2):

            def step_fn(_: Any, i: int = i) -> str:
                runs.append(f"{label}{i}")
                return f"{label}{i}"

            out.append(ctx.step(step_fn, name=f"{label}-{i}"))
        return out

    def failing(ctx: DurableContext) -> None:
        ctx.step(lambda _: {}["missing"], name="lookup", config=NO_RETRY)

    def flow(event: Any, ctx: DurableContext) -> Any:
        a = ctx.run_in_child_context(group("a"))
        ctx.wait(Duration(1))
        b = ctx.run_in_child_context(group("b"), name="second")
        try:
            ctx.run_in_child_context(failing, name="broken")
        except ChildContextError as error:
            return [a, b, error.error_type, error.message]

    r = runner(flow)
    r.start()
    assert r.run_to_end().status is SUCCEEDED
    assert r.result() == [["a0", "a1"], ["b0", "b1"], "KeyError", "'missing'"]
    assert runs == ["a0", "a1", "b0", "b1"]
    ops = r.ops()
    assert (ops["1"].type, ops["1"].sub_type, ops["1"].name) == (
        OperationType.CONTEXT,
        "RunInChildContext",
        "group",
    )
    assert ops["1-2"].parent_id == "1" and ops["3"].name == "second"
    assert ops["4"].status is S.FAILED and ops["4"].error["type"] == "KeyError"
