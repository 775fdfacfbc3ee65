"""Bad input and wrong states through a real server: the status, the stable error code in the
envelope ``{"error": {"code", "message", "details"}}``, and a server that still works after."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sqltide.client import Client
from sqltide.client.models import Statement
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

LONG_SQL = "SELECT count(*) FROM range(10000000000000)"
WAIT = 20.0


# -- helpers ------------------------------------------------------------------------------------
def expect_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error of an answer, checked to be ``status`` with ``code`` in the one envelope."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    assert isinstance(error["details"], dict), error
    return error


def run(client: Client, sql: str, **kwargs: Any) -> Statement:
    done = client.wait(client.execute(sql, **kwargs).id, timeout=WAIT)
    assert done.status == "FINISHED", done.error
    return done


def wait_for_status(client: Client, sid: str, status: str, timeout: float = WAIT) -> Statement:
    deadline = time.monotonic() + timeout
    while True:
        st = client.describe(sid)
        if st.status == status:
            return st
        assert not st.is_terminal, f"{sid} ended {st.status} before reaching {status}"
        assert time.monotonic() < deadline, f"{sid} still {st.status} after {timeout} s"
        time.sleep(0.02)  # polling a condition, bounded by the deadline


def stop(client: Client, sid: str) -> Statement:
    """Cancel a statement and wait until it has ended."""
    st = client.cancel(sid)
    return st if st.is_terminal else client.wait(sid, timeout=WAIT)


def assert_alive(client: Client) -> None:
    """The server still answers /health and runs a normal statement."""
    assert client.health()["status"] == "ok"
    st = run(client, "SELECT 41 + 1 AS answer")
    assert list(client.rows(st.id)) == [[42]]


@pytest.fixture
def http(server: ServerThread, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as c:
        yield c


# -- submitting ---------------------------------------------------------------------------------
def test_empty_sql(client: Client, http: httpx.Client) -> None:
    for sql in ("", "   ", "\n\t "):
        expect_error(http.post("/v1/statements", json={"sql": sql}), 400, "empty_sql")
        error = expect_error(
            http.post("/v1/statements/batch", json={"sqls": ["SELECT 1", sql]}), 400, "empty_sql"
        )
        assert error["details"] == {"index": 2}
        assert "2" in error["message"]
    expect_error(http.post("/v1/statements/batch", json={"sqls": []}), 400, "empty_sql")
    assert list(client.list()) == []
    assert_alive(client)


def test_sql_over_100_kb(client: Client, http: httpx.Client) -> None:
    limit = 100 * 1024
    sql = "SELECT 1 -- " + "x" * limit
    error = expect_error(http.post("/v1/statements", json={"sql": sql}), 413, "sql_too_large")
    assert error["details"]["limit"] == limit
    assert error["details"]["size"] == len(sql.encode())
    error = expect_error(
        http.post("/v1/statements/batch", json={"sqls": ["SELECT 1", sql]}), 413, "sql_too_large"
    )
    assert error["details"]["index"] == 2
    # Exactly at the limit is fine (multi-byte characters count as bytes).
    at_limit = "SELECT 1 -- "
    at_limit += "é" * ((limit - len(at_limit)) // 2)
    at_limit += "x" * (limit - len(at_limit.encode()))
    assert len(at_limit.encode()) == limit
    assert http.post("/v1/statements", json={"sql": at_limit}).status_code == 201
    over = at_limit + "é"
    expect_error(http.post("/v1/statements", json={"sql": over}), 413, "sql_too_large")
    assert_alive(client)


SYNTAX_ERRORS = [
    ("SELECT 1 FROM WHERE", "WHERE"),
    ("SELEC 1", "SELEC"),
    ("SELECT a,\n  b\nFORM t", "t"),
]


def test_syntax_error_fails_the_statement(client: Client) -> None:
    # It is the engine that finds the mistake: the statement is accepted, then FAILED.
    submitted = [(client.execute(sql), sql, token) for sql, token in SYNTAX_ERRORS]
    for st, sql, token in submitted:
        assert st.status == "SUBMITTED"
        done = client.wait(st.id, timeout=WAIT)
        assert done.status == "FAILED", sql
        assert done.error["code"] == "syntax_error", sql
        assert done.error["sqlstate"] == "42601", sql
        assert done.error["position"] == sql.rindex(token) + 1, sql
        assert "syntax error" in done.error["message"], sql
        assert done.has_result_set is False
    assert_alive(client)


def test_missing_and_unknown_parameters(client: Client, http: httpx.Client) -> None:
    error = expect_error(
        http.post("/v1/statements", json={"sql": "SELECT :a + :b", "parameters": {"a": 1}}),
        422,
        "parameter_error",
    )
    assert error["details"] == {"missing": ["b"]}
    assert ":b" in error["message"]
    error = expect_error(
        http.post("/v1/statements", json={"sql": "SELECT :a", "parameters": {"a": 1, "zz": 2}}),
        422,
        "parameter_error",
    )
    assert error["details"] == {"unknown": ["zz"]}
    error = expect_error(
        http.post("/v1/statements", json={"sql": "SELECT :a"}), 422, "parameter_error"
    )
    assert error["details"] == {"missing": ["a"]}
    error = expect_error(
        http.post(
            "/v1/statements",
            json={"sql": "SELECT 1", "parameters": {"bad-name": 1}},
        ),
        422,
        "parameter_error",
    )
    # In a batch, the statement missing a value is named.
    error = expect_error(
        http.post(
            "/v1/statements/batch",
            json={"sqls": ["SELECT :a", "SELECT :b"], "parameters": {"a": 1}},
        ),
        422,
        "parameter_error",
    )
    assert "statement 2" in error["message"]
    assert list(client.list()) == []
    assert_alive(client)


def test_batch_over_the_limit(client: Client, http: httpx.Client) -> None:
    error = expect_error(
        http.post("/v1/statements/batch", json={"sqls": ["SELECT 1"] * 41}),
        400,
        "batch_too_large",
    )
    assert error["details"] == {"limit": 40, "count": 41}
    resp = http.post("/v1/statements/batch", json={"sqls": ["SELECT 1"] * 40})
    assert resp.status_code == 201
    assert len(resp.json()["sub_statements"]) == 40
    done = client.wait(resp.json()["id"], timeout=WAIT)
    assert done.status == "FINISHED"
    assert_alive(client)


def test_unknown_warehouse(client: Client, http: httpx.Client) -> None:
    error = expect_error(
        http.post("/v1/statements", json={"sql": "SELECT 1", "warehouse": "nope"}),
        404,
        "not_found",
    )
    assert error["details"] == {"warehouse": "nope"}
    expect_error(
        http.post("/v1/statements/batch", json={"sqls": ["SELECT 1"], "warehouse": "nope"}),
        404,
        "not_found",
    )
    for path in (
        "/v1/catalog/databases",
        "/v1/catalog/schemas",
        "/v1/catalog/tables",
        "/v1/catalog/tables/main/t",
    ):
        expect_error(http.get(path, params={"warehouse": "nope"}), 404, "not_found")
    assert_alive(client)


def test_client_token_idempotency(client: Client, http: httpx.Client) -> None:
    body = {"sql": "SELECT 1 AS one", "client_token": "tok-1", "statement_name": "idem"}
    first = http.post("/v1/statements", json=body)
    assert first.status_code == 201
    again = http.post("/v1/statements", json=body)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    error = expect_error(
        http.post("/v1/statements", json={**body, "sql": "SELECT 2 AS two"}),
        409,
        "idempotency_conflict",
    )
    assert error["details"]["statement_id"] == first.json()["id"]
    assert error["details"]["client_token"] == "tok-1"
    # Any other difference in the request is a conflict too.
    expect_error(
        http.post("/v1/statements", json={**body, "statement_name": "other"}),
        409,
        "idempotency_conflict",
    )
    expect_error(
        http.post("/v1/statements/batch", json={"sqls": [body["sql"]], "client_token": "tok-1"}),
        409,
        "idempotency_conflict",
    )
    # After the statement ended, the same request still gives the same statement.
    client.wait(first.json()["id"], timeout=WAIT)
    late = http.post("/v1/statements", json=body)
    assert late.status_code == 200
    assert late.json()["id"] == first.json()["id"]
    assert late.json()["status"] == "FINISHED"
    assert [s.id for s in client.list(name_prefix="idem")] == [first.json()["id"]]
    assert_alive(client)


# -- request bodies -----------------------------------------------------------------------------
MALFORMED = [b'{"sql": ', b"{'sql': 'SELECT 1'}", b"not json", b'{"sql": "SELECT 1",}', b"\xff\xfe"]


def test_malformed_json(client: Client, http: httpx.Client) -> None:
    for content in MALFORMED:
        for path in ("/v1/statements", "/v1/statements/batch"):
            resp = http.post(path, content=content, headers={"Content-Type": "application/json"})
            expect_error(resp, 400, "malformed_json")
    assert list(client.list()) == []
    assert_alive(client)


WRONG_TYPES: list[tuple[str, Any, str | None]] = [
    ("/v1/statements", {"sql": 123}, "sql"),
    ("/v1/statements", {"sql": ["SELECT 1"]}, "sql"),
    ("/v1/statements", {}, "sql"),
    ("/v1/statements", {"sql": "SELECT 1", "with_event": "maybe"}, "with_event"),
    ("/v1/statements", {"sql": "SELECT :a", "parameters": {"a": [1, 2]}}, "parameters.a"),
    ("/v1/statements", {"sql": "SELECT :a", "parameters": [1]}, "parameters"),
    ("/v1/statements", {"sql": "SELECT 1", "session_keep_alive_seconds": 0}, None),
    ("/v1/statements", {"sql": "SELECT 1", "client_token": ""}, "client_token"),
    ("/v1/statements", {"sql": "SELECT 1", "client_token": "x" * 65}, "client_token"),
    ("/v1/statements", ["SELECT 1"], None),
    ("/v1/statements", "SELECT 1", None),
    ("/v1/statements/batch", {"sqls": "SELECT 1"}, "sqls"),
    ("/v1/statements/batch", {"sqls": ["SELECT 1"], "mode": "bogus"}, "mode"),
    ("/v1/statements/batch", {"sql": "SELECT 1"}, None),
]


def test_wrong_types_in_the_body(client: Client, http: httpx.Client) -> None:
    for path, body, field in WRONG_TYPES:
        error = expect_error(http.post(path, json=body), 422, "validation_error")
        fields = [f["field"] for f in error["details"]["fields"]]
        if field is not None:
            assert any(f == field or f.startswith(field + ".") for f in fields), (body, fields)
    assert list(client.list()) == []
    assert_alive(client)


UNKNOWN_FIELDS: list[tuple[str, Any, str]] = [
    ("/v1/statements", {"sql": "SELECT 1", "sqll": 1}, "sqll"),
    ("/v1/statements", {"sql": "SELECT 1", "mode": "auto_commit"}, "mode"),
    ("/v1/statements/batch", {"sqls": ["SELECT 1"], "sql": "SELECT 2"}, "sql"),
]


def test_unknown_json_fields(client: Client, http: httpx.Client) -> None:
    for path, body, field in UNKNOWN_FIELDS:
        error = expect_error(http.post(path, json=body), 422, "validation_error")
        assert [f["field"] for f in error["details"]["fields"]] == [field]
        assert field in error["message"]
    assert list(client.list()) == []
    assert_alive(client)


def test_bad_query_parameters(client: Client, http: httpx.Client) -> None:
    st = run(client, "SELECT 1")
    for params in ({"wait": "abc"}, {"wait": -1}):
        expect_error(http.get(f"/v1/statements/{st.id}", params=params), 422, "validation_error")
    for params in ({"max_rows": 0}, {"format": "xml"}):
        expect_error(
            http.get(f"/v1/statements/{st.id}/result", params=params), 422, "validation_error"
        )
    for params in (
        {"max_results": 0},
        {"max_results": 101},
        {"status": "BOGUS"},
        {"created_after": "yesterday"},
        {"created_before": "2026-13-45"},
    ):
        expect_error(http.get("/v1/statements", params=params), 422, "validation_error")
    assert_alive(client)


def test_request_body_over_the_limit_with_content_length(
    client: Client, http: httpx.Client, runtime: Runtime
) -> None:
    limit = runtime.settings.max_body_bytes
    big = json.dumps({"sql": "SELECT 1 -- " + "x" * limit}).encode()
    resp = http.post("/v1/statements", content=big, headers={"Content-Type": "application/json"})
    assert "content-length" in {k.lower() for k in resp.request.headers}
    error = expect_error(resp, 413, "payload_too_large")
    assert error["details"] == {"limit": limit}
    assert list(client.list()) == []
    assert_alive(client)


def test_request_body_over_the_limit_chunked(
    client: Client, http: httpx.Client, runtime: Runtime
) -> None:
    limit = runtime.settings.max_body_bytes
    piece = 64 * 1024

    def body() -> Iterator[bytes]:
        yield b'{"sql": "SELECT 1 -- '
        sent = 0
        while sent <= limit:
            yield b"x" * piece
            sent += piece
        yield b'"}'

    resp = http.post("/v1/statements", content=body(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in resp.request.headers}
    assert resp.request.headers["transfer-encoding"] == "chunked"
    error = expect_error(resp, 413, "payload_too_large")
    assert error["details"] == {"limit": limit}
    # A chunked body under the limit is fine.
    small = http.post(
        "/v1/statements",
        content=iter([b'{"sql": ', b'"SELECT 1"}']),
        headers={"Content-Type": "application/json"},
    )
    assert small.status_code == 201, small.text
    assert len(list(client.list())) == 1
    assert_alive(client)


# -- authentication -----------------------------------------------------------------------------
def test_missing_or_wrong_api_key(client: Client, server: ServerThread, api_key: str) -> None:
    st = run(client, "SELECT 1")
    requests = [
        ("GET", "/v1/statements", None),
        ("POST", "/v1/statements", {"sql": "SELECT 1"}),
        ("GET", f"/v1/statements/{st.id}", None),
        ("GET", f"/v1/statements/{st.id}/result", None),
        ("POST", f"/v1/statements/{st.id}/cancel", None),
        ("GET", "/v1/warehouses", None),
        ("GET", "/v1/catalog/tables", None),
    ]
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer stk_00000000_wrong"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {api_key}"},
        {"Authorization": api_key},
        {"X-API-Key": "stk_00000000_wrong"},
        {"X-API-Key": ""},
        {"Authorization": f"Bearer {api_key}x"},
    ]
    with httpx.Client(base_url=server.url, timeout=30) as raw:
        for method, path, body in requests:
            for headers in bad_headers:
                resp = raw.request(method, path, json=body, headers=headers)
                expect_error(resp, 401, "unauthorized")
                assert resp.headers["www-authenticate"] == "Bearer"
        # The key is accepted in either header; /health needs none.
        assert raw.get("/v1/warehouses", headers={"X-API-Key": api_key}).status_code == 200
        ok = raw.get("/v1/warehouses", headers={"Authorization": f"bearer {api_key}"})
        assert ok.status_code == 200
        assert raw.get("/health").status_code == 200
    assert [s.id for s in client.list()] == [st.id]
    assert_alive(client)


def test_revoked_key(client: Client, server: ServerThread, runtime: Runtime) -> None:
    record, key = create_key(runtime.store, "carol")
    unused, unused_key = create_key(runtime.store, "carol")
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as carol:
        assert carol.get("/v1/warehouses").status_code == 200
        assert runtime.store.revoke_api_key(unused.id, time.time())
        assert runtime.store.revoke_api_key(record.id, time.time())
        # Never used: refused at once.
        resp = carol.get("/v1/warehouses", headers={"Authorization": f"Bearer {unused_key}"})
        expect_error(resp, 401, "unauthorized")
        # Used before: refused within a few seconds (keys may be cached briefly).
        deadline = time.monotonic() + 10
        while (resp := carol.get("/v1/warehouses")).status_code == 200:
            assert time.monotonic() < deadline, "a revoked key still works"
            time.sleep(0.05)  # polling a condition, bounded by the deadline
        expect_error(resp, 401, "unauthorized")
        expect_error(carol.post("/v1/statements", json={"sql": "SELECT 1"}), 401, "unauthorized")
    assert_alive(client)


# -- statement ids ------------------------------------------------------------------------------
GARBAGE_IDS = [
    "not-a-uuid",
    "123",
    "x:y",
    f"{uuid.uuid4()}:abc",
    f"{uuid.uuid4()}:1",
    f"{uuid.uuid4()}:",
    "%27%20OR%201%3D1",
    "a" * 300,
]


def test_unknown_and_garbage_statement_ids(client: Client, http: httpx.Client) -> None:
    for sid in [str(uuid.uuid4()), *GARBAGE_IDS]:
        for method, suffix in (("GET", ""), ("GET", "/result"), ("POST", "/cancel")):
            resp = http.request(method, f"/v1/statements/{sid}{suffix}")
            error = expect_error(resp, 404, "statement_not_found")
            assert set(error["details"]) == {"id"}
        resp = http.get(f"/v1/statements/{sid}", params={"wait": 1})
        expect_error(resp, 404, "statement_not_found")
    # A real batch id with a sub-statement index it does not have.
    batch = client.wait(client.batch(["SELECT 1", "SELECT 2"]).id, timeout=WAIT)
    for suffix in (":3", ":0", ":01x"):
        expect_error(http.get(f"/v1/statements/{batch.id}{suffix}"), 404, "statement_not_found")
    assert_alive(client)


def test_another_principals_statement_looks_unknown(
    client: Client, server: ServerThread, runtime: Runtime, http: httpx.Client
) -> None:
    alice_done = run(client, "SELECT 1 AS one")
    alice_batch = client.wait(client.batch(["SELECT 1", "SELECT 2"]).id, timeout=WAIT)
    alice_running = client.execute(LONG_SQL)
    unknown = str(uuid.uuid4())
    bob_key = create_key(runtime.store, "bob")[1]
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {bob_key}"}, timeout=30
    ) as bob:

        def answers(sid: str) -> list[tuple[int, str, str, dict[str, Any]]]:
            out = []
            for method, suffix, params in (
                ("GET", "", None),
                ("GET", "", {"wait": 1}),
                ("GET", "/result", None),
                ("GET", "/result", {"format": "csv"}),
                ("POST", "/cancel", None),
            ):
                resp = bob.request(method, f"/v1/statements/{sid}{suffix}", params=params)
                error = expect_error(resp, 404, "statement_not_found")
                out.append(
                    (
                        resp.status_code,
                        error["code"],
                        error["message"].replace(sid, "<id>"),
                        {
                            k: (v.replace(sid, "<id>") if k == "id" else v)
                            for k, v in error["details"].items()
                        },
                    )
                )
            return out

        expected = answers(unknown)
        for sid in (alice_done.id, alice_batch.id, f"{alice_batch.id}:1", alice_running.id):
            assert answers(sid) == expected
        assert bob.get("/v1/statements").json() == {"statements": [], "next_token": None}
    # Bob's cancel did nothing to Alice's statement.
    assert client.describe(alice_running.id).status in ("SUBMITTED", "PICKED", "STARTED")
    assert stop(client, alice_running.id).status == "ABORTED"
    assert client.describe(alice_done.id).status == "FINISHED"
    assert_alive(client)


# -- results and states -------------------------------------------------------------------------
def test_result_of_a_failed_statement(client: Client, http: httpx.Client) -> None:
    failed = client.wait(client.execute("SELECT * FROM no_such_table").id, timeout=WAIT)
    assert failed.status == "FAILED"
    for fmt in ("json", "csv"):
        resp = http.get(f"/v1/statements/{failed.id}/result", params={"format": fmt})
        error = expect_error(resp, 409, "statement_failed")
        assert error["details"]["status"] == "FAILED"
        assert error["details"]["error"]["code"] == "undefined_object"
    # A failed batch's sub-statements: the failing one and the one never run.
    batch = client.wait(client.batch(["SELECT 1", "SELEC 2", "SELECT 3"]).id, timeout=WAIT)
    assert batch.status == "FAILED"
    assert http.get(f"/v1/statements/{batch.id}:1/result").status_code == 200
    expect_error(http.get(f"/v1/statements/{batch.id}:2/result"), 409, "statement_failed")
    expect_error(http.get(f"/v1/statements/{batch.id}:3/result"), 409, "statement_failed")
    assert_alive(client)


def test_result_of_an_unfinished_and_of_an_aborted_statement(
    client: Client, http: httpx.Client
) -> None:
    st = client.execute(LONG_SQL)
    wait_for_status(client, st.id, "STARTED")
    error = expect_error(http.get(f"/v1/statements/{st.id}/result"), 409, "statement_not_finished")
    assert error["details"]["status"] == "STARTED"
    assert stop(client, st.id).status == "ABORTED"
    error = expect_error(http.get(f"/v1/statements/{st.id}/result"), 409, "statement_failed")
    assert error["details"]["status"] == "ABORTED"
    assert_alive(client)


def test_cancel_a_finished_statement(client: Client, http: httpx.Client) -> None:
    done = run(client, "SELECT 1")
    error = expect_error(http.post(f"/v1/statements/{done.id}/cancel"), 409, "invalid_state")
    assert error["details"]["status"] == "FINISHED"
    failed = client.wait(client.execute("SELEC 1").id, timeout=WAIT)
    expect_error(http.post(f"/v1/statements/{failed.id}/cancel"), 409, "invalid_state")
    # Cancelling twice: the second answers invalid_state.
    st = client.execute(LONG_SQL)
    wait_for_status(client, st.id, "STARTED")
    assert stop(client, st.id).status == "ABORTED"
    error = expect_error(http.post(f"/v1/statements/{st.id}/cancel"), 409, "invalid_state")
    assert error["details"]["status"] == "ABORTED"
    # Nothing changed on the finished one.
    assert client.describe(done.id).status == "FINISHED"
    assert list(client.rows(done.id)) == [[1]]
    assert_alive(client)


def test_cancel_a_sub_statement(client: Client, http: httpx.Client) -> None:
    done = client.wait(client.batch(["SELECT 1", "SELECT 2"]).id, timeout=WAIT)
    error = expect_error(http.post(f"/v1/statements/{done.id}:1/cancel"), 400, "invalid_request")
    assert error["details"]["batch_id"] == done.id
    running = client.batch([LONG_SQL, "SELECT 1"])
    error = expect_error(http.post(f"/v1/statements/{running.id}:2/cancel"), 400, "invalid_request")
    assert client.describe(running.id).status != "ABORTED"
    assert stop(client, running.id).status == "ABORTED"
    assert_alive(client)


def test_result_of_a_batch_by_its_batch_id(client: Client, http: httpx.Client) -> None:
    done = client.wait(client.batch(["SELECT 1 AS a", "SELECT 2 AS b"]).id, timeout=WAIT)
    assert done.status == "FINISHED"
    for fmt in ("json", "csv"):
        resp = http.get(f"/v1/statements/{done.id}/result", params={"format": fmt})
        error = expect_error(resp, 400, "invalid_request")
        assert f"{done.id}:1" in error["message"]
        assert f"{done.id}:2" in error["message"]
    assert http.get(f"/v1/statements/{done.id}:2/result").json()["rows"] == [[2]]
    assert_alive(client)


def test_result_of_a_statement_without_a_result_set(client: Client, http: httpx.Client) -> None:
    ddl = run(client, "CREATE TABLE t_ddl (x INTEGER)")
    dml = run(client, "INSERT INTO t_ddl VALUES (1), (2)")
    assert ddl.has_result_set is False
    assert dml.has_result_set is False and dml.result_rows == 2
    for sid in (ddl.id, dml.id):
        for fmt in ("json", "csv"):
            resp = http.get(f"/v1/statements/{sid}/result", params={"format": fmt})
            error = expect_error(resp, 400, "invalid_request")
            assert "no result set" in error["message"]
            assert error["details"]["id"] == sid
    assert_alive(client)


# -- next tokens --------------------------------------------------------------------------------
def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def test_invalid_result_next_tokens(client: Client, http: httpx.Client) -> None:
    st = run(client, "SELECT i FROM range(10) t(i) ORDER BY i")
    other = run(client, "SELECT i FROM range(10) t(i) ORDER BY i")
    first = http.get(f"/v1/statements/{st.id}/result", params={"max_rows": 3}).json()
    token = first["next_token"]
    assert token
    csv_token = http.get(
        f"/v1/statements/{st.id}/result", params={"max_rows": 3, "format": "csv"}
    ).headers["Sqltide-Next-Token"]
    # The real token works, more than once.
    for _ in range(2):
        page = http.get(f"/v1/statements/{st.id}/result", params={"next_token": token})
        assert page.status_code == 200
        assert page.json()["rows"][0] == [3]

    forged = [
        "garbage",
        ".",
        "abc.def",
        token + "x",
        token[:-2],
        _flip(token, 1),
        _flip(token, len(token) - 2),
        token.replace(".", ""),
        "é" * 10,
        "x" * 2000,
        csv_token,  # made for CSV pages, not JSON
    ]
    for bad in forged:
        resp = http.get(f"/v1/statements/{st.id}/result", params={"next_token": bad, "max_rows": 3})
        expect_error(resp, 400, "invalid_next_token")
    # Another statement's token, even for an identical result.
    resp = http.get(f"/v1/statements/{other.id}/result", params={"next_token": token})
    expect_error(resp, 400, "invalid_next_token")
    # A JSON token used for a CSV page.
    resp = http.get(f"/v1/statements/{st.id}/result", params={"next_token": token, "format": "csv"})
    expect_error(resp, 400, "invalid_next_token")
    assert_alive(client)


def test_invalid_list_next_tokens(
    client: Client, http: httpx.Client, server: ServerThread, runtime: Runtime
) -> None:
    for _ in range(3):
        run(client, "SELECT 1")
    token = http.get("/v1/statements", params={"max_results": 1}).json()["next_token"]
    assert token
    assert http.get("/v1/statements", params={"next_token": token}).status_code == 200
    for bad in (
        "garbage",
        "abc.def",
        token + "x",
        _flip(token, 2),
        token.partition(".")[0],
        "é",
        "é.é",
        "x" * 2000,
    ):
        resp = http.get("/v1/statements", params={"next_token": bad})
        expect_error(resp, 400, "invalid_next_token")
    # Alice's token is no good to Bob.
    bob_key = create_key(runtime.store, "bob")[1]
    resp = httpx.get(
        f"{server.url}/v1/statements",
        params={"next_token": token},
        headers={"Authorization": f"Bearer {bob_key}"},
    )
    expect_error(resp, 400, "invalid_next_token")
    # A result page token is not a list token.
    st = run(client, "SELECT i FROM range(5) t(i)")
    page_token = http.get(f"/v1/statements/{st.id}/result", params={"max_rows": 1}).json()[
        "next_token"
    ]
    resp = http.get("/v1/statements", params={"next_token": page_token})
    expect_error(resp, 400, "invalid_next_token")
    assert_alive(client)


# -- sessions -----------------------------------------------------------------------------------
def test_second_statement_on_a_busy_session(client: Client, http: httpx.Client) -> None:
    opener = client.execute(LONG_SQL, session_keep_alive_seconds=60)
    sid = opener.session_id
    assert sid
    wait_for_status(client, opener.id, "STARTED")
    error = expect_error(
        http.post("/v1/statements", json={"sql": "SELECT 1", "session_id": sid}),
        409,
        "session_busy",
    )
    assert error["details"] == {"session_id": sid, "statement_id": opener.id}
    expect_error(
        http.post("/v1/statements/batch", json={"sqls": ["SELECT 1"], "session_id": sid}),
        409,
        "session_busy",
    )
    assert stop(client, opener.id).status == "ABORTED"
    # Once idle, the session takes statements again.
    st = run(client, "SELECT 7 AS x", session_id=sid)
    assert list(client.rows(st.id)) == [[7]]
    assert_alive(client)


def test_unknown_session(client: Client, http: httpx.Client) -> None:
    for sid in (str(uuid.uuid4()), "garbage"):
        expect_error(
            http.post("/v1/statements", json={"sql": "SELECT 1", "session_id": sid}),
            404,
            "session_not_found",
        )
    error = expect_error(
        http.post(
            "/v1/statements",
            json={"sql": "SELECT 1", "session_id": "x", "session_keep_alive_seconds": 10},
        ),
        422,
        "validation_error",
    )
    assert "session" in error["message"]
    assert_alive(client)


def test_another_principals_session_looks_unknown(
    client: Client, server: ServerThread, runtime: Runtime
) -> None:
    opened = run(client, "SELECT 1", session_keep_alive_seconds=60)
    bob_key = create_key(runtime.store, "bob", warehouses=["default"])[1]
    resp = httpx.post(
        f"{server.url}/v1/statements",
        json={"sql": "SELECT 1", "session_id": opened.session_id},
        headers={"Authorization": f"Bearer {bob_key}"},
    )
    expect_error(resp, 404, "session_not_found")
    assert run(client, "SELECT 2", session_id=opened.session_id).status == "FINISHED"
    assert_alive(client)


# -- routes -------------------------------------------------------------------------------------
def test_unknown_routes_and_methods(client: Client, http: httpx.Client) -> None:
    expect_error(http.get("/v2/nothing"), 404, "not_found")
    expect_error(http.delete("/v1/statements"), 405, "method_not_allowed")
    expect_error(http.put("/v1/statements/batch", json={}), 405, "method_not_allowed")
    assert_alive(client)
