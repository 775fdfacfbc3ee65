"""A sqltide whose warehouse is Amazon Redshift (``redshift-data://``), end to end.

AWS is not reachable here, so the "Redshift" is a second sqltide server whose warehouse is
PostgreSQL, reached through its Data API face (``redshift_loop.py``). A statement submitted
to the first server through ``/v1`` is run by its worker on the ``redshift-data`` engine,
which calls the second server with boto3 (signed, long-polled, paged), whose worker runs it
on PostgreSQL: the round trip proves that both sides speak the real protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aws_data_api import data_api_client
from conftest import make_settings
from helpers import wait_until
from redshift_loop import DataApiLoop, data_api_loop
from sqltide.client import Client
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread


@dataclass(frozen=True, slots=True)
class Chain:
    client: Client  # /v1 of the first server, warehouse "rs"
    redshift: DataApiLoop  # the second server, as the engine sees it
    rsd: Any  # boto3 on the second server (as the engine's own key)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    with data_api_loop(tmp_path / "redshift", page_max_rows=50) as loop:
        settings = make_settings(
            tmp_path / "sqltide", warehouses={"rs": loop.warehouse_url(session_keep_alive="60")}
        )
        runtime = Runtime.build(settings)
        try:
            key = create_key(runtime.store, "alice", warehouses=["rs"])[1]
            rsd = data_api_client(loop.url, loop.access_key_id, loop.secret_access_key)
            with ServerThread(runtime) as server, Client(server.url, key) as client:
                yield Chain(client, loop, rsd)
        finally:
            runtime.stop()


def run(c: Client, sql: str, **kw: Any) -> Any:
    return c.wait(c.execute(sql, warehouse="rs", **kw).id, timeout=30)


def test_a_statement_finishes_with_its_rows(chain: Chain) -> None:
    c = chain.client
    st = run(
        c,
        "SELECT g AS n, 'row ' || g AS label, (g * 1.5)::numeric(8,2) AS price "
        "FROM generate_series(1, 120) g WHERE g > :lo ORDER BY g",
        parameters={"lo": 20},
    )
    assert st.status == "FINISHED", st.error
    assert (st.has_result_set, st.result_rows) == (True, 100)
    rows: list[Any] = []
    for page in c.result(st.id):
        if not rows:
            assert [col.type_name for col in page.columns] == ["int4", "varchar", "numeric"]
        rows.extend(page.rows)
    assert len(rows) == 100
    assert rows[0] == [21, "row 21", "31.50"] and rows[-1][0] == 120
    # Ran on the other side as a Data API statement of the engine's key.
    listed = chain.rsd.list_statements(Status="FINISHED")["Statements"]
    assert any("generate_series" in s["QueryString"] for s in listed)


def test_a_failing_statement_ends_failed_with_the_sqlstate(chain: Chain) -> None:
    st = run(chain.client, "SELECT * FROM no_such_table")
    assert st.status == "FAILED"
    assert (st.error["code"], st.error["sqlstate"]) == ("undefined_object", "42P01")
    assert st.error["message"] == 'relation "no_such_table" does not exist'
    syntax = run(chain.client, "SELECT 1 FRM t")
    assert (syntax.status, syntax.error["sqlstate"]) == ("FAILED", "42601")


def test_cancel_reaches_the_warehouse(chain: Chain) -> None:
    c = chain.client
    st = c.execute("SELECT pg_sleep(30)", warehouse="rs")
    # Running on the other side: the engine's statement is STARTED there.
    inner = wait_until(
        lambda: [
            s
            for s in chain.rsd.list_statements(Status="STARTED")["Statements"]
            if s["QueryString"] == "SELECT pg_sleep(30)"
        ],
        timeout=15,
    )[0]
    cancelled = c.cancel(st.id)
    if not cancelled.is_terminal:
        cancelled = c.wait(st.id, timeout=15)
    assert cancelled.status == "ABORTED"
    there = chain.rsd.describe_statement(Id=inner["Id"], WaitTimeSeconds=10)
    assert there["Status"] == "ABORTED"


def test_a_batch_is_one_transaction_on_the_warehouse(chain: Chain) -> None:
    c = chain.client
    ok = c.wait(
        c.batch(["CREATE TABLE t (x int)", "INSERT INTO t VALUES (1), (2)"], warehouse="rs").id,
        timeout=30,
    )
    assert ok.status == "FINISHED", ok.error
    bad = c.wait(
        c.batch(["INSERT INTO t VALUES (3)", "SELECT * FROM missing"], warehouse="rs").id,
        timeout=30,
    )
    assert bad.status == "FAILED" and bad.error["sqlstate"] == "42P01"
    count = run(c, "SELECT count(*) AS n FROM t")
    assert next(iter(c.result(count.id))).rows == [[2]]  # the third row was rolled back
    # The batch ran in a Data API session of its own on the other side.
    sessions = chain.rsd.list_sessions(Status="AVAILABLE")["Sessions"]
    assert sessions and all(s["SessionAliveSeconds"] == 60 for s in sessions)


def test_a_session_keeps_temporary_tables(chain: Chain) -> None:
    c = chain.client
    first = c.wait(
        c.execute(
            "CREATE TEMP TABLE scratch AS SELECT 42 AS answer",
            warehouse="rs",
            session_keep_alive_seconds=120,
        ).id,
        timeout=30,
    )
    assert first.status == "FINISHED", first.error
    again = c.wait(
        c.execute("SELECT answer FROM scratch", warehouse="rs", session_id=first.session_id).id,
        timeout=30,
    )
    assert again.status == "FINISHED", again.error
    assert next(iter(c.result(again.id))).rows == [[42]]
