"""Redshift SQL through the API on warehouses declared with ``?dialect=redshift``: sqltide's own
``/v1`` (its client) and the Data API (boto3's ``redshift-data`` client), on a real loopback
server, on DuckDB and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pgtools
from aws_data_api import data_api_client
from conftest import make_settings
from sqltide.client import Client
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

TERMINAL = ("FINISHED", "FAILED", "ABORTED")


@pytest.fixture(params=["duckdb", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerThread, Any]]:
    """A server whose warehouse ``redshift-dev`` takes Redshift SQL, and alice's key (with AWS
    credentials) for it."""
    with pgtools.fresh_database() as pg_url:
        url = (
            f"duckdb:///{tmp_path / 'rs.duckdb'}?dialect=redshift"
            if request.param == "duckdb"
            else f"{pg_url}?dialect=redshift"
        )
        rt = Runtime.build(make_settings(tmp_path, warehouses={"redshift-dev": url}))
        try:
            key = create_key(rt.store, "alice", warehouses=["redshift-dev"], aws=True)
            with ServerThread(rt) as srv:
                yield srv, key
        finally:
            rt.stop()


@pytest.fixture
def client(served: tuple[ServerThread, Any]) -> Iterator[Client]:
    srv, key = served
    with Client(srv.url, key[1]) as c:
        yield c


def run(c: Client, sql: str, **kw: Any) -> Any:
    return c.wait(c.execute(sql, warehouse="redshift-dev", **kw).id, timeout=30)


def test_a_redshift_statement_runs_with_its_parameters(client: Client) -> None:
    st = run(
        client,
        "SELECT TOP 1 NVL(:missing, 'none') AS a, DATEADD(day, :n, '2020-01-31'::date) AS b, "
        "LISTAGG(w, ',') WITHIN GROUP (ORDER BY w) AS c, DATEDIFF(month, '2020-01-31', "
        "'2020-03-01') AS d FROM (SELECT 'b' AS w UNION ALL SELECT 'a') t",
        parameters={"missing": None, "n": 2},
    )
    assert st.status == "FINISHED", st.error
    assert client.result_page(st.id).rows == [["none", "2020-02-02T00:00:00.000000", "a,b", 2]]


def test_a_batch_of_redshift_ddl_and_dml_is_translated_statement_by_statement(
    client: Client,
) -> None:
    batch = client.batch(
        [
            "CREATE TABLE trips (day DATE ENCODE az64, miles FLOAT4, vendor VARCHAR(MAX)) "
            "DISTSTYLE KEY DISTKEY(vendor) SORTKEY(day) BACKUP NO",
            "INSERT INTO trips VALUES ('2015-01-01', 1, 'VTS'), ('2015-01-20', 3, 'CMT'), "
            "('2015-02-02', 2, 'VTS')",
        ],
        warehouse="redshift-dev",
    )
    assert client.wait(batch.id, timeout=30).status == "FINISHED"
    st = run(
        client,
        "SELECT DATE_TRUNC('mon', day)::date AS month, ROUND(AVG(miles), 2) AS avg_miles, "
        "LISTAGG(DISTINCT vendor, '|') WITHIN GROUP (ORDER BY vendor) AS vendors "
        "FROM trips GROUP BY 1 ORDER BY 1",
    )
    assert st.status == "FINISHED", st.error
    rows = [[r[0], float(r[1]), r[2]] for r in client.result_page(st.id).rows]
    assert rows == [[str(dt.date(2015, 1, 1)), 2.0, "CMT|VTS"], ["2015-02-01", 2.0, "VTS"]]


def test_untranslatable_sql_fails_the_statement_clearly(client: Client) -> None:
    st = run(client, "SELECT STRTOL('ff', 16) AS n")
    assert st.status == "FAILED"
    assert st.error["code"] == "untranslatable_sql" and st.error["sqlstate"] == "0A000"
    assert "STRTOL" in st.error["message"] and st.error["position"] == 8
    assert st.query_string == "SELECT STRTOL('ff', 16) AS n"  # the statement as the caller wrote it


def test_the_data_api_runs_redshift_sql(served: tuple[ServerThread, Any]) -> None:
    srv, key = served
    rsd = data_api_client(srv.url, key[2].access_key_id, key[2].secret_access_key)
    out = rsd.execute_statement(
        WorkgroupName="redshift-dev",
        Sql="SELECT NVL(:v, 'missing') AS a, LEN(:v) AS b, GETDATE() IS NOT NULL AS c",
        Parameters=[{"name": "v", "value": "abc"}],
        WaitTimeSeconds=30,
    )
    assert out["Status"] == "FINISHED", rsd.describe_statement(Id=out["Id"]).get("Error")
    result = rsd.get_statement_result(Id=out["Id"])
    assert result["Records"] == [[{"stringValue": "abc"}, {"longValue": 3}, {"booleanValue": True}]]
    failed = rsd.execute_statement(WorkgroupName="redshift-dev", Sql="SELEC 1", WaitTimeSeconds=30)
    desc = rsd.describe_statement(Id=failed["Id"])
    assert desc["Status"] == "FAILED"
    assert desc["Error"].startswith("ERROR: ") and "cannot parse" in desc["Error"]
