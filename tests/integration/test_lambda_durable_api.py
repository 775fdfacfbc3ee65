"""The Lambda durable execution API (``sqltide.lambda_durable``) as boto3's real ``lambda``
client meets it, every answer checked against botocore's model, on SQLite and PostgreSQL.

No worker runs here (role ``api``): the test claims an execution itself, as a worker would,
and plays the invocation with the checkpoint token a worker mints, to check what the SDK
relies on: single-use tokens, a retried request answered again without a second write, the
lease guard, paging of the state, the model's checks, the signature.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from aws_durable import REGION, World, build_world
from sqltide.keys import server_secret
from sqltide.lambda_durable.arns import execution_arn
from sqltide.lambda_durable.tokens import CheckpointToken, token_key
from sqltide.store import ExecutionRecord, ExecutionStatus

pytest.importorskip("aws_durable_execution_sdk_python")
from aws_durable_execution_sdk_python.identifier import OperationIdNamespace

FLOWS = """
from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration

RUNS = []


@durable_execution
def two_steps(event: dict, context: DurableContext) -> dict:
    def first(step_context: StepContext) -> int:
        RUNS.append("first")
        return 1

    one = context.step(first, name="first")
    two = context.step(lambda _: RUNS.append("second") or 2, name="second")
    return {"sum": one + two, "input": event}
"""
OWNER = "test-worker"


@pytest.fixture
def world(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    module = tmp_path / "flows.py"
    module.write_text(textwrap.dedent(FLOWS))
    w = build_world(tmp_path, store_url, monkeypatch, [str(module)], role="api")
    yield w
    w.close()


class Invocation:
    """What the test plays: a worker's claim of an execution and its token."""

    def __init__(self, w: World, execution: ExecutionRecord, owner: str = OWNER):
        self.w = w
        self.execution = execution
        self.arn = execution_arn(execution, "000000000000")
        key = token_key(server_secret(w.runtime.store))
        self.token = CheckpointToken(execution.id, owner, execution.replays, 0, w.clock()).encode(
            key
        )


def claim(w: World, input: Any = None, owner: str = OWNER, lease: float = 30.0) -> Invocation:
    execution_id = w.start("two_steps", {"n": 7} if input is None else input)
    claimed = w.runtime.store.claim_executions(["two_steps"], owner, 1, lease, w.clock())
    assert [c.id for c in claimed] == [execution_id]
    return Invocation(w, claimed[0], owner)


def step(op_id: str, action: str, name: str, **more: Any) -> dict[str, Any]:
    return {"Id": op_id, "Type": "STEP", "SubType": "Step", "Action": action, "Name": name, **more}


def test_a_checkpoint_consumes_its_token_and_a_retry_is_answered_again(world: World) -> None:
    lam = world.lambda_client()
    inv = claim(world)
    updates = [step("a1", "START", "first"), step("a1", "SUCCEED", "first", Payload="1")]
    first = lam.checkpoint_durable_execution(
        DurableExecutionArn=inv.arn, CheckpointToken=inv.token, Updates=updates, ClientToken="c-1"
    )
    (op,) = first["NewExecutionState"]["Operations"]
    assert op["Id"] == "a1" and op["Status"] == "SUCCEEDED" and op["Name"] == "first"
    assert op["StepDetails"] == {"Attempt": 1, "Result": "1"}
    assert op["EndTimestamp"] >= op["StartTimestamp"]
    token = first["CheckpointToken"]
    assert token != inv.token

    # botocore retries with the same body: the same answer, nothing written twice
    again = lam.checkpoint_durable_execution(
        DurableExecutionArn=inv.arn, CheckpointToken=inv.token, Updates=updates, ClientToken="c-1"
    )
    assert again["CheckpointToken"] == token
    history = [e.event for e in world.runtime.store.get_history(inv.execution.id)]
    assert history.count("started") == 1 and history.count("succeeded") == 1

    # any other use of a consumed token is refused, as the SDK expects (a passing error)
    with pytest.raises(
        lam.exceptions.InvalidParameterValueException, match="Invalid checkpoint token"
    ):
        lam.checkpoint_durable_execution(
            DurableExecutionArn=inv.arn, CheckpointToken=inv.token, Updates=[], ClientToken="c-2"
        )
    with pytest.raises(
        lam.exceptions.InvalidParameterValueException, match="Invalid checkpoint token"
    ):
        lam.get_durable_execution_state(DurableExecutionArn=inv.arn, CheckpointToken=inv.token)
    forged = token[:-6] + ("AAAA" if token[-6:-2] != "AAAA" else "BBBB") + token[-2:]
    with pytest.raises(
        lam.exceptions.InvalidParameterValueException, match="Invalid checkpoint token"
    ):
        lam.get_durable_execution_state(DurableExecutionArn=inv.arn, CheckpointToken=forged)

    # the new token goes on: an empty checkpoint (the SDK's refresh) answers the next one
    refreshed = lam.checkpoint_durable_execution(
        DurableExecutionArn=inv.arn, CheckpointToken=token, ClientToken="c-3"
    )
    assert refreshed["CheckpointToken"] not in (token, inv.token)
    state = lam.get_durable_execution_state(
        DurableExecutionArn=inv.arn, CheckpointToken=refreshed["CheckpointToken"]
    )
    assert [o["Id"] for o in state["Operations"]] == [inv.execution.id, "a1"]


