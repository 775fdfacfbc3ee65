"""Workflow executions in a real runtime: the service starts them, the work loop's workflow job
kind replays them on its pool, on SQLite and on PostgreSQL.

The workflows are a module written to the test's folder and loaded from settings, as
``sqltide serve --workflows`` does. Waits are the AWS minimum, 1 second, and few.
"""

from __future__ import annotations

import asyncio
import math
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import make_settings
from helpers import wait_for
from sqltide import errors
from sqltide.runtime import Runtime
from sqltide.store import ExecutionFilter, ExecutionRecord, ExecutionStatus, OperationType

X = ExecutionStatus

FLOWS = """
import threading

from sqltide.workflows import CallbackConfig, DurableContext, durable_execution, durable_step
from sqltide.workflows.config import Duration

#: Set by the test: lets the step of ``held`` end.
GATE = threading.Event()
#: What ran, in order (the test reads it: same process).
RUNS = []


@durable_step
def total_of(step_context, numbers):
    RUNS.append("sum")
    return sum(numbers)


@durable_execution
def pipeline(event, context: DurableContext):
    total = context.step(total_of(event["numbers"]))
    context.wait(Duration.from_seconds(1), name="pause")
    doubled = context.step(lambda _: total * 2, name="double")
    return {"total": total, "doubled": doubled}


@durable_execution
def approval(event, context: DurableContext):
    callback = context.create_callback(
        name="approve", config=CallbackConfig(timeout=Duration.from_minutes(5))
    )
    return {"answer": callback.result()}


@durable_execution
def two_approvals(event, context: DurableContext):
    first = context.create_callback(name="first")
    second = context.create_callback(name="second")
    return [first.result(), second.result()]


@durable_execution
def sleeper(event, context: DurableContext):
    context.wait(Duration.from_seconds(event.get("seconds", 60)), name="nap")
    RUNS.append("after-nap")
    return "woke"


@durable_execution
def parent(event, context: DurableContext):
    return {"child": context.invoke("pipeline", {"numbers": event["numbers"]}, name="child")}


@durable_execution
def broken(event, context: DurableContext):
    context.step(lambda _: 1, name="fine")
    raise ValueError("the data is not good")


@durable_execution
def held(event, context: DurableContext):
    def slow(step_context):
        RUNS.append("held-start")
        GATE.wait(30)
        RUNS.append("held-end")
        return 1

    context.step(slow, name="slow")
    context.step(lambda _: RUNS.append("after-held"), name="after")
    return "done"
"""


@pytest.fixture
def rt(tmp_path: Path, store_url: str) -> Iterator[Runtime]:
    module = tmp_path / "flows.py"
    module.write_text(textwrap.dedent(FLOWS))
    runtime = Runtime.build(make_settings(tmp_path, store=store_url, workflows=[str(module)]))
    runtime.start()
    yield runtime
    _module(runtime)["GATE"].set()  # a held step never outlives its test
    runtime.stop()


def _module(rt: Runtime) -> dict[str, Any]:
    wf = rt.workflows.registry.get("pipeline")
    assert wf is not None
    return wf.fn.__globals__  # type: ignore[no-any-return]


def ended(rt: Runtime, execution_id: str, principal: str = "alice", timeout: float = 10.0) -> Any:
    """The execution once it has ended (waited for with the service's own long-poll)."""
    deadline = time.monotonic() + timeout

    async def poll() -> ExecutionRecord:
        while True:
            rec = await rt.workflows.describe_wait(principal, execution_id, 5.0)
            if rec.status.is_terminal or time.monotonic() > deadline:
                return rec

    rec = asyncio.run(poll())
    assert rec.status.is_terminal, f"{execution_id} still {rec.status} after {timeout} s"
    return rec


def operation_named(rt: Runtime, execution_id: str, name: str) -> Callable[[], Any]:
    def find() -> Any:
        ops = rt.store.get_operations(execution_id)
        return next((op for op in ops if op.name == name), None)

    return find


