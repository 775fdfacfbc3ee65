"""Unchanged AWS durable functions on a real runtime, on SQLite and on PostgreSQL.

Every handler here imports the AWS SDK itself (``aws_durable_execution_sdk_python``): the
worker invokes it as Lambda would, and the SDK checkpoints through sqltide's Lambda API with
its own boto3 ``lambda`` client (``sqltide.lambda_durable``). Seed 001's handler runs exactly as
the article wrote it, its ``redshift-data`` client on sqltide's Data API. The examples are
re-written in the style of the AWS SDK's example handlers. Waits and retries are real
suspensions; the test's clock jumps to their end (``aws_durable.World.run_to_end``), except
where a test waits in real time on purpose.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlparse

from aws_durable import World, build_world
from sqltide.lambda_durable.arns import execution_arn
from sqltide.store import ExecutionStatus, OperationStatus, OperationType

pytest.importorskip("aws_durable_execution_sdk_python")

SEED = Path(__file__).parents[1] / "unit" / "workflows" / "seed_001"
SETUP = Path(__file__).parents[2] / "examples" / "durable-batch" / "sql" / "duckdb" / "setup.sql"
#: The two import lines the seed's handler has in the article, and what sqltide's copy has.
ORIGINAL_IMPORTS = (
    "from aws_durable_execution_sdk_python import (",
    "from aws_durable_execution_sdk_python.config import Duration",
)
SWAPPED_IMPORTS = (
    "from sqltide.workflows import (",
    "from sqltide.workflows.config import Duration",
)

EXAMPLES = """
import json

from aws_durable_execution_sdk_python import (
    DurableContext,
    StepContext,
    StepError,
    durable_execution,
    durable_parallel_branch,
    durable_step,
    durable_with_child_context,
)
from aws_durable_execution_sdk_python.config import (
    CallbackConfig,
    Duration,
    JitterStrategy,
    MapConfig,
    ParallelConfig,
    StepConfig,
)
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.waits import (
    WaitForConditionConfig,
    WaitStrategyConfig,
    create_wait_strategy,
)

#: What the steps ran, in this process (the test reads it).
RUNS = []

ONE_SECOND = create_retry_strategy(
    RetryStrategyConfig(
        max_attempts=3, initial_delay=Duration.from_seconds(1), backoff_rate=1.0,
        jitter_strategy=JitterStrategy.NONE,
    )
)


@durable_step
def greet(step_context: StepContext, name: str) -> str:
    RUNS.append(f"greet {name}")
    return f"Hello {name}!"


@durable_execution
def hello_world(event: dict, context: DurableContext) -> dict:
    return {"message": context.step(greet(event.get("name", "world")))}


@durable_execution
def step_with_retries(event: dict, context: DurableContext) -> dict:
    def flaky(step_context: StepContext) -> int:
        RUNS.append(f"flaky {step_context.attempt}")
        if step_context.attempt < 3:
            raise RuntimeError(f"attempt {step_context.attempt} failed")
        return step_context.attempt

    def hopeless(step_context: StepContext) -> None:
        raise ValueError("payment declined")

    attempt = context.step(flaky, name="flaky", config=StepConfig(retry_strategy=ONE_SECOND))
    try:
        context.step(hopeless, name="charge", config=StepConfig(retry_strategy=ONE_SECOND))
        caught = None
    except StepError as error:
        caught = {"type": type(error).__name__, "message": error.message}
    return {"attempt": attempt, "caught": caught}


@durable_execution
def wait_between_steps(event: dict, context: DurableContext) -> str:
    first = context.step(lambda _: "before", name="before")
    context.wait(Duration.from_seconds(1), name="pause")
    second = context.step(lambda _: "after", name="after")
    return f"{first} {second}"


@durable_with_child_context
def settle(ctx: DurableContext, amount: int) -> dict:
    charged = ctx.step(lambda _: amount, name="charge")
    captured = ctx.step(lambda _: charged * 2, name="capture")
    return {"charged": charged, "captured": captured}