def test_a_token_dies_with_its_lease(world: World) -> None:
    lam = world.lambda_client()
    inv = claim(world, lease=0.05)
    store = world.runtime.store
    lam.checkpoint_durable_execution(
        DurableExecutionArn=inv.arn,
        CheckpointToken=inv.token,
        Updates=[step("a1", "START", "first")],
    )
    # the worker died: its lease runs out and the execution is claimed again
    world.clock.jump_to(world.clock() + 1)
    assert store.recover_executions(world.clock()) == 1
    again = claim_again(world, inv.execution.id)
    # the dead invocation's token (any of its tokens) is refused from now on
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="no longer holds"):
        lam.get_durable_execution_state(DurableExecutionArn=inv.arn, CheckpointToken=inv.token)
    # the new invocation reads what the dead one checkpointed: step a1 started, attempt 1
    state = lam.get_durable_execution_state(
        DurableExecutionArn=again.arn, CheckpointToken=again.token
    )
    started = state["Operations"][1]
    assert started["Status"] == "STARTED" and started["StepDetails"] == {"Attempt": 0}
    # a stopped execution takes no checkpoint either
    world.runtime.workflows.stop("alice", inv.execution.id)
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="STOPPED"):
        lam.checkpoint_durable_execution(
            DurableExecutionArn=again.arn, CheckpointToken=again.token, Updates=[]
        )


def claim_again(w: World, execution_id: str) -> Invocation:
    claimed = w.runtime.store.claim_executions(["two_steps"], OWNER, 1, 30.0, w.clock())
    assert [c.id for c in claimed] == [execution_id]
    return Invocation(w, claimed[0])


def test_the_state_comes_in_pages_the_execution_operation_first(world: World) -> None:
    lam = world.lambda_client()
    inv = claim(world, {"day": "2026-12-07"})
    updates = [step(f"s{i}", "START", f"step {i}") for i in range(5)]
    token = lam.checkpoint_durable_execution(
        DurableExecutionArn=inv.arn, CheckpointToken=inv.token, Updates=updates
    )["CheckpointToken"]
    pages, marker = [], ""
    while True:
        page = lam.get_durable_execution_state(
            DurableExecutionArn=inv.arn, CheckpointToken=token, Marker=marker, MaxItems=2
        )
        pages.append([o["Id"] for o in page["Operations"]])
        marker = page.get("NextMarker", "")
        if not marker:
            break
    assert pages == [[inv.execution.id, "s0"], ["s1", "s2"], ["s3", "s4"]]
    first = lam.get_durable_execution_state(DurableExecutionArn=inv.arn, CheckpointToken=token)
    execution = first["Operations"][0]
    assert execution["Type"] == "EXECUTION" and execution["Status"] == "STARTED"
    assert json.loads(execution["ExecutionDetails"]["InputPayload"]) == {"day": "2026-12-07"}
    assert inv.arn.rsplit("/", 1)[1] == execution["Id"]  # how the SDK finds it