# -- running -----------------------------------------------------------------------------------
def test_an_execution_runs_its_steps_and_its_wait_to_its_result(rt: Runtime) -> None:
    started = time.time()
    rec, created = rt.workflows.start("alice", "pipeline", {"numbers": [1, 2, 3]}, name="n-1")
    assert created and rec.name == "n-1" and rec.status is X.RUNNING
    assert rec.timeout_at == pytest.approx(rec.created_at + 86_400)
    # names belong to their principal: bob's n-1 is another execution
    bobs, created = rt.workflows.start("bob", "pipeline", {"numbers": [4]}, name="n-1")
    assert created and bobs.id != rec.id and bobs.name == "n-1"

    done = ended(rt, rec.id)
    assert done.status is X.SUCCEEDED, done.error
    assert done.result == '{"total":6,"doubled":12}'
    assert done.name == "n-1"
    hist = rt.workflows.history("alice", rec.id)
    ops = {op.name: op for op in hist.operations}
    assert [op.type for op in hist.operations] == [
        OperationType.STEP,
        OperationType.WAIT,
        OperationType.STEP,
    ]
    wait = ops["pause"]
    assert wait.wake_at is not None and wait.wake_at - started >= 1.0
    # resumed on time: the next replay came within half a second of the wake time
    assert done.ended_at is not None and 0 <= done.ended_at - wait.wake_at < 1.0
    assert [e.event for e in hist.events] == [
        "execution_started",
        "resumed",
        "succeeded",
        "wait_started",
        "suspended",
        "resumed",
        "wait_succeeded",
        "succeeded",
        "execution_succeeded",
    ]
    # the replays after the waits did not run the steps again
    assert _module(rt)["RUNS"] == ["sum", "sum"]
    assert hist.next_after is None
    page = rt.workflows.history("alice", rec.id, after_seq=2, max_events=3)
    assert [e.seq for e in page.events] == [3, 4, 5] and page.next_after == 5

    # the same name gives back the same execution; a different input under it is refused
    again, created = rt.workflows.start("alice", "pipeline", {"numbers": [1, 2, 3]}, name="n-1")
    assert (again.id, created, again.status) == (rec.id, False, X.SUCCEEDED)
    with pytest.raises(errors.ExecutionConflict) as conflict:
        rt.workflows.start("alice", "pipeline", {"numbers": [4]}, name="n-1")
    assert conflict.value.details["execution_id"] == rec.id
    # and alice's is not his
    for call in (rt.workflows.describe, rt.workflows.history, rt.workflows.stop):
        with pytest.raises(errors.ExecutionNotFound):
            call("bob", rec.id)
    assert rt.workflows.describe("root", rec.id, is_admin=True).id == rec.id
    assert ended(rt, bobs.id, "bob").result == '{"total":4,"doubled":8}'


def test_lists_are_the_principals_newest_first_in_signed_pages(rt: Runtime) -> None:
    ids = [rt.workflows.start("alice", "approval", None, name=f"a-{n}")[0].id for n in range(5)]
    rt.workflows.start("bob", "approval", None)
    seen: list[str] = []
    token = None
    while True:
        page, token = rt.workflows.list("alice", max_results=2, next_token=token)
        assert len(page) <= 2
        seen += [r.id for r in page]
        if token is None:
            break
        with pytest.raises(errors.InvalidNextToken):  # bound to its principal
            rt.workflows.list("bob", max_results=2, next_token=token)
    assert seen == ids[::-1]
    running, _ = rt.workflows.list(
        "alice", ExecutionFilter(workflow="approval", status=X.RUNNING), max_results=100
    )
    assert {r.id for r in running} == set(ids)
    none, _ = rt.workflows.list("alice", ExecutionFilter(status=X.SUCCEEDED))
    assert none == []
    # an input is the same whatever its key order or spacing
    first, _ = rt.workflows.start("alice", "approval", {"a": 1, "b": [2]}, name="k")
    same, created = rt.workflows.start("alice", "approval", {"b": [2], "a": 1}, name="k")
    assert (same.id, created) == (first.id, False)
    with pytest.raises(errors.ExecutionConflict):  # 1 is not 1.0, nor true
        rt.workflows.start("alice", "approval", {"a": True, "b": [2]}, name="k")


