"""The HTTP API's happy paths, through a real server on loopback (uvicorn in a thread)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import make_settings
from sqltide.client import Client
from sqltide.client.models import Statement
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

LONG_SQL = "SELECT count(*) FROM range(10000000000000)"
WAIT = 20.0


# -- helpers ------------------------------------------------------------------------------------
def run(client: Client, sql: str, **kwargs: Any) -> Statement:
    """Execute and wait for the end; the statement must finish."""
    done = client.wait(client.execute(sql, **kwargs).id, timeout=WAIT)
    assert done.status == "FINISHED", done.error
    return done


def wait_for_status(client: Client, sid: str, status: str, timeout: float = WAIT) -> Statement:
    """Poll (briefly) until the statement reaches ``status``; fails at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        st = client.describe(sid)
        if st.status == status:
            return st
        assert not st.is_terminal, f"{sid} ended {st.status} before reaching {status}"
        assert time.monotonic() < deadline, f"{sid} still {st.status} after {timeout} s"
        time.sleep(0.02)  # polling a condition, bounded by the deadline


def assert_alive(client: Client) -> None:
    """The server still answers /health and runs a normal statement."""
    assert client.health()["status"] == "ok"
    st = run(client, "SELECT 41 + 1 AS answer")
    assert list(client.rows(st.id)) == [[42]]


def api(server: ServerThread, api_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    )


@pytest.fixture
def http(server: ServerThread, api_key: str) -> Iterator[httpx.Client]:
    with api(server, api_key) as c:
        yield c


# -- execute, results ---------------------------------------------------------------------------
def test_execute_wait_result_rows_and_column_metadata(client: Client) -> None:
    sql = (
        "SELECT 1::INTEGER AS i, 'x' AS s, 2.50::DECIMAL(5,2) AS d, NULL::VARCHAR AS n, "
        "true AS b, 9007199254740993::BIGINT AS big"
    )
    submitted = client.execute(sql)
    assert submitted.status == "SUBMITTED"
    assert submitted.query_string == sql
    done = client.wait(submitted.id, timeout=WAIT)
    assert done.status == "FINISHED"
    assert done.error is None
    assert done.has_result_set is True
    assert done.result_rows == 1
    assert done.result_size and done.result_size > 0
    assert done.duration_ns is not None and done.duration_ns >= 0
    assert done.started_at is not None and done.ended_at is not None
    assert done.result_expires_at is not None
    assert done.principal == "alice"
    assert done.warehouse == "default"

    page = client.result_page(done.id)
    assert page.id == done.id
    assert page.total_rows == 1
    assert page.next_token is None
    assert page.rows == [[1, "x", "2.50", None, True, "9007199254740993"]]
    cols = {c.name: c for c in page.columns}
    assert [c.name for c in page.columns] == ["i", "s", "d", "n", "b", "big"]
    assert cols["i"].type_name == "INTEGER"
    assert cols["s"].type_name == "VARCHAR"
    assert cols["d"].type_name == "DECIMAL(5,2)"
    assert (cols["d"].precision, cols["d"].scale) == (5, 2)
    assert cols["b"].type_name == "BOOLEAN"
    assert cols["big"].type_name == "BIGINT"
    assert_alive(client)


def test_named_parameters(client: Client) -> None:
    st = run(
        client,
        "SELECT :n + 1 AS m, :s AS s, :f * 2 AS f, :flag AS flag, :nothing IS NULL AS isnull",
        parameters={"n": 41, "s": "it's", "f": 1.25, "flag": False, "nothing": None},
    )
    assert st.parameters == {"n": 41, "s": "it's", "f": 1.25, "flag": False, "nothing": None}
    assert list(client.rows(st.id)) == [[42, "it's", 2.5, False, True]]
    # The same parameter used twice, and a ':' in a string literal that is not a parameter.
    st = run(client, "SELECT :v AS a, :v * 10 AS b, 'a:b' AS c", parameters={"v": 3})
    assert list(client.rows(st.id)) == [[3, 30, "a:b"]]
    assert_alive(client)


