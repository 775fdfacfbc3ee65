"""``Client`` and ``AsyncClient`` behave the same: every public method, run through both
against one fake API (``httpx.MockTransport``), sends the same requests and gives the same
answer or the same error; and both expose the same methods with the same parameters."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pyarrow as pa
import pytest

from sqltide.client import AsyncClient, Client, SqltideError

BASE = "http://sqltide.test"
T0 = "2026-11-23T18:30:00.123456Z"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("SQLTIDE_URL", "SQLTIDE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SQLTIDE_HOME", str(tmp_path / "no-home"))


def description(id: str = "st-1", status: str = "SUBMITTED", **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id,
        "status": status,
        "query_string": "SELECT 1",
        "is_batch": False,
        "warehouse": "default",
        "principal": "admin",
        "with_event": False,
        "created_at": T0,
        "updated_at": T0,
        "has_result_set": status == "FINISHED",
        "sub_statements": [],
    }
    out.update(over)
    return out


def execution(id: str = "ex-1", status: str = "RUNNING", **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id,
        "workflow": "w",
        "name": "n",
        "principal": "admin",
        "status": status,
        "input": {"k": 1},
        "result": {"done": True} if status == "SUCCEEDED" else None,
        "created_at": T0,
        "updated_at": T0,
        "replays": 1,
    }
    out.update(over)
    return out


def callback(outcome: str) -> dict[str, Any]:
    status = {"succeed": "SUCCEEDED", "fail": "FAILED", "heartbeat": "STARTED"}[outcome]
    return {
        "callback_id": "cb-1",
        "execution_id": "ex-1",
        "execution_status": "RUNNING",
        "operation_id": "2",
        "name": "approve",
        "status": status,
        "heartbeat_timeout_at": T0,
    }


def arrow_bytes(values: list[int]) -> bytes:
    sink = pa.BufferOutputStream()
    table = pa.table({"n": values})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def error(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "details": details}}
    )


class FakeApi:
    """Every route the client calls, with two pages where it pages; records each request.

    ``st-1`` is RUNNING for two describes, then FINISHED; ``flaky`` paths drop the connection
    once before answering (the keep-alive race the client retries for idempotent requests).
    """

    def __init__(self) -> None:
        self.requests: list[tuple[Any, ...]] = []
        self.describes = 0
        self.execution_describes = 0
        self.dropped: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        headers = {k: request.headers.get(k) for k in ("authorization", "user-agent", "accept")}
        timeout = request.extensions.get("timeout")
        self.requests.append((request.method, str(request.url), body, headers, timeout))
        path, params = request.url.path, request.url.params
        if "flaky" in path and path not in self.dropped:
            self.dropped.add(path)
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        token = params.get("next_token")
        page_two = token == "p2"
        more = None if page_two else "p2"
        key = (request.method, path)
        if key == ("POST", "/v1/statements"):
            return httpx.Response(201, json=description(query_string=body["sql"]))
        if key == ("POST", "/v1/statements/batch"):
            return httpx.Response(201, json=description(is_batch=True, query_strings=body["sqls"]))
        if key == ("GET", "/v1/statements/st-1"):
            self.describes += 1
            return httpx.Response(
                200, json=description(status="FINISHED" if self.describes > 2 else "RUNNING")
            )
        if key == ("POST", "/v1/statements/st-1/cancel"):
            return httpx.Response(200, json=description(status="ABORTED"))
        if key == ("GET", "/v1/statements/st-1/result"):
            rows = [[3]] if page_two else [[1], [2]]
            headers = {"Sqltide-Next-Token": more} if more else {}
            if params["format"] == "arrow":
                return httpx.Response(
                    200, content=arrow_bytes([r[0] for r in rows]), headers=headers
                )
            if params["format"] == "csv":
                text = "".join(f"{r[0]}\n" for r in rows)
                return httpx.Response(200, content=text.encode(), headers=headers)
            columns = [{"name": "n", "type": "integer", "nullable": True}]
            page = {"id": "st-1", "columns": columns, "rows": rows, "total_rows": 3}
            return httpx.Response(200, json={**page, "next_token": more})
        if key == ("GET", "/v1/statements"):
            items = (
                [description(id="st-3")]
                if page_two
                else [description(id="st-1"), description(id="st-2")]
            )
            return httpx.Response(200, json={"statements": items, "next_token": more})
        if key == ("GET", "/v1/events"):
            items = [{"event_id": "e3"}] if page_two else [{"event_id": "e1"}, {"event_id": "e2"}]
            return httpx.Response(200, json={"events": items, "next_token": more})
        if key == ("POST", "/v1/events"):
            entries = [
                {"error_code": "validation_error", "error_message": "bad source"}
                if e["source"] == "bad"
                else {"event_id": f"ev-{n}"}
                for n, e in enumerate(body["entries"])
            ]
            return httpx.Response(200, json={"entries": entries})
        if key == ("POST", "/v1/workflows/w/executions"):
            return httpx.Response(201, json=execution(input=body["input"]))
        if key == ("GET", "/v1/executions/ex-1"):
            self.execution_describes += 1
            done = self.execution_describes > 2
            return httpx.Response(200, json=execution(status="SUCCEEDED" if done else "RUNNING"))
        if key == ("GET", "/v1/executions"):
            found = [execution("ex-3")] if page_two else [execution("ex-1"), execution("ex-2")]
            return httpx.Response(200, json={"executions": found, "next_token": more})
        if key == ("GET", "/v1/executions/ex-1/history"):
            after = int(params.get("after_seq", 0))
            events = [
                {"seq": n, "at": T0, "event": "started", "operation_id": "1"}
                for n in range(after + 1, after + 3)
            ]
            ops = [{"id": "1", "type": "STEP", "sub_type": "Step", "status": "SUCCEEDED"}]
            return httpx.Response(
                200,
                json={
                    "execution": execution(),
                    "operations": ops,
                    "events": events,
                    "next_after_seq": 2 if after == 0 else None,
                },
            )
        if key == ("POST", "/v1/executions/ex-1/stop"):
            return httpx.Response(200, json=execution(status="STOPPED", error=body["error"]))
        if request.method == "POST" and path.startswith("/v1/callbacks/cb-1/"):
            return httpx.Response(200, json=callback(path.rsplit("/", 1)[1]))
        if path.startswith("/v1/callbacks/"):
            return error(409, "callback_conflict", "Completed already.", state="SUCCEEDED")
        if path.startswith("/v1/workflows/"):
            return error(404, "workflow_not_found", "No such workflow.")
        simple = {
            ("GET", "/health"): {"status": "ok", "version": "x"},
            ("GET", "/v1/workflows"): {"workflows": [{"name": "w", "description": None}]},
            ("GET", "/v1/warehouses"): {"warehouses": [{"name": "default", "default": True}]},
            ("GET", "/v1/catalog/databases"): {"databases": ["memory"]},
            ("GET", "/v1/catalog/schemas"): {"schemas": ["main"]},
            ("GET", "/v1/catalog/tables"): {"tables": [{"name": "t", "schema": "main"}]},
            ("GET", "/v1/catalog/tables/main/t"): {
                "columns": [{"name": "n", "type": "integer", "nullable": False}]
            },
            ("GET", "/v1/rules"): {"rules": [{"name": "r"}]},
            ("GET", "/v1/topics"): {"topics": [{"name": "t"}]},
            ("GET", "/v1/deliveries"): {"deliveries": [{"id": "d-1", "status": "DEAD"}]},
            ("POST", "/v1/deliveries/d-1/redrive"): {"id": "d-1", "status": "PENDING"},
        }
        if key in simple:
            return httpx.Response(200, json=simple[key])
        if request.method == "PUT" and path.startswith(("/v1/rules/", "/v1/topics/")):
            return httpx.Response(200, json={"name": path.rsplit("/", 1)[1], **body})
        if request.method == "GET" and path in ("/v1/rules/r", "/v1/topics/t", "/v1/rules/flaky"):
            return httpx.Response(200, json={"name": path.rsplit("/", 1)[1]})
        if request.method == "DELETE" and path in ("/v1/rules/r", "/v1/topics/t"):
            return httpx.Response(204)
        if path.startswith("/v1/rules/"):
            return error(404, "rule_not_found", "No such rule.", name=path.rsplit("/", 1)[1])
        return error(404, "statement_not_found", "No such statement.", id=path)


#: (method, args, kwargs): every public method at least once, some also failing.
SCENARIOS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("execute", ("SELECT :n", {"n": 1}), {"statement_name": "s", "client_token": "tok"}),
    ("batch", (["SELECT 1", "SELECT 2"],), {"mode": "auto_commit", "warehouse": "wh"}),
    ("batch", ("SELECT 1",), {}),  # a TypeError, before any request
    ("describe", ("st-1",), {"wait": 2.5}),
    ("describe", ("nope",), {}),
    ("wait", ("st-1",), {"timeout": 60, "max_interval": 1.0}),
    ("wait", ("st-1",), {"timeout": 0}),
    ("cancel", ("st-1",), {}),
    ("result_page", ("st-1",), {"max_rows": 2}),
    ("result", ("st-1",), {"max_rows": 2}),
    ("rows", ("st-1",), {}),
    ("rows", ("nope",), {}),
    ("result_arrow", ("st-1",), {}),
    ("result_table", ("st-1",), {}),
    ("result_csv", ("st-1",), {"max_rows": 2}),
    ("list", ("FINISHED", "nightly"), {"created_after": "2026-01-01T00:00:00Z", "max_results": 2}),
    ("warehouses", (), {}),
    ("databases", ("wh",), {}),
    ("schemas", (), {"schema_pattern": "m%"}),
    ("tables", ("wh", "db", "main", "t%"), {}),
    ("describe_table", ("main", "t"), {"warehouse": "wh"}),
    ("health", (), {}),
    ("put_events", ([{"source": "app", "detail_type": "x"}, {"source": "bad"}],), {}),
    ("put_events", ({"source": "app"},), {}),
    ("put_event", ("app", "x", {"k": 1}), {"resources": ["r"], "time": T0}),
    ("put_event", ("bad", "x"), {}),
    ("events", (), {"start": "2026-01-01T00:00:00Z", "max_results": 2}),
    (
        "put_rule",
        ("r",),
        {"schedule": "rate(1 day)", "targets": [{"kind": "sql", "sql": "SELECT 1"}]},
    ),
    ("rule", ("r",), {}),
    ("rule", ("flaky",), {}),  # the connection drops once: sent again
    ("rule", ("gone",), {}),
    ("rules", (), {}),
    ("delete_rule", ("r",), {}),
    ("delete_rule", ("gone",), {}),
    ("put_topic", ("t", [{"protocol": "email", "endpoint": "a@b.c"}]), {"display_name": "T"}),
    ("topic", ("t",), {}),
    ("topics", (), {}),
    ("delete_topic", ("t",), {}),
    ("deliveries", ("PENDING", 5), {}),
    ("dead_letters", (), {"max_results": 3}),
    ("redrive", ("d-1",), {}),
    ("list_workflows", (), {}),
    ("start_execution", ("w", {"k": 1}), {"name": "n", "timeout_seconds": 60}),
    ("start_execution", ("nope",), {}),
    ("start_execution", ("flaky",), {"name": "n"}),  # under a name: sent again
    ("start_execution", ("flaky",), {}),  # without: not sent again
    ("get_execution", ("ex-1",), {"wait": 2}),
    ("get_execution", ("gone",), {}),
    ("wait_execution", ("ex-1",), {"timeout": 60, "max_interval": 1.0}),
    ("wait_execution", ("ex-1",), {"timeout": 0}),
    ("list_executions", ("w", "RUNNING"), {"created_after": "2026-01-01T00:00:00Z"}),
    ("execution_history", ("ex-1",), {"max_events": 2}),
    ("stop_execution", ("ex-1", {"type": "Manual", "message": "enough"}), {}),
    ("succeed_callback", ("cb-1", {"ok": True}), {}),
    ("succeed_callback", ("cb-2", "text"), {}),
    ("fail_callback", ("cb-1", "no"), {"error_type": "Rejected", "data": "d"}),
    ("heartbeat_callback", ("cb-1",), {}),
]


def outcome(value: Any) -> Any:
    """A comparable form of an answer or an error."""
    if isinstance(value, pa.Table):
        return ("table", value.to_pydict())
    if isinstance(value, SqltideError):
        return (type(value), value.code, value.http_status, str(value), value.details)
    if isinstance(value, BaseException):
        return (type(value), str(value))
    return value


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def run_sync(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    api, time = FakeApi(), FakeTime()
    client = Client(
        BASE,
        "key",
        transport=httpx.MockTransport(api),
        _sleep=time.sleep,
        _clock=time.clock,
        _uniform=lambda a, b: b,
    )
    with client:
        try:
            answer = getattr(client, name)(*args, **kwargs)
            if isinstance(answer, Iterator):
                answer = list(answer)
            got = outcome(answer)
        except Exception as exc:
            got = outcome(exc)
    return got, api.requests, time.sleeps


def run_async(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    api, time = FakeApi(), FakeTime()

    async def scenario() -> Any:
        client = AsyncClient(
            BASE,
            "key",
            transport=httpx.MockTransport(api),
            _sleep=time.async_sleep,
            _clock=time.clock,
            _uniform=lambda a, b: b,
        )
        async with client:
            try:
                answer = getattr(client, name)(*args, **kwargs)
                if isinstance(answer, AsyncIterator):
                    return outcome([item async for item in answer])
                return outcome(await answer)
            except Exception as exc:
                return outcome(exc)

    got = asyncio.run(scenario())
    return got, api.requests, time.sleeps


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize(
    ("name", "args", "kwargs"), SCENARIOS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(SCENARIOS)]
)
def test_both_clients_send_the_same_requests_and_answer_the_same(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    sync_answer, sync_requests, sync_sleeps = run_sync(name, args, kwargs)
    async_answer, async_requests, async_sleeps = run_async(name, args, kwargs)
    assert async_requests == sync_requests
    assert async_answer == sync_answer
    assert async_sleeps == sync_sleeps


def test_the_scenarios_cover_every_public_method() -> None:
    covered = {name for name, _, _ in SCENARIOS}
    assert set(public_methods(Client)) - {"close"} == covered


def test_the_scenarios_say_something() -> None:
    """A sanity check that the fake API answers as meant (parity of two wrong answers is
    no parity at all)."""
    answer, requests, sleeps = run_sync("wait", ("st-1",), {"timeout": 60, "max_interval": 1.0})
    assert answer.status == "FINISHED" and len(requests) == 3 and sleeps == [0.1, 0.2]
    rows, requests, _ = run_sync("rows", ("st-1",), {})
    assert rows == [[1], [2], [3]] and len(requests) == 2
    flaky, requests, _ = run_sync("rule", ("flaky",), {})
    assert flaky == {"name": "flaky"} and len(requests) == 2
    timeout, _, _ = run_sync("wait", ("st-1",), {"timeout": 0})
    assert timeout[1] == "wait_timeout"
    done, requests, sleeps = run_sync("wait_execution", ("ex-1",), {"timeout": 60})
    assert done.status == "SUCCEEDED" and done.result == {"done": True} and len(requests) == 3
    timeout, _, _ = run_sync("wait_execution", ("ex-1",), {"timeout": 0})
    assert timeout[1] == "execution_wait_timeout"
    history, requests, _ = run_sync("execution_history", ("ex-1",), {"max_events": 2})
    assert [e.seq for e in history.events] == [1, 2, 3, 4] and len(requests) == 2
    assert history.operation("1") is None and history.operations[0].status == "SUCCEEDED"
    found, requests, _ = run_sync("list_executions", ("w",), {})
    assert [e.id for e in found] == ["ex-1", "ex-2", "ex-3"] and len(requests) == 2
    # a start under a name is sent again after a dropped connection; one without is not
    again, requests, _ = run_sync("start_execution", ("flaky",), {"name": "n"})
    assert again[1] == "workflow_not_found" and len(requests) == 2
    once, requests, _ = run_sync("start_execution", ("flaky",), {})
    assert once[1] == "connection_failed" and len(requests) == 1
    conflict, _, _ = run_sync("succeed_callback", ("cb-2",), {})
    assert conflict[1] == "callback_conflict" and conflict[4] == {"state": "SUCCEEDED"}


def test_both_clients_have_the_same_methods_and_parameters() -> None:
    sync, async_ = public_methods(Client), public_methods(AsyncClient)
    assert set(async_) - {"aclose"} == set(sync)
    for name, method in sync.items():
        sync_params = inspect.signature(method).parameters
        assert inspect.signature(async_[name]).parameters == sync_params, name
        if inspect.isgeneratorfunction(method):
            assert inspect.isasyncgenfunction(async_[name]), name
        else:
            assert inspect.iscoroutinefunction(async_[name]), name
            returns = inspect.signature(method).return_annotation
            assert inspect.signature(async_[name]).return_annotation == returns, name
    init = inspect.signature(Client.__init__).parameters
    assert list(inspect.signature(AsyncClient.__init__).parameters) == list(init)
