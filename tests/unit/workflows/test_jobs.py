"""The workflow job kind (``workflows/jobs.py``) driven by hand, without the work loop's
threads: claims in batches, the checkpoints read with a claim, the claims an idle worker does
not make, and what a stop hands back. On SQLite and on PostgreSQL, with a clock the test
moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import make_settings
from sqltide.store import ExecutionRecord, ExecutionStatus, Store
from sqltide.store.wakeups import Notifier
from sqltide.workflows import DurableContext
from sqltide.workflows.config import Duration
from sqltide.workflows.jobs import ExecutionJobs
from sqltide.workflows.registry import Registry
from sqltide.workflows.service import WorkflowService

from .conftest import Clock

X = ExecutionStatus
WF = "napper"


def napper(event: Any, context: DurableContext) -> str:
    context.step(lambda _: 1, name="before")
    context.wait(Duration.from_seconds(10), name="nap")
    context.step(lambda _: 2, name="after")
    return "woke"


class Calls:
    """Counts the store calls the job kind makes (the store itself does the work)."""

    NAMES = (
        "claim_executions",
        "get_operations",
        "get_operations_of",
        "next_execution_due",
        "time_out_executions",
    )

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch):
        self.made: list[tuple[str, Any]] = []
        for name in self.NAMES:
            real = getattr(store, name)

            def counted(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
                self.made.append((_name, a))
                return _real(*a, **kw)

            monkeypatch.setattr(store, name, counted)

    def of(self, name: str) -> list[Any]:
        return [args for n, args in self.made if n == name]

    def clear(self) -> None:
        self.made.clear()


@pytest.fixture
def parts(store: Store, clock: Clock, tmp_path: Path) -> Iterator[tuple[WorkflowService, Any]]:
    registry = Registry()
    registry.add(napper, name=WF)
    settings = make_settings(tmp_path, workflow_concurrency=2, workflow_poll_seconds=5)
    service = WorkflowService(store, Notifier(), registry, settings, clock=clock)

    def make_jobs(owner: str = "w1") -> ExecutionJobs:
        return ExecutionJobs(
            store, service.notifier, registry, service, settings, clock=clock, owner=owner
        )

    yield service, make_jobs


def start(service: WorkflowService, n: int, clock: Clock) -> list[str]:
    ids = []
    for _ in range(n):
        ids.append(service.start("alice", WF, {})[0].id)
        clock.t += 0.001  # due one after the other
    return ids


def test_a_claim_takes_a_batch_and_the_next_slots_are_filled_without_the_store(
    parts: Any, store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, make_jobs = parts
    jobs: ExecutionJobs = make_jobs()
    ids = start(service, 5, clock)
    calls = Calls(store, monkeypatch)
    handed: list[ExecutionRecord] = []
    for _ in range(5):
        handed += jobs.claim(1)
    # oldest due first, each once; a store claim takes a batch of two (the concurrency)
    assert [r.id for r in handed] == ids
    assert [args[2] for args in calls.of("claim_executions")] == [2, 2, 2]
    assert jobs.claim(1) == []  # nothing left
    # first replays: nothing to read (no checkpoint can exist before a first lease)
    assert calls.of("get_operations_of") == []
    for rec in handed:
        jobs.run(rec)
    assert calls.of("get_operations") == []
    assert {store.get_execution(i).status for i in ids} == {X.RUNNING}  # type: ignore[union-attr]
    assert jobs.busy == 0

    # after the nap each replay gets the checkpoints read once for its batch
    clock.t += 11
    calls.clear()
    again = jobs.claim(2) + jobs.claim(2) + jobs.claim(2)
    assert sorted(r.id for r in again) == sorted(ids)
    assert len(calls.of("get_operations_of")) == len(calls.of("claim_executions")) == 3
    for rec in again:
        jobs.run(rec)
    assert calls.of("get_operations") == []
    assert all(store.get_execution(i).result == '"woke"' for i in ids)  # type: ignore[union-attr]


def test_an_idle_worker_reads_when_work_is_due_instead_of_claiming(
    parts: Any, store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, make_jobs = parts
    jobs: ExecutionJobs = make_jobs()
    start(service, 1, clock)
    jobs.run(jobs.claim(2)[0])  # now in its nap, due at +10 s
    calls = Calls(store, monkeypatch)
    assert jobs.next_wait() == pytest.approx(10, abs=0.01)
    # a safety-net wake-up (the loop's poll) with nothing due: no claim
    assert jobs.claim(2) == []
    assert calls.of("claim_executions") == []
    # work due that no wake-up announced (another process's, its wake-up lost): the next
    # read finds it, and the claim after it takes it
    lost = start_without_wake_up(store, clock)
    assert jobs.claim(2) == []
    assert calls.of("claim_executions") == []
    assert jobs.next_wait() == 0.0
    [rec] = jobs.claim(2)
    assert rec.id == lost and len(calls.of("claim_executions")) == 1
    jobs.run(rec)  # into its nap too
    napping = store.get_execution(lost)
    assert napping is not None and napping.next_run_at == pytest.approx(clock.t + 10)
    # a wake-up for a workflow loaded here makes the next claim ask the store at once
    assert jobs.next_wait() == pytest.approx(10, abs=0.01)
    [woken] = start(service, 1, clock)
    assert not jobs.wakes("not-loaded-here")
    assert jobs.claim(2) == []  # not woken: the store is not asked
    assert len(calls.of("claim_executions")) == 1
    assert jobs.wakes(WF)
    assert [r.id for r in jobs.claim(2)] == [woken]


def start_without_wake_up(store: Store, clock: Clock) -> str:
    """An execution recorded straight in the store, as another process would."""
    rec = ExecutionRecord(
        id=f"00000000-0000-4000-8000-{int(clock.t * 1000):012d}",
        workflow=WF,
        name="alice lost-wake-up",
        principal="alice",
        status=X.RUNNING,
        created_at=clock.t,
        updated_at=clock.t,
        input="{}",
        timeout_at=clock.t + 3600,
    )
    assert store.start_execution(rec)[1]
    return rec.id


def test_a_stop_hands_back_what_was_claimed_and_never_ran(
    parts: Any, store: Store, clock: Clock
) -> None:
    service, make_jobs = parts
    jobs: ExecutionJobs = make_jobs("w1")
    ids = start(service, 2, clock)
    [taken] = jobs.claim(1)  # the other one waits here for a slot
    assert {store.get_execution(i).lease_owner for i in ids} == {"w1"}  # type: ignore[union-attr]
    clock.t += 1
    jobs.close()  # the loop stopped before running either
    for i in ids:
        rec = store.get_execution(i)
        assert rec is not None and rec.lease_owner is None and rec.next_run_at == clock.t
    assert sorted(r.id for r in make_jobs("w2").claim(2)) == sorted(ids)
    assert taken.id in ids