def test_a_child_hands_its_result_to_its_parent_and_a_raising_workflow_fails(
    rt: Runtime,
) -> None:
    rec, _ = rt.workflows.start("alice", "parent", {"numbers": [5, 5]})
    failing, _ = rt.workflows.start("alice", "broken", {})
    done = ended(rt, rec.id)
    assert done.status is X.SUCCEEDED, done.error
    assert done.result == '{"child":{"total":10,"doubled":20}}'
    children = [r for r in rt.workflows.list("alice", ExecutionFilter(workflow="pipeline"))[0]]
    assert len(children) == 1
    child = children[0]
    assert (child.parent_id, child.status, child.principal) == (rec.id, X.SUCCEEDED, "alice")
    invoke = rt.store.get_operations(rec.id)[0]
    assert (invoke.type, invoke.child_execution_id) == (OperationType.CHAINED_INVOKE, child.id)

    done = ended(rt, failing.id)
    assert done.status is X.FAILED
    assert (done.error["type"], done.error["message"]) == ("ValueError", "the data is not good")
    assert done.result is None


# -- callbacks ---------------------------------------------------------------------------------
def test_a_callback_completed_through_the_service_resumes_the_execution(rt: Runtime) -> None:
    rec, _ = rt.workflows.start("alice", "approval", {"order": 7})
    op = wait_for("the callback", operation_named(rt, rec.id, "approve"), 10)
    callback_id = op.callback_id
    wait_for("the suspension", lambda: rt.store.get_execution(rec.id).lease_owner is None, 10)

    with pytest.raises(errors.CallbackNotFound):  # someone else's answers like an unknown one
        rt.workflows.complete_callback("bob", callback_id, "succeed", {"ok": True})
    with pytest.raises(errors.CallbackNotFound):
        rt.workflows.complete_callback("alice", "no-such-callback", "succeed", {"ok": True})
    with pytest.raises(errors.UnprocessableEntity):
        rt.workflows.complete_callback("alice", callback_id, "succeed", {"x": math.nan})
    with pytest.raises(errors.UnprocessableEntity):
        rt.workflows.complete_callback("alice", callback_id, "fail", error={"kind": "oops"})
    ex, hb = rt.workflows.complete_callback("alice", callback_id, "heartbeat")
    assert ex.status is X.RUNNING and hb.status.value == "STARTED"

    ex, done_op = rt.workflows.complete_callback("alice", callback_id, "succeed", {"ok": True})
    assert done_op.status.value == "SUCCEEDED" and done_op.result == '{"ok":true}'
    done = ended(rt, rec.id)
    assert done.status is X.SUCCEEDED, done.error
    # the callback's result is handed over as sent (pass-through), here JSON text
    assert done.result == '{"answer":"{\\"ok\\":true}"}'
    with pytest.raises(errors.CallbackConflict) as twice:
        rt.workflows.complete_callback("alice", callback_id, "succeed", "again")
    assert twice.value.details["state"] == "EXECUTION_SUCCEEDED"

    # an execution waiting on two callbacks: the first completed twice, the second failed by
    # an admin (who may complete anyone's)
    rec, _ = rt.workflows.start("alice", "two_approvals", None)
    first = wait_for("the callbacks", operation_named(rt, rec.id, "first"), 10)
    second = wait_for("the callbacks", operation_named(rt, rec.id, "second"), 10)
    rt.workflows.complete_callback("alice", first.callback_id, "succeed", "yes")
    with pytest.raises(errors.CallbackConflict) as twice:
        rt.workflows.complete_callback("alice", first.callback_id, "succeed", "yes again")
    assert twice.value.details["state"] == "SUCCEEDED"
    error = {"type": "Rejected", "message": "the manager said no"}
    _, failed = rt.workflows.complete_callback(
        "root", second.callback_id, "fail", error=error, is_admin=True
    )
    assert failed.error == {**error, "data": None, "stack": None}
    done = ended(rt, rec.id)
    assert done.status is X.FAILED
    assert done.error["type"] == "CallbackExternalError"
    assert "the manager said no" in done.error["message"]


