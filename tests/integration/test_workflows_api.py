"""Workflows through the HTTP API, the Python client (both faces) and the CLI, against a real
loopback server whose runtime loaded a workflow module written to the test's folder, on
SQLite and on PostgreSQL: start (idempotent by name), describe and long-poll, list and page,
history, stop, callbacks from outside, every bad input, and the walls between tenants."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from conftest import make_settings
from helpers import api, wait_for
from sqltide.api.workflow_schemas import (
    CallbackOut,
    ExecutionHistoryOut,
    ExecutionListOut,
    ExecutionOut,
    WorkflowListOut,
)
from sqltide.cli import app
from sqltide.client import (
    AsyncClient,
    CallbackConflict,
    CallbackNotFound,
    Client,
    Execution,
    ExecutionConflict,
    ExecutionNotFound,
    ExecutionWaitTimeout,
    WorkflowNotFound,
)
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread
from sqltide.settings import Settings

FLOWS = '''
from sqltide.workflows import CallbackConfig, DurableContext, StepConfig, durable_execution
from sqltide.workflows.config import Duration
from sqltide.workflows.retries import RetryStrategyConfig, create_retry_strategy


@durable_execution
def greet(event, context: DurableContext):
    """Says hello.

    More words that the list does not show.
    """
    who = context.step(lambda _: event["who"], name="who")
    return {"hello": who}


@durable_execution
def approval(event, context: DurableContext):
    event = event or {}
    config = CallbackConfig(
        timeout=Duration.from_seconds(event.get("timeout", 300)),
        heartbeat_timeout=Duration.from_seconds(event.get("heartbeat", 0)),
    )
    callback = context.create_callback(name="approve", config=config)
    return {"answer": callback.result()}


@durable_execution
def napper(event, context: DurableContext):
    context.step(lambda _: "x", name="before")
    context.wait(Duration.from_seconds(600), name="nap")
    return "woke"


@durable_execution
def tour(event, context: DurableContext):
    context.step(lambda _: 1, name="one")
    context.run_in_child_context(lambda ctx: ctx.step(lambda _: 2, name="inner"), name="kid")
    context.map(
        [1, 2], lambda ctx, item, i, items: ctx.step(lambda _: item * 10, name="times"), name="mapper"
    )

    def flaky(step_context):
        if step_context.attempt < 2:
            raise RuntimeError("flake")
        return "ok"

    retry = create_retry_strategy(
        RetryStrategyConfig(max_attempts=3, initial_delay=Duration.from_seconds(1))
    )
    context.step(flaky, name="flaky", config=StepConfig(retry_strategy=retry))
    callback = context.create_callback(
        name="approve", config=CallbackConfig(timeout=Duration.from_minutes(5))
    )
    return callback.result()
'''

#: Small, so the size limit is tested with small inputs (the setting's least is 1 KiB).
PAYLOAD_LIMIT = 4096


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    """conftest's runtime, server and clients, on a runtime that loaded FLOWS."""
    module = tmp_path / "flows.py"
    module.write_text(textwrap.dedent(FLOWS))
    return make_settings(
        tmp_path,
        store=store_url,
        workflows=[str(module)],
        workflow_max_payload_bytes=PAYLOAD_LIMIT,
        max_body_bytes=64 * 1024,
    )


@pytest.fixture
def http(server: ServerThread, api_key: str) -> Iterator[httpx.Client]:
    with api(server, api_key) as client:
        yield client


@pytest.fixture
def bob(server: ServerThread, runtime: Runtime) -> Iterator[Client]:
    """Another principal's client."""
    with Client(server.url, create_key(runtime.store, "bob")[1]) as c:
        yield c


