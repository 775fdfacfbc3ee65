"""Seed 001: the article's handler, with only its imports swapped, runs as a workflow.

The handler submits ``query.sql`` (split by sqlparse) with ``BatchExecuteStatement`` in one
step, then polls ``DescribeStatement`` every 10 seconds with a durable wait. Here boto3 is a
stub (the real Data API end to end belongs to ``examples/durable-batch``): the test checks the
replay — the batch is submitted once, across replays and across a worker that dies mid-poll.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sqltide.store import ExecutionStatus, OperationType, Store
from sqltide.workflows import Registry

from .conftest import LEASE, T0, Clock, Runner

HANDLER = Path(__file__).parent / "seed_001" / "redshift_batch_executor.py"


class FakeRedshiftData:
    """What the handler calls of a boto3 ``redshift-data`` client."""

    def __init__(self, statuses: list[str]):
        self.statuses = statuses
        self.submitted: list[dict[str, Any]] = []
        self.described: list[str] = []
        self.crash_on_describe: int | None = None

    def batch_execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.submitted.append(kwargs)
        return {"Id": f"stmt-{len(self.submitted)}"}

    def describe_statement(self, Id: str) -> dict[str, Any]:
        self.described.append(Id)
        if self.crash_on_describe == len(self.described):
            raise Crash()
        status = self.statuses[min(len(self.described), len(self.statuses)) - 1]
        out = {"Id": Id, "Status": status}
        if status == "FAILED":
            out["Error"] = 'relation "orders" does not exist'
        return out


class Crash(BaseException):
    """The worker dies here."""


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[FakeRedshiftData], Any]]:
    """Load the handler file through the registry, with boto3 replaced by a stub module."""
    loaded: list[str] = []

    def load(client: FakeRedshiftData) -> Any:
        stub = types.ModuleType("boto3")
        stub.client = lambda service, **kw: client if service == "redshift-data" else None  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "boto3", stub)
        monkeypatch.setenv("WORKGROUP_NAME", "analytics")
        monkeypatch.setenv("DATABASE_NAME", "dev")
        before = set(sys.modules)
        registry = Registry()
        assert registry.load([str(HANDLER)]) == []
        loaded.extend(set(sys.modules) - before)
        assert registry.names() == ["lambda_handler"]
        wf = registry.get("lambda_handler")
        assert wf is not None
        return wf.fn

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


def test_the_seed_handler_submits_once_and_polls_with_durable_waits(
    runner: Callable[..., Runner], load_handler: Callable[[FakeRedshiftData], Any], clock: Clock
) -> None:
    client = FakeRedshiftData(["SUBMITTED", "STARTED", "STARTED", "FINISHED"])
    r = runner(load_handler(client), workflow="lambda_handler")
    r.start({})
    dues = []
    for _ in range(3):
        assert r.replay() is ExecutionStatus.RUNNING
        dues.append(r.execution().next_run_at)
        r.to_next()
    assert dues == [T0 + 10, T0 + 20, T0 + 30]
    assert r.replay() is ExecutionStatus.SUCCEEDED
    assert r.result() == {
        "statusCode": 200,
        "body": {
            "message": "All queries executed successfully",
            "query_id": "stmt-1",
            "statement_count": 2,
            "status": "FINISHED",
        },
    }
    assert len(client.submitted) == 1  # once, though the handler ran from the top 4 times
    sqls = client.submitted[0]["Sqls"]
    assert sqls[0] == "DELETE FROM public.mart_customer_summary;"
    assert sqls[1].startswith("INSERT INTO public.mart_customer_summary")
    assert client.submitted[0]["WorkgroupName"] == "analytics"
    assert client.described == ["stmt-1"] * 4
    ops = list(r.ops().values())
    assert [(o.type, o.name) for o in ops[:3]] == [
        (OperationType.STEP, "execute_batch_query"),
        (OperationType.STEP, "check_query_status"),
        (OperationType.WAIT, None),
    ]
    assert len(ops) == 1 + 4 + 3


def test_a_worker_killed_mid_poll_resumes_without_submitting_again(
    store: Store,
    runner: Callable[..., Runner],
    load_handler: Callable[[FakeRedshiftData], Any],
    clock: Clock,
) -> None:
    client = FakeRedshiftData(["STARTED", "STARTED", "STARTED", "FINISHED"])
    client.crash_on_describe = 2  # the worker dies during the second poll
    r = runner(load_handler(client), workflow="lambda_handler")
    r.start({})
    assert r.replay() is ExecutionStatus.RUNNING
    r.to_next()
    with pytest.raises(Crash):
        r.replay()
    clock.advance(LEASE + 1)
    assert store.recover_executions(clock()) == 1
    rec = r.run_to_end_as("w2")
    assert rec.status is ExecutionStatus.SUCCEEDED
    assert len(client.submitted) == 1
    # one poll, the one the worker died in, that poll again (at least once), the last one
    assert len(client.described) == 4
    steps = [o for o in r.ops().values() if o.name == "check_query_status"]
    assert [o.attempt for o in steps] == [1, 1, 1]


def test_a_failed_query_fails_the_execution_after_the_step_retries(
    runner: Callable[..., Runner], load_handler: Callable[[FakeRedshiftData], Any]
) -> None:
    client = FakeRedshiftData(["FAILED"])
    r = runner(load_handler(client), workflow="lambda_handler")
    r.start({})
    rec = r.run_to_end()
    assert rec.status is ExecutionStatus.FAILED
    assert rec.error is not None and rec.error["type"] == "StepError"
    assert (
        'Query failed with status FAILED: relation "orders" does not exist' in rec.error["message"]
    )
    assert len(client.described) == 6  # the default strategy: 6 attempts
    assert len(client.submitted) == 1