def test_json_paging_with_max_rows(client: Client) -> None:
    st = run(client, "SELECT i, 'row ' || i AS label FROM range(23) t(i) ORDER BY i")
    pages = list(client.result(st.id, max_rows=5))
    assert [len(p.rows) for p in pages] == [5, 5, 5, 5, 3]
    assert all(p.total_rows == 23 for p in pages)
    assert pages[-1].next_token is None
    assert all(p.next_token for p in pages[:-1])
    rows = [r for p in pages for r in p.rows]
    assert rows == [[i, f"row {i}"] for i in range(23)]
    assert all(p.columns == pages[0].columns for p in pages)
    # One page of everything is the same rows.
    assert client.result_page(st.id).rows == rows
    assert_alive(client)


def test_csv_pages_concatenate_to_the_whole_file(client: Client, http: httpx.Client) -> None:
    st = run(client, "SELECT i AS n, 'v,' || i AS quoted FROM range(12) t(i) ORDER BY i")
    whole = http.get(f"/v1/statements/{st.id}/result", params={"format": "csv"})
    assert whole.status_code == 200
    assert whole.headers["content-type"].startswith("text/csv")
    assert whole.headers["Sqltide-Total-Rows"] == "12"
    assert "Sqltide-Next-Token" not in whole.headers
    parsed = list(csv.reader(io.StringIO(whole.text)))
    assert parsed[0] == ["n", "quoted"]
    assert parsed[1:] == [[str(i), f"v,{i}"] for i in range(12)]

    pages: list[bytes] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"format": "csv", "max_rows": 5}
        if token:
            params["next_token"] = token
        resp = http.get(f"/v1/statements/{st.id}/result", params=params)
        assert resp.status_code == 200
        assert resp.headers["Sqltide-Total-Rows"] == "12"
        pages.append(resp.content)
        token = resp.headers.get("Sqltide-Next-Token")
        if not token:
            break
        assert len(pages) < 10
    assert len(pages) == 3
    header = whole.content.split(b"\n", 1)[0]
    assert pages[0].startswith(header + b"\n")
    assert all(header not in p for p in pages[1:])
    assert [len(list(csv.reader(io.StringIO(p.decode())))) for p in pages] == [6, 5, 2]
    assert b"".join(pages) == whole.content
    # The client's CSV iterator gives the same file.
    assert b"".join(client.result_csv(st.id, max_rows=4)) == whole.content
    assert_alive(client)


# -- batches ------------------------------------------------------------------------------------
def test_batch_in_a_transaction(client: Client, http: httpx.Client) -> None:
    sqls = [
        "CREATE TABLE t_batch (x INTEGER)",
        "INSERT INTO t_batch VALUES (1), (2), (3)",
        "SELECT x FROM t_batch ORDER BY x",
    ]
    submitted = client.batch(sqls)
    assert submitted.is_batch is True
    assert submitted.batch_mode == "transaction"
    assert submitted.query_strings == tuple(sqls)
    assert submitted.query_string == ";\n".join(sqls)
    assert [s.id for s in submitted.sub_statements] == [
        f"{submitted.id}:1",
        f"{submitted.id}:2",
        f"{submitted.id}:3",
    ]
    done = client.wait(submitted.id, timeout=WAIT)
    assert done.status == "FINISHED", done.error
    assert [s.status for s in done.sub_statements] == ["FINISHED"] * 3
    assert [s.query_string for s in done.sub_statements] == sqls
    create, insert, select = done.sub_statements
    assert create.has_result_set is False
    assert insert.has_result_set is False and insert.result_rows == 3
    assert select.has_result_set is True and select.result_rows == 3
    assert list(client.rows(f"{done.id}:3")) == [[1], [2], [3]]
    # Sub-statement describe, on its own.
    resp = http.get(f"/v1/statements/{done.id}:2")
    assert resp.status_code == 200
    body = resp.json()
    assert body["id"] == f"{done.id}:2"
    assert body["batch_id"] == done.id
    assert body["status"] == "FINISHED"
    assert body["query_string"] == sqls[1]
    assert body["result_rows"] == 3
    # ... and with wait.
    resp = http.get(f"/v1/statements/{done.id}:3", params={"wait": 5})
    assert resp.status_code == 200 and resp.json()["status"] == "FINISHED"
    assert_alive(client)