def error_of(answer: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    body = answer.json()["error"]
    return answer.status_code, body["code"], body["details"]


def operation_of(client: Client, execution_id: str, name: str) -> Any:
    """The operation named ``name`` once it exists (it is checkpointed by a worker)."""
    return wait_for(
        f"operation {name}",
        lambda: client.execution_history(execution_id).operation(name),
        timeout=10,
    )


# -- start, describe, wait -----------------------------------------------------------------------
def test_start_is_idempotent_by_name_and_describe_waits_for_the_end(
    client: Client, http: httpx.Client
) -> None:
    workflows = http.get("/v1/workflows")
    WorkflowListOut.model_validate(workflows.json())
    assert {"name": "greet", "description": "Says hello."} in workflows.json()["workflows"]
    assert [w["name"] for w in client.list_workflows()] == ["approval", "greet", "napper", "tour"]

    first = http.post(
        "/v1/workflows/greet/executions", json={"input": {"who": "ada"}, "name": "g-1"}
    )
    assert first.status_code == 201, first.text
    ExecutionOut.model_validate(first.json())
    started = first.json()
    assert started["status"] == "RUNNING" and started["name"] == "g-1"
    assert started["input"] == {"who": "ada"} and started["principal"] == "alice"
    # the same name and input: the same execution, 200; another input under it: 409
    again = http.post(
        "/v1/workflows/greet/executions", json={"input": {"who": "ada"}, "name": "g-1"}
    )
    assert again.status_code == 200 and again.json()["id"] == started["id"]
    other = http.post(
        "/v1/workflows/greet/executions", json={"input": {"who": "bo"}, "name": "g-1"}
    )
    assert error_of(other)[:2] == (409, "execution_conflict")
    assert client.start_execution("greet", {"who": "ada"}, name="g-1").id == started["id"]

    # the long-poll answers as soon as it ends
    t0 = time.monotonic()
    described = http.get(f"/v1/executions/{started['id']}", params={"wait": 20})
    assert time.monotonic() - t0 < 10
    ExecutionOut.model_validate(described.json())
    done = described.json()
    assert done["status"] == "SUCCEEDED", done
    assert done["result"] == {"hello": "ada"} and done["error"] is None
    assert done["ended_at"] and done["duration_ns"] > 0 and done["expires_at"]
    assert done["next_run_at"] is None and done["replays"] >= 1

    ex = client.get_execution(started["id"])
    assert isinstance(ex, Execution) and ex.is_terminal and ex.result == {"hello": "ada"}
    assert ex.to_dict() == Execution.from_dict(done).to_dict()
    # a timeout of the execution's own, within its bounds
    later = client.start_execution("greet", {"who": "x"}, timeout_seconds=120)
    assert round((later.timeout_at - later.created_at).total_seconds()) == 120
    assert client.wait_execution(later.id, timeout=10).status == "SUCCEEDED"


def test_wait_gives_up_with_the_last_description(client: Client) -> None:
    ex = client.start_execution("napper")
    with pytest.raises(ExecutionWaitTimeout) as caught:
        client.wait_execution(ex.id, timeout=0.2)
    assert caught.value.execution is not None and caught.value.execution.status == "RUNNING"


# -- list ----------------------------------------------------------------------------------------
def test_list_filters_and_pages(client: Client, http: httpx.Client) -> None:
    greets = [client.start_execution("greet", {"who": str(n)}) for n in range(3)]
    nap = client.start_execution("napper")
    for ex in greets:
        client.wait_execution(ex.id, timeout=10)

    found = [e.id for e in client.list_executions()]
    assert found == [nap.id, *reversed([e.id for e in greets])]  # newest first
    assert {e.id for e in client.list_executions("greet")} == {e.id for e in greets}
    assert [e.id for e in client.list_executions(status="RUNNING")] == [nap.id]
    assert [e.id for e in client.list_executions("greet", "RUNNING")] == []
    # between the first and the second start (halfway: no rounding of times decides)
    between = greets[0].created_at + (greets[1].created_at - greets[0].created_at) / 2
    assert len(list(client.list_executions(created_after=between))) == 3
    assert [e.id for e in client.list_executions(created_before=between)] == [greets[0].id]
    # pages: two, then two, then none left; the client follows them
    page = http.get("/v1/executions", params={"max_results": 2})
    ExecutionListOut.model_validate(page.json())
    assert len(page.json()["executions"]) == 2 and page.json()["next_token"]
    rest = http.get(
        "/v1/executions", params={"max_results": 2, "next_token": page.json()["next_token"]}
    ).json()
    assert len(rest["executions"]) == 2 and rest["next_token"] is None
    assert [e.id for e in client.list_executions(max_results=1)] == found
    # bad filters
    assert error_of(http.get("/v1/executions", params={"status": "DONE"}))[:2] == (
        422,
        "validation_error",
    )
    assert error_of(http.get("/v1/executions", params={"created_after": "yesterday"}))[:2] == (
        422,
        "validation_error",
    )
    assert error_of(http.get("/v1/executions", params={"max_results": 0}))[0] == 422
    forged = http.get("/v1/executions", params={"next_token": "x" + page.json()["next_token"]})
    assert error_of(forged)[:2] == (400, "invalid_next_token")


# -- history, and the CLI's timeline ----------------------------------------------------------
def test_history_shows_operations_attempts_and_events_and_the_cli_draws_it(
    client: Client, http: httpx.Client, server: ServerThread, api_key: str
) -> None:
    ex = client.start_execution("tour", {"go": True}, name="the-tour")
    callback = operation_of(client, ex.id, "approve")
    assert callback.type == "CALLBACK" and callback.status == "STARTED" and callback.callback_id

    history = client.execution_history(ex.id)
    ops = {op.name: op for op in history.operations}
    assert [op.seq for op in history.operations] == sorted(op.seq for op in history.operations)
    assert ops["one"].status == "SUCCEEDED" and ops["one"].result == 1 and ops["one"].attempt == 1
    assert ops["inner"].parent_id == ops["kid"].id and ops["kid"].sub_type == "RunInChildContext"
    assert ops["mapper"].sub_type == "Map"
    items = [op for op in history.operations if op.parent_id == ops["mapper"].id]
    assert [op.sub_type for op in items] == ["MapIteration", "MapIteration"]
    assert ops["flaky"].attempt == 2 and ops["flaky"].result == "ok"
    assert ops["flaky"].started_at and ops["flaky"].ended_at and ops["flaky"].duration_ns
    events = [(e.event, e.operation_id) for e in history.events]
    assert events[0] == ("execution_started", None)
    assert ("retry_scheduled", ops["flaky"].id) in events
    assert ("callback_created", callback.id) in events
    assert [e.seq for e in history.events] == list(range(1, len(history.events) + 1))

    # the raw answer, its shape and its pages of events
    answer = http.get(f"/v1/executions/{ex.id}/history", params={"max_events": 3})
    ExecutionHistoryOut.model_validate(answer.json())
    first = answer.json()
    assert len(first["events"]) == 3 and first["next_after_seq"] == 3
    assert len(first["operations"]) == len(history.operations)
    second = http.get(
        f"/v1/executions/{ex.id}/history", params={"max_events": 3, "after_seq": 3}
    ).json()
    assert [e["seq"] for e in second["events"]] == [4, 5, 6]
    assert client.execution_history(ex.id, max_events=2).events == history.events

    # the timeline, at 80 columns and piped
    out = cli(server, api_key, "workflows", "history", ex.id, columns=80).stdout
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    assert f"execution {ex.id}" in out and "RUNNING" in out and "name the-tour" in out

    def line_of(text: str) -> str:
        return next(line for line in lines if text in line)

    def indent_of(text: str) -> int:
        line = line_of(text)
        return line.index(text) - line.index("SUCCEEDED") if "SUCCEEDED" in line else -1

    assert re.match(
        r"^\s*\+\d\.\d{3}s\s+\d+ ms\s+1\s+SUCCEEDED\s+step one #1\s*$", line_of("step one")
    )
    assert indent_of("step inner") == indent_of("child context kid") + 2
    assert indent_of("map-item-0") == indent_of("map mapper") + 2
    assert indent_of("step times") == indent_of("map-item-0") + 2
    assert re.search(r"\s2\s+SUCCEEDED\s+step flaky", line_of("step flaky"))
    flat = " ".join(out.split())  # the notes under an operation fold at 80 columns
    assert "attempt 1 failed (RuntimeError); retried after 1s" in flat
    assert "STARTED" in line_of("callback approve")
    assert f"waits for callback {callback.callback_id}; times out at +5m" in flat
    # --results shows what each step gave; --events every history line; --json the answer
    shown = cli(server, api_key, "workflows", "history", ex.id, "--results", "--events").stdout
    assert "→ 20" in shown and "retry_scheduled" in shown and "callback_created" in shown
    as_json = json.loads(cli(server, api_key, "workflows", "history", ex.id, "--json").stdout)
    assert as_json["execution"]["id"] == ex.id and len(as_json["operations"]) == len(
        history.operations
    )

    # the callback completed from the CLI ends the execution with its result
    done = cli(server, api_key, "callbacks", "succeed", callback.callback_id, "--result", "yes")
    assert "SUCCEEDED" in done.stdout
    assert client.wait_execution(ex.id, timeout=10).result == "yes"
    out = cli(server, api_key, "workflows", "history", ex.id).stdout
    assert 'result: "yes"' in out and "waits for" not in out


# -- stop ----------------------------------------------------------------------------------------
def test_stop_during_a_wait(client: Client, http: httpx.Client) -> None:
    ex = client.start_execution("napper")
    nap = operation_of(client, ex.id, "nap")
    assert nap.type == "WAIT" and nap.status == "STARTED" and nap.wake_at is not None
    # Suspended until then: the wait's checkpoint commits just before the suspension does.
    wait_for(
        "the execution suspended until the wait's end",
        lambda: client.get_execution(ex.id).next_run_at == nap.wake_at,
    )

    stopped = client.stop_execution(ex.id, {"type": "Manual", "message": "enough"})
    assert stopped.status == "STOPPED" and stopped.error is not None
    assert stopped.error["type"] == "Manual" and stopped.error["message"] == "enough"
    assert client.get_execution(ex.id).status == "STOPPED"
    with pytest.raises(ExecutionConflict):
        client.stop_execution(ex.id)
    # the default error, through the API with no body
    other = client.start_execution("napper")
    answer = http.post(f"/v1/executions/{other.id}/stop")
    assert answer.status_code == 200 and answer.json()["error"]["type"] == "ExecutionStopped"
    code, kind, details = error_of(http.post(f"/v1/executions/{other.id}/stop"))
    assert (code, kind, details["status"]) == (409, "execution_conflict", "STOPPED")
    bad = http.post(f"/v1/executions/{other.id}/stop", json={"error": {"kind": "x"}})
    assert error_of(bad)[:2] == (422, "validation_error")


# -- callbacks -----------------------------------------------------------------------------------
def test_callbacks_complete_heartbeat_and_refuse_twice_late_or_unknown(
    client: Client, http: httpx.Client
) -> None:
    yes = client.start_execution("approval", {"heartbeat": 60})
    callback = operation_of(client, yes.id, "approve")
    before = callback.heartbeat_timeout_at
    assert before is not None

    beat = http.post(f"/v1/callbacks/{callback.callback_id}/heartbeat")
    assert beat.status_code == 200, beat.text
    CallbackOut.model_validate(beat.json())
    assert beat.json()["status"] == "STARTED" and beat.json()["execution_id"] == yes.id
    assert client.heartbeat_callback(callback.callback_id).heartbeat_timeout_at > before

    done = client.succeed_callback(callback.callback_id, {"ok": True})
    assert done.status == "SUCCEEDED" and done.operation_id == callback.id
    assert client.wait_execution(yes.id, timeout=10).result == {"answer": '{"ok":true}'}
    # twice: 409 with the state
    twice = http.post(f"/v1/callbacks/{callback.callback_id}/succeed", json={"result": "again"})
    code, kind, details = error_of(twice)
    assert (code, kind) == (409, "callback_conflict")
    assert details["state"] in ("SUCCEEDED", "EXECUTION_SUCCEEDED")
    with pytest.raises(CallbackConflict):
        client.heartbeat_callback(callback.callback_id)

    # failed from outside: the workflow's callback raises, the execution fails
    no = client.start_execution("approval")
    refused = operation_of(client, no.id, "approve")
    failed = client.fail_callback(refused.callback_id, "not today", error_type="Rejected")
    assert failed.status == "FAILED"
    ended = client.wait_execution(no.id, timeout=10)
    assert ended.status == "FAILED" and "not today" in json.dumps(ended.error)
    op = client.execution_history(no.id).operation("approve")
    assert op is not None and op.error is not None and op.error["type"] == "Rejected"

    # after its timeout: 409 TIMED_OUT (or the execution it failed)
    late = client.start_execution("approval", {"timeout": 1})
    timed = operation_of(client, late.id, "approve")
    wait_for(
        "the callback's timeout",
        lambda: time.time() > timed.callback_timeout_at.timestamp() + 0.05,
        timeout=5,
    )
    code, kind, details = error_of(
        http.post(f"/v1/callbacks/{timed.callback_id}/succeed", json={"result": 1})
    )
    assert (code, kind) == (409, "callback_conflict")
    assert details["state"] in ("TIMED_OUT", "EXECUTION_FAILED")

    # an unknown id: 404
    for outcome in ("succeed", "fail", "heartbeat"):
        code, kind, _ = error_of(http.post(f"/v1/callbacks/no-such-callback/{outcome}"))
        assert (code, kind) == (404, "callback_not_found")
    with pytest.raises(CallbackNotFound):
        client.succeed_callback("no-such-callback", 1)
    # a fail body that is not an error object
    bad = http.post(f"/v1/callbacks/{refused.callback_id}/fail", json={"error": {"type": 3}})
    assert error_of(bad)[:2] == (422, "validation_error")


# -- bad input -----------------------------------------------------------------------------------
def test_bad_input_is_refused_before_anything_is_recorded(
    client: Client, http: httpx.Client
) -> None:
    def refused(body: Any = None, workflow: str = "greet", **kw: Any) -> tuple[int, str]:
        answer = http.post(f"/v1/workflows/{workflow}/executions", json=body, **kw)
        return error_of(answer)[:2]

    assert refused({"input": 1}, workflow="nope") == (404, "workflow_not_found")
    with pytest.raises(WorkflowNotFound):
        client.start_execution("nope")
    malformed = http.post(
        "/v1/workflows/greet/executions",
        content=b'{"input": {"who": ',
        headers={"Content-Type": "application/json"},
    )
    assert error_of(malformed)[:2] == (400, "malformed_json")
    not_json = http.post(
        "/v1/workflows/greet/executions",
        content=b'{"input": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert error_of(not_json)[:2] == (422, "validation_error")
    assert refused({"input": 2**70}) == (422, "validation_error")
    assert refused({"input": {"deep": [[[[[[[[[[[[]]]]]]]]]]]]}, "extra": 1}) == (
        422,
        "validation_error",
    )
    assert refused({"input": "x" * (PAYLOAD_LIMIT + 1)}) == (413, "payload_too_large")
    assert refused({"input": "x" * (100 * 1024)}) == (413, "payload_too_large")  # the body
    assert refused({"input": 1, "name": "has space"}) == (422, "validation_error")
    assert refused({"input": 1, "timeout_seconds": 0}) == (422, "validation_error")
    assert refused({"input": 1, "timeout_seconds": 367 * 86_400}) == (422, "validation_error")
    assert list(client.list_executions()) == []  # nothing was recorded

    for unknown in ("6b3c0c52-94a4-4a4e-9d4b-6e43d1c1b8a0", "not-an-id"):
        for method, suffix in (("GET", ""), ("GET", "/history"), ("POST", "/stop")):
            answer = http.request(method, f"/v1/executions/{unknown}{suffix}")
            assert error_of(answer)[:2] == (404, "execution_not_found"), (unknown, suffix)
    with pytest.raises(ExecutionNotFound):
        client.get_execution("not-an-id", wait=1)
    assert error_of(http.get("/v1/executions/x/history", params={"max_events": 0}))[0] == 422


# -- tenants -------------------------------------------------------------------------------------
def test_another_principals_executions_and_callbacks_are_walled_off(
    client: Client, bob: Client
) -> None:
    ex = client.start_execution("approval", name="shared")
    callback = operation_of(client, ex.id, "approve")
    for call in (
        lambda: bob.get_execution(ex.id),
        lambda: bob.get_execution(ex.id, wait=1),
        lambda: bob.execution_history(ex.id),
        lambda: bob.stop_execution(ex.id),
    ):
        with pytest.raises(ExecutionNotFound):
            call()
    for call in (
        lambda: bob.succeed_callback(callback.callback_id, "mine now"),
        lambda: bob.fail_callback(callback.callback_id, "no"),
        lambda: bob.heartbeat_callback(callback.callback_id),
    ):
        with pytest.raises(CallbackNotFound):
            call()
    assert list(bob.list_executions()) == []
    # names belong to their principal: bob's "shared" is an execution of his own
    bobs = bob.start_execution("approval", name="shared")
    assert bobs.id != ex.id and bobs.name == "shared" and bobs.principal == "bob"
    assert [e.id for e in client.list_executions()] == [ex.id]
    assert client.get_execution(ex.id).status == "RUNNING"  # untouched by bob


# -- the async face ------------------------------------------------------------------------------
def test_the_async_client_starts_watches_and_completes(server: ServerThread, api_key: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(server.url, api_key) as client:
            assert "approval" in [w["name"] for w in await client.list_workflows()]
            ex = await client.start_execution("approval", name="async-1")
            assert (await client.start_execution("approval", name="async-1")).id == ex.id
            deadline = time.monotonic() + 10
            while True:
                history = await client.execution_history(ex.id)
                op = history.operation("approve")
                if op is not None or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
            assert op is not None and op.callback_id
            assert (await client.heartbeat_callback(op.callback_id)).status == "STARTED"
            await client.succeed_callback(op.callback_id, "go")
            done = await client.wait_execution(ex.id, timeout=10)
            assert done.status == "SUCCEEDED" and done.result == {"answer": "go"}
            assert [e.id async for e in client.list_executions("approval", max_results=1)] == [
                ex.id
            ]
            nap = await client.start_execution("napper")
            assert (await client.stop_execution(nap.id)).status == "STOPPED"
            assert (await client.get_execution(nap.id, wait=1)).status == "STOPPED"
            other = await client.start_execution("approval")
            while (await client.execution_history(other.id)).operation("approve") is None:
                await asyncio.sleep(0.02)
            cb = (await client.execution_history(other.id)).operation("approve")
            assert cb is not None and cb.callback_id
            await client.fail_callback(cb.callback_id, "no")
            assert (await client.wait_execution(other.id, timeout=10)).status == "FAILED"

    asyncio.run(scenario())


# -- the CLI -------------------------------------------------------------------------------------
def cli(
    server: ServerThread, key: str, *args: str, code: int = 0, columns: int = 200, stdin: str = ""
) -> Any:
    runner = CliRunner(
        env={"SQLTIDE_URL": server.url, "SQLTIDE_API_KEY": key, "COLUMNS": str(columns)}
    )
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def test_the_cli_starts_lists_describes_stops_and_completes(
    server: ServerThread, api_key: str, client: Client, tmp_path: Path
) -> None:
    listed = cli(server, api_key, "workflows", "list").stdout
    assert "greet" in listed and "Says hello." in listed and "More words" not in listed

    # start: --input from a file, --wait prints the result (JSON) on stdout
    (tmp_path / "in.json").write_text('{"who": "ada"}')
    done = cli(
        server,
        api_key,
        "workflows",
        "start",
        "greet",
        "-i",
        f"@{tmp_path / 'in.json'}",
        "--name",
        "c-1",
        "--wait",
    )
    assert json.loads(done.stdout) == {"hello": "ada"}
    # the same name again: the same execution (its id on stdout)
    ex = next(client.list_executions("greet"))
    again = cli(
        server, api_key, "workflows", "start", "greet", "-i", '{"who": "ada"}', "--name", "c-1"
    )
    assert again.stdout.strip() == ex.id
    # from stdin, and --json
    started = cli(server, api_key, "workflows", "start", "napper", "-i", "-", "--json", stdin="{}")
    nap = json.loads(started.stdout)
    assert nap["status"] == "RUNNING" and nap["workflow"] == "napper"
    # still running when --wait gives up: exit 2, the id said (the execution goes on)
    slow = cli(
        server, api_key, "workflows", "start", "napper", "--wait", "--wait-timeout", "0.3", code=2
    )
    assert "still RUNNING after 0.3 s; execution id" in " ".join(slow.output.split())
    # a failure under --wait exits 1 with the error
    failed = cli(
        server,
        api_key,
        "workflows",
        "start",
        "approval",
        "--input",
        '{"timeout": 1}',
        "--wait",
        "--wait-timeout",
        "20",
        code=1,
    )
    assert "FAILED" in failed.output and "CallbackTimeoutError" in failed.output

    rows = cli(server, api_key, "workflows", "executions", columns=80).stdout
    assert all(len(line) <= 80 for line in rows.splitlines()), rows
    assert nap["id"] in rows and ex.id in rows and "RUNNING" in rows
    only = cli(server, api_key, "workflows", "executions", "greet", "--json").stdout
    assert [json.loads(line)["id"] for line in only.splitlines()] == [ex.id]
    running = cli(server, api_key, "workflows", "executions", "--status", "running").stdout
    assert nap["id"] in running and ex.id not in running

    described = cli(server, api_key, "workflows", "describe", ex.id).stdout
    assert "SUCCEEDED" in described and '{"hello":"ada"}' in described and "c-1" in described
    as_json = json.loads(cli(server, api_key, "workflows", "describe", ex.id, "--json").stdout)
    assert as_json["result"] == {"hello": "ada"}

    stopped = cli(server, api_key, "workflows", "stop", nap["id"], "--message", "enough").stdout
    assert "STOPPED" in stopped
    assert client.get_execution(nap["id"]).error["message"] == "enough"
    timeline = cli(server, api_key, "workflows", "history", nap["id"]).stdout
    assert "left unfinished: the execution ended STOPPED" in timeline
    assert "stopped: ExecutionStopped: enough" in timeline

    # callbacks: heartbeat, fail (with type and data), and the errors
    pending = client.start_execution("approval")
    callback = operation_of(client, pending.id, "approve")
    beat = json.loads(
        cli(server, api_key, "callbacks", "heartbeat", callback.callback_id, "--json").stdout
    )
    assert beat["status"] == "STARTED" and beat["execution_id"] == pending.id
    out = cli(
        server,
        api_key,
        "callbacks",
        "fail",
        callback.callback_id,
        "-m",
        "no",
        "--type",
        "Rejected",
        "--data",
        "ticket 7",
    ).stdout
    assert "FAILED" in out
    op = client.execution_history(pending.id).operation("approve")
    assert op is not None and op.error == {
        "type": "Rejected",
        "message": "no",
        "data": "ticket 7",
        "stack": None,
    }
    twice = cli(server, api_key, "callbacks", "succeed", callback.callback_id, code=1)
    assert "callback_conflict" in twice.output
    unknown = cli(server, api_key, "callbacks", "heartbeat", "nope", code=1)
    assert "callback_not_found" in unknown.output
    missing = cli(server, api_key, "workflows", "describe", "nope", code=1)
    assert "execution_not_found" in missing.output
    bad = cli(server, api_key, "workflows", "start", "greet", "--input", "{who}", code=2)
    assert "not valid JSON" in bad.output
    nope = cli(server, api_key, "workflows", "start", "nope", code=1)
    assert "workflow_not_found" in nope.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_openapi_describes_every_workflow_route(server: ServerThread) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    paths = spec["paths"]
    expected = {
        ("/v1/workflows", "get"): "WorkflowListOut",
        ("/v1/workflows/{workflow}/executions", "post"): "ExecutionOut",
        ("/v1/executions", "get"): "ExecutionListOut",
        ("/v1/executions/{execution_id}", "get"): "ExecutionOut",
        ("/v1/executions/{execution_id}/history", "get"): "ExecutionHistoryOut",
        ("/v1/executions/{execution_id}/stop", "post"): "ExecutionOut",
        ("/v1/callbacks/{callback_id}/succeed", "post"): "CallbackOut",
        ("/v1/callbacks/{callback_id}/fail", "post"): "CallbackOut",
        ("/v1/callbacks/{callback_id}/heartbeat", "post"): "CallbackOut",
    }
    for (path, method), model in expected.items():
        operation = paths[path][method]
        answer = operation["responses"]["200" if "200" in operation["responses"] else "201"]
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith(model), path
        assert operation["responses"]["404"]["content"]["application/json"]["schema"][
            "$ref"
        ].endswith("ErrorEnvelope")
    start = paths["/v1/workflows/{workflow}/executions"]["post"]
    assert set(start["responses"]) >= {"200", "201"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["StartBody"]["properties"]) == {"input", "name", "timeout_seconds"}
    assert set(schemas["ErrorObject"]["properties"]) == {"type", "message", "data", "stack"}
