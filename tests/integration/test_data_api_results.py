"""GetStatementResult(V2) and the catalog operations with boto3's real ``redshift-data``
client against a loopback server: on both state stores, on a DuckDB and a PostgreSQL
warehouse. Every answer is checked against botocore's service model (``aws_data_api``).
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import pgtools
from aws_data_api import data_api_client
from conftest import make_settings
from helpers import api, wait_until
from sqltide.dataapi.results import NO_RESULT
from sqltide.dataapi.warehouses import database_of
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

#: Small pages, so paging is seen with a few hundred rows (and a page of wide rows is cut by
#: its bytes before its rows).
PAGE_ROWS = 100
PAGE_BYTES = 64 * 1024


@dataclass
class Env:
    client: Any  # boto3's redshift-data client, signed with alice's AWS credentials
    other: Any  # the same for bob, another principal
    cluster: str
    database: str
    engine: str
    server: ServerThread
    api_key: str

    def run(self, sql: str, **kw: Any) -> str:
        """Submit ``sql`` and wait for it to end; its id."""
        sid = str(
            self.client.execute_statement(
                ClusterIdentifier=self.cluster, Database=self.database, Sql=sql, **kw
            )["Id"]
        )
        self.wait(sid)
        return sid

    def wait(self, sid: str) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            d = self.client.describe_statement(Id=sid)
            return d if d["Status"] in ("FINISHED", "FAILED", "ABORTED") else None

        return dict(wait_until(ended, timeout=30))

    def where(self) -> dict[str, str]:
        return {"ClusterIdentifier": self.cluster, "Database": self.database}


@contextmanager
def _env(engine: str, tmp_path: Path, store_url: str) -> Iterator[Env]:
    with contextlib.ExitStack() as stack:
        warehouses = {}
        if engine == "postgres":
            warehouses["pg"] = stack.enter_context(pgtools.fresh_database())
        settings = make_settings(
            tmp_path,
            store=store_url,
            warehouses=warehouses,
            page_max_rows=PAGE_ROWS,
            page_max_bytes=PAGE_BYTES,
        )
        rt = Runtime.build(settings)
        stack.callback(rt.stop)
        cluster = "pg" if engine == "postgres" else "default"
        _, key, alice = create_key(rt.store, "alice", warehouses=[cluster], aws=True)
        _, _, bob = create_key(rt.store, "bob", warehouses=[cluster], aws=True)
        srv = stack.enter_context(ServerThread(rt))
        yield Env(
            client=data_api_client(srv.url, alice.access_key_id, alice.secret_access_key),
            other=data_api_client(srv.url, bob.access_key_id, bob.secret_access_key),
            cluster=cluster,
            database=database_of(rt.engines[cluster]),
            engine=engine,
            server=srv,
            api_key=key,
        )


@pytest.fixture(params=["duckdb", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path, store_url: str) -> Iterator[Env]:
    """Both warehouses: for what depends on the engine (values, types, pages, the catalog)."""
    with _env(request.param, tmp_path, store_url) as e:
        yield e


@pytest.fixture
def protocol_env(tmp_path: Path, store_url: str) -> Iterator[Env]:
    """The DuckDB warehouse only: for what the protocol decides whatever the engine (tokens,
    errors, waits, tenancy); the stores still vary."""
    with _env("duckdb", tmp_path, store_url) as e:
        yield e


def error_of(call: Any, **kw: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kw)
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


# -- values and metadata -----------------------------------------------------------------------

TYPES_SQL = (
    "SELECT 1 AS i, CAST(2 AS BIGINT) AS big, CAST(1.5 AS NUMERIC(10,2)) AS num, "
    "CAST(0.25 AS DOUBLE PRECISION) AS f, TRUE AS b, 'x' AS s, DATE '2024-01-02' AS d, "
    "TIMESTAMP '2024-01-02 03:04:05' AS ts, "
    "CAST('2024-01-02 03:04:05.5+00' AS TIMESTAMP WITH TIME ZONE) AS tz, "
    "CAST(NULL AS VARCHAR) AS nothing, {blob} AS v, {json} AS doc"
)
ENGINE_SQL = {
    "duckdb": {"blob": "'\\x00\\x01'::BLOB", "json": "'{\"a\":1}'::JSON"},
    "postgres": {"blob": "'\\x0001'::bytea", "json": "'{\"a\": 1}'::jsonb"},
}


def test_values_and_column_metadata_as_aws_writes_them(env: Env) -> None:
    sql = TYPES_SQL.format(**ENGINE_SQL[env.engine])
    sid = env.run(sql)
    result = env.client.get_statement_result(Id=sid)
    assert result["TotalNumRows"] == 1 and "NextToken" not in result
    types = [c["typeName"] for c in result["ColumnMetadata"]]
    assert types == [
        "int4", "int8", "numeric", "float8", "bool", "varchar", "date", "timestamp",
        "timestamptz", "varchar", "varbyte", "super",
    ]  # fmt: skip
    json_text = '{"a":1}' if env.engine == "duckdb" else '{"a": 1}'
    assert result["Records"] == [
        [
            {"longValue": 1},
            {"longValue": 2},
            {"stringValue": "1.50"},
            {"doubleValue": 0.25},
            {"booleanValue": True},
            {"stringValue": "x"},
            {"stringValue": "2024-01-02"},
            {"stringValue": "2024-01-02 03:04:05.0"},
            {"stringValue": "2024-01-02 03:04:05.5+00"},
            {"isNull": True},
            {"blobValue": b"\x00\x01"},  # botocore decodes the base64
            {"stringValue": json_text},
        ]
    ]
    num = result["ColumnMetadata"][2]
    assert (num["precision"], num["scale"], num["isSigned"], num["label"]) == (10, 2, True, "num")
    assert result["ColumnMetadata"][0]["nullable"] == 1


def test_an_empty_result_has_its_columns(env: Env) -> None:
    sid = env.run("SELECT 1 AS a, 'x' AS b WHERE 1 = 0")
    result = env.client.get_statement_result(Id=sid)
    assert result["Records"] == [] and result["TotalNumRows"] == 0
    assert [c["name"] for c in result["ColumnMetadata"]] == ["a", "b"]


# -- paging ------------------------------------------------------------------------------------


def test_pages_follow_next_token_to_the_end(env: Env) -> None:
    sid = env.run("SELECT n FROM generate_series(1, 250) AS t(n) ORDER BY n")
    pages = []
    token = None
    while True:
        page = env.client.get_statement_result(Id=sid, **({"NextToken": token} if token else {}))
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p["Records"]) for p in pages] == [PAGE_ROWS, PAGE_ROWS, 50]
    assert {p["TotalNumRows"] for p in pages} == {250}
    values = [row[0]["longValue"] for p in pages for row in p["Records"]]
    assert values == list(range(1, 251))
    # boto3's own paginator walks the same pages.
    paginated = env.client.get_paginator("get_statement_result").paginate(Id=sid)
    assert [len(p["Records"]) for p in paginated] == [PAGE_ROWS, PAGE_ROWS, 50]


def test_wide_rows_are_cut_by_the_page_s_bytes(env: Env) -> None:
    sid = env.run(
        "SELECT n, repeat('x', 2000) AS wide FROM generate_series(1, 90) AS t(n) ORDER BY n"
    )
    pages = list(env.client.get_paginator("get_statement_result").paginate(Id=sid))
    assert len(pages) > 2  # 90 rows of 2 KB do not fit in 64 KB pages
    assert all(len(p["Records"]) < 40 for p in pages)
    values = [row[0]["longValue"] for p in pages for row in p["Records"]]
    assert values == list(range(1, 91))


def test_a_token_of_another_statement_or_edited_is_refused(protocol_env: Env) -> None:
    env = protocol_env
    first = env.run("SELECT n FROM generate_series(1, 150) AS t(n)")
    second = env.run("SELECT n FROM generate_series(1, 150) AS t(n)")
    token = env.client.get_statement_result(Id=first)["NextToken"]
    code, _ = error_of(env.client.get_statement_result, Id=second, NextToken=token)
    assert code == "ValidationException"
    edited = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    code, _ = error_of(env.client.get_statement_result, Id=first, NextToken=edited)
    assert code == "ValidationException"
    code, _ = error_of(env.client.get_statement_result, Id=first, NextToken="garbage")
    assert code == "ValidationException"
    # The token of /v1's pages of the same statement is no Data API token either.
    with api(env.server, env.api_key) as http:
        v1 = http.get(f"/v1/statements/{first}/result", params={"max_rows": 10}).json()
    code, _ = error_of(env.client.get_statement_result, Id=first, NextToken=v1["next_token"])
    assert code == "ValidationException"


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_statements_are_read_with_v2(env: Env) -> None:
    sid = env.run(
        "SELECT n, CASE WHEN n = 2 THEN NULL WHEN n = 3 THEN '' ELSE 'a,\"b\"' END AS s "
        "FROM generate_series(1, 150) AS t(n) ORDER BY n",
        ResultFormat="CSV",
    )
    pages = list(env.client.get_paginator("get_statement_result_v2").paginate(Id=sid))
    assert len(pages) == 2
    assert all(p["ResultFormat"] == "CSV" and p["TotalNumRows"] == 150 for p in pages)
    assert [c["name"] for c in pages[0]["ColumnMetadata"]] == ["n", "s"]
    text = "".join(r["CSVRecords"] for p in pages for r in p["Records"])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 150  # no header line: the names are in ColumnMetadata
    assert rows[0] == ["1", 'a,"b"'] and rows[1] == ["2", ""] and rows[149][0] == "150"
    assert text.splitlines(keepends=True)[1:3] == ["2,\r\n", '3,""\r\n']  # NULL, then ''
    # Each format is read with its own operation, as AWS answers it.
    code, message = error_of(env.client.get_statement_result, Id=sid)
    assert code == "ValidationException" and "GetStatementResultV2" in message
    json_sid = env.run("SELECT 1 AS a")
    code, message = error_of(env.client.get_statement_result_v2, Id=json_sid)
    assert code == "ValidationException" and "GetStatementResult" in message


# -- statements that have no result ------------------------------------------------------------


def test_statements_without_a_result_set(protocol_env: Env) -> None:
    env = protocol_env
    ddl = env.run("CREATE TABLE nores (a int)")
    assert error_of(env.client.get_statement_result, Id=ddl) == ("ValidationException", NO_RESULT)
    failed = env.run("SELECT * FROM no_such_table")
    assert env.client.describe_statement(Id=failed)["Status"] == "FAILED"
    assert error_of(env.client.get_statement_result, Id=failed) == (
        "ValidationException",
        NO_RESULT,
    )


def test_a_batch_is_read_per_sub_statement(protocol_env: Env) -> None:
    env = protocol_env
    batch = str(
        env.client.batch_execute_statement(
            **env.where(), Sqls=["CREATE TABLE b1 (a int)", "SELECT 41 + 1 AS answer"]
        )["Id"]
    )
    env.wait(batch)
    assert error_of(env.client.get_statement_result, Id=batch)[1] == NO_RESULT
    assert error_of(env.client.get_statement_result, Id=f"{batch}:1")[1] == NO_RESULT
    result = env.client.get_statement_result(Id=f"{batch}:2")
    assert result["Records"] == [[{"longValue": 42}]]


def test_unknown_and_other_principals_statements_are_not_found(protocol_env: Env) -> None:
    env = protocol_env
    sid = env.run("SELECT 1 AS a")
    code, _ = error_of(env.other.get_statement_result, Id=sid)
    assert code == "ResourceNotFoundException"
    code, _ = error_of(env.client.get_statement_result, Id="00000000-0000-4000-8000-000000000000")
    assert code == "ResourceNotFoundException"


def test_a_v1_statement_is_read_as_json(protocol_env: Env) -> None:
    env = protocol_env
    with api(env.server, env.api_key) as http:
        sid = http.post(
            "/v1/statements", json={"sql": "SELECT 7 AS seven", "warehouse": env.cluster}
        ).json()["id"]
    env.wait(sid)
    assert env.client.get_statement_result(Id=sid)["Records"] == [[{"longValue": 7}]]
    assert error_of(env.client.get_statement_result_v2, Id=sid)[0] == "ValidationException"


def test_wait_time_seconds_waits_for_the_result(protocol_env: Env) -> None:
    env = protocol_env
    sid = env.client.execute_statement(**env.where(), Sql="SELECT 5 AS five")["Id"]
    result = env.client.get_statement_result(Id=sid, WaitTimeSeconds=30)
    assert result["Records"] == [[{"longValue": 5}]]


def test_a_running_statement_has_no_result_yet(tmp_path: Path, store_url: str) -> None:
    # PostgreSQL alone can sleep; the statement is cancelled at the end.
    with pgtools.fresh_database() as pg_url:
        settings = make_settings(tmp_path, store=store_url, warehouses={"pg": pg_url})
        rt = Runtime.build(settings)
        try:
            _, _, aws = create_key(rt.store, "alice", warehouses=["pg"], aws=True)
            with ServerThread(rt) as srv:
                client = data_api_client(srv.url, aws.access_key_id, aws.secret_access_key)
                sid = client.execute_statement(
                    ClusterIdentifier="pg", Sql="SELECT pg_sleep(60) AS slept"
                )["Id"]
                wait_until(lambda: client.describe_statement(Id=sid)["Status"] == "STARTED")
                assert error_of(client.get_statement_result, Id=sid) == (
                    "ValidationException",
                    NO_RESULT,
                )
                # Waiting that is over before the statement ends answers the same.
                code, _ = error_of(client.get_statement_result, Id=sid, WaitTimeSeconds=1)
                assert code == "ValidationException"
                client.cancel_statement(Id=sid)
                wait_until(lambda: client.describe_statement(Id=sid)["Status"] == "ABORTED")
                assert error_of(client.get_statement_result, Id=sid)[1] == NO_RESULT
        finally:
            rt.stop()


# -- the catalog -------------------------------------------------------------------------------


def test_catalog_operations(env: Env) -> None:
    for sql in (
        "CREATE SCHEMA sales",
        "CREATE SCHEMA sa1es",
        "CREATE SCHEMA other",
        "CREATE TABLE sales.orders (id int NOT NULL, note varchar(20), amount numeric(12,2), "
        "placed timestamp)",
        "CREATE TABLE sales.order_lines (id int)",
        "CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE amount > 100",
    ):
        assert env.wait(env.run(sql))["Status"] == "FINISHED"
    c = env.client

    databases = c.list_databases(**env.where())["Databases"]
    assert env.database in databases

    schemas = c.list_schemas(**env.where(), SchemaPattern="sa_es")["Schemas"]
    assert schemas == ["sa1es", "sales"]
    assert "other" in c.list_schemas(**env.where())["Schemas"]
    # ConnectedDatabase is where the call connects; Database is whose schemas are listed.
    connected = c.list_schemas(**env.where(), ConnectedDatabase=env.database, SchemaPattern="s%")
    assert connected["Schemas"] == ["sa1es", "sales"]
    code, _ = error_of(c.list_schemas, **env.where(), ConnectedDatabase="not_a_database_here")
    assert code == "ValidationException"

    tables = c.list_tables(**env.where(), SchemaPattern="sales", TablePattern="%order%")["Tables"]
    assert sorted((t["name"], t["schema"], t["type"]) for t in tables) == [
        ("big_orders", "sales", "VIEW"),
        ("order_lines", "sales", "TABLE"),
        ("orders", "sales", "TABLE"),
    ]

    described = c.describe_table(**env.where(), Schema="sales", Table="orders")
    assert described["TableName"] == "orders"
    columns = {col["name"]: col for col in described["ColumnList"]}
    assert [col["name"] for col in described["ColumnList"]] == ["id", "note", "amount", "placed"]
    assert {n: col["typeName"] for n, col in columns.items()} == {
        "id": "int4", "note": "varchar", "amount": "numeric", "placed": "timestamp",
    }  # fmt: skip
    assert columns["id"]["nullable"] == 0 and columns["note"]["nullable"] == 1
    assert (columns["amount"]["precision"], columns["amount"]["scale"]) == (12, 2)
    assert columns["id"]["schemaName"] == "sales" and columns["id"]["tableName"] == "orders"
    if env.engine == "postgres":  # DuckDB keeps no VARCHAR length
        assert columns["note"]["precision"] == 20

    # Paging: one column a page, across NextToken; a token of another request is refused.
    first = c.describe_table(**env.where(), Schema="sales", Table="orders", MaxResults=1)
    assert [col["name"] for col in first["ColumnList"]] == ["id"]
    names = ["id"]
    token = first["NextToken"]
    while token:
        page = c.describe_table(
            **env.where(), Schema="sales", Table="orders", MaxResults=1, NextToken=token
        )
        names += [col["name"] for col in page["ColumnList"]]
        token = page.get("NextToken")
    assert names == ["id", "note", "amount", "placed"]
    code, _ = error_of(
        c.describe_table,
        **env.where(),
        Schema="sales",
        Table="order_lines",
        MaxResults=1,
        NextToken=first["NextToken"],
    )
    assert code == "ValidationException"
    listed = list(
        c.get_paginator("list_schemas").paginate(**env.where(), PaginationConfig={"PageSize": 1})
    )
    assert len(listed) > 3 and all(len(p["Schemas"]) == 1 for p in listed)

    # Without Table: the columns of every table of the schema, each naming its table.
    whole = c.describe_table(**env.where(), Schema="sales")
    assert "TableName" not in whole
    assert {col["tableName"] for col in whole["ColumnList"]} == {
        "orders", "order_lines", "big_orders",
    }  # fmt: skip


def test_catalog_of_an_unknown_cluster_or_database(protocol_env: Env) -> None:
    env = protocol_env
    code, _ = error_of(env.client.list_schemas, ClusterIdentifier="nowhere", Database="dev")
    assert code == "ValidationException"
    if env.engine == "postgres":  # a DuckDB warehouse answers to its own name and "dev"
        code, _ = error_of(
            env.client.list_tables, ClusterIdentifier=env.cluster, Database="not_this_one"
        )
        assert code == "ValidationException"
