"""Statements through the Amazon Redshift Data API: boto3's real ``redshift-data`` client against
a loopback server, signed with a key's AWS credentials, on both state stores.

Every answer is checked against botocore's model (``aws_data_api.data_api_client``). The DuckDB
warehouse runs everywhere; the PostgreSQL warehouse tests run on the SQLite store only (the
warehouse, not the store, is what they are about).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pgtools
from aws_data_api import data_api_client
from conftest import make_settings
from helpers import api, wait_until
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

TERMINAL = ("FINISHED", "FAILED", "ABORTED")


@pytest.fixture
def aws(runtime: Runtime) -> Any:
    """Alice's key with AWS credentials (``(record, key, credentials)``)."""
    return create_key(runtime.store, "alice", warehouses=list(runtime.engines), aws=True)


@pytest.fixture
def rsd(server: ServerThread, aws: Any) -> Any:
    creds = aws[2]
    return data_api_client(server.url, creds.access_key_id, creds.secret_access_key)


def done(rsd: Any, statement_id: str) -> dict[str, Any]:
    """DescribeStatement, long-polling until the statement has ended."""
    for _ in range(10):
        desc = rsd.describe_statement(Id=statement_id, WaitTimeSeconds=30)
        if desc["Status"] in TERMINAL:
            return dict(desc)
    raise AssertionError(f"statement {statement_id} did not end")


# -- the seed ----------------------------------------------------------------------------------
#: The seed 001 handler's query.sql, split into its statements (as its sqlparse.split does).
SEED_001_STATEMENTS = [
    "DELETE FROM public.mart_customer_summary;",
    """INSERT INTO public.mart_customer_summary (
customer_id,
total_orders,
total_amount,
last_order_date,
updated_at
)
SELECT
customer_id,
COUNT(DISTINCT order_id) AS total_orders,
SUM(quantity * unit_price) AS total_amount,
MAX(order_date) AS last_order_date,
CURRENT_TIMESTAMP AS updated_at
FROM
orders
GROUP BY
customer_id;""",
]
SEED_001_SETUP = [
    "CREATE SCHEMA IF NOT EXISTS public",
    # The seed reads "orders" from the search path (public on Redshift and PostgreSQL, main
    # on DuckDB) and writes public.mart_customer_summary.
    "CREATE TABLE orders (order_id int, customer_id int, quantity int, "
    "unit_price numeric(10,2), order_date date)",
    "INSERT INTO orders VALUES (1, 7, 2, 5.00, DATE '2026-01-02'), "
    "(2, 7, 1, 3.50, DATE '2026-01-05'), (3, 8, 4, 1.25, DATE '2026-01-03')",
    "CREATE TABLE public.mart_customer_summary (customer_id int, total_orders bigint, "
    "total_amount numeric(18,2), last_order_date date, updated_at timestamp)",
]


def run_seed_001(redshift_data: Any, workgroup: str, database: str) -> dict[str, Any]:
    """The seed 001 handler's two Data API calls, as it makes them: one batch, then describe
    until ``completed`` (its check raises on FAILED or ABORTED)."""
    response = redshift_data.batch_execute_statement(
        WorkgroupName=workgroup,
        Database=database,
        Sqls=SEED_001_STATEMENTS,
    )
    query_id = response["Id"]

    def check_query_status() -> dict[str, Any]:
        response = redshift_data.describe_statement(Id=query_id)
        status = response["Status"]
        if status in ("FAILED", "ABORTED"):
            error_message = response.get("Error", "Unknown error")
            raise Exception(f"Query failed with status {status}: {error_message}")
        return {"status": status, "completed": status == "FINISHED"}

    result = wait_until(lambda: (r := check_query_status())["completed"] and r, timeout=30)
    return {"query_id": query_id, **result}


def seed_setup(rsd: Any, **where: str) -> None:
    setup = rsd.batch_execute_statement(Sqls=SEED_001_SETUP, **where)
    assert done(rsd, setup["Id"])["Status"] == "FINISHED"


