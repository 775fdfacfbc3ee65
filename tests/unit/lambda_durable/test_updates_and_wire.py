"""The SDK's OperationUpdates as sqltide checkpoints, and checkpoints as the SDK reads them."""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
import pytest

from aws_data_api import check_shape
from sqltide.errors import LambdaApiError, WorkflowNotFound
from sqltide.lambda_durable import wire
from sqltide.lambda_durable.invoker import LambdaContext, environment_problem
from sqltide.lambda_durable.updates import Translator, parse_updates
from sqltide.store import (
    ExecutionRecord,
    ExecutionStatus,
    OperationRecord,
    OperationStatus,
    OperationType,
)

S = OperationStatus
MODEL = botocore.session.get_session().get_service_model("lambda")
OPERATION = MODEL.shape_for("Operation")
EXECUTION = ExecutionRecord(
    id="e1",
    workflow="flow",
    name="alice n",
    principal="alice",
    status=ExecutionStatus.RUNNING,
    created_at=100.0,
    updated_at=100.0,
    input='{"a": 1}',
)


class Children:
    """A stand-in for the workflow service's start_child (it records what was started)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, str | None]] = []

    def __call__(self, workflow: str, name: str, payload: str | None, parent: Any, op: str) -> Any:
        if workflow == "missing":
            raise WorkflowNotFound(f"no workflow named {workflow!r}", details={})
        self.started.append((workflow, name, payload))
        return ExecutionRecord(
            id="child-1",
            workflow=workflow,
            name=name,
            principal="alice",
            status=ExecutionStatus.RUNNING,
            created_at=1.0,
            updated_at=1.0,
        )


def apply(
    ops: dict[str, OperationRecord], now: float, *updates: dict[str, Any]
) -> tuple[Translator, list[Any]]:
    translator = Translator(EXECUTION, ops, now, Children())
    return translator, translator.apply(parse_updates(list(updates)))


def step(action: str, op_id: str = "s1", **more: Any) -> dict[str, Any]:
    return {
        "Id": op_id,
        "Type": "STEP",
        "SubType": "Step",
        "Name": "charge",
        "Action": action,
        **more,
    }


def test_a_step_s_attempts_retries_and_end_as_lambda_records_them() -> None:
    ops: dict[str, OperationRecord] = {}
    _, written = apply(ops, 10.0, step("START"))
    assert [(u.event, u.operation.status, u.operation.attempt) for u in written] == [
        ("started", S.STARTED, 1)
    ]
    assert wire.aws_attempt(ops["s1"]) == 0  # Lambda counts an attempt once it ends
    # the same START again (a repeated request) writes nothing
    assert apply(ops, 11.0, step("START"))[1] == []
    error = {"ErrorType": "RuntimeError", "ErrorMessage": "boom"}
    _, written = apply(
        ops, 12.0, step("RETRY", Error=error, StepOptions={"NextAttemptDelaySeconds": 5})
    )
    retry = written[0].operation
    assert (retry.status, retry.attempt, retry.next_attempt_at) == (S.PENDING, 1, 17.0)
    assert retry.error == {"type": "RuntimeError", "message": "boom", "data": None, "stack": None}
    assert written[0].details == {"attempt": 1, "delay_seconds": 5, "error_type": "RuntimeError"}
    assert apply(ops, 13.0, step("RETRY", Error=error))[1] == []  # recorded already
    assert wire.shown_status(ops["s1"], 16.0) is S.PENDING
    assert wire.shown_status(ops["s1"], 17.0) is S.READY
    _, written = apply(ops, 18.0, step("START"), step("SUCCEED", Payload='"ok"'))
    assert [u.event for u in written] == ["started", "succeeded"]
    done = ops["s1"]
    assert (done.status, done.attempt, done.result, done.error) == (S.SUCCEEDED, 2, '"ok"', None)
    assert done.ended_at == 18.0 and done.started_at == 10.0
    assert apply(ops, 19.0, step("FAIL", Error=error))[1] == []  # ended: final


def test_waits_callbacks_contexts_and_invokes() -> None:
    ops: dict[str, OperationRecord] = {}
    translator, written = apply(
        ops,
        50.0,
        {
            "Id": "w",
            "Type": "WAIT",
            "SubType": "Wait",
            "Action": "START",
            "WaitOptions": {"WaitSeconds": 30},
        },
        {
            "Id": "c",
            "Type": "CALLBACK",
            "SubType": "Callback",
            "Action": "START",
            "CallbackOptions": {"TimeoutSeconds": 60, "HeartbeatTimeoutSeconds": 0},
        },
        {"Id": "x", "Type": "CONTEXT", "SubType": "Map", "Name": "items", "Action": "START"},
        {
            "Id": "i",
            "Type": "CHAINED_INVOKE",
            "SubType": "ChainedInvoke",
            "Action": "START",
            "Payload": '{"sku": 1}',
            "ChainedInvokeOptions": {"FunctionName": "price_lookup"},
        },
        {
            "Id": "j",
            "Type": "CHAINED_INVOKE",
            "SubType": "ChainedInvoke",
            "Action": "START",
            "ChainedInvokeOptions": {"FunctionName": "missing"},
        },
    )
    assert [u.event for u in written] == [
        "wait_started",
        "callback_created",
        "started",
        "invoke_started",
        "failed",
    ]
    assert ops["w"].wake_at == 80.0
    callback_id = ops["c"].callback_id
    assert (
        callback_id
        and ops["c"].callback_timeout_at == 110.0
        and ops["c"].heartbeat_timeout_at is None
    )
    assert ops["c"].updated_at == 50.0  # a heartbeat moves its timeout from here
    assert ops["i"].child_execution_id == "child-1"
    assert translator.start_child.started == [("price_lookup", "e1-i", '{"sku": 1}')]  # type: ignore[attr-defined]
    assert ops["j"].status is S.FAILED and ops["j"].error["type"] == "WorkflowNotFound"
    # a callback started again keeps its id; a context ends with its result
    _, again = apply(
        ops,
        51.0,
        {"Id": "c", "Type": "CALLBACK", "SubType": "Callback", "Action": "START"},
        {
            "Id": "x",
            "Type": "CONTEXT",
            "SubType": "Map",
            "Name": "items",
            "Action": "SUCCEED",
            "Payload": "[1]",
        },
        {"Id": "w", "Type": "WAIT", "SubType": "Wait", "Action": "CANCEL"},
    )
    assert ops["c"].callback_id == callback_id
    assert [(u.event, u.operation.status) for u in again] == [
        ("succeeded", S.SUCCEEDED),
        ("wait_cancelled", S.CANCELLED),
    ]


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (
            {
                "Id": "x",
                "Type": "CONTEXT",
                "Action": "SUCCEED",
                "ContextOptions": {"ReplayChildren": True},
            },
            "ContextOptions.ReplayChildren",
        ),
        (step("CANCEL"), "CANCEL of STEP operation 'charge' (s1) is not supported by sqltide"),
        ({"Id": "c", "Type": "CALLBACK", "Action": "SUCCEED"}, "SUCCEED of CALLBACK operation"),
        ({"Id": "e", "Type": "EXECUTION", "Action": "START"}, "START of EXECUTION operation"),
        ({**step("START"), "Shiny": 1}, "Updates[0].Shiny is not supported by sqltide"),
        ({**step("START"), "StepOptions": {"Jitter": 1}}, "StepOptions.Jitter is not supported"),
        (step("START", "s 1"), "Updates[0].Id"),
        (step("START", "x" * 65), "Updates[0].Id"),
        ({**step("START"), "Name": "tab\there"}, "Updates[0].Name"),
        ({**step("START"), "SubType": "x" * 33}, "Updates[0].SubType"),
        (step("SUCCEED", Payload="a\x00b"), "NUL"),
        (step("RETRY", StepOptions={"NextAttemptDelaySeconds": 0}), "NextAttemptDelaySeconds"),
        (
            {"Id": "w", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": True}},
            "WaitSeconds",
        ),
        (
            {
                "Id": "c",
                "Type": "CALLBACK",
                "Action": "START",
                "CallbackOptions": {"TimeoutSeconds": -1},
            },
            "TimeoutSeconds",
        ),
        (
            {"Id": "i", "Type": "CHAINED_INVOKE", "Action": "START", "ChainedInvokeOptions": {}},
            "FunctionName is required",
        ),
        ({"Id": "s", "Type": "SLEEP", "Action": "START"}, "Updates[0].Type"),
        (step("PAUSE"), "Updates[0].Action"),
        (step("FAIL", Error={"ErrorMessage": 1}), "ErrorMessage"),
        (step("FAIL", Error={"Cause": "x"}), "Cause"),
    ],
)
def test_what_sqltide_cannot_take_is_refused_naming_it(
    update: dict[str, Any], message: str
) -> None:
    with pytest.raises(LambdaApiError, match=re.escape(message)) as caught:
        apply({}, 1.0, update)
    assert caught.value.aws_type == "InvalidParameterValueException"


def test_an_update_of_another_type_at_an_id_is_refused() -> None:
    ops: dict[str, OperationRecord] = {}
    apply(ops, 1.0, step("START", "a"))
    with pytest.raises(LambdaApiError, match="is a STEP in this execution"):
        apply(ops, 2.0, {"Id": "a", "Type": "WAIT", "Action": "START"})


def test_an_execution_update_ends_the_execution() -> None:
    translator, written = apply(
        {}, 1.0, {"Id": "r", "Type": "EXECUTION", "Action": "SUCCEED", "Payload": "42"}
    )
    assert written == [] and translator.finish is not None
    assert (translator.finish.status, translator.finish.result) == (ExecutionStatus.SUCCEEDED, "42")


def record(
    op_id: str, op_type: OperationType, status: OperationStatus, **kw: Any
) -> OperationRecord:
    return OperationRecord(
        execution_id="e1",
        id=op_id,
        type=op_type,
        sub_type="Step",
        status=status,
        started_at=1.0,
        updated_at=1.0,
        **kw,
    )


def test_operations_are_shown_in_the_model_s_shape() -> None:
    error = {"type": "ValueError", "message": "no", "data": None, "stack": ["line 1"]}
    ops = [
        record(
            "a", OperationType.STEP, S.SUCCEEDED, attempt=2, result='"x"', ended_at=3.0, name="s"
        ),
        record(
            "b",
            OperationType.STEP,
            S.PENDING,
            attempt=1,
            next_attempt_at=9.0,
            error=error,
            parent_id="x",
        ),
        record("c", OperationType.WAIT, S.STARTED, wake_at=8.0),
        record("d", OperationType.CALLBACK, S.FAILED, callback_id="cb", error=error, ended_at=4.0),
        record("e", OperationType.CONTEXT, S.SUCCEEDED, result="[1]", ended_at=4.0),
        record("f", OperationType.CHAINED_INVOKE, S.STARTED, child_execution_id="e2"),
    ]
    shown = [wire.operation(op, 5.0) for op in ops]
    for op in shown:
        check_shape(OPERATION, json.loads(json.dumps(op)), "Operation")
    assert (
        shown[0]["StepDetails"] == {"Attempt": 2, "Result": '"x"'}
        and shown[0]["EndTimestamp"] == 3.0
    )
    assert shown[1]["StepDetails"] == {
        "Attempt": 1,
        "NextAttemptTimestamp": 9.0,
        "Error": {"ErrorType": "ValueError", "ErrorMessage": "no", "StackTrace": ["line 1"]},
    }
    assert shown[1]["Status"] == "PENDING" and shown[1]["ParentId"] == "x"
    assert shown[2]["WaitDetails"] == {"ScheduledEndTimestamp": 8.0}
    assert shown[3]["CallbackDetails"]["CallbackId"] == "cb" and shown[4]["ContextDetails"] == {
        "Result": "[1]"
    }
    assert shown[5]["ChainedInvokeDetails"] == {}
    # in the invocation's event, times are epoch milliseconds, as Lambda sends them
    assert wire.operation(ops[2], 5.0, millis=True)["WaitDetails"] == {
        "ScheduledEndTimestamp": 8000
    }
    assert wire.execution_operation(EXECUTION)["ExecutionDetails"] == {"InputPayload": '{"a": 1}'}
    no_input = ExecutionRecord(
        **{**{f: getattr(EXECUTION, f) for f in EXECUTION.__slots__}, "input": "null"}
    )  # type: ignore[arg-type]
    assert "ExecutionDetails" not in wire.execution_operation(no_input)  # the SDK gives {}


def test_the_service_settles_what_is_its_to_settle_and_says_when_to_invoke_again() -> None:
    ended_child = ExecutionRecord(
        id="e2",
        workflow="w",
        name="n",
        principal="alice",
        status=ExecutionStatus.SUCCEEDED,
        created_at=1.0,
        updated_at=1.0,
        result="7",
    )
    ops = [
        record("w1", OperationType.WAIT, S.STARTED, wake_at=10.0),
        record("w2", OperationType.WAIT, S.STARTED, wake_at=30.0),
        record("c1", OperationType.CALLBACK, S.STARTED, callback_id="a", callback_timeout_at=10.0),
        record("c2", OperationType.CALLBACK, S.STARTED, callback_id="b", heartbeat_timeout_at=40.0),
        record("i1", OperationType.CHAINED_INVOKE, S.STARTED, child_execution_id="e2"),
        record("s1", OperationType.STEP, S.PENDING, attempt=1, next_attempt_at=20.0),
    ]
    settled = wire.settle(ops, 10.0, lambda i: ended_child if i == "e2" else None)
    assert [(u.operation.id, u.operation.status, u.event) for u in settled] == [
        ("w1", S.SUCCEEDED, "wait_succeeded"),
        ("c1", S.TIMED_OUT, "callback_timed_out"),
        ("i1", S.SUCCEEDED, "succeeded"),
    ]
    assert settled[2].operation.result == "7"
    assert wire.next_due(ops, 10.0, 5.0) == 10.0  # w1 is due
    assert wire.next_due(ops[1:2] + ops[3:4] + ops[5:], 10.0, 5.0) == 20.0
    # only an outside event (a callback without a timeout, an invoke) can wake it
    waiting = [record("c3", OperationType.CALLBACK, S.STARTED, callback_id="z"), ops[4]]
    assert wire.next_due(waiting, 10.0, 5.0) is None
    assert wire.next_due([], 10.0, 5.0) == 15.0  # nothing known pending: again later


def test_the_worker_refuses_to_invoke_towards_aws_itself() -> None:
    assert "AWS_ENDPOINT_URL_LAMBDA is not set" in (environment_problem({}) or "")
    assert environment_problem({"AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:8765"}) is None
    assert environment_problem({"AWS_ENDPOINT_URL": "http://127.0.0.1:8765"}) is None
    ignored = {"AWS_ENDPOINT_URL_LAMBDA": "http://x", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" in (environment_problem(ignored) or "")
    context = LambdaContext("f", "arn", "req", deadline=20.0, clock=lambda: 12.5)
    assert context.get_remaining_time_in_millis() == 7500


def test_a_refused_request_starts_nothing() -> None:
    children = Children()
    translator = Translator(EXECUTION, {}, 1.0, children)
    invoke = {
        "Id": "i",
        "Type": "CHAINED_INVOKE",
        "Action": "START",
        "ChainedInvokeOptions": {"FunctionName": "price_lookup"},
    }
    with pytest.raises(LambdaApiError, match="ReplayChildren"):
        translator.apply(
            parse_updates(
                [
                    invoke,
                    {
                        "Id": "x",
                        "Type": "CONTEXT",
                        "Action": "SUCCEED",
                        "ContextOptions": {"ReplayChildren": True},
                    },
                ]
            )
        )
    assert children.started == [] and translator.written == []
