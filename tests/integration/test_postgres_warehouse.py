"""Statements on a PostgreSQL warehouse, through the HTTP API (a real server on loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pgtools
from conftest import make_settings
from sqltide import errors
from sqltide.client import Client
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread


@pytest.fixture
def pg_client(tmp_path: Path) -> Iterator[Client]:
    with pgtools.fresh_database() as url:
        settings = make_settings(
            tmp_path,
            warehouses={"pg": url, "down": "postgresql://postgres@127.0.0.1:1/nowhere"},
        )
        rt = Runtime.build(settings)
        key = create_key(rt.store, "alice", warehouses=list(rt.engines))[1]
        with ServerThread(rt) as srv, Client(srv.url, key) as c:
            yield c


def run(c: Client, sql: str, **kw: object) -> object:
    return c.wait(c.execute(sql, warehouse="pg", **kw).id, timeout=30)  # type: ignore[arg-type]


def test_query_with_parameters_and_types(pg_client: Client) -> None:
    st = run(
        pg_client,
        "SELECT :n::int AS n, 1.50::numeric(6,2) AS price, now() AS at, "
        "'{\"a\": 1}'::jsonb AS doc, ARRAY[1,2,3] AS xs",
        parameters={"n": 41},
    )
    assert st.status == "FINISHED", st.error  # type: ignore[attr-defined]
    page = pg_client.result_page(st.id)  # type: ignore[attr-defined]
    assert [c.type_name for c in page.columns][:2] == ["int4", "numeric"]
    n, price, at, doc, xs = page.rows[0]
    assert (n, price, doc, xs) == (41, "1.50", '{"a": 1}', [1, 2, 3])
    assert at.endswith("Z")


def test_batch_is_one_transaction(pg_client: Client) -> None:
    c = pg_client
    ok = c.wait(
        c.batch(["CREATE TABLE t (x int)", "INSERT INTO t VALUES (1), (2)"], warehouse="pg").id,
        timeout=30,
    )
    assert ok.status == "FINISHED"
    bad = c.wait(
        c.batch(["INSERT INTO t VALUES (3)", "SELECT * FROM missing"], warehouse="pg").id,
        timeout=30,
    )
    assert bad.status == "FAILED"
    assert bad.error["sqlstate"] == "42P01"
    count = run(c, "SELECT count(*) AS n FROM t")
    assert list(c.rows(count.id)) == [[2]]  # type: ignore[attr-defined]


def test_syntax_error_has_sqlstate_and_position(pg_client: Client) -> None:
    st = run(pg_client, "SELECT 1 FRM t")  # PostgreSQL reads FRM as an alias: t is the error
    assert st.status == "FAILED"  # type: ignore[attr-defined]
    assert st.error["sqlstate"] == "42601"  # type: ignore[attr-defined]
    assert st.error["position"] == 14  # type: ignore[attr-defined]
    missing = run(pg_client, "SELECT :a::int AS a FROM nope", parameters={"a": 1})
    assert missing.error["sqlstate"] == "42P01"  # type: ignore[attr-defined]
    assert missing.error["position"] == 26  # type: ignore[attr-defined]


def test_cancel_interrupts_the_backend(pg_client: Client) -> None:
    c = pg_client
    st = c.execute("SELECT pg_sleep(60)", warehouse="pg")
    deadline = time.monotonic() + 20
    while c.describe(st.id).status != "STARTED":
        assert time.monotonic() < deadline
        c.describe(st.id, wait=0.05)
    t0 = time.monotonic()
    c.cancel(st.id)
    done = c.wait(st.id, timeout=20)
    assert done.status == "ABORTED"
    assert time.monotonic() - t0 < 10


def test_unreachable_warehouse_fails_statements_and_keeps_serving(pg_client: Client) -> None:
    c = pg_client
    st = c.wait(c.execute("SELECT 1", warehouse="down").id, timeout=30)
    assert st.status == "FAILED"
    assert st.error["code"] == "connection_error"
    with pytest.raises(errors.WarehouseUnavailable):
        c.databases(warehouse="down")
    assert run(c, "SELECT 1").status == "FINISHED"  # type: ignore[attr-defined]


def test_catalog_of_a_postgres_warehouse(pg_client: Client) -> None:
    c = pg_client
    assert (
        run(c, "CREATE TABLE trips (id bigint NOT NULL, fare numeric(10,2))").status == "FINISHED"
    )  # type: ignore[attr-defined]
    assert "public" in c.schemas(warehouse="pg")
    tables = c.tables(warehouse="pg", schema_pattern="public", table_pattern="tri%")
    assert [t["name"] for t in tables] == ["trips"]
    cols = c.describe_table("public", "trips", warehouse="pg")
    assert [(col.name, col.nullable, col.precision, col.scale) for col in cols] == [
        ("id", False, None, None)
        if cols[0].precision is None
        else ("id", False, cols[0].precision, cols[0].scale),
        ("fare", True, 10, 2),
    ]