def test_batch_failure_rolls_everything_back(client: Client) -> None:
    sqls = [
        "CREATE TABLE t_rollback (x INTEGER)",
        "INSERT INTO t_rollback VALUES (1)",
        "SELECT * FROM no_such_table",
        "SELECT 1",
    ]
    done = client.wait(client.batch(sqls).id, timeout=WAIT)
    assert done.status == "FAILED"
    assert done.error is not None
    failing = f"{done.id}:3"
    assert failing in done.error["message"]
    assert done.error["code"] == "undefined_object"
    assert done.error["details"]["sub_statement_id"] == failing
    assert done.error["details"]["rolled_back"] is True
    assert "rolled back" in done.error["message"]
    statuses = [s.status for s in done.sub_statements]
    assert statuses[2:] == ["FAILED", "ABORTED"]
    assert done.sub_statements[2].error["code"] == "undefined_object"
    assert done.sub_statements[3].error["code"] == "not_run"
    # Nothing of the batch is left.
    assert client.tables(table_pattern="t_rollback") == []
    after = client.wait(client.execute("SELECT * FROM t_rollback").id, timeout=WAIT)
    assert after.status == "FAILED"
    assert after.error["code"] == "undefined_object"
    assert_alive(client)


def test_batch_auto_commit_keeps_earlier_effects(client: Client) -> None:
    sqls = [
        "CREATE TABLE t_auto (x INTEGER)",
        "INSERT INTO t_auto VALUES (7)",
        "INSERT INTO t_auto VALUES ('not a number')",
        "INSERT INTO t_auto VALUES (8)",
    ]
    done = client.wait(client.batch(sqls, mode="auto_commit").id, timeout=WAIT)
    assert done.batch_mode == "auto_commit"
    assert done.status == "FAILED"
    assert f"{done.id}:3" in done.error["message"]
    assert done.error["details"]["rolled_back"] is False
    assert [s.status for s in done.sub_statements] == ["FINISHED", "FINISHED", "FAILED", "ABORTED"]
    st = run(client, "SELECT x FROM t_auto ORDER BY x")
    assert list(client.rows(st.id)) == [[7]]
    assert_alive(client)


# -- describe with wait -------------------------------------------------------------------------
def _sql_of_about(client: Client, seconds: float) -> str:
    """A CPU-bound query that takes about ``seconds`` here (calibrated on this machine)."""
    n = 2_000_000
    while True:
        st = run(client, f"SELECT sum(hash(i)) FROM range({n}) t(i)")
        took = (st.duration_ns or 0) / 1e9
        if took >= 0.1 or n >= 10**10:
            break
        n *= 4
    return f"SELECT sum(hash(i)) FROM range({max(n, int(n * seconds / took))}) t(i)"


def test_describe_wait_returns_as_soon_as_the_statement_ends(client: Client) -> None:
    sql = _sql_of_about(client, 1.0)
    st = client.execute(sql)
    started = time.monotonic()
    described = client.describe(st.id, wait=10)
    elapsed = time.monotonic() - started
    assert described.status == "FINISHED"
    assert described.ended_at is not None
    # It was held until the end (not answered at once) and let go at the end (not at 10 s).
    assert elapsed < 5.0, elapsed
    assert described.duration_ns is not None and described.duration_ns > 0.2e9
    # A wait on a statement that has ended answers at once.
    started = time.monotonic()
    assert client.describe(st.id, wait=10).status == "FINISHED"
    assert time.monotonic() - started < 2.0
    assert_alive(client)


