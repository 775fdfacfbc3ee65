"""Fixtures of the workflow SDK's tests: a real store, a clock the test moves, a runner.

The replay tests drive :class:`~sqltide.workflows.replay.Replay` the way the worker will: start
an execution in the store, claim it, run one replay, look at what the store holds, move the
clock to the execution's ``next_run_at`` and claim it again. Starting and replaying are the
user-facing test runner's (:mod:`sqltide.workflows.testing`), one claim at a time. Every test
that takes ``store`` runs on SQLite and on PostgreSQL (``store_url`` in ``tests/conftest.py``;
``SQLTIDE_TEST_STORES=sqlite`` for SQLite alone).

This is a package's ``conftest`` (``from .conftest import …``) so its name never shadows the
root one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sqltide.store import (
    ExecutionRecord,
    ExecutionStatus,
    HistoryRecord,
    OperationRecord,
    Store,
    store_from_url,
)
from sqltide.store.postgres import PostgresStore
from sqltide.workflows import serdes
from sqltide.workflows.replay import StartChild
from sqltide.workflows.testing import DurableFunctionTestRunner, SkipClock

T0 = 1_000_000.0
LEASE = 30.0
WF = "flow"


class Clock(SkipClock):
    """The time of the checkpoints and due times: moved by the test, never by itself."""

    def __init__(self, t: float = T0):
        super().__init__(t)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store of each kind under test."""
    st = store_from_url(store_url)
    applied = st.migrate()
    if isinstance(st, PostgresStore):
        assert applied == []  # the clone is migrated already
    yield st
    st.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Runner:
    """One workflow function's executions in ``store``, replayed one claim at a time: the test
    runner's ``start`` and ``replay``, and what these tests read of the store."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        fn: Callable[[Any, Any], Any],
        *,
        workflow: str = WF,
        start_child: StartChild | None = None,
        owner: str = "w1",
    ):
        self.store = store
        self.clock = clock
        self.fn = fn
        self.workflow = workflow
        self.owner = owner
        self.id = ""
        self.runner = DurableFunctionTestRunner(
            fn,
            store=store,
            clock=clock,
            function_name=workflow,
            principal="alice",
            owner=owner,
            execution_timeout=366 * 86_400,
            retention_seconds=3600,
        )
        self.runner.lease_seconds = LEASE
        # These tests give invoke's hook themselves (or none: invoke then fails clearly).
        self.runner._start_child = start_child  # type: ignore[assignment,method-assign]

    def start(self, event: Any = None, *, name: str | None = None) -> str:
        self.id = self.runner.start(serdes.serialize(None, event), execution_name=name)
        return self.id

    def replay(self, *, owner: str | None = None) -> ExecutionStatus | None:
        """Claim the execution now (it must be due) and run one replay of it."""
        return self.runner.replay(self.id, owner=owner or self.owner)

    def execution(self) -> ExecutionRecord:
        rec = self.store.get_execution(self.id)
        assert rec is not None
        return rec

    def to_next(self) -> None:
        """Move the clock to when the execution is due next (it must have such a time)."""
        due = self.execution().next_run_at
        assert due is not None, "the execution waits for an outside event"
        self.clock.t = max(self.clock.t, due)

    def run_to_end(self, max_replays: int = 100) -> ExecutionRecord:
        """Replay, moving the clock to each due time, until the execution ends."""
        for _ in range(max_replays):
            self.to_next()
            self.replay()
            rec = self.execution()
            if rec.status is not ExecutionStatus.RUNNING:
                return rec
        raise AssertionError(f"still running after {max_replays} replays")

    def run_to_end_as(self, owner: str, max_replays: int = 100) -> ExecutionRecord:
        """:meth:`run_to_end` by another worker (``owner``)."""
        self.owner = owner
        return self.run_to_end(max_replays)

    def ops(self) -> dict[str, OperationRecord]:
        return {op.id: op for op in self.store.get_operations(self.id)}

    def op(self, name: str) -> OperationRecord:
        found = [op for op in self.store.get_operations(self.id) if op.name == name]
        assert len(found) == 1, f"{len(found)} operations named {name!r}"
        return found[0]

    def history(self) -> list[HistoryRecord]:
        return self.store.get_history(self.id)

    def result(self) -> Any:
        got = self.runner.get_result(self.id)
        assert got.execution_status is ExecutionStatus.SUCCEEDED, (got.status, got.error)
        return got.value


@pytest.fixture
def runner(store: Store, clock: Clock) -> Callable[..., Runner]:
    """``runner(fn)``: a :class:`Runner` of ``fn`` on this test's store and clock."""

    def make(fn: Callable[[Any, Any], Any], **kw: Any) -> Runner:
        return Runner(store, clock, fn, **kw)

    return make