def test_seed_001_handler_runs_unchanged(rsd: Any, server: ServerThread, aws: Any) -> None:
    seed_setup(rsd, WorkgroupName="default", Database="dev")
    out = run_seed_001(rsd, "default", "dev")
    assert out["status"] == "FINISHED"
    desc = rsd.describe_statement(Id=out["query_id"])
    assert desc["WorkgroupName"] == "default" and desc["Database"] == "dev"
    assert [s["Id"] for s in desc["SubStatements"]] == [
        f"{out['query_id']}:1",
        f"{out['query_id']}:2",
    ]
    assert desc["SubStatements"][1]["ResultRows"] == 2  # two customers inserted
    # One statement world: /v1 sees the same statement, with its origin.
    with api(server, aws[1]) as http:
        v1 = http.get(f"/v1/statements/{out['query_id']}").json()
    assert v1["status"] == "FINISHED" and v1["is_batch"] and v1["warehouse"] == "default"


# -- execute, describe, one statement world ----------------------------------------------------
def test_execute_and_describe(rsd: Any, server: ServerThread, aws: Any) -> None:
    creds = aws[2]
    out = rsd.execute_statement(
        ClusterIdentifier="default",
        Database="dev",
        DbUser="etl_user",
        SecretArn="arn:aws:secretsmanager:us-east-1:000000000000:secret:etl",
        Sql="SELECT :n::int + 1 AS n, :s AS s",
        Parameters=[{"name": "n", "value": "41"}, {"name": "s", "value": "x"}],
        StatementName="etl-answer",
        WithEvent=True,
    )
    assert out["ClusterIdentifier"] == "default" and out["DbUser"] == "etl_user"
    assert "WorkgroupName" not in out and "Status" not in out  # no WaitTimeSeconds: no status
    desc = done(rsd, out["Id"])
    assert desc["Status"] == "FINISHED", desc
    assert desc["HasResultSet"] is True and desc["ResultRows"] == 1 and desc["ResultSize"] > 0
    assert desc["Duration"] > 0 and desc["RedshiftPid"] == 0 and desc["RedshiftQueryId"] == 0
    assert desc["QueryParameters"] == [{"name": "n", "value": "41"}, {"name": "s", "value": "x"}]
    assert (desc["Database"], desc["DbUser"], desc["ResultFormat"]) == ("dev", "etl_user", "JSON")
    assert desc["SecretArn"].endswith(":secret:etl")
    assert desc["CreatedAt"] <= desc["UpdatedAt"]
    with api(server, aws[1]) as http:
        v1 = http.get(f"/v1/statements/{out['Id']}").json()
        assert v1["statement_name"] == "etl-answer" and v1["with_event"] is True
        # WithEvent: the status change event names the caller by its ARN.
        events = wait_until(
            lambda: [
                e
                for e in http.get("/v1/events").json()["events"]
                if e["detail"].get("statementId") == out["Id"]
            ]
        )
        assert events[0]["detail"]["principal"] == creds.arn
        # ... and a statement from /v1 is described by the Data API.
        mine = http.post("/v1/statements", json={"sql": "SELECT 2"}).json()
    theirs = done(rsd, mine["id"])
    assert theirs["Status"] == "FINISHED" and theirs["ClusterIdentifier"] == "default"
    assert theirs["ResultFormat"] == "JSON" and theirs["Database"] == "warehouse"


def test_wait_time_seconds_on_execute(rsd: Any) -> None:
    out = rsd.execute_statement(WorkgroupName="default", Sql="SELECT 1", WaitTimeSeconds=30)
    assert out["Status"] == "FINISHED" and out["HasResultSet"] is True
    assert out["Database"] == "warehouse"  # the DuckDB file's own name when none is given


def test_failed_statement_reads_like_redshift(rsd: Any, server: ServerThread, aws: Any) -> None:
    out = rsd.execute_statement(WorkgroupName="default", Database="dev", Sql="SELEC 1")
    desc = done(rsd, out["Id"])
    assert desc["Status"] == "FAILED"
    assert desc["Error"] == 'ERROR: syntax error at or near "SELEC"'
    assert desc["ResultRows"] == -1 and desc["ResultSize"] == -1
    with api(server, aws[1]) as http:  # sqltide's code and SQLSTATE stay in /v1
        error = http.get(f"/v1/statements/{out['Id']}").json()["error"]
    assert error["sqlstate"] == "42601" and error["code"]