@durable_parallel_branch(name="users")
def load_users(ctx: DurableContext) -> list:
    return ctx.step(lambda _: ["ann", "bob"], name="load users")


@durable_parallel_branch(name="orders")
def load_orders(ctx: DurableContext) -> int:
    return ctx.step(lambda _: 3, name="count orders")


@durable_execution
def map_and_parallel(event: dict, context: DurableContext) -> dict:
    squares = context.map(
        event["items"],
        lambda ctx, item, index, items: ctx.step(lambda _: item * item, name=f"square-{index}"),
        name="squares",
        config=MapConfig(max_concurrency=2),
    )
    both = context.parallel(
        [load_users(), load_orders()], name="load", config=ParallelConfig(max_concurrency=2)
    )
    child = context.run_in_child_context(settle(event["amount"]), name="settle")
    return {"squares": squares.get_results(), "both": both.get_results(), "child": child}


@durable_execution
def count_to_three(event: dict, context: DurableContext) -> dict:
    strategy = create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=lambda state: state["count"] < 3,
            initial_delay=Duration.from_seconds(2),
            jitter_strategy=JitterStrategy.NONE,
            max_attempts=5,
        )
    )
    return context.wait_for_condition(
        check=lambda state, ctx: {"count": state["count"] + 1, "attempt": ctx.attempt},
        config=WaitForConditionConfig(wait_strategy=strategy, initial_state={"count": 0}),
        name="count",
    )


@durable_execution
def invoke_another(event: dict, context: DurableContext) -> dict:
    return {"child": context.invoke("hello_world", {"name": "child"}, name="ask child")}


@durable_execution
def approval(event: dict, context: DurableContext) -> dict:
    callback = context.create_callback(
        name="approve", config=CallbackConfig(timeout=Duration.from_minutes(10))
    )
    context.step(lambda _: RUNS.append(f"mail {callback.callback_id}"), name="send request")
    try:
        return {"approved": json.loads(callback.result())}
    except Exception as error:
        return {"rejected": type(error).__name__, "message": str(error)}


@durable_execution
def big_child(event: dict, context: DurableContext) -> int:
    report = context.run_in_child_context(lambda ctx: "x" * 300_000, name="big report")
    return len(report)