def test_updates_are_checked_against_the_model_before_anything_is_written(world: World) -> None:
    lam = world.lambda_client(validate=False)
    inv = claim(world)
    bad_updates = [
        ([step("a b", "START", "first")], "Updates[0].Id"),
        (
            [{"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 0}}],
            "WaitSeconds",
        ),
        (
            [step("a1", "START", "first"), step("a1", "CANCEL", "first")],
            "CANCEL of STEP operation 'first' (a1) is not supported by sqltide",
        ),
        (
            [{"Id": "c1", "Type": "CALLBACK", "Action": "SUCCEED"}],
            "SUCCEED of CALLBACK operation (c1) is not supported",
        ),
        (
            [
                step("w1", "START", "first"),
                {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 1}},
            ],
            "is a STEP in this execution",
        ),
    ]
    token = inv.token
    for updates, message in bad_updates:
        with pytest.raises(
            lam.exceptions.InvalidParameterValueException,
            match=re.escape(message),
        ):
            lam.checkpoint_durable_execution(
                DurableExecutionArn=inv.arn, CheckpointToken=token, Updates=updates
            )
    # a member the model does not have (botocore cannot even send it): refused, naming it
    body = {"CheckpointToken": token, "Updates": [{**step("a1", "START", "first"), "Color": 1}]}
    path = f"/2025-12-01/durable-executions/{_quote(inv.arn)}/checkpoint"
    raw = signed(world, "POST", path, json.dumps(body).encode())
    assert raw.status_code == 400, raw.text
    assert raw.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    assert "Updates[0].Color is not supported by sqltide" in raw.json()["message"]
    assert world.runtime.store.get_operations(inv.execution.id) == []  # all or nothing
    # the token was not consumed by a refused request
    answer = lam.checkpoint_durable_execution(
        DurableExecutionArn=inv.arn,
        CheckpointToken=token,
        Updates=[{"Id": "done", "Type": "EXECUTION", "Action": "SUCCEED", "Payload": '{"big": 1}'}],
    )
    assert "CheckpointToken" not in answer  # the execution ended: no more checkpoints
    ended = world.runtime.store.get_execution(inv.execution.id)
    assert ended is not None and ended.status is ExecutionStatus.SUCCEEDED
    assert ended.result == '{"big": 1}'


def test_a_restarted_worker_goes_on_from_a_dead_invocation_s_checkpoints(
    tmp_path: Path, world: World, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lam = world.lambda_client()
    inv = claim(world, lease=0.01)  # its worker dies right after this checkpoint
    first = OperationIdNamespace().create_id_for_step(1)  # the SDK's id of the first step
    lam.checkpoint_durable_execution(
        DurableExecutionArn=inv.arn,
        CheckpointToken=inv.token,
        Updates=[step(first, "START", "first"), step(first, "SUCCEED", "first", Payload="1")],
    )
    world.close()
    # a worker starts on the same store: it recovers the execution (the lease ran out) and
    # invokes the handler, which finds its first step checkpointed and runs only the second
    worker = build_world(tmp_path / "worker", store_url, monkeypatch, [str(tmp_path / "flows.py")])
    try:
        rec = worker.run_to_end(inv.execution.id)
        assert rec.status is ExecutionStatus.SUCCEEDED, rec.error
        assert json.loads(rec.result or "") == {"sum": 3, "input": {"n": 7}}
        assert worker.module("two_steps")["RUNS"] == ["second"]
        assert rec.replays == 2
        lam = worker.lambda_client()
        with pytest.raises(lam.exceptions.InvalidParameterValueException, match="SUCCEEDED"):
            lam.get_durable_execution_state(DurableExecutionArn=inv.arn, CheckpointToken=inv.token)
    finally:
        worker.close()


def test_requests_must_be_signed_for_lambda_by_a_sqltide_key(world: World) -> None:
    inv = claim(world)
    path = f"/2025-12-01/durable-executions/{_quote(inv.arn)}/state?CheckpointToken={_quote(inv.token)}"
    ok = signed(world, "GET", path)
    assert ok.status_code == 200, ok.text
    wrong_service = signed(world, "GET", path, service="redshift-data")
    assert wrong_service.status_code == 403
    assert wrong_service.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert "'lambda'" in wrong_service.json()["Message"]
    unknown = signed(world, "GET", path, key_id="ASQTAAAAAAAAAAAAAAAA", secret="x" * 40)
    assert unknown.headers["x-amzn-ErrorType"] == "UnrecognizedClientException"
    unsigned = httpx.get(world.url + path)
    assert unsigned.status_code == 403
    assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_operations_sqltide_does_not_serve_answer_naming_themselves(world: World) -> None:
    lam = world.lambda_client()
    inv = claim(world)
    with pytest.raises(
        lam.exceptions.InvalidParameterValueException,
        match="GetDurableExecutionHistory is not supported",
    ):
        lam.get_durable_execution_history(DurableExecutionArn=inv.arn)
    with pytest.raises(
        lam.exceptions.InvalidParameterValueException, match="ListDurableExecutionsByFunction"
    ):
        lam.list_durable_executions_by_function(FunctionName="two_steps")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def signed(w: World, method: str, path: str, body: bytes = b"", **auth: str) -> httpx.Response:
    """A raw request signed as botocore signs it (``auth``: ``key_id``, ``secret``,
    ``service``; the world's key for ``lambda`` by default)."""
    key_id = auth.get("key_id", w.aws.access_key_id)
    secret = auth.get("secret", w.aws.secret_access_key)
    headers = {"Content-Type": "application/json"} if body else {}
    request = AWSRequest(method=method, url=w.url + path, data=body, headers=headers)
    SigV4Auth(Credentials(key_id, secret), auth.get("service", "lambda"), REGION).add_auth(request)
    return httpx.request(
        method, w.url + path, content=body, headers=dict(request.headers.items()), timeout=30
    )