def test_batches_in_both_execution_modes(rsd: Any) -> None:
    setup = rsd.execute_statement(WorkgroupName="default", Sql="CREATE TABLE t (x int)")
    assert done(rsd, setup["Id"])["Status"] == "FINISHED"
    sqls = [
        "INSERT INTO t VALUES (1)",
        "INSERT INTO t VALUES ('not a number')",
        "INSERT INTO t VALUES (3)",
    ]
    tx = rsd.batch_execute_statement(WorkgroupName="default", Sqls=sqls)
    desc = done(rsd, tx["Id"])
    assert desc["Status"] == "FAILED" and desc["ExecutionMode"] == "TRANSACTION"
    assert desc["Error"].startswith("ERROR: ") and "sub-statement" not in desc["Error"]
    assert [s["Status"] for s in desc["SubStatements"]][1] == "FAILED"
    auto = rsd.batch_execute_statement(
        WorkgroupName="default", Sqls=sqls, ExecutionMode="AUTO_COMMIT"
    )
    desc = done(rsd, auto["Id"])
    assert desc["ExecutionMode"] == "AUTO_COMMIT"
    subs = desc["SubStatements"]
    assert [s["Id"] for s in subs] == [f"{auto['Id']}:{n}" for n in (1, 2, 3)]
    assert subs[0]["Status"] == "FINISHED" and subs[1]["Status"] == "FAILED"
    # A sub-statement is described on its own by its id.
    one = rsd.describe_statement(Id=f"{auto['Id']}:1")
    assert one["Id"] == f"{auto['Id']}:1" and one["QueryString"] == sqls[0]
    assert "SubStatements" not in one
    count = rsd.execute_statement(WorkgroupName="default", Sql="SELECT count(*) FROM t")
    assert done(rsd, count["Id"])["Status"] == "FINISHED"
    with pytest.raises(rsd.exceptions.ValidationException):
        rsd.cancel_statement(Id=f"{auto['Id']}:1")  # a sub-statement is not cancelled alone


def test_client_token_gives_back_the_same_statement(rsd: Any) -> None:
    first = rsd.execute_statement(WorkgroupName="default", Sql="SELECT 1", ClientToken="tok-1")
    again = rsd.execute_statement(WorkgroupName="default", Sql="SELECT 1", ClientToken="tok-1")
    assert again["Id"] == first["Id"]
    with pytest.raises(rsd.exceptions.ValidationException, match="client_token"):
        rsd.execute_statement(WorkgroupName="default", Sql="SELECT 2", ClientToken="tok-1")


def test_cancel_statement(rsd: Any) -> None:
    out = rsd.execute_statement(
        WorkgroupName="default", Sql="SELECT count(*) FROM range(100000000000) t(x)"
    )
    wait_until(lambda: rsd.describe_statement(Id=out["Id"])["Status"] in ("STARTED", "PICKED"))
    assert rsd.cancel_statement(Id=out["Id"])["Status"] is True
    assert done(rsd, out["Id"])["Status"] == "ABORTED"
    with pytest.raises(rsd.exceptions.ValidationException, match="already in ABORTED state"):
        rsd.cancel_statement(Id=out["Id"])