"""


@pytest.fixture
def world(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    module = tmp_path / "aws_examples.py"
    module.write_text(textwrap.dedent(EXAMPLES))
    w = build_world(tmp_path, store_url, monkeypatch, [str(module)])
    yield w
    w.close()


def ops_by_name(w: World, execution_id: str) -> dict[str, Any]:
    return {op.name: op for op in w.runtime.store.get_operations(execution_id) if op.name}


def events(w: World, execution_id: str) -> list[str]:
    return [e.event for e in w.runtime.store.get_history(execution_id)]


def test_the_aws_sdk_handlers_are_loaded_as_aws_workflows(world: World) -> None:
    registry = world.runtime.workflows.registry
    assert {"hello_world", "approval", "map_and_parallel"} <= set(registry.names())
    assert {registry.get(n).kind for n in registry.names()} == {"aws"}  # type: ignore[union-attr]
    assert "durable_execution" not in registry  # the SDK's decorator itself is no workflow


def test_example_handlers_run_to_their_results(world: World) -> None:
    expected = {
        ("hello_world", json.dumps({"name": "sqltide"})): {"message": "Hello sqltide!"},
        ("step_with_retries", "{}"): {
            "attempt": 3,
            "caught": {"type": "StepError", "message": "payment declined"},
        },
        ("wait_between_steps", "{}"): "before after",
        ("map_and_parallel", json.dumps({"items": [1, 2, 3, 4], "amount": 5})): {
            "squares": [1, 4, 9, 16],
            "both": [["ann", "bob"], 3],
            "child": {"charged": 5, "captured": 10},
        },
        ("count_to_three", "{}"): {"count": 3, "attempt": 3},
        ("invoke_another", "{}"): {"child": {"message": "Hello child!"}},
    }
    started = {
        key: world.start(key[0], json.loads(key[1]), name=f"example-{key[0]}") for key in expected
    }
    for key, execution_id in started.items():
        rec = world.run_to_end(execution_id)
        assert rec.status is ExecutionStatus.SUCCEEDED, (key[0], rec.error)
        assert json.loads(rec.result or "null") == expected[key], key[0]

    retried = ops_by_name(world, started[("step_with_retries", "{}")])
    assert retried["flaky"].attempt == 3 and retried["flaky"].status is OperationStatus.SUCCEEDED
    assert retried["charge"].status is OperationStatus.FAILED
    assert retried["charge"].error["message"] == "payment declined"
    runs = world.module("hello_world")["RUNS"]
    assert [r for r in runs if r.startswith("flaky")] == ["flaky 1", "flaky 2", "flaky 3"]
    history = events(world, started[("step_with_retries", "{}")])
    assert history.count("retry_scheduled") == 4  # flaky twice, charge twice, then it failed
    # each greet ran once, however many invocations replayed it
    assert runs.count("greet sqltide") == 1 and runs.count("greet child") == 1

    waited = started[("wait_between_steps", "{}")]
    pause = ops_by_name(world, waited)["pause"]
    assert pause.type is OperationType.WAIT and pause.status is OperationStatus.SUCCEEDED
    assert "suspended" in events(world, waited) and "wait_succeeded" in events(world, waited)

    invoked = ops_by_name(world, started[("invoke_another", "{}")])["ask child"]
    assert invoked.type is OperationType.CHAINED_INVOKE and invoked.child_execution_id
    child = world.runtime.store.get_execution(invoked.child_execution_id)
    assert child is not None and child.workflow == "hello_world" and child.parent_id is not None


def test_the_worker_s_key_signs_for_every_principal_s_executions(world: World) -> None:
    # the worker's environment holds alice's key; bob's execution runs all the same (the
    # checkpoint token, not the signer, is what lets an invocation write it)
    rec, _ = world.runtime.workflows.start("bob", "hello_world", {"name": "bob"})
    ended = world.run_to_end(rec.id)
    assert ended.status is ExecutionStatus.SUCCEEDED and ended.principal == "bob"
    assert json.loads(ended.result or "") == {"message": "Hello bob!"}
    # and alice cannot see it through the Lambda API: another principal's is unknown
    lam = world.lambda_client()
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_durable_execution(DurableExecutionArn=execution_arn(ended, "000000000000"))


def test_a_wait_suspends_in_real_time_and_history_tells_it(world: World) -> None:
    execution_id = world.start("wait_between_steps", {})
    rec = world.run_to_end(execution_id, jump=False, timeout=15)
    assert rec.status is ExecutionStatus.SUCCEEDED and rec.replays == 2
    history = world.runtime.workflows.history("alice", execution_id)
    kinds = [e.event for e in history.events]
    assert kinds.index("wait_started") < kinds.index("suspended") < kinds.index("wait_succeeded")
    pause = next(op for op in history.operations if op.name == "pause")
    assert pause.ended_at is not None and pause.wake_at is not None
    assert pause.ended_at >= pause.wake_at  # it ended when its time had come, not before


def test_a_callback_is_completed_from_outside_with_boto3(world: World) -> None:
    lam = world.lambda_client()
    approved = world.start("approval", {}, name="approve-1")
    rejected = world.start("approval", {}, name="approve-2")
    ids = {}
    for execution_id in (approved, rejected):
        ids[execution_id] = world.wait_for(
            "the callback",
            lambda e=execution_id: next(
                (
                    op.callback_id
                    for op in world.runtime.store.get_operations(e)
                    if op.type is OperationType.CALLBACK
                ),
                None,
            ),
        )
    # the id went out through a step (the callback was durable before the step ran)
    world.wait_for("the mail", lambda: f"mail {ids[approved]}" in world.module("approval")["RUNS"])
    lam.send_durable_execution_callback_heartbeat(CallbackId=ids[approved])
    lam.send_durable_execution_callback_success(CallbackId=ids[approved], Result=b'{"by": "ann"}')
    lam.send_durable_execution_callback_failure(
        CallbackId=ids[rejected], Error={"ErrorType": "Rejected", "ErrorMessage": "too expensive"}
    )
    ok = world.run_to_end(approved)
    assert ok.status is ExecutionStatus.SUCCEEDED
    assert json.loads(ok.result or "") == {"approved": {"by": "ann"}}
    no = world.run_to_end(rejected)
    assert json.loads(no.result or "") == {
        "rejected": "CallbackExternalError",
        "message": "too expensive",
    }
    # answered once: a second answer is refused as AWS refuses it
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.send_durable_execution_callback_success(CallbackId=ids[approved], Result=b"1")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.send_durable_execution_callback_success(CallbackId="0" * 32, Result=b"1")


def test_an_unsupported_operation_fails_the_execution_naming_it(world: World) -> None:
    execution_id = world.start("big_child", {})
    rec = world.run_to_end(execution_id)
    assert rec.status is ExecutionStatus.FAILED
    message = (rec.error or {}).get("message", "")
    assert "ContextOptions.ReplayChildren" in message and "not supported by sqltide" in message
    assert "'big report'" in message
    # nothing of the refused checkpoint was written
    assert all(
        op.name != "big report" or not op.status.is_terminal
        for op in world.runtime.store.get_operations(execution_id)
    )


def test_get_and_stop_a_durable_execution_with_boto3(world: World) -> None:
    lam = world.lambda_client()
    execution_id = world.start("approval", {"why": "stop me"}, name="to-stop")
    world.wait_for(
        "a suspension",
        lambda: (
            (r := world.runtime.store.get_execution(execution_id)) is not None
            and r.replays >= 1
            and r.lease_owner is None
        ),
    )
    rec = world.runtime.store.get_execution(execution_id)
    assert rec is not None
    arn = execution_arn(rec, "000000000000")
    got = lam.get_durable_execution(DurableExecutionArn=arn)
    assert got["Status"] == "RUNNING" and got["DurableExecutionName"] == "to-stop"
    assert json.loads(got["InputPayload"]) == {"why": "stop me"}
    assert got["FunctionArn"].endswith(":function:approval")
    stopped = lam.stop_durable_execution(
        DurableExecutionArn=arn, Error={"ErrorType": "Cancelled", "ErrorMessage": "not needed"}
    )
    assert stopped["StopTimestamp"]
    ended = world.runtime.workflows.describe("alice", execution_id)
    assert ended.status is ExecutionStatus.STOPPED
    assert ended.error == {
        "type": "Cancelled",
        "message": "not needed",
        "data": None,
        "stack": None,
    }
    got = lam.get_durable_execution(DurableExecutionArn=arn, IncludeExecutionData=False)
    assert got["Status"] == "STOPPED" and "InputPayload" not in got
    assert got["Error"] == {"ErrorType": "Cancelled", "ErrorMessage": "not needed"}
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_durable_execution(
            DurableExecutionArn=arn.rsplit("/", 1)[0]
            + "/"
            + "0" * 8
            + "-0000-4000-8000-"
            + "0" * 12
        )


# -- seed 001, exactly as written ------------------------------------------------------------
def seed_handler_as_written() -> str:
    """Seed 001's handler as the article wrote it: sqltide's copy with its two import lines
    restored (and the comment saying they were swapped dropped)."""
    text = (SEED / "redshift_batch_executor.py").read_text()
    lines = text.splitlines(keepends=True)
    assert lines[0].startswith("# Seed 001's handler") and lines[1].startswith("# imports changed")
    body = "".join(lines[2:])
    for swapped, original in zip(SWAPPED_IMPORTS, ORIGINAL_IMPORTS, strict=True):
        assert body.count(swapped) == 1
        body = body.replace(swapped, original)
    assert "sqltide" not in body
    return body


SETUP_ORDERS = """
INSERT INTO orders VALUES
  (1, 10, DATE '2025-01-05', 100, 2, 5.00),
  (1, 10, DATE '2025-01-05', 101, 1, 7.50),
  (2, 10, DATE '2025-02-01', 100, 1, 5.00),
  (3, 11, DATE '2025-03-09', 102, 4, 2.25);
