"""Unit tests of the Python client against a fake API on ``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

import sqltide
from sqltide.client import (
    AsyncClient,
    Client,
    Column,
    ConnectionFailed,
    IdempotencyConflict,
    InvalidState,
    ResultPage,
    SqltideError,
    Statement,
    StatementNotFound,
    StatementWaitTimeout,
    SubStatement,
)
from sqltide.client import __all__ as client_all

BASE = "http://sqltide.test"
T0 = "2026-11-23T18:30:00.123456Z"
T1 = "2026-11-23T18:30:01.500000Z"

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("SQLTIDE_URL", "SQLTIDE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SQLTIDE_HOME", str(tmp_path / "no-home"))


# -- a fake API ------------------------------------------------------------------------------


def description(id: str = "st-1", status: str = "SUBMITTED", **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id,
        "status": status,
        "statement_name": None,
        "query_string": "SELECT 1",
        "query_strings": None,
        "is_batch": False,
        "batch_mode": None,
        "warehouse": "default",
        "parameters": None,
        "principal": "admin",
        "client_token": None,
        "with_event": False,
        "session_id": None,
        "created_at": T0,
        "updated_at": T0,
        "started_at": None,
        "ended_at": None,
        "duration_ns": None,
        "result_rows": None,
        "result_size": None,
        "has_result_set": False,
        "result_expires_at": None,
        "error": None,
        "sub_statements": [],
    }
    out.update(over)
    return out


def error(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return httpx.Response(status, json=body)


class FakeApi:
    """Routes ``(method, path)`` to handlers and records every request."""

    def __init__(self, routes: dict[tuple[str, str], Handler] | None = None):
        self.routes = dict(routes or {})
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return error(404, "not_found", "Not found.")
        return handler(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


def fixed(body: Any, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def client_for(api: Handler, **kwargs: Any) -> Client:
    kwargs.setdefault("api_key", "secret")
    return Client(BASE, transport=httpx.MockTransport(api), **kwargs)


def async_client_for(api: Handler, **kwargs: Any) -> AsyncClient:
    kwargs.setdefault("api_key", "secret")
    return AsyncClient(BASE, transport=httpx.MockTransport(api), **kwargs)


class FakeTime:
    """A clock that only moves when slept on (or when the fake server holds a long-poll)."""

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


def status_server(
    time: FakeTime, statuses: Iterable[str], *, long_poll: bool, error: dict | None = None
) -> FakeApi:
    """Describe answers with ``statuses`` in turn (then the last one for ever).

    With ``long_poll`` a non-terminal answer comes only after the asked ``wait`` has passed.
    """
    pending = list(statuses)

    def describe(request: httpx.Request) -> httpx.Response:
        status = pending.pop(0) if len(pending) > 1 else pending[0]
        terminal = status in ("FINISHED", "FAILED", "ABORTED")
        if long_poll and not terminal:
            time.now += float(request.url.params.get("wait", 0))
        body = description(status=status, error=error if status == "FAILED" else None)
        return httpx.Response(200, json=body)

    return FakeApi({("GET", "/v1/statements/st-1"): describe})


def waits(api: FakeApi) -> list[str]:
    return [r.url.params["wait"] for r in api.requests]


# -- the package -----------------------------------------------------------------------------


def test_public_names_are_curated() -> None:
    for name in ("Client", "AsyncClient", "Statement", "SubStatement", "ResultPage", "Column"):
        assert name in client_all
    assert "StatementWaitTimeout" in client_all
    assert "SqltideError" in client_all
    assert issubclass(StatementWaitTimeout, SqltideError)
    assert StatementWaitTimeout.code == "wait_timeout"
    assert issubclass(ConnectionFailed, SqltideError)
    assert ConnectionFailed.code == "connection_failed"


# -- request shapes --------------------------------------------------------------------------


def test_execute_sends_the_documented_body_and_headers() -> None:
    api = FakeApi({("POST", "/v1/statements"): fixed(description(), 201)})
    with client_for(api) as client:
        statement = client.execute(
            "SELECT :n AS n", {"n": 1}, statement_name="nightly", warehouse="wh"
        )

    request = api.last
    assert str(request.url) == f"{BASE}/v1/statements"
    assert request.headers["Authorization"] == "Bearer secret"
    assert request.headers["User-Agent"] == f"sqltide-python/{sqltide.__version__}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "sql": "SELECT :n AS n",
        "parameters": {"n": 1},
        "statement_name": "nightly",
        "client_token": None,
        "with_event": False,
        "warehouse": "wh",
        "session_id": None,
        "session_keep_alive_seconds": None,
    }
    assert isinstance(statement, Statement)
    assert statement.id == "st-1"
    assert statement.status == "SUBMITTED"
    assert statement.created_at == datetime(2026, 11, 23, 18, 30, 0, 123456, tzinfo=UTC)
    assert statement.created_at.tzinfo is not None
    assert not statement.is_terminal


def test_execute_in_a_session() -> None:
    api = FakeApi({("POST", "/v1/statements"): fixed(description(session_id="se-1"), 201)})
    with client_for(api) as client:
        statement = client.execute("SELECT 1", session_keep_alive_seconds=60, with_event=True)
        client.execute("SELECT 2", session_id=statement.session_id, client_token="tok")

    first, second = api.bodies()
    assert first["session_keep_alive_seconds"] == 60
    assert first["with_event"] is True
    assert second["session_id"] == "se-1"
    assert second["client_token"] == "tok"
    assert statement.session_id == "se-1"


def test_batch_sends_sqls_and_mode_and_parses_sub_statements() -> None:
    sub = {
        "id": "b-1:1",
        "status": "FINISHED",
        "query_string": "CREATE TABLE t (x INT)",
        "created_at": T0,
        "updated_at": T1,
        "started_at": T0,
        "ended_at": T1,
        "duration_ns": 1,
        "result_rows": 0,
        "result_size": None,
        "has_result_set": False,
        "error": None,
    }
    body = description(
        "b-1",
        "FINISHED",
        is_batch=True,
        batch_mode="auto_commit",
        query_strings=["CREATE TABLE t (x INT)", "SELECT 1"],
        sub_statements=[sub, {**sub, "id": "b-1:2", "query_string": "SELECT 1"}],
    )
    api = FakeApi({("POST", "/v1/statements/batch"): fixed(body, 201)})
    with client_for(api) as client:
        statement = client.batch(
            ["CREATE TABLE t (x INT)", "SELECT 1"], mode="auto_commit", client_token="c"
        )
        with pytest.raises(TypeError):
            client.batch("SELECT 1")  # type: ignore[arg-type]

    assert api.bodies() == [
        {
            "sqls": ["CREATE TABLE t (x INT)", "SELECT 1"],
            "mode": "auto_commit",
            "parameters": None,
            "statement_name": None,
            "client_token": "c",
            "with_event": False,
            "warehouse": None,
            "session_id": None,
            "session_keep_alive_seconds": None,
        }
    ]
    assert statement.is_batch
    assert statement.query_strings == ("CREATE TABLE t (x INT)", "SELECT 1")
    assert [s.id for s in statement.sub_statements] == ["b-1:1", "b-1:2"]
    assert isinstance(statement.sub_statements[0], SubStatement)
    assert statement.sub_statements[0].ended_at == datetime(
        2026, 11, 23, 18, 30, 1, 500000, tzinfo=UTC
    )
    assert statement.sub_statements[0].is_terminal


def test_batch_mode_defaults_to_transaction() -> None:
    api = FakeApi({("POST", "/v1/statements/batch"): fixed(description(), 201)})
    with client_for(api) as client:
        client.batch(["SELECT 1"])
    assert api.bodies()[0]["mode"] == "transaction"


def test_describe_paths_and_long_poll_timeout() -> None:
    api = FakeApi(
        {
            ("GET", "/v1/statements/st-1"): fixed(description()),
            ("GET", "/v1/statements/b-1:2"): fixed(description("b-1:2", "FINISHED")),
        }
    )
    with client_for(api, timeout=5.0) as client:
        client.describe("st-1")
        client.describe("st-1", wait=20)
        sub = client.describe("b-1:2", wait=2.5)

    plain, held, fractional = api.requests
    assert "wait" not in plain.url.params
    assert held.url.params["wait"] == "20"
    # The request must outlive the server's hold even with a short client timeout.
    assert held.extensions["timeout"]["read"] >= 25
    assert plain.extensions["timeout"]["read"] == 5.0
    assert fractional.url.params["wait"] == "2.5"
    assert sub.id == "b-1:2"


def test_cancel() -> None:
    api = FakeApi({("POST", "/v1/statements/st-1/cancel"): fixed(description(status="ABORTED"))})
    with client_for(api) as client:
        statement = client.cancel("st-1")
    assert statement.status == "ABORTED"
    assert statement.is_terminal
    assert api.last.method == "POST"


def test_catalog_and_health() -> None:
    columns = [
        {"name": "id", "type_name": "INTEGER", "nullable": False},
        {"name": "fare", "type_name": "DECIMAL", "precision": 10, "scale": 2, "length": None},
    ]
    api = FakeApi(
        {
            ("GET", "/v1/warehouses"): fixed(
                {"warehouses": [{"name": "default", "scheme": "duckdb", "default": True}]}
            ),
            ("GET", "/v1/catalog/databases"): fixed({"databases": ["warehouse"]}),
            ("GET", "/v1/catalog/schemas"): fixed({"schemas": ["main"]}),
            ("GET", "/v1/catalog/tables"): fixed(
                {"tables": [{"name": "trips", "schema": "main", "type": "TABLE"}]}
            ),
            ("GET", "/v1/catalog/tables/main/my trips"): fixed(
                {"schema": "main", "table_name": "my trips", "columns": columns}
            ),
            ("GET", "/health"): fixed({"status": "ok", "version": "0.1.0"}),
        }
    )
    with client_for(api) as client:
        assert client.warehouses()[0]["name"] == "default"
        assert client.databases(warehouse="wh") == ["warehouse"]
        assert client.schemas(database="warehouse", schema_pattern="ma%") == ["main"]
        assert client.tables(schema_pattern="main", table_pattern="tr_ps")[0]["name"] == "trips"
        described = client.describe_table("main", "my trips", warehouse="wh")
        assert client.health() == {"status": "ok", "version": "0.1.0"}

    params = [dict(r.url.params) for r in api.requests]
    assert params[:5] == [
        {},
        {"warehouse": "wh"},
        {"database": "warehouse", "schema_pattern": "ma%"},
        {"schema_pattern": "main", "table_pattern": "tr_ps"},
        {"warehouse": "wh"},
    ]
    assert api.requests[4].url.raw_path == b"/v1/catalog/tables/main/my%20trips?warehouse=wh"
    assert described == [
        Column("id", "INTEGER", nullable=False),
        Column("fare", "DECIMAL", precision=10, scale=2),
    ]


# -- errors ----------------------------------------------------------------------------------


def test_error_envelope_becomes_its_exception_class() -> None:
    api = FakeApi(
        {
            ("GET", "/v1/statements/nope"): lambda r: error(
                404, "statement_not_found", "No statement with this id.", id="nope"
            )
        }
    )
    with client_for(api) as client, pytest.raises(StatementNotFound) as caught:
        client.describe("nope")
    exc = caught.value
    assert exc.code == "statement_not_found"
    assert exc.message == "No statement with this id."
    assert exc.details == {"id": "nope"}
    assert exc.http_status == 404


def test_error_http_status_follows_the_response() -> None:
    api = FakeApi(
        {("POST", "/v1/statements/st-1/cancel"): lambda r: error(400, "invalid_state", "Ended.")}
    )
    with client_for(api) as client, pytest.raises(InvalidState) as caught:
        client.cancel("st-1")
    assert caught.value.http_status == 400
    assert InvalidState.http_status == 409  # the class is untouched


def test_unknown_error_code_keeps_its_code() -> None:
    api = FakeApi({("GET", "/health"): lambda r: error(418, "teapot", "I am a teapot.")})
    with client_for(api) as client, pytest.raises(SqltideError) as caught:
        client.health()
    assert type(caught.value) is SqltideError
    assert caught.value.code == "teapot"
    assert caught.value.http_status == 418
    assert caught.value.message == "I am a teapot."


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.Response(404, json={"detail": "Not Found"}),
    ],
)
def test_error_without_envelope_is_an_http_error(response: httpx.Response) -> None:
    api = FakeApi({("GET", "/health"): lambda r: response})
    with client_for(api) as client, pytest.raises(SqltideError) as caught:
        client.health()
    assert type(caught.value) is SqltideError
    assert caught.value.code == "http_error"
    assert caught.value.http_status == response.status_code
    assert str(response.status_code) in caught.value.message
    assert caught.value.details["status"] == response.status_code


def test_success_without_json_is_an_error() -> None:
    api = FakeApi({("GET", "/health"): lambda r: httpx.Response(200, text="ok")})
    with client_for(api) as client, pytest.raises(SqltideError) as caught:
        client.health()
    assert caught.value.code == "invalid_response"


def test_connection_refused_is_connection_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with client_for(refuse) as client, pytest.raises(ConnectionFailed) as caught:
        client.execute("SELECT 1")
    exc = caught.value
    assert exc.code == "connection_failed"
    assert BASE in exc.message
    assert "sqltide serve" in exc.message
    assert isinstance(exc.__cause__, httpx.ConnectError)


def test_other_transport_errors_are_connection_failed_too() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with client_for(hang) as client, pytest.raises(ConnectionFailed) as caught:
        client.health()
    assert caught.value.details["reason"] == "ReadTimeout"


def test_idempotent_execute() -> None:
    seen: dict[str, tuple[Any, dict[str, Any]]] = {}

    def submit(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        token = body["client_token"]
        if token in seen:
            original_body, statement = seen[token]
            if original_body != body:
                return error(409, "idempotency_conflict", "Token reused.", client_token=token)
            return httpx.Response(200, json=statement)
        statement = description(f"st-{len(seen) + 1}", client_token=token)
        seen[token] = (body, statement)
        return httpx.Response(201, json=statement)

    api = FakeApi({("POST", "/v1/statements"): submit})
    with client_for(api) as client:
        first = client.execute("SELECT 1", client_token="t-1")
        again = client.execute("SELECT 1", client_token="t-1")
        with pytest.raises(IdempotencyConflict) as caught:
            client.execute("SELECT 2", client_token="t-1")

    assert first == again
    assert first.client_token == "t-1"
    assert caught.value.details == {"client_token": "t-1"}
    assert caught.value.http_status == 409


# -- wait ------------------------------------------------------------------------------------


def test_wait_uses_the_long_poll_without_sleeping() -> None:
    time = FakeTime()
    api = status_server(time, ["SUBMITTED", "STARTED", "FINISHED"], long_poll=True)
    with client_for(api, _sleep=time.sleep, _clock=time.clock) as client:
        statement = client.wait("st-1")
    assert statement.status == "FINISHED"
    assert waits(api) == ["20", "20", "20"]
    assert time.sleeps == []


def test_wait_backs_off_with_full_jitter_when_the_server_answers_early() -> None:
    time = FakeTime()
    draws: list[tuple[float, float]] = []

    def top_of_range(low: float, high: float) -> float:
        draws.append((low, high))
        return high

    api = status_server(time, ["STARTED"] * 8 + ["FINISHED"], long_poll=False)
    with client_for(api, _sleep=time.sleep, _clock=time.clock, _uniform=top_of_range) as client:
        statement = client.wait("st-1", max_interval=2.0)

    assert statement.status == "FINISHED"
    caps = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert draws == [(0.0, cap) for cap in caps]
    assert time.sleeps == pytest.approx(caps)
    assert len(api.requests) == 9


def test_wait_jitter_is_random_within_the_cap() -> None:
    time = FakeTime()
    api = status_server(time, ["STARTED"] * 20 + ["FINISHED"], long_poll=False)
    with client_for(api, _sleep=time.sleep, _clock=time.clock) as client:
        client.wait("st-1", max_interval=1.0)
    assert len(time.sleeps) == 20
    assert all(0.0 <= s <= 1.0 for s in time.sleeps)
    assert len(set(time.sleeps)) > 1


def test_wait_returns_a_failed_statement() -> None:
    time = FakeTime()
    failure = {"code": "syntax_error", "message": "bad", "sqlstate": "42601", "position": 1}
    api = status_server(time, ["STARTED", "FAILED"], long_poll=True, error=failure)
    with client_for(api, _sleep=time.sleep, _clock=time.clock) as client:
        statement = client.wait("st-1")
    assert statement.status == "FAILED"
    assert statement.error == failure


def test_wait_bounds_each_poll_by_the_remaining_time_and_times_out() -> None:
    time = FakeTime()
    api = status_server(time, ["STARTED"], long_poll=True)
    with (
        client_for(api, _sleep=time.sleep, _clock=time.clock) as client,
        pytest.raises(StatementWaitTimeout) as caught,
    ):
        client.wait("st-1", timeout=45)
    assert waits(api) == ["20", "20", "5"]
    assert time.now == 1045.0
    assert time.sleeps == []
    exc = caught.value
    assert exc.code == "wait_timeout"
    assert exc.details == {"id": "st-1", "timeout": 45, "status": "STARTED"}
    assert exc.statement is not None
    assert exc.statement.status == "STARTED"


def test_wait_timeout_without_long_poll_never_oversleeps() -> None:
    time = FakeTime()
    api = status_server(time, ["STARTED"], long_poll=False)
    with (
        client_for(api, _sleep=time.sleep, _clock=time.clock, _uniform=lambda a, b: b) as client,
        pytest.raises(StatementWaitTimeout),
    ):
        client.wait("st-1", timeout=3.0, max_interval=1.0)
    assert time.now == pytest.approx(1003.0)
    assert sum(time.sleeps) == pytest.approx(3.0)
    # Each poll asks no longer than the time left, in whole seconds.
    assert [int(w) for w in waits(api)] == sorted((int(w) for w in waits(api)), reverse=True)
    assert waits(api)[0] == "3"
    assert waits(api)[-1] == "0"  # one last look at the deadline


def test_wait_with_zero_timeout_looks_once() -> None:
    time = FakeTime()
    api = status_server(time, ["STARTED"], long_poll=True)
    with (
        client_for(api, _sleep=time.sleep, _clock=time.clock) as client,
        pytest.raises(StatementWaitTimeout),
    ):
        client.wait("st-1", timeout=0)
    assert waits(api) == ["0"]
    assert time.sleeps == []


def test_wait_propagates_api_errors() -> None:
    api = FakeApi(
        {("GET", "/v1/statements/st-1"): lambda r: error(404, "statement_not_found", "Gone.")}
    )
    with client_for(api) as client, pytest.raises(StatementNotFound):
        client.wait("st-1", timeout=1)


# -- results ---------------------------------------------------------------------------------

COLUMNS = [{"name": "n", "type_name": "INTEGER", "nullable": True}]


def paged_result(pages: list[list[list[Any]]]) -> Handler:
    """Answers page i for next_token "p<i>"."""

    def result(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("next_token")
        index = 0 if token is None else int(token[1:])
        if index >= len(pages):
            return error(400, "invalid_next_token", "Bad token.")
        next_token = f"p{index + 1}" if index + 1 < len(pages) else None
        body = {
            "id": "st-1",
            "columns": COLUMNS,
            "rows": pages[index],
            "total_rows": sum(len(p) for p in pages),
            "next_token": next_token,
        }
        return httpx.Response(200, json=body)

    return result


def test_result_follows_next_token() -> None:
    pages = [[[1], [2]], [[3], [4]], [[5]]]
    api = FakeApi({("GET", "/v1/statements/st-1/result"): paged_result(pages)})
    with client_for(api) as client:
        got = list(client.result("st-1", max_rows=2))
        rows = list(client.rows("st-1"))
        first = client.result_page("st-1", max_rows=2)

    assert [page.rows for page in got] == pages
    assert all(isinstance(page, ResultPage) for page in got)
    assert got[0].columns == (Column("n", "INTEGER"),)
    assert got[0].total_rows == 5
    assert [page.next_token for page in got] == ["p1", "p2", None]
    assert rows == [[1], [2], [3], [4], [5]]
    assert first.next_token == "p1"
    params = [dict(r.url.params) for r in api.requests[:3]]
    assert params == [
        {"format": "json", "max_rows": "2"},
        {"format": "json", "next_token": "p1", "max_rows": "2"},
        {"format": "json", "next_token": "p2", "max_rows": "2"},
    ]


def test_result_of_unfinished_statement_raises_on_iteration() -> None:
    api = FakeApi(
        {
            ("GET", "/v1/statements/st-1/result"): lambda r: error(
                409, "statement_not_finished", "Not yet."
            )
        }
    )
    with client_for(api) as client, pytest.raises(SqltideError) as caught:
        list(client.rows("st-1"))
    assert caught.value.code == "statement_not_finished"


def csv_pages(pages: list[bytes]) -> Handler:
    def result(request: httpx.Request) -> httpx.Response:
        assert request.url.params["format"] == "csv"
        token = request.url.params.get("next_token")
        index = 0 if token is None else int(token[1:])
        headers = {"Content-Type": "text/csv", "Sqltide-Total-Rows": "3"}
        if index + 1 < len(pages):
            headers["Sqltide-Next-Token"] = f"c{index + 1}"
        return httpx.Response(200, content=pages[index], headers=headers)

    return result


def test_result_csv_follows_the_header_token() -> None:
    pages = [b"n\r\n1\r\n2\r\n", b"3\r\n"]
    api = FakeApi({("GET", "/v1/statements/st-1/result"): csv_pages(pages)})
    with client_for(api) as client:
        got = list(client.result_csv("st-1"))
    assert got == pages
    assert b"".join(got) == b"n\r\n1\r\n2\r\n3\r\n"
    assert [r.url.params.get("next_token") for r in api.requests] == [None, "c1"]


def list_pages() -> Handler:
    first = [description("st-3"), description("st-2")]
    second = [description("st-1")]

    def listing(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("next_token") == "n1":
            return httpx.Response(200, json={"statements": second, "next_token": None})
        for item in first:
            item.pop("sub_statements", None)  # the list leaves them out
        return httpx.Response(200, json={"statements": first, "next_token": "n1"})

    return listing


def test_list_follows_next_token_with_filters() -> None:
    api = FakeApi({("GET", "/v1/statements"): list_pages()})
    after = datetime(2026, 11, 23, 19, 30, tzinfo=timezone(timedelta(hours=1)))
    with client_for(api) as client:
        got = list(
            client.list(
                status="FINISHED",
                name_prefix="night",
                created_after=after,
                created_before="2026-12-01T00:00:00Z",
                max_results=2,
            )
        )
    assert [s.id for s in got] == ["st-3", "st-2", "st-1"]
    assert got[0].sub_statements == ()
    first, second = (dict(r.url.params) for r in api.requests)
    assert first == {
        "status": "FINISHED",
        "name_prefix": "night",
        "created_after": "2026-11-23T18:30:00.000000Z",
        "created_before": "2026-12-01T00:00:00Z",
        "max_results": "2",
    }
    assert second == {**first, "next_token": "n1"}


def test_list_without_filters_sends_no_params() -> None:
    api = FakeApi({("GET", "/v1/statements"): fixed({"statements": [], "next_token": None})})
    with client_for(api) as client:
        assert list(client.list()) == []
    assert dict(api.last.url.params) == {}


# -- the async client ------------------------------------------------------------------------


def test_async_execute_describe_and_errors() -> None:
    api = FakeApi(
        {
            ("POST", "/v1/statements"): fixed(description(), 201),
            ("POST", "/v1/statements/batch"): fixed(description("b-1", is_batch=True), 201),
            ("POST", "/v1/statements/st-1/cancel"): fixed(description(status="ABORTED")),
            ("GET", "/v1/statements/nope"): lambda r: error(
                404, "statement_not_found", "No statement with this id.", id="nope"
            ),
            ("GET", "/health"): fixed({"status": "ok", "version": "0.1.0"}),
        }
    )

    async def scenario() -> tuple[Statement, Statement, Statement, StatementNotFound]:
        async with async_client_for(api) as client:
            statement = await client.execute("SELECT :n", {"n": 1}, client_token="t")
            batch = await client.batch(["SELECT 1", "SELECT 2"])
            cancelled = await client.cancel("st-1")
            assert (await client.health())["status"] == "ok"
            try:
                await client.describe("nope")
            except StatementNotFound as exc:
                return statement, batch, cancelled, exc
        raise AssertionError("describe did not raise")

    statement, batch, cancelled, exc = asyncio.run(scenario())
    assert statement.id == "st-1"
    assert batch.is_batch
    assert cancelled.status == "ABORTED"
    assert exc.details == {"id": "nope"}
    assert api.requests[0].headers["Authorization"] == "Bearer secret"
    assert json.loads(api.requests[0].content)["client_token"] == "t"
    assert json.loads(api.requests[1].content)["sqls"] == ["SELECT 1", "SELECT 2"]


def test_async_wait_backs_off_and_times_out() -> None:
    time = FakeTime()
    api = status_server(time, ["STARTED", "STARTED", "FINISHED"], long_poll=False)
    stuck = status_server(time, ["STARTED"], long_poll=True)

    async def scenario() -> Statement:
        async with async_client_for(
            api, _sleep=time.async_sleep, _clock=time.clock, _uniform=lambda a, b: b
        ) as client:
            statement = await client.wait("st-1")
        async with async_client_for(stuck, _sleep=time.async_sleep, _clock=time.clock) as client:
            with pytest.raises(StatementWaitTimeout):
                await client.wait("st-1", timeout=30)
        return statement

    statement = asyncio.run(scenario())
    assert statement.status == "FINISHED"
    assert time.sleeps == pytest.approx([0.1, 0.2])
    assert waits(stuck) == ["20", "10"]


def test_async_pagination() -> None:
    api = FakeApi(
        {
            ("GET", "/v1/statements/st-1/result"): paged_result([[[1], [2]], [[3]]]),
            ("GET", "/v1/statements/st-2/result"): csv_pages([b"n\n1\n", b"2\n"]),
            ("GET", "/v1/statements"): list_pages(),
        }
    )

    async def scenario() -> tuple[list[ResultPage], list[Any], list[bytes], list[str]]:
        async with async_client_for(api) as client:
            pages = [page async for page in client.result("st-1")]
            rows = [row async for row in client.rows("st-1")]
            csv = [chunk async for chunk in client.result_csv("st-2")]
            ids = [s.id async for s in client.list()]
        return pages, rows, csv, ids

    pages, rows, csv, ids = asyncio.run(scenario())
    assert [p.rows for p in pages] == [[[1], [2]], [[3]]]
    assert rows == [[1], [2], [3]]
    assert csv == [b"n\n1\n", b"2\n"]
    assert ids == ["st-3", "st-2", "st-1"]


def test_async_catalog() -> None:
    api = FakeApi(
        {
            ("GET", "/v1/warehouses"): fixed({"warehouses": [{"name": "default"}]}),
            ("GET", "/v1/catalog/databases"): fixed({"databases": ["warehouse"]}),
            ("GET", "/v1/catalog/schemas"): fixed({"schemas": ["main"]}),
            ("GET", "/v1/catalog/tables"): fixed({"tables": []}),
            ("GET", "/v1/catalog/tables/main/t"): fixed(
                {"schema": "main", "table_name": "t", "columns": COLUMNS}
            ),
        }
    )

    async def scenario() -> list[Any]:
        async with async_client_for(api) as client:
            return [
                await client.warehouses(),
                await client.databases(),
                await client.schemas(),
                await client.tables(),
                await client.describe_table("main", "t"),
            ]

    assert asyncio.run(scenario()) == [
        [{"name": "default"}],
        ["warehouse"],
        ["main"],
        [],
        [Column("n", "INTEGER")],
    ]


def test_async_connection_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    async def scenario() -> None:
        async with async_client_for(refuse) as client:
            await client.describe("st-1")

    with pytest.raises(ConnectionFailed, match="sqltide serve"):
        asyncio.run(scenario())


# -- configuration ---------------------------------------------------------------------------


def _auth_header(*args: Any) -> str | None:
    """The Authorization header a client built from ``args`` and the environment sends."""
    api = FakeApi({("GET", "/health"): fixed({"status": "ok"})})
    with Client(*args, transport=httpx.MockTransport(api)) as client:
        client.health()
    return api.last.headers.get("Authorization")


def test_api_key_from_credentials_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "credentials").write_text("file-key\n")
    monkeypatch.setenv("SQLTIDE_HOME", str(home))
    assert _auth_header(BASE) == "Bearer file-key"


def test_api_key_from_default_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("SQLTIDE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".sqltide").mkdir()
    (tmp_path / ".sqltide" / "credentials").write_text("  home-key  \n")
    assert _auth_header(BASE) == "Bearer home-key"


def test_api_key_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "credentials").write_text("file-key\n")
    monkeypatch.setenv("SQLTIDE_HOME", str(home))
    monkeypatch.setenv("SQLTIDE_API_KEY", "env-key")
    assert _auth_header(BASE) == "Bearer env-key"
    assert _auth_header(BASE, "arg-key") == "Bearer arg-key"
    assert _auth_header(BASE, "") is None


def test_no_api_key_anywhere() -> None:
    with Client(BASE) as client:
        assert not client.has_api_key
    assert _auth_header(BASE) is None


def test_empty_credentials_file_means_no_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    (tmp_path / "credentials").write_text("\n")
    monkeypatch.setenv("SQLTIDE_HOME", str(tmp_path))
    assert _auth_header(BASE) is None


def test_base_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    with Client() as client:
        assert client.base_url == "http://127.0.0.1:8765"
    monkeypatch.setenv("SQLTIDE_URL", "http://example.test:9000/")
    with Client() as client:
        assert client.base_url == "http://example.test:9000"
    with Client("http://other.test/") as client:
        assert client.base_url == "http://other.test"
    async_client = AsyncClient()
    assert async_client.base_url == "http://example.test:9000"
    asyncio.run(async_client.close())


# -- models ----------------------------------------------------------------------------------


def test_statement_round_trips_through_its_json_shape() -> None:
    sub = {
        "id": "b-1:1",
        "status": "FAILED",
        "query_string": "SELEC 1",
        "created_at": T0,
        "updated_at": T1,
        "started_at": T0,
        "ended_at": T1,
        "duration_ns": 1_376_544_000,
        "result_rows": None,
        "result_size": None,
        "has_result_set": False,
        "error": {"code": "syntax_error", "message": "bad", "sqlstate": "42601"},
    }
    data = description(
        "b-1",
        "FAILED",
        is_batch=True,
        batch_mode="transaction",
        query_strings=["SELEC 1"],
        parameters={"n": 1},
        started_at=T0,
        ended_at=T1,
        result_expires_at=T1,
        sub_statements=[sub],
    )
    statement = Statement.from_dict({**data, "some_future_field": 1})
    assert statement.to_dict() == data
    assert statement.is_terminal
    assert statement.ended_at is not None
    assert statement.ended_at - statement.created_at == timedelta(seconds=1.376544)


def test_times_with_an_offset_are_kept_aware() -> None:
    statement = Statement.from_dict(description(created_at="2026-11-23T19:30:00+01:00"))
    assert statement.created_at == datetime(2026, 11, 23, 18, 30, tzinfo=UTC)
    naive = Statement.from_dict(description(created_at="2026-11-23T18:30:00"))
    assert naive.created_at.tzinfo is UTC