def test_list_statements(rsd: Any, runtime: Runtime, server: ServerThread) -> None:
    ids = []
    for n in range(3):
        out = rsd.execute_statement(
            WorkgroupName="default", Sql=f"SELECT {n}", StatementName=f"nightly-{n}"
        )
        ids.append(out["Id"])
    bad = rsd.execute_statement(WorkgroupName="default", Sql="SELEC", StatementName="other")
    for statement_id in [*ids, bad["Id"]]:
        done(rsd, statement_id)
    # The model: "By default, only finished statements are shown".
    listed = rsd.list_statements()["Statements"]
    assert [s["Id"] for s in listed] == ids[::-1]
    assert all(s["Status"] == "FINISHED" and s["IsBatchStatement"] is False for s in listed)
    every = rsd.list_statements(Status="ALL")["Statements"]
    assert {s["Id"] for s in every} == {*ids, bad["Id"]}
    assert [s["Id"] for s in rsd.list_statements(Status="FAILED")["Statements"]] == [bad["Id"]]
    named = rsd.list_statements(StatementName="nightly-", Status="ALL")["Statements"]
    assert sorted(s["StatementName"] for s in named) == ["nightly-0", "nightly-1", "nightly-2"]
    # Pages of two, with the signed cursors of /v1.
    first = rsd.list_statements(Status="ALL", MaxResults=2)
    second = rsd.list_statements(Status="ALL", MaxResults=2, NextToken=first["NextToken"])
    assert len(first["Statements"]) == 2 and len(second["Statements"]) == 2
    assert "NextToken" not in second
    # Filters the store cannot apply page too: Database, and a warehouse by its name.
    on_dev = rsd.list_statements(Status="ALL", WorkgroupName="default", Database="warehouse")
    assert len(on_dev["Statements"]) == 4
    page = rsd.list_statements(Status="ALL", Database="warehouse", MaxResults=3)
    rest = rsd.list_statements(Status="ALL", Database="warehouse", NextToken=page["NextToken"])
    assert {s["Id"] for s in page["Statements"] + rest["Statements"]} == {*ids, bad["Id"]}
    assert rsd.list_statements(Status="ALL", ClusterIdentifier="nowhere")["Statements"] == []
    assert rsd.list_statements(Status="ALL", RoleLevel=False)["Statements"]
    # Another key of the same principal: RoleLevel=false lists only what that key ran.
    _, _, other = create_key(runtime.store, "alice", aws=True)
    rsd2 = data_api_client(server.url, other.access_key_id, other.secret_access_key)
    assert len(rsd2.list_statements(Status="ALL")["Statements"]) == 4
    assert rsd2.list_statements(Status="ALL", RoleLevel=False)["Statements"] == []


def test_sessions(rsd: Any, runtime: Runtime, server: ServerThread) -> None:
    first = rsd.execute_statement(
        WorkgroupName="default",
        Database="dev",
        Sql="CREATE TEMP TABLE scratch AS SELECT 42 AS x",
        SessionKeepAliveSeconds=300,
    )
    session_id = first["SessionId"]
    assert done(rsd, first["Id"])["Status"] == "FINISHED"
    # The session remembers where it runs: no cluster, workgroup or database needed.
    again = rsd.execute_statement(SessionId=session_id, Sql="SELECT x FROM scratch")
    assert again["SessionId"] == session_id and again["WorkgroupName"] == "default"
    desc = done(rsd, again["Id"])
    assert desc["Status"] == "FINISHED" and desc["SessionId"] == session_id
    assert desc["Database"] == "dev"
    sessions = rsd.list_sessions()["Sessions"]
    assert [s["SessionId"] for s in sessions] == [session_id]
    assert sessions[0]["Status"] == "AVAILABLE" and sessions[0]["SessionAliveSeconds"] == 300
    assert sessions[0]["Database"] == "dev" and sessions[0]["WorkgroupName"] == "default"
    assert sessions[0]["SessionTtl"] > sessions[0]["CreatedAt"]
    # Busy: a long statement runs in it; another one is refused (the Data API queues none).
    slow = rsd.execute_statement(
        SessionId=session_id, Sql="SELECT count(*) FROM range(100000000000) t(x)"
    )
    busy = wait_until(lambda: rsd.list_sessions(Status="BUSY")["Sessions"])
    assert busy[0]["CurrentStatementId"] == slow["Id"]
    with pytest.raises(rsd.exceptions.ValidationException, match=f"Session {session_id} is busy"):
        rsd.execute_statement(SessionId=session_id, Sql="SELECT 1")
    rsd.cancel_statement(Id=slow["Id"])
    done(rsd, slow["Id"])
    one = rsd.list_sessions(SessionId=session_id)["Sessions"]
    assert [s["SessionId"] for s in one] == [session_id]
    with pytest.raises(rsd.exceptions.ValidationException, match="SessionId"):
        rsd.list_sessions(SessionId=session_id, Status="BUSY")
    with pytest.raises(rsd.exceptions.ValidationException, match="database"):
        rsd.execute_statement(SessionId=session_id, Sql="SELECT 1", Database="other")
    # Tenant walls: another principal's session is unknown to it.
    _, _, bob = create_key(runtime.store, "bob", warehouses=["default"], aws=True)
    rsd_bob = data_api_client(server.url, bob.access_key_id, bob.secret_access_key)
    with pytest.raises(rsd_bob.exceptions.ResourceNotFoundException) as caught:
        rsd_bob.execute_statement(SessionId=session_id, Sql="SELECT 1")
    assert caught.value.response["ResourceId"] == session_id
    assert rsd_bob.list_sessions()["Sessions"] == []


