"""Workflow executions on real ``sqltide serve --workflows`` processes, killed and restarted,
racing, or missing a module; on SQLite and on PostgreSQL.

The test process starts executions through a runtime of its own on the same store (the API
role: it runs nothing); the ``serve`` processes run them. Every step appends a line to a file
the test reads, so a step that ran twice shows. Leases last 1 second, so a killed worker's
executions are taken over within about a second of its restart.
"""

from __future__ import annotations

import signal
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import make_settings
from helpers import ServeProcess, wait_for
from sqltide.runtime import Runtime
from sqltide.store import ExecutionRecord, ExecutionStatus

X = ExecutionStatus

FLOWS = """
import os
import time

from sqltide.workflows import DurableContext, JitterStrategy, StepConfig, StepSemantics
from sqltide.workflows import durable_execution
from sqltide.workflows.config import Duration
from sqltide.workflows.retries import RetryStrategyConfig, create_retry_strategy


def mark(event, what):
    with open(event["log"], "a") as f:
        f.write(f"{event['tag']} {what}\\n")


def hold(event):
    # the test kills the process while a step waits here, or lets it end with the file
    while not os.path.exists(event["release"]):
        time.sleep(0.02)


@durable_execution
def one_step(event, context: DurableContext):
    config = StepConfig(
        step_semantics=StepSemantics[event["semantics"]],
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=event["attempts"],
                initial_delay=Duration.from_seconds(1),
                jitter_strategy=JitterStrategy.NONE,
            )
        ),
    )

    def work(step_context):
        mark(event, f"start {step_context.attempt}")
        hold(event)
        return "done"

    return context.step(work, name="work", config=config)


@durable_execution
def waits(event, context: DurableContext):
    context.step(lambda _: mark(event, "before"), name="before")
    context.wait(Duration.from_seconds(event["seconds"]), name="nap")
    context.step(lambda _: mark(event, "after"), name="after")
    return "woke"


@durable_execution
def appends(event, context: DurableContext):
    for n in range(event["steps"]):
        context.step(lambda _, n=n: mark(event, f"step {n}"), name=f"s{n}")
    return event["steps"]
"""

OTHER = """
from sqltide.workflows import durable_execution


@durable_execution
def other(event, context):
    return context.step(lambda _: "fine", name="only")
"""

Serve = Callable[..., ServeProcess]


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "flows.py"
    path.write_text(textwrap.dedent(FLOWS))
    return path


@pytest.fixture
def shared_store(tmp_path: Path, store_url: str) -> str:
    """The state store every process of the test uses (SQLite: one file for all)."""
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'state.db'}"
    return store_url


@pytest.fixture
def api(tmp_path: Path, shared_store: str, flows: Path) -> Iterator[Runtime]:
    """The test's own runtime on the shared store: it loads the workflows and starts
    executions; as an ``api`` process, it runs none."""
    rt = Runtime.build(
        make_settings(tmp_path / "api", store=shared_store, workflows=[str(flows)]), role="api"
    )
    yield rt
    rt.stop()


@pytest.fixture
def serve(tmp_path: Path, shared_store: str) -> Iterator[Serve]:
    """``serve(*workflows, role="all", home="home", **env)``: a ``sqltide serve`` process
    loading ``workflows``; killed at teardown, its output printed (shown on failure)."""
    started: list[ServeProcess] = []

    def start(*workflows: Path, role: str = "all", home: str = "home", **more: str) -> ServeProcess:
        env = {
            "SQLTIDE_STORE": shared_store,
            "SQLTIDE_LEASE_SECONDS": "1",
            "SQLTIDE_HEARTBEAT_SECONDS": "0.2",
            # SQLite carries no wake-ups between processes: the safety-net poll finds the
            # executions the test process starts
            "SQLTIDE_WORKFLOW_POLL_SECONDS": "0.3",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "250",
            **more,
        }
        args = ["--role", role, *(a for w in workflows for a in ("--workflows", str(w)))]
        proc = ServeProcess(tmp_path / home, tmp_path / f"serve-{len(started)}.log", env, args)
        started.append(proc)
        if role == "all":
            proc.wait_healthy()
        else:
            wait_for("the worker to start", lambda: "workflows:" in _alive(proc), 20)
        return proc

    yield start
    for proc in started:
        proc.close()
        print(f"----- {proc.log.name} (exit {proc.proc.returncode}) -----\n{proc.output()}")


def _alive(proc: ServeProcess) -> str:
    if proc.proc.poll() is not None:
        raise AssertionError(f"serve exited with {proc.proc.returncode}:\n{proc.output()}")
    return proc.output()


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def final(api: Runtime, execution_id: str, timeout: float = 15.0) -> ExecutionRecord:
    def check() -> ExecutionRecord | None:
        rec = api.workflows.describe("alice", execution_id)
        return rec if rec.status.is_terminal else None

    rec = wait_for(f"execution {execution_id} to end", check, timeout)
    assert isinstance(rec, ExecutionRecord)
    return rec