-- a statement cannot end within milliseconds of its submission: the handler's first
-- DescribeStatement finds it running, and the handler waits (a durable 10-second wait)
ALTER TABLE orders RENAME TO orders_stored;
CREATE VIEW orders AS SELECT * FROM orders_stored WHERE (SELECT sleep_ms(300)) IS NULL;
"""


@pytest.fixture
def seed_world(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    folder = tmp_path / "seed"
    folder.mkdir()
    (folder / "redshift_batch_executor.py").write_text(seed_handler_as_written())
    (folder / "query.sql").write_text((SEED / "query.sql").read_text())
    w = build_world(
        tmp_path,
        store_url,
        monkeypatch,
        [str(folder / "redshift_batch_executor.py")],
        env={"WORKGROUP_NAME": "default", "DATABASE_NAME": "dev"},
    )
    yield w
    w.close()


def test_seed_001_handler_exactly_as_written_runs_to_succeeded(seed_world: World) -> None:
    w = seed_world
    with w.client() as client:
        for sql in [SETUP.read_text(), SETUP_ORDERS]:
            parts = [p.strip() for p in sqlparse.split(sql) if p.strip()]
            done = client.wait(client.batch(parts).id, timeout=30)
            assert done.status == "FINISHED", done.error

        wf = w.runtime.workflows.registry.get("lambda_handler")
        assert wf is not None and wf.kind == "aws"
        execution_id = w.start("lambda_handler", {})
        rec = w.run_to_end(execution_id, timeout=60)
        assert rec.status is ExecutionStatus.SUCCEEDED, rec.error
        result = json.loads(rec.result or "")
        assert result["statusCode"] == 200 and result["body"]["status"] == "FINISHED"
        assert result["body"]["statement_count"] == 2

        ops = w.runtime.store.get_operations(execution_id)
        submits = [op for op in ops if op.name == "execute_batch_query"]
        polls = [op for op in ops if op.name == "check_query_status"]
        waits = [op for op in ops if op.type is OperationType.WAIT]
        assert len(submits) == 1 and submits[0].attempt == 1
        assert len(polls) >= 2 and len(waits) == len(polls) - 1  # it waited, at least once
        assert all(op.status is OperationStatus.SUCCEEDED for op in ops)
        assert all(jump > 5 for jump in w.jumps)  # its 10-second waits were suspensions
        assert rec.replays == len(waits) + 1  # the first invocation, then one per wait

        # the batch was submitted once, by the handler's boto3 client, as the key's principal
        batches = [
            s
            for s in client.list()
            if s.is_batch and (s.query_strings or ("",))[0].startswith("DELETE FROM public.mart")
        ]
        assert [b.id for b in batches] == [json.loads(submits[0].result or "")]
        assert batches[0].status == "FINISHED" and result["body"]["query_id"] == batches[0].id
        mart = client.wait(
            client.execute(
                "SELECT customer_id, total_orders, CAST(total_amount AS VARCHAR) "
                "FROM public.mart_customer_summary ORDER BY customer_id"
            ).id,
            timeout=30,
        )
        assert list(client.rows(mart.id)) == [[10, 2, "22.50"], [11, 1, "9.00"]]