def test_tenant_walls_and_grants(rsd: Any, runtime: Runtime, server: ServerThread) -> None:
    out = rsd.execute_statement(WorkgroupName="default", Sql="SELECT 1")
    _, _, bob = create_key(runtime.store, "bob", aws=True)  # no grant on any warehouse
    rsd_bob = data_api_client(server.url, bob.access_key_id, bob.secret_access_key)
    with pytest.raises(rsd_bob.exceptions.ResourceNotFoundException) as caught:
        rsd_bob.describe_statement(Id=out["Id"])
    assert caught.value.response["ResourceId"] == out["Id"]
    with pytest.raises(rsd_bob.exceptions.ResourceNotFoundException):
        rsd_bob.cancel_statement(Id=out["Id"])
    assert rsd_bob.list_statements(Status="ALL")["Statements"] == []
    # An ungranted warehouse answers exactly as an unknown one.
    with pytest.raises(rsd_bob.exceptions.ValidationException) as ungranted:
        rsd_bob.execute_statement(WorkgroupName="default", Sql="SELECT 1")
    with pytest.raises(rsd_bob.exceptions.ValidationException) as unknown:
        rsd_bob.execute_statement(WorkgroupName="no-such-wh", Sql="SELECT 1")
    assert str(ungranted.value) == str(unknown.value)
    assert "Redshift endpoint doesn't exist in this region." in str(unknown.value)


# -- the warehouse map and PostgreSQL ----------------------------------------------------------
@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[tuple[ServerThread, Any, str, str]]:
    """A server (SQLite store) with a PostgreSQL warehouse ``pg`` on one database and ``pg2``
    on another of the same server, mapped as cluster ``analytics`` and its database."""
    with pgtools.fresh_database() as url, pgtools.fresh_database() as url2:
        db, db2 = url.rsplit("/", 1)[1], url2.rsplit("/", 1)[1]
        settings = make_settings(
            tmp_path,
            warehouses={"pg": url, "pg2": url2},
            data_api_warehouses={"analytics": "pg", f"analytics/{db2}": "pg2"},
        )
        rt = Runtime.build(settings)
        try:
            _, _, creds = create_key(rt.store, "alice", warehouses=list(rt.engines), aws=True)
            with ServerThread(rt) as srv:
                yield srv, creds, db, db2
        finally:
            rt.stop()


def test_postgresql_warehouse(pg_server: tuple[ServerThread, Any, str, str]) -> None:
    srv, creds, db, db2 = pg_server
    rsd = data_api_client(srv.url, creds.access_key_id, creds.secret_access_key)
    seed_setup(rsd, ClusterIdentifier="analytics", Database=db)
    out = run_seed_001(rsd, "analytics", db)  # a workgroup name reaches the map's entry too
    assert out["status"] == "FINISHED"
    desc = rsd.describe_statement(Id=out["query_id"])
    assert desc["WorkgroupName"] == "analytics" and desc["Database"] == db
    failed = rsd.execute_statement(ClusterIdentifier="analytics", Database=db, Sql="SELECT 1 FRM t")
    assert done(rsd, failed["Id"])["Error"].startswith("ERROR: ")
    # Another database of the server: through its own warehouse, as the map says.
    other = rsd.execute_statement(
        ClusterIdentifier="analytics", Database=db2, Sql="SELECT current_database() AS d"
    )
    desc = done(rsd, other["Id"])
    assert desc["Status"] == "FINISHED" and desc["Database"] == db2
    with pytest.raises(rsd.exceptions.ValidationException, match="does not exist on 'analytics'"):
        rsd.execute_statement(ClusterIdentifier="analytics", Database="nope", Sql="SELECT 1")
    # The warehouse's own name works as well, with no Database (its URL's).
    plain = rsd.execute_statement(ClusterIdentifier="pg", Sql="SELECT 1", WaitTimeSeconds=30)
    assert plain["Status"] == "FINISHED" and plain["Database"] == db
    listed = rsd.list_statements(Status="ALL", ClusterIdentifier="analytics", Database=db2)
    assert [s["Id"] for s in listed["Statements"]] == [other["Id"]]