def test_sigkill_in_a_step_and_in_a_wait_resumes_after_a_restart(
    api: Runtime, serve: Serve, flows: Path, tmp_path: Path
) -> None:
    log, release = tmp_path / "steps.log", tmp_path / "release"
    common = {"log": str(log), "release": str(release)}
    first = serve(flows)

    def start(workflow: str, tag: str, **event: Any) -> str:
        return api.workflows.start("alice", workflow, {**common, "tag": tag, **event})[0].id

    again = start("one_step", "again", semantics="AT_LEAST_ONCE_PER_RETRY", attempts=1)
    retried = start("one_step", "retried", semantics="AT_MOST_ONCE_PER_RETRY", attempts=2)
    failed = start("one_step", "failed", semantics="AT_MOST_ONCE_PER_RETRY", attempts=1)
    waiting = start("waits", "waiting", seconds=3)
    expected = {"again start 1", "retried start 1", "failed start 1", "waiting before"}
    wait_for("every step to be running", lambda: expected <= set(lines(log)), 15)
    wait_for("the wait", lambda: "nap" in [o.name for o in api.store.get_operations(waiting)], 10)
    first.signal(signal.SIGKILL)
    assert first.wait_exit() == -signal.SIGKILL
    release.touch()  # what runs after the restart may end

    second = serve(flows)
    restarted = time.time()
    done = {eid: final(api, eid) for eid in (again, retried, failed, waiting)}
    got = lines(log)

    # at least once: nothing was checkpointed before the step ran; it ran again
    assert done[again].status is X.SUCCEEDED, done[again].error
    assert got.count("again start 1") == 2
    # at most once: the attempt the kill cut short failed with StepInterruptedError and the
    # retry strategy ran the next attempt (once); without retries the step failed
    assert done[retried].status is X.SUCCEEDED, done[retried].error
    assert (got.count("retried start 1"), got.count("retried start 2")) == (1, 1)
    retry = [e for e in api.store.get_history(retried) if e.event == "retry_scheduled"]
    assert [e.details["error_type"] for e in retry] == ["StepInterruptedError"]
    assert done[failed].status is X.FAILED
    assert got.count("failed start 1") == 1 and "failed start 2" not in got
    (op,) = api.store.get_operations(failed)
    assert op.status.value == "FAILED" and op.error["type"] == "StepInterruptedError"
    # the wait: resumed on time after the restart, its first step not run again
    assert done[waiting].status is X.SUCCEEDED
    assert (got.count("waiting before"), got.count("waiting after")) == (1, 1)
    nap = next(o for o in api.store.get_operations(waiting) if o.name == "nap")
    assert nap.wake_at is not None and done[waiting].ended_at is not None
    assert nap.wake_at <= done[waiting].ended_at < max(nap.wake_at, restarted) + 1.5
    second.signal(signal.SIGTERM)
    assert second.wait_exit() in (0, -signal.SIGTERM)


def test_a_module_that_fails_to_import_leaves_its_executions_waiting(
    api: Runtime, serve: Serve, flows: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken_flows.py"
    broken.write_text("raise RuntimeError('this module cannot be imported')\n" + FLOWS)
    other = tmp_path / "other.py"
    other.write_text(textwrap.dedent(OTHER))
    # the API process loaded the module: it starts executions of its workflows
    log = tmp_path / "steps.log"
    waiting = api.workflows.start("alice", "appends", {"log": str(log), "tag": "w", "steps": 2})
    first = serve(broken, other)
    out = first.output()
    assert "broken_flows.py" in out and "RuntimeError: this module cannot be imported" in out
    assert "Traceback" in out and "workflows: other" in out

    # the worker is alive and runs what it loaded ...
    assert api.workflows.registry.load([str(other)]) == []
    ran, _ = api.workflows.start("alice", "other", None)
    assert final(api, ran.id).status is X.SUCCEEDED
    # ... while the execution it could not load waits, untouched (claims take the oldest first)
    rec = api.workflows.describe("alice", waiting[0].id)
    assert (rec.status, rec.replays, rec.lease_owner) == (X.RUNNING, 0, None)
    assert lines(log) == []

    # a worker where the module loads runs it
    serve(flows, role="worker", home="home-2")
    done = final(api, waiting[0].id)
    assert done.status is X.SUCCEEDED and done.result == "2"
    assert lines(log) == ["w step 0", "w step 1"]


def test_two_workers_racing_run_every_step_once(
    api: Runtime, serve: Serve, flows: Path, tmp_path: Path, store_url: str
) -> None:
    if not store_url.startswith("postgres"):
        pytest.skip("several worker processes share a PostgreSQL store")
    # No safety-net poll within the test: the starts reach the workers as NOTIFY wake-ups.
    never = {"SQLTIDE_WORKFLOW_POLL_SECONDS": "600"}
    serve(flows, role="worker", home="w1", **never)
    serve(flows, role="worker", home="w2", **never)
    log = tmp_path / "steps.log"
    ids = [
        api.workflows.start("alice", "appends", {"log": str(log), "tag": f"e{n}", "steps": 4})[0].id
        for n in range(20)
    ]
    for eid in ids:
        assert final(api, eid).status is X.SUCCEEDED
    got = lines(log)
    assert sorted(got) == sorted(f"e{n} step {s}" for n in range(20) for s in range(4))