# -- list ---------------------------------------------------------------------------------------
def test_statement_name_list_filters_and_pagination(client: Client, http: httpx.Client) -> None:
    ids: dict[str, str] = {}
    for name in ("job-a-1", "job-a-2", "job-a-3", "job-b-1", "job-b-2"):
        ids[name] = run(client, "SELECT 1", statement_name=name).id
    bad = client.wait(client.execute("SELEC 1", statement_name="job-c").id, timeout=WAIT)
    assert bad.status == "FAILED"
    ids["job-c"] = bad.id
    newest_first = list(reversed(ids.values()))

    everything = list(client.list())
    assert [s.id for s in everything] == newest_first
    assert everything[0].statement_name == "job-c"
    assert everything[0].sub_statements == ()

    assert [s.statement_name for s in client.list(name_prefix="job-a")] == [
        "job-a-3",
        "job-a-2",
        "job-a-1",
    ]
    assert [s.id for s in client.list(status="FAILED")] == [ids["job-c"]]
    assert len(list(client.list(status="FINISHED"))) == 5
    assert list(client.list(status="SUBMITTED")) == []
    # A name prefix is not a pattern.
    assert list(client.list(name_prefix="job-%")) == []
    assert list(client.list(name_prefix="job_a")) == []

    by_id = {s.id: s for s in everything}
    pivot = by_id[ids["job-b-1"]].created_at
    # created_after is inclusive, created_before exclusive, to the microsecond shown.
    after = [s.id for s in client.list(created_after=pivot)]
    before = [s.id for s in client.list(created_before=pivot)]
    assert after == [ids["job-c"], ids["job-b-2"], ids["job-b-1"]]
    assert before == [ids["job-a-3"], ids["job-a-2"], ids["job-a-1"]]
    later = [s.id for s in client.list(created_after=pivot + timedelta(microseconds=1))]
    assert later == [ids["job-c"], ids["job-b-2"]]
    window = client.list(created_after=by_id[ids["job-a-2"]].created_at, created_before=pivot)
    assert [s.id for s in window] == [ids["job-a-3"], ids["job-a-2"]]

    # Pages of 2, following next_token.
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"max_results": 2}
        if token:
            params["next_token"] = token
        resp = http.get("/v1/statements", params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append([s["id"] for s in body["statements"]])
        token = body["next_token"]
        if not token:
            break
        assert len(pages) < 10
    assert [len(p) for p in pages] == [2, 2, 2]
    assert [sid for page in pages for sid in page] == newest_first
    # Filters and pages together.
    resp = http.get("/v1/statements", params={"max_results": 2, "name_prefix": "job-a"})
    first = resp.json()
    assert [s["statement_name"] for s in first["statements"]] == ["job-a-3", "job-a-2"]
    resp = http.get(
        "/v1/statements",
        params={"max_results": 2, "name_prefix": "job-a", "next_token": first["next_token"]},
    )
    assert [s["statement_name"] for s in resp.json()["statements"]] == ["job-a-1"]
    assert resp.json()["next_token"] is None
    assert_alive(client)


def test_list_shows_only_the_callers_statements(
    client: Client, server: ServerThread, runtime: Runtime
) -> None:
    mine = run(client, "SELECT 1", statement_name="mine").id
    bob_key = create_key(runtime.store, "bob", warehouses=["default"])[1]
    with Client(server.url, bob_key) as bob:
        theirs = run(bob, "SELECT 2", statement_name="theirs").id
        assert [s.id for s in bob.list()] == [theirs]
    assert [s.id for s in client.list()][-1] == mine
    assert theirs not in {s.id for s in client.list()}
    assert_alive(client)


# -- catalog ------------------------------------------------------------------------------------
def test_catalog_endpoints(client: Client, http: httpx.Client) -> None:
    run(client, "CREATE SCHEMA sales")
    run(client, "CREATE TABLE sales.orders (id INTEGER NOT NULL, amount DECIMAL(10,2))")
    run(client, "CREATE TABLE sales.order_lines (order_id INTEGER, sku VARCHAR)")
    run(client, "CREATE TABLE main.trips (id BIGINT, city VARCHAR)")
    run(client, "CREATE VIEW main.trip_cities AS SELECT DISTINCT city FROM main.trips")

    assert client.warehouses() == [
        {"name": "default", "scheme": "duckdb", "default": True, "access": "read_write"}
    ]
    databases = client.databases()
    assert len(databases) >= 1
    assert client.databases(warehouse="default") == databases

    schemas = client.schemas()
    assert "main" in schemas and "sales" in schemas
    assert client.schemas(schema_pattern="sal%") == ["sales"]
    assert client.schemas(schema_pattern="nothing%") == []

    tables = client.tables(schema_pattern="sales")
    assert sorted(t["name"] for t in tables) == ["order_lines", "orders"]
    assert all(t["schema"] == "sales" and t["type"] == "TABLE" for t in tables)
    assert [t["name"] for t in client.tables(table_pattern="order\\_l%")] in (
        ["order_lines"],
        [],  # an engine may not take an escape
    )
    assert sorted(t["name"] for t in client.tables(table_pattern="order%")) == [
        "order_lines",
        "orders",
    ]
    views = client.tables(schema_pattern="main", table_pattern="trip%")
    kinds = {t["name"]: t["type"] for t in views}
    assert kinds["trips"] == "TABLE"
    assert kinds["trip_cities"] == "VIEW"
    assert client.tables(table_pattern="nope%") == []

    columns = client.describe_table("sales", "orders")
    assert [c.name for c in columns] == ["id", "amount"]
    assert columns[0].type_name == "INTEGER"
    assert columns[0].nullable is False
    assert columns[1].type_name == "DECIMAL(10,2)"
    assert (columns[1].precision, columns[1].scale) == (10, 2)

    resp = http.get("/v1/catalog/tables/sales/no_such_table")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    resp = http.get("/v1/catalog/tables/no_schema/orders")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    assert_alive(client)


# -- sessions -----------------------------------------------------------------------------------
def test_session_keeps_temp_tables_between_statements(client: Client) -> None:
    opened = run(
        client, "CREATE TEMP TABLE scratch AS SELECT 5 AS x", session_keep_alive_seconds=60
    )
    sid = opened.session_id
    assert sid
    inside = run(client, "SELECT x FROM scratch", session_id=sid)
    assert inside.session_id == sid
    assert list(client.rows(inside.id)) == [[5]]
    # A batch in the same session sees it too.
    batch = client.wait(
        client.batch(
            ["INSERT INTO scratch VALUES (6)", "SELECT count(*) AS n FROM scratch"], session_id=sid
        ).id,
        timeout=WAIT,
    )
    assert batch.status == "FINISHED", batch.error
    assert list(client.rows(f"{batch.id}:2")) == [[2]]

    outside = client.wait(client.execute("SELECT x FROM scratch").id, timeout=WAIT)
    assert outside.status == "FAILED"
    assert outside.session_id is None
    assert outside.error["code"] == "undefined_object"
    assert_alive(client)


# -- cancel -------------------------------------------------------------------------------------
def test_cancel_a_running_statement(client: Client) -> None:
    st = client.execute(LONG_SQL)
    wait_for_status(client, st.id, "STARTED")
    started = time.monotonic()
    cancelled = client.cancel(st.id)
    assert time.monotonic() - started < 5.0
    if not cancelled.is_terminal:  # the cancel answers after 5 s at most
        cancelled = client.wait(st.id, timeout=WAIT)
    assert cancelled.status == "ABORTED"
    assert cancelled.error["code"] == "cancelled"
    assert cancelled.error["sqlstate"] == "57014"
    assert cancelled.ended_at is not None
    assert cancelled.has_result_set is False
    assert_alive(client)


def test_cancel_a_running_batch(client: Client) -> None:
    st = client.batch(["CREATE TABLE t_cb (x INTEGER)", LONG_SQL, "SELECT 1"])
    deadline = time.monotonic() + WAIT
    while client.describe(st.id).sub_statements[1].status != "STARTED":
        assert time.monotonic() < deadline
        time.sleep(0.02)  # polling a condition, bounded by the deadline
    client.cancel(st.id)
    done = client.wait(st.id, timeout=WAIT)
    assert done.status == "ABORTED"
    assert [s.status for s in done.sub_statements] == ["FINISHED", "ABORTED", "ABORTED"]
    assert client.tables(table_pattern="t_cb") == []
    assert_alive(client)


def test_cancel_a_submitted_statement_never_runs_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, worker_concurrency=1)
    rt = Runtime.build(settings)
    key = create_key(rt.store, "alice", warehouses=["default"])[1]
    try:
        with ServerThread(rt) as srv, Client(srv.url, key) as client:
            busy = client.execute(LONG_SQL)
            wait_for_status(client, busy.id, "STARTED")
            queued = client.execute("CREATE TABLE t_never AS SELECT 1 AS x")
            assert client.describe(queued.id).status == "SUBMITTED"
            cancelled = client.cancel(queued.id)
            assert cancelled.status == "ABORTED"
            assert cancelled.started_at is None
            assert cancelled.error["code"] == "cancelled"

            first = client.cancel(busy.id)
            if not first.is_terminal:
                first = client.wait(busy.id, timeout=WAIT)
            assert first.status == "ABORTED"
            # The worker is free again: a new statement runs, the cancelled one never did.
            assert_alive(client)
            again = client.describe(queued.id)
            assert again.status == "ABORTED" and again.started_at is None
            assert client.tables(table_pattern="t_never") == []
    finally:
        rt.stop()
