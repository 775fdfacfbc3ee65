"""The history timeline of ``sqltide workflows history``, drawn from hand-made histories: the
order and nesting of operations, and what each kind of pending operation says it waits for."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from sqltide.cli_timeline import Timeline, in_order, label, span
from sqltide.client.models import Execution, ExecutionHistory, HistoryEvent, Operation

T0 = datetime(2026, 11, 23, 18, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def execution(**over: Any) -> Execution:
    fields: dict[str, Any] = {
        "id": "ex-1",
        "workflow": "refresh",
        "name": "nightly",
        "status": "RUNNING",
        "created_at": T0,
        "updated_at": T0,
        "replays": 4,
    }
    fields.update(over)
    return Execution(**fields)


def op(id: str, seq: int, sub_type: str, status: str = "SUCCEEDED", **over: Any) -> Operation:
    kinds = {
        "Step": "STEP",
        "Wait": "WAIT",
        "Callback": "CALLBACK",
        "ChainedInvoke": "CHAINED_INVOKE",
    }
    parent = id.rsplit("-", 1)[0] if "-" in id else None
    fields: dict[str, Any] = {
        "id": id,
        "seq": seq,
        "type": kinds.get(sub_type, "CONTEXT"),
        "sub_type": sub_type,
        "status": status,
        "parent_id": parent,
        "started_at": at(seq),
        "ended_at": at(seq + 0.5) if status == "SUCCEEDED" else None,
    }
    fields.update(over)
    return Operation(**fields)


def draw(history: ExecutionHistory, now: datetime, width: int = 80, **kw: Any) -> str:
    console = Console(width=width, file=io.StringIO())  # not a terminal: no colours
    console.print(Timeline(history, now, **kw).render())
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


# concurrent branches: created interleaved, drawn each under its own parent
BRANCHES = (
    op("1", 1, "Parallel", "STARTED", name="fan", ended_at=None),
    op("1-1", 2, "ParallelBranch", name="parallel-branch-0"),
    op("1-2", 3, "ParallelBranch", "STARTED", name="parallel-branch-1"),
    op("1-1-1", 4, "Step", name="left", attempt=1, result={"rows": 3}),
    op(
        "1-2-1",
        5,
        "Step",
        "PENDING",
        name="right",
        attempt=2,
        error={"type": "Timeout", "message": "the warehouse is busy"},
        next_attempt_at=at(70),
    ),
)


def test_operations_are_drawn_depth_first_in_creation_order() -> None:
    order = [(depth, o.id) for depth, o in in_order(BRANCHES)]
    assert order == [(0, "1"), (1, "1-1"), (2, "1-1-1"), (1, "1-2"), (2, "1-2-1")]
    # an operation whose context is not in the list is drawn at the top
    orphan = (op("9-1", 9, "Step", name="lost"),)
    assert [(d, o.id) for d, o in in_order(orphan)] == [(0, "9-1")]


def test_labels_and_spans_read_as_words() -> None:
    assert label(op("1", 1, "Step", name="submit")) == "step submit"
    assert label(op("1", 1, "RunInChildContext", name="load")) == "child context load"
    assert label(op("1-1", 1, "MapIteration", name="map-item-0")) == "map-item-0"
    assert label(op("1", 1, "Wait")) == "wait"
    assert [span(s) for s in (0.004, 1, 12.5, 125, 3725, 90_000)] == [
        "0.004s",
        "1s",
        "12.5s",
        "2m05s",
        "1h02m",
        "1d01h",
    ]


def test_a_pending_retry_says_when_and_after_what() -> None:
    events = (
        HistoryEvent(
            7,
            at(6),
            "retry_scheduled",
            "1-2-1",
            1,
            {"attempt": 1, "delay_seconds": 5, "error_type": "Timeout"},
        ),
        HistoryEvent(
            9,
            at(11),
            "retry_scheduled",
            "1-2-1",
            2,
            {"attempt": 2, "delay_seconds": 59, "error_type": "Timeout"},
        ),
    )
    history = ExecutionHistory(execution(next_run_at=at(70)), BRANCHES, events)
    out = draw(history, now=at(40), results=True)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    flat = " ".join(out.split())
    assert "execution ex-1 RUNNING" in flat and "running for 40s · 4 replays" in flat
    # nesting: each branch two columns right of the parallel, its step two more
    col = {
        name: next(line for line in lines if name in line).index(name)
        for name in ("parallel fan", "parallel-branch-0", "step left", "step right")
    }
    assert col["parallel-branch-0"] == col["parallel fan"] + 2
    assert col["step left"] == col["step right"] == col["parallel fan"] + 4
    assert "attempt 1 failed (Timeout); retried after 5s" in flat
    assert (
        "retry (attempt 3) at +1m10s (in 30s) after attempt 2 failed: Timeout: the warehouse "
        "is busy"
    ) in flat
    assert "attempt 2 failed (Timeout)" not in flat  # said once, with the next attempt's time
    assert '→ {"rows":3}' in flat  # results=True
    assert flat.endswith("next replay at +1m10s (in 30s)")
    right = next(line for line in lines if "step right" in line)
    assert "PENDING" in right and " 2 " in right and "…" in right


def test_waits_callbacks_and_children_say_what_they_wait_for() -> None:
    ops = (
        op("1", 1, "Wait", "STARTED", name="poll", wake_at=at(600)),
        op(
            "2",
            2,
            "Callback",
            "STARTED",
            name="approve",
            callback_id="cb-42",
            callback_timeout_at=at(3600),
            heartbeat_timeout_at=at(120),
        ),
        op("3", 3, "ChainedInvoke", "STARTED", name="child", child_execution_id="ex-2"),
        op(
            "4",
            4,
            "WaitForCondition",
            "PENDING",
            name="ready",
            attempt=3,
            next_attempt_at=at(45),
            type="STEP",
        ),
        op(
            "5",
            5,
            "Step",
            "FAILED",
            name="load",
            attempt=3,
            error={"type": "StepError", "message": "no such table"},
            ended_at=at(5.2),
        ),
    )
    out = " ".join(draw(ExecutionHistory(execution(), ops), now=at(30)).split())
    assert "wait poll #1 ↳ wakes at +10m00s (in 9m30s)" in out
    assert (
        "waits for callback cb-42; times out at +1h00m (in 59m30s); heartbeat due by +2m00s "
        "(in 1m30s)"
    ) in out
    assert "waits for child execution ex-2" in out
    assert "checks again (attempt 4) at +45s (in 15s) after attempt 3 failed" in out
    assert "FAILED step load #5 ↳ StepError: no such table" in out
    assert "200 ms" in out  # 5.0 to 5.2
    assert out.endswith(
        "replaying now, or waiting for an outside event (a callback, a child execution)"
    )


def test_an_ended_execution_says_what_it_left_unfinished_and_how_it_ended() -> None:
    ops = (op("1", 1, "Wait", "STARTED", name="poll", wake_at=at(600)),)
    stopped = execution(
        status="STOPPED", ended_at=at(90), error={"type": "ExecutionStopped", "message": "enough"}
    )
    out = " ".join(draw(ExecutionHistory(stopped, ops), now=at(3000)).split())
    assert "left unfinished: the execution ended STOPPED" in out and "wakes at" not in out
    assert "took 1m30s" in out and out.endswith("stopped: ExecutionStopped: enough")
    done = execution(status="SUCCEEDED", ended_at=at(2), result={"rows": 12})
    out = " ".join(draw(ExecutionHistory(done, ()), now=at(3000)).split())
    assert "no operations yet" in out and out.endswith('result: {"rows":12}')
