"""The replay model over a real store: checkpoints, waits, retries, step semantics,
non-determinism, serializer failures, logging, lost leases (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import pytest

from sqltide.store import ExecutionStatus, OperationStatus, OperationType, Store
from sqltide.workflows import (
    DurableContext,
    NonDeterministicExecutionError,
    SerDesError,
    StepConfig,
    StepContext,
    StepError,
    StepSemantics,
    durable_step,
)
from sqltide.workflows.config import Duration, JitterStrategy
from sqltide.workflows.retries import RetryPresets, RetryStrategyConfig, create_retry_strategy

from .conftest import LEASE, T0, Clock, Runner

Make = Callable[..., Runner]
S = OperationStatus
RUNNING, SUCCEEDED, FAILED = (
    ExecutionStatus.RUNNING,
    ExecutionStatus.SUCCEEDED,
    ExecutionStatus.FAILED,
)


def no_jitter(max_attempts: int, initial: int = 2, rate: float = 2) -> Any:
    return create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=max_attempts,
            initial_delay=Duration(initial),
            backoff_rate=rate,
            jitter_strategy=JitterStrategy.NONE,
        )
    )


def test_steps_are_checkpointed_and_not_run_again(runner: Make, clock: Clock) -> None:
    calls: list[str] = []

    @durable_step
    def fetch(step_context: StepContext, key: str) -> dict[str, Any]:
        calls.append(key)
        return {"key": key, "attempt": step_context.attempt}

    def flow(event: dict[str, Any], ctx: DurableContext) -> Any:
        first = ctx.step(fetch(event["key"]))
        ctx.wait(Duration.from_seconds(10), name="pause")
        second = ctx.step(lambda _: calls.count(event["key"]), name="count")
        return [first, second]

    r = runner(flow)
    r.start({"key": "k"})
    assert r.replay() is RUNNING
    rec = r.execution()
    assert rec.next_run_at == T0 + 10 and rec.lease_owner is None
    ops = r.ops()
    assert [(o.id, o.type, o.name, o.status) for o in ops.values()] == [
        ("1", OperationType.STEP, "fetch", S.SUCCEEDED),
        ("2", OperationType.WAIT, "pause", S.STARTED),
    ]
    assert ops["1"].result == '{"key":"k","attempt":1}' and ops["1"].attempt == 1
    assert ops["2"].wake_at == T0 + 10
    clock.advance(10)
    assert r.replay() is SUCCEEDED
    assert calls == ["k"]  # the first step ran once, on the first replay only
    assert r.result() == [{"key": "k", "attempt": 1}, 1]
    assert r.ops()["2"].status is S.SUCCEEDED
    events = [h.event for h in r.history()]
    assert events[0] == "execution_started" and events[-1] == "execution_succeeded"
    assert "wait_started" in events and "suspended" in events


def test_a_replay_before_the_wait_is_due_suspends_again_until_it(
    store: Store, runner: Make, clock: Clock
) -> None:
    from sqltide.workflows.replay import Replay

    def flow(event: Any, ctx: DurableContext) -> str:
        ctx.wait(Duration.from_minutes(1))
        return "done"

    r = runner(flow)
    r.start()
    r.replay()
    assert r.execution().next_run_at == T0 + 60
    # a worker whose clock is behind: claimed at the due time, replayed at T0 + 30
    claimed = store.claim_executions([r.workflow], "w2", 1, LEASE, T0 + 60)[0]
    early = Clock(T0 + 30)
    assert (
        Replay(store, claimed, flow, owner="w2", clock=early, retention_seconds=1).run() is RUNNING
    )
    assert r.execution().next_run_at == T0 + 60
    clock.t = T0 + 60
    assert r.replay() is SUCCEEDED and r.result() == "done"


def test_waits_under_one_second_are_refused(runner: Make) -> None:
    r = runner(lambda event, ctx: ctx.wait(Duration(0)))
    r.start()
    assert r.replay() is FAILED
    error = r.execution().error
    assert error["type"] == "ValidationError" and "at least 1 second" in error["message"]
    assert r.ops() == {}  # refused before anything was recorded


def test_failed_attempts_are_retried_after_their_delays(runner: Make, clock: Clock) -> None:
    attempts: list[int] = []

    def flaky(step_context: StepContext) -> str:
        attempts.append(step_context.attempt)
        if step_context.attempt < 3:
            raise ConnectionError(f"refused {step_context.attempt}")
        return "connected"

    def flow(event: Any, ctx: DurableContext) -> str:
        return ctx.step(flaky, name="connect", config=StepConfig(retry_strategy=no_jitter(5)))

    r = runner(flow)
    r.start()
    assert r.replay() is RUNNING
    op = r.op("connect")
    assert (op.status, op.attempt, op.next_attempt_at) == (S.PENDING, 1, T0 + 2)
    assert op.error["type"] == "ConnectionError" and op.error["message"] == "refused 1"
    assert r.execution().next_run_at == T0 + 2
    r.to_next()
    assert r.replay() is RUNNING
    assert r.op("connect").next_attempt_at == clock() + 4  # backoff 2 s, 4 s
    r.to_next()
    assert r.replay() is SUCCEEDED
    assert attempts == [1, 2, 3] and r.result() == "connected"
    op = r.op("connect")
    assert (op.status, op.attempt, op.error) == (S.SUCCEEDED, 3, None)
    retries = [h for h in r.history() if h.event == "retry_scheduled"]
    assert [h.details["delay_seconds"] for h in retries] == [2, 4]


def test_a_step_that_gives_up_raises_step_error_the_same_on_every_replay(runner: Make) -> None:
    runs: list[int] = []

    def flow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        def charge(_: StepContext) -> None:
            runs.append(1)
            raise ValueError("payment declined")

        outcome: dict[str, Any] = {}
        try:
            ctx.step(charge, name="charge-card", config=StepConfig(RetryPresets.none()))
        except StepError as error:
            outcome = {
                "caught": type(error).__name__,
                "error_type": error.error_type,
                "message": error.message,
                "cause": type(error.__cause__).__name__,
            }
        ctx.wait(Duration(1), name="cooldown")
        return outcome

    r = runner(flow)
    r.start()
    rec = r.run_to_end()
    assert rec.status is SUCCEEDED and len(runs) == 1
    assert r.result() == {
        "caught": "StepError",
        "error_type": "ValueError",
        "message": "payment declined",
        "cause": "DurableOperationError",
    }
    op = r.op("charge-card")
    assert op.status is S.FAILED and op.error["type"] == "ValueError"
    assert any("payment declined" in line for line in op.error["stack"])


def test_an_uncaught_step_error_fails_the_execution(runner: Make) -> None:
    def flow(event: Any, ctx: DurableContext) -> None:
        cfg = StepConfig(
            retry_strategy=create_retry_strategy(
                RetryStrategyConfig(
                    retryable_errors=["timeout"], jitter_strategy=JitterStrategy.NONE
                )
            )
        )
        ctx.step(lambda _: int("x"), name="parse", config=cfg)

    r = runner(flow)
    r.start()
    assert r.replay() is FAILED  # not a retryable error: no retry at all
    rec = r.execution()
    assert rec.error["type"] == "StepError" and "invalid literal" in rec.error["message"]
    assert rec.ended_at is not None and rec.expires_at == rec.ended_at + 3600
    assert r.op("parse").attempt == 1


class Crash(BaseException):
    """The process dies here (as under SIGKILL): nothing after it runs, the lease stays."""


def crash_then_recover(r: Runner, store: Store, clock: Clock) -> None:
    with pytest.raises(Crash):
        r.replay()
    assert r.execution().lease_owner == "w1"
    clock.advance(LEASE + 1)
    assert store.recover_executions(clock()) == 1


@pytest.mark.parametrize("retry", [False, True])
def test_an_at_most_once_step_found_started_counts_as_interrupted(
    store: Store, runner: Make, clock: Clock, retry: bool
) -> None:
    runs: list[int] = []

    def submit(step_context: StepContext) -> str:
        runs.append(step_context.attempt)
        if len(runs) == 1:
            raise Crash()
        return "statement-1"

    strategy = no_jitter(3) if retry else RetryPresets.none()

    def flow(event: Any, ctx: DurableContext) -> str:
        cfg = StepConfig(strategy, StepSemantics.AT_MOST_ONCE_PER_RETRY)
        return ctx.step(submit, name="submit", config=cfg)

    r = runner(flow)
    r.start()
    crash_then_recover(r, store, clock)
    op = r.op("submit")
    assert (op.status, op.attempt) == (S.STARTED, 1)  # committed before the code ran
    if not retry:
        assert r.replay() is FAILED
        assert runs == [1]  # never run again
        error = r.execution().error
        assert error["type"] == "StepError" and "never ended it" in error["message"]
        assert r.op("submit").error["type"] == "StepInterruptedError"
        return
    assert r.replay() is RUNNING  # the interrupted attempt failed: retry in 2 s
    op = r.op("submit")
    assert (op.status, op.attempt, op.error["type"]) == (S.PENDING, 1, "StepInterruptedError")
    r.to_next()
    assert r.replay() is SUCCEEDED
    assert runs == [1, 2] and r.result() == "statement-1"


def test_an_at_least_once_step_runs_again_after_a_crash(
    store: Store, runner: Make, clock: Clock
) -> None:
    runs: list[int] = []

    def submit(step_context: StepContext) -> str:
        runs.append(step_context.attempt)
        if len(runs) == 1:
            raise Crash()
        return "ok"

    r = runner(lambda event, ctx: ctx.step(submit, name="submit"))
    r.start()
    crash_then_recover(r, store, clock)
    assert r.ops() == {}  # nothing was recorded before the step ran
    assert r.replay() is SUCCEEDED
    assert runs == [1, 1] and r.result() == "ok"  # the same attempt, run again


@pytest.mark.parametrize(
    ("second", "words"),
    [
        (lambda ctx: ctx.step(lambda _: 1, name="load-orders"), ["'load-orders'", "'load-users'"]),
        (lambda ctx: ctx.wait(Duration(5), name="load-users"), ["WAIT", "STEP"]),
    ],
)
def test_a_different_operation_at_a_checkpointed_id_fails_the_execution(
    runner: Make, second: Callable[[DurableContext], Any], words: list[str]
) -> None:
    version = {"n": 1}

    def flow(event: Any, ctx: DurableContext) -> str:
        if version["n"] == 1:
            ctx.step(lambda _: 1, name="load-users")
        else:
            with contextlib.suppress(Exception):  # the code cannot swallow it
                second(ctx)
        ctx.wait(Duration(5))
        return "done"

    r = runner(flow)
    r.start()
    assert r.replay() is RUNNING
    version["n"] = 2  # the code changed while the execution waited
    r.to_next()
    assert r.replay() is FAILED
    error = r.execution().error
    assert error["type"] == "NonDeterministicExecutionError"
    assert "operation 1" in error["message"]
    for word in words:
        assert word in error["message"]
    assert issubclass(NonDeterministicExecutionError, Exception)


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_a_step_result_that_cannot_be_serialized_fails_the_step_cleanly(runner: Make) -> None:
    runs: list[int] = []

    def make(step_context: StepContext) -> dict[str, Any]:
        runs.append(1)
        return {"handle": Opaque()}

    r = runner(lambda event, ctx: ctx.step(make, name="open-handle"))
    r.start()
    assert r.replay() is FAILED
    assert runs == [1]  # not retried: a retry would serialize no better
    op = r.op("open-handle")
    assert op.status is S.FAILED and op.result is None  # nothing half-written
    assert op.error["type"] == "sqltide.errors.SerDesError"
    rec = r.execution()
    assert rec.error["type"] == "SerDesError" and rec.result is None
    for part in ("'open-handle'", "operation 1", "test_replay.Opaque", "$.handle"):
        assert part in rec.error["message"]
    assert SerDesError.__name__ == "SerDesError"


def test_the_logger_is_quiet_while_replaying(
    runner: Make, caplog: pytest.LogCaptureFixture
) -> None:
    def flow(event: Any, ctx: DurableContext) -> str:
        ctx.logger.info("starting")

        def load(step_context: StepContext) -> int:
            step_context.logger.info("loading, attempt %d", step_context.attempt)
            return 1

        ctx.step(load, name="load")
        ctx.logger.info("loaded")
        ctx.wait(Duration(5))
        ctx.logger.info("after the wait")
        return "done"

    r = runner(flow)
    r.start()
    with caplog.at_level(logging.INFO, logger="sqltide.workflows.user"):
        r.replay()
        first = [rec.getMessage() for rec in caplog.records if rec.name == "sqltide.workflows.user"]
        caplog.clear()
        r.to_next()
        r.replay()
        second = [
            rec.getMessage() for rec in caplog.records if rec.name == "sqltide.workflows.user"
        ]
    assert first == ["starting", "loading, attempt 1", "loaded"]
    assert second == ["after the wait"]
    marked = next(rec for rec in caplog.records if rec.getMessage() == "after the wait")
    assert marked.execution_id == r.id and marked.workflow == "flow"  # type: ignore[attr-defined]


def test_a_custom_logger_set_on_the_context(runner: Make) -> None:
    lines: list[str] = []

    class Sink:
        def info(self, msg: object, *args: object, **kwargs: Any) -> None:
            lines.append(str(msg) % args)

    def flow(event: Any, ctx: DurableContext) -> None:
        ctx.set_logger(Sink())  # type: ignore[arg-type]
        ctx.logger.info("n=%d", 1)
        ctx.wait(Duration(1))
        ctx.logger.info("n=%d", 2)

    r = runner(flow)
    r.start()
    r.run_to_end()
    assert lines == ["n=1", "n=2"]


def test_suspension_is_not_swallowed_by_except_exception(runner: Make) -> None:
    def flow(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.wait(Duration(3))
        except Exception:
            return "swallowed"
        return "waited"

    r = runner(flow)
    r.start()
    assert r.replay() is RUNNING
    r.to_next()
    assert r.replay() is SUCCEEDED and r.result() == "waited"


def test_an_unhandled_error_fails_the_execution_with_its_error(runner: Make) -> None:
    def flow(event: Any, ctx: DurableContext) -> None:
        ctx.step(lambda _: 1, name="one")
        raise KeyError(event["missing"])

    r = runner(flow)
    r.start({"x": 1})
    assert r.replay() is FAILED
    error = r.execution().error
    assert error["type"] == "KeyError" and error["message"] == "'missing'"
    assert any("flow" in line for line in error["stack"])
    assert r.op("one").status is S.SUCCEEDED


def test_an_unserializable_workflow_result_fails_the_execution(runner: Make) -> None:
    r = runner(lambda event, ctx: {"handle": Opaque()})
    r.start()
    assert r.replay() is FAILED
    error = r.execution().error
    assert error["type"] == "SerDesError" and "the workflow's result" in error["message"]


def test_a_stopped_execution_abandons_the_replay_at_its_next_checkpoint(
    store: Store, runner: Make
) -> None:
    after: list[str] = []

    def flow(event: Any, ctx: DurableContext) -> None:
        def stop_meanwhile(_: StepContext) -> int:
            store.stop_execution(ctx.execution_context.durable_execution_arn, None, T0)
            return 1

        ctx.step(stop_meanwhile, name="first")
        after.append("ran on")

    r = runner(flow)
    r.start()
    assert r.replay() is None
    assert after == [] and r.ops() == {}
    assert r.execution().status is ExecutionStatus.STOPPED


def test_a_replay_that_lost_its_lease_writes_nothing(
    store: Store, runner: Make, clock: Clock
) -> None:
    def flow(event: Any, ctx: DurableContext) -> None:
        def slow(_: StepContext) -> int:
            # meanwhile the lease expired and another worker took the execution
            clock.advance(LEASE + 1)
            store.recover_executions(clock())
            assert store.claim_executions(["flow"], "w2", 1, LEASE, clock())
            return 1

        ctx.step(slow, name="slow")

    r = runner(flow)
    r.start()
    assert r.replay() is None
    assert r.ops() == {} and r.execution().lease_owner == "w2"


def test_a_store_failure_at_a_checkpoint_abandons_the_replay_without_failing_it(
    store: Store, runner: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("the database went away")

    def flow(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.step(lambda _: 1, name="one")
        except Exception:  # the workflow cannot see it either
            return "swallowed"
        return "done"

    r = runner(flow)
    r.start()
    monkeypatch.setattr(store, "checkpoint", broken)
    assert r.replay() is None
    monkeypatch.undo()
    assert r.execution().status is RUNNING  # its lease expires; a later replay goes on


def test_replays_of_different_executions_run_at_once_on_threads(
    store: Store, runner: Make, clock: Clock
) -> None:
    import threading

    from sqltide.workflows.replay import Replay

    barrier = threading.Barrier(4, timeout=10)

    def flow(event: Any, ctx: DurableContext) -> int:
        first = ctx.step(lambda _: event["n"], name="first")
        barrier.wait()  # all four replays are inside their functions at once
        return first + ctx.step(lambda _: 100, name="second")

    ids = [runner(flow).start({"n": n}) for n in range(4)]
    claimed = store.claim_executions(["flow"], "w1", 10, LEASE, clock())
    assert sorted(c.id for c in claimed) == sorted(ids)
    statuses: list[Any] = []

    def run(rec: Any) -> None:
        statuses.append(
            Replay(store, rec, flow, owner="w1", clock=clock, retention_seconds=60).run()
        )

    threads = [threading.Thread(target=run, args=(rec,)) for rec in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert statuses == [SUCCEEDED] * 4
    results = sorted(store.get_execution(i).result for i in ids)  # type: ignore[union-attr]
    assert results == ["100", "101", "102", "103"]


def test_with_retry_runs_a_block_again_after_a_durable_wait(runner: Make) -> None:
    from sqltide.workflows import WithRetryConfig, with_retry

    tries: list[int] = []

    def block(ctx: DurableContext, attempt: int) -> str:
        value = ctx.step(lambda _: attempt, name=f"try-{attempt}")
        tries.append(value)
        if attempt < 2:
            raise RuntimeError("not yet")
        return f"ok after {attempt}"

    def flow(event: Any, ctx: DurableContext) -> str:
        config = WithRetryConfig(retry_strategy=no_jitter(3, initial=5))
        return with_retry(ctx, block, config, name="block")

    r = runner(flow)
    r.start()
    assert r.run_to_end().status is SUCCEEDED
    assert r.result() == "ok after 2"
    assert r.op("block-backoff-1").wake_at == T0 + 5


def test_abandon_stops_a_running_replay_at_its_next_operation(
    store: Store, runner: Make, clock: Clock
) -> None:
    from sqltide.workflows.replay import Replay

    replay: list[Replay] = []

    def flow(event: Any, ctx: DurableContext) -> str:
        ctx.step(lambda _: replay[0].abandon(), name="told-to-stop")  # e.g. by the heartbeat
        ctx.step(lambda _: "never", name="after")
        return "never"

    r = runner(flow)
    r.start()
    claimed = store.claim_executions(["flow"], "w1", 1, LEASE, clock())[0]
    replay.append(Replay(store, claimed, flow, owner="w1", clock=clock, retention_seconds=1))
    assert replay[0].run() is None
    assert r.ops() == {}  # not even the step that was running when it was told
    assert r.execution().status is RUNNING and r.execution().lease_owner == "w1"


def test_a_context_used_after_its_batch_completed_fails_the_execution(runner: Make) -> None:
    from sqltide.workflows import CompletionConfig, MapConfig

    leaked: list[DurableContext] = []

    def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        leaked.append(ctx)
        return value

    def flow(event: Any, ctx: DurableContext) -> None:
        config = MapConfig(completion_config=CompletionConfig(min_successful=1), max_concurrency=1)
        ctx.map([1, 2], item, config=config)
        leaked[0].step(lambda _: 1, name="late")

    r = runner(flow)
    r.start()
    assert r.replay() is FAILED
    assert "after its batch had completed" in r.execution().error["message"]
