"""Checkpoint tokens and the names the Lambda API uses (``sqltide.lambda_durable``)."""

from __future__ import annotations

import re
import uuid

import botocore.session
import pytest

from sqltide.errors import LambdaApiError
from sqltide.lambda_durable import arns
from sqltide.lambda_durable.tokens import CheckpointToken, TokenLedger, token_key
from sqltide.store import ExecutionRecord, ExecutionStatus

MODEL = botocore.session.get_session().get_service_model("lambda")
KEY = token_key(b"s" * 32)


def pattern(shape: str) -> re.Pattern[str]:
    return re.compile(MODEL.shape_for(shape).metadata["pattern"])


def execution(**kw: object) -> ExecutionRecord:
    base: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "workflow": "nightly.refresh",
        "name": "alice run:2026-12-07",
        "principal": "alice",
        "status": ExecutionStatus.RUNNING,
        "created_at": 1.0,
        "updated_at": 1.0,
    }
    base.update(kw)
    return ExecutionRecord(**base)  # type: ignore[arg-type]


def test_an_execution_arn_has_the_model_s_form_and_names_the_execution() -> None:
    rec = execution()
    arn = arns.execution_arn(rec, "123456789012")
    assert pattern("DurableExecutionArn").fullmatch(arn)
    assert arn.endswith(
        f":function:nightly-refresh:$LATEST/durable-execution/run-2026-12-07/{rec.id}"
    )
    assert arns.execution_id(arn) == rec.id
    assert pattern("DurableExecutionName").fullmatch(arns.execution_name(rec))
    assert pattern("NameSpacedFunctionArn").fullmatch(
        arns.function_arn(rec.workflow, "123456789012")
    )


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST/durable-execution/n/not-a-uuid",
        "arn:aws:s3:::bucket/key",
        f"arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST/durable-execution/n/{uuid.uuid4()}/x",
    ],
)
def test_anything_else_is_not_an_execution_arn(arn: str) -> None:
    with pytest.raises(LambdaApiError) as caught:
        arns.execution_id(arn)
    assert caught.value.aws_type == "InvalidParameterValueException"


@pytest.mark.parametrize(
    ("function", "workflow"),
    [
        ("price_lookup", "price_lookup"),
        ("price_lookup:$LATEST", "price_lookup"),
        ("arn:aws:lambda:eu-west-1:123456789012:function:price_lookup", "price_lookup"),
        ("arn:aws:lambda:eu-west-1:123456789012:function:price_lookup:7", "price_lookup"),
        ("123456789012:function:price.lookup", "price.lookup"),
    ],
)
def test_an_invoke_names_a_workflow_by_name_or_function_arn(function: str, workflow: str) -> None:
    assert pattern("NamespacedFunctionName").fullmatch(function)
    assert arns.target_workflow(function) == workflow


def test_callback_ids_are_in_the_model_s_alphabet() -> None:
    ids = {arns.new_callback_id() for _ in range(50)}
    assert len(ids) == 50 and all(pattern("CallbackId").fullmatch(i) for i in ids)


def test_a_token_says_whose_it_is_and_nobody_can_forge_one() -> None:
    token = CheckpointToken("e1", "vm:12:ab", 3, 0, 1_700_000_000.25)
    text = token.encode(KEY)
    assert pattern("CheckpointToken").fullmatch(text) and len(text) <= 2048
    assert CheckpointToken.decode(KEY, text) == token
    assert token.following(5.0) == CheckpointToken("e1", "vm:12:ab", 3, 1, 5.0)
    tampered = text[:10] + ("A" if text[10] != "A" else "B") + text[11:]
    for bad in (tampered, text[:-4], "not base64!", "", "x" * 3000):
        with pytest.raises(LambdaApiError, match=r"^Invalid checkpoint token"):
            CheckpointToken.decode(KEY, bad)
    with pytest.raises(LambdaApiError, match=r"^Invalid checkpoint token"):
        CheckpointToken.decode(token_key(b"another server"), text)


def test_the_ledger_consumes_each_token_once_and_answers_a_retry_again() -> None:
    ledger = TokenLedger()
    calls: list[int] = []

    def run() -> dict[str, object]:
        calls.append(1)
        return {"n": len(calls)}

    t0 = CheckpointToken("e1", "w", 1, 0, 0.0)
    assert ledger.consume(t0, "t0", "c1", run) == {"n": 1}
    assert ledger.consume(t0, "t0", "c1", run) == {"n": 1}  # the same request: no second run
    assert ledger.answered(t0, "t0", "c1") == {"n": 1}
    assert ledger.answered(t0, "t0", "c2") is None
    with pytest.raises(LambdaApiError, match="used by an earlier checkpoint"):
        ledger.consume(t0, "t0", "c2", run)
    with pytest.raises(LambdaApiError, match="used by an earlier checkpoint"):
        ledger.check_current(t0)
    t1 = t0.following(1.0)
    ledger.check_current(t1)
    assert ledger.consume(t1, "t1", "c3", run) == {"n": 2}
    # a newer claim starts afresh; an older one is refused
    assert ledger.consume(CheckpointToken("e1", "w", 2, 0, 2.0), "u0", "c1", run) == {"n": 3}
    with pytest.raises(LambdaApiError, match="claimed again"):
        ledger.consume(CheckpointToken("e1", "w", 1, 2, 3.0), "t2", "c4", run)
    assert len(calls) == 3


def test_the_ledger_forgets_the_oldest_executions_beyond_its_size() -> None:
    ledger = TokenLedger(max_entries=2)
    for n in range(3):
        ledger.consume(CheckpointToken(f"e{n}", "w", 1, 0, 0.0), "t", None, dict)
    assert ledger.answered(CheckpointToken("e0", "w", 1, 0, 0.0), "t", None) is None
    assert ledger.answered(CheckpointToken("e2", "w", 1, 0, 0.0), "t", None) == {}