# -- stopping, timing out ----------------------------------------------------------------------
def test_stop_during_a_wait_and_a_timeout_end_the_execution(rt: Runtime) -> None:
    stopped, _ = rt.workflows.start("alice", "sleeper", {"seconds": 60})
    timed, _ = rt.workflows.start("alice", "sleeper", {"seconds": 60}, timeout_seconds=1)
    wait_for("the wait", operation_named(rt, stopped.id, "nap"), 10)

    rec = rt.workflows.stop("alice", stopped.id)
    assert rec.status is X.STOPPED and rec.error is not None
    assert ended(rt, stopped.id).status is X.STOPPED
    with pytest.raises(errors.ExecutionConflict):
        rt.workflows.stop("alice", stopped.id)

    done = ended(rt, timed.id)
    assert done.status is X.TIMED_OUT
    assert done.error["type"] == "TimeoutError"
    assert done.ended_at is not None and done.timeout_at is not None
    assert 0 <= done.ended_at - done.timeout_at < 1.0  # on time, not at the next poll
    assert "after-nap" not in _module(rt)["RUNS"]


def test_a_step_running_when_its_execution_is_stopped_writes_nothing(rt: Runtime) -> None:
    rec, _ = rt.workflows.start("alice", "held", None)
    runs = _module(rt)["RUNS"]
    wait_for("the step to start", lambda: "held-start" in runs, 10)
    rt.workflows.stop("alice", rec.id)
    jobs = rt.executions
    assert jobs is not None
    # the heartbeat learns the execution is no longer held here and abandons the replay
    wait_for(
        "the replay to be abandoned",
        lambda: all(r.abandoned.is_set() for r in jobs._running.values()),
        5,
    )
    _module(rt)["GATE"].set()
    wait_for("the replay to end", lambda: jobs.busy == 0, 10)
    assert runs == ["held-start", "held-end"]  # nothing after it ran
    assert rt.store.get_operations(rec.id) == []  # and its result was not checkpointed
    assert rt.workflows.describe("alice", rec.id).status is X.STOPPED


# -- bad input ---------------------------------------------------------------------------------
BAD_STARTS: list[tuple[dict[str, Any], type[Exception]]] = [
    ({"workflow": "nope"}, errors.WorkflowNotFound),
    ({"input": {"x": math.inf}}, errors.UnprocessableEntity),
    ({"input": {"x": object()}}, errors.UnprocessableEntity),
    ({"input": {"x": 2**70}}, errors.UnprocessableEntity),
    ({"input": "x" * 300_000}, errors.PayloadTooLarge),
    ({"name": "bad name"}, errors.UnprocessableEntity),
    ({"name": ""}, errors.UnprocessableEntity),
    ({"timeout_seconds": 0}, errors.UnprocessableEntity),
    ({"timeout_seconds": 367 * 86_400}, errors.UnprocessableEntity),
]


def test_bad_starts_are_refused_before_anything_is_recorded(rt: Runtime) -> None:
    for kwargs, error in BAD_STARTS:
        call: dict[str, Any] = {"workflow": "pipeline", "input": {"numbers": [1]}, **kwargs}
        with pytest.raises(error):
            rt.workflows.start("alice", call.pop("workflow"), call.pop("input"), **call)
    assert rt.store.list_executions(ExecutionFilter(), 10) == []


# -- what suspended executions cost ------------------------------------------------------------
def test_suspended_executions_hold_no_thread_and_cost_no_polling(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [rt.workflows.start("alice", "sleeper", {"seconds": 300})[0].id for _ in range(50)]

    def all_suspended() -> bool:  # in their wait: due in 5 minutes, no lease
        recs = [rt.store.get_execution(i) for i in ids]
        later = time.time() + 60
        return all(
            r is not None and r.lease_owner is None and (r.next_run_at or 0) > later for r in recs
        )

    wait_for("every execution to suspend", all_suspended, 15)
    jobs = rt.executions
    assert jobs is not None
    wait_for("the pool to empty", lambda: jobs.busy == 0, 5)
    calls: list[str] = []
    lock = threading.Lock()
    for name in (
        "claim_executions",
        "next_execution_due",
        "recover_executions",
        "time_out_executions",
        "renew_execution_leases",
        "get_operations",
    ):
        real = getattr(rt.store, name)

        def counted(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            with lock:
                calls.append(_name)
            return _real(*a, **kw)

        monkeypatch.setattr(rt.store, name, counted)
    time.sleep(1.5)  # the idle window measured, not a wait for a condition
    # idle: nothing per execution (no replay reads operations), and under 2 store calls a
    # second in all (the claim and read after the last replay, one safety-net poll)
    assert "get_operations" not in calls and len(calls) <= 4, calls
    assert jobs.busy == 0
