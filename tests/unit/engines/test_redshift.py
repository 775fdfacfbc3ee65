"""The Amazon Redshift engine's own parts: its URL, types, error words, read-only check and
parameters (pure), and what only the Data API has (sessions, DbUser, polling, credentials),
through a loopback sqltide Data API in front of PostgreSQL (``redshift_loop.py``).

What every engine does is in ``test_engine_contract.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from redshift_loop import DataApiLoop, data_api_loop
from sqltide.engines import Access, engine_from_url
from sqltide.engines.redshift import RedshiftEngine, parse_url
from sqltide.engines.rs_access import read_only_refusal
from sqltide.engines.rs_connection import bind
from sqltide.engines.rs_errors import aws_error, statement_error
from sqltide.engines.rs_types import column_meta, record_batch, result_column
from sqltide.errors import ConfigError, EngineError

# -- the URL ----------------------------------------------------------------------------------


def test_a_full_url() -> None:
    s = parse_url(
        "redshift-data://AKIA%2FX:se%2Bcret@analytics/dev?region=eu-west-1&db_user=etl"
        "&endpoint_url=https%3A%2F%2Fvpce.example&session_keep_alive=60&wait=5&timeout=90",
        "rs",
    )
    assert (s.identifier, s.database, s.workgroup, s.region) == (
        "analytics",
        "dev",
        False,
        "eu-west-1",
    )
    assert (s.access_key_id, s.secret_access_key) == ("AKIA/X", "se+cret")
    assert (s.db_user, s.endpoint_url) == ("etl", "https://vpce.example")
    assert (s.session_keep_alive, s.wait, s.timeout) == (60, 5, 90.0)
    serverless = parse_url("redshift-data://wg-1/dev?workgroup=true&secret_arn=arn:x", "rs")
    assert (serverless.workgroup, serverless.secret_arn, serverless.wait) == (True, "arn:x", 20)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redshift-data://analytics", "expected redshift-data://"),
        ("redshift-data:///dev", "expected redshift-data://"),
        ("redshift-data://a/dev?regoin=x", "unknown parameter 'regoin'"),
        ("redshift-data://a/dev?db_user=u&secret_arn=s", "not both"),
        ("redshift-data://wg/dev?workgroup=true&db_user=u", "provisioned clusters"),
        ("redshift-data://a/dev?workgroup=maybe", "true or false"),
        ("redshift-data://a/dev?endpoint_url=ftp://x", "http:// or https://"),
        ("redshift-data://a/dev?wait=31", "wait must be a number from 0 to 30"),
        ("redshift-data://a/dev?session_keep_alive=0", "from 1 to 86400"),
        ("redshift-data://KEY@a/dev", "both the access key id and the secret"),
    ],
)
def test_a_bad_url_is_a_config_error(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        engine_from_url("rs", url)


def test_secrets_never_show_in_url_errors() -> None:
    with pytest.raises(ConfigError) as info:
        engine_from_url("rs", "redshift-data://KEY:topsecret@a/dev?nope=1")
    assert "topsecret" not in info.value.message


def test_without_boto3_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'sqltide\[redshift\]'"):
        engine_from_url("rs", "redshift-data://a/dev?region=us-east-1")


def test_a_source_dialect_other_than_redshift_is_refused() -> None:
    assert engine_from_url("rs", "redshift-data://a/dev?dialect=redshift").translator is None
    with pytest.raises(ConfigError, match="not supported on this kind of warehouse"):
        engine_from_url("rs", "redshift-data://a/dev?dialect=duckdb")


def test_no_region_is_reported_at_open(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    engine = engine_from_url("rs", "redshift-data://KEY:SECRET@a/dev")
    with pytest.raises(ConfigError, match="region"):
        engine.open()


# -- types ------------------------------------------------------------------------------------


def meta(type_name: str, **extra: Any) -> dict[str, Any]:
    return {"name": "c", "typeName": type_name, "nullable": 1, **extra}


TYPES = [
    # (ColumnMetadata, Field as the Data API sends it, Arrow type, value)
    (meta("int2"), {"longValue": 7}, pa.int16(), 7),
    (meta("int4"), {"longValue": -7}, pa.int32(), -7),
    (meta("int8"), {"longValue": 2**40}, pa.int64(), 2**40),
    (meta("float4"), {"doubleValue": 0.5}, pa.float32(), 0.5),
    (meta("float8"), {"doubleValue": 2.25}, pa.float64(), 2.25),
    (meta("float8"), {"stringValue": "Infinity"}, pa.float64(), float("inf")),
    (meta("numeric", precision=10, scale=2), {"stringValue": "1.50"}, pa.decimal128(10, 2),
     Decimal("1.50")),
    (meta("numeric", precision=0, scale=0), {"stringValue": "1.500"}, pa.string(), "1.500"),
    (meta("bool"), {"booleanValue": True}, pa.bool_(), True),
    (meta("varchar", precision=20), {"stringValue": "héllo"}, pa.string(), "héllo"),
    (meta("bpchar", precision=3), {"stringValue": "ab "}, pa.string(), "ab "),
    (meta("date"), {"stringValue": "2024-01-02"}, pa.date32(), dt.date(2024, 1, 2)),
    (meta("timestamp"), {"stringValue": "2022-02-22 00:00:00.0"}, pa.timestamp("us"),
     dt.datetime(2022, 2, 22)),
    (meta("timestamp"), {"stringValue": "2020-08-21 17:33:51.88712"}, pa.timestamp("us"),
     dt.datetime(2020, 8, 21, 17, 33, 51, 887120)),
    (meta("timestamptz"), {"stringValue": "2024-01-02 03:04:05+00"},
     pa.timestamp("us", tz="UTC"), dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
    (meta("timestamptz"), {"stringValue": "2024-01-02 08:34:05.5+05:30"},
     pa.timestamp("us", tz="UTC"), dt.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=dt.UTC)),
    (meta("time"), {"stringValue": "03:04:05.5"}, pa.time64("us"), dt.time(3, 4, 5, 500000)),
    (meta("timetz"), {"stringValue": "03:04:05+00"}, pa.string(), "03:04:05+00"),
    (meta("interval"), {"stringValue": "1 year 2 mons -3 days +04:05:06.5"},
     pa.month_day_nano_interval(), pa.MonthDayNano([14, -3, 14_706_500_000_000])),
    (meta("varbyte"), {"blobValue": b"\x00\xff"}, pa.binary(), b"\x00\xff"),
    (meta("varbyte"), {"stringValue": "00ff"}, pa.binary(), b"\x00\xff"),
    (meta("super"), {"stringValue": '{"a":[1,2]}'}, pa.string(), '{"a":[1,2]}'),
    (meta("geometry"), {"stringValue": "0101000000"}, pa.string(), "0101000000"),
    (meta("int4"), {"isNull": True}, pa.int32(), None),
    (meta("hllsketch"), {"longValue": 3}, pa.string(), "3"),  # unknown kinds: their text
]  # fmt: skip


@pytest.mark.parametrize(("metadata", "field", "arrow", "value"), TYPES)
def test_data_api_values_become_arrow(
    metadata: dict[str, Any], field: dict[str, Any], arrow: pa.DataType, value: Any
) -> None:
    column = result_column(metadata)
    assert column.arrow == arrow
    schema = pa.schema([pa.field("c", column.arrow)])
    batch = record_batch([column], schema, [[field], [{"isNull": True}]])
    assert batch.column(0).to_pylist() == [value, None]


def test_column_metadata_as_column_meta() -> None:
    assert column_meta(meta("numeric", precision=12, scale=3, nullable=0)).precision == 12
    note = column_meta({"name": "note", "typeName": "varchar", "precision": 20, "length": 0})
    assert (note.length, note.nullable) == (20, True)
    free = column_meta({"name": "t", "typeName": "varchar", "precision": 2147483647})
    assert free.length is None
    assert column_meta({"name": "i", "typeName": "int4", "nullable": 0}).nullable is False


def test_a_value_arrow_cannot_hold_fails_the_statement() -> None:
    column = result_column(meta("date"))
    schema = pa.schema([pa.field("c", column.arrow)])
    with pytest.raises(EngineError) as info:
        record_batch([column], schema, [[{"stringValue": "4713-01-01 BC"}]])
    assert (info.value.code, info.value.sqlstate) == ("invalid_value", "22000")
    assert "cast it to text" in info.value.message


# -- errors -----------------------------------------------------------------------------------

STATEMENT_ERRORS = [
    # Redshift's and PostgreSQL's words (the Data API's Error text) → (code, SQLSTATE)
    ('ERROR: relation "public.nope" does not exist', "undefined_object", "42P01"),
    ('ERROR: syntax error at or near "FRM"', "syntax_error", "42601"),
    ('ERROR: column "x" does not exist in t', "undefined_column", "42703"),
    ('ERROR: schema "s" does not exist', "undefined_object", "3F000"),
    ("ERROR: function foo(integer) does not exist", "undefined_object", "42883"),
    ("ERROR: Divide by zero", "invalid_value", "22012"),
    ("ERROR: division by zero", "invalid_value", "22012"),
    ('ERROR: duplicate key value violates unique constraint "t_pkey"', "constraint_violation",
     "23505"),
    ("ERROR: Cannot insert a NULL value into column id", "constraint_violation", "23502"),
    ("ERROR: permission denied for relation t", "permission_denied", "42501"),
    ("ERROR: value too long for type character varying(3)", "invalid_value", "22001"),
    ("ERROR: Numeric data overflow (result precision)", "out_of_range", "22003"),
    ("ERROR: Invalid digit, Value 'x', Pos 0, Type: Integer", "invalid_value", "22P02"),
    ("ERROR: Query (12345) cancelled on user's request", "cancelled", "57014"),
    ("ERROR: 1023 DETAIL: Serializable isolation violation on table - 1234", "serialization_failure",
     "40001"),
    ("ERROR: current transaction is aborted, commands ignored until end of transaction block",
     "transaction_error", "25P02"),
    ("ERROR: This type of correlated subquery pattern is not supported yet", "not_supported",
     "0A000"),
    ("ERROR: something nobody has seen before", "sql_error", "XX000"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "code", "sqlstate"), STATEMENT_ERRORS)
def test_redshift_error_words_as_sqlstates(text: str, code: str, sqlstate: str) -> None:
    error, position = statement_error(text)
    assert (error.code, error.sqlstate, position) == (code, sqlstate, None)
    assert not error.message.startswith("ERROR")


def test_an_error_position_and_detail_are_read() -> None:
    error, position = statement_error(
        'ERROR: syntax error at or near "FRM"\n  Position: 10\nHINT: check the FROM'
    )
    assert (error.message, position) == ('syntax error at or near "FRM"', 10)
    assert error.details == {"hint": "check the FROM"}
    _, inline = statement_error('ERROR: syntax error at or near "x" Position: 8;')
    assert inline == 8


@pytest.mark.parametrize(
    ("name", "message", "code", "sqlstate"),
    [
        ("ValidationException", "Redshift endpoint doesn't exist in this region.",
         "connection_error", "08001"),
        ("ValidationException", "SQL is longer than 100 KB", "invalid_input", "22023"),
        ("ActiveStatementsExceededException", "too many", "warehouse_busy", "53300"),
        ("ActiveSessionsExceededException", "too many", "warehouse_busy", "53300"),
        ("DatabaseConnectionException", "down", "connection_error", "08001"),
        ("ExecuteStatementException", "boom", "warehouse_error", "58000"),
        ("QueryTimeoutException", "slow", "timeout", "57014"),
        ("InternalServerException", "oops", "warehouse_error", "XX000"),
        ("ThrottlingException", "Rate exceeded", "throttled", "53000"),
        ("AccessDeniedException", "no", "permission_denied", "42501"),
        ("UnrecognizedClientException", "bad key", "auth_error", "28000"),
        ("InvalidSignatureException", "bad signature", "auth_error", "28000"),
        ("SomethingNewException", "?", "warehouse_error", "58000"),
    ],
)  # fmt: skip
def test_aws_exceptions_as_errors(name: str, message: str, code: str, sqlstate: str) -> None:
    error = aws_error(name, message, "rs")
    assert (error.code, error.sqlstate, error.details["aws_error"]) == (code, sqlstate, name)
    assert message in error.message


def test_a_session_that_is_gone() -> None:
    error = aws_error("ResourceNotFoundException", "Session not found", "rs", in_session=True)
    assert (error.code, error.sqlstate) == ("session_lost", "08003")


# -- read-only --------------------------------------------------------------------------------

READS = [
    "SELECT 1",
    "select * from t where a = :a",
    "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "(SELECT 1) UNION ALL (SELECT 2)",
    "/* note */ SELECT 'insert into t' AS s",
    "SHOW search_path",
    "EXPLAIN SELECT * FROM t",
    "explain verbose select 1",
]
WRITES = [
    "INSERT INTO t VALUES (1)",
    "UPDATE t SET a = 1",
    "DELETE FROM t",
    "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
    "SELECT * INTO new_t FROM t",
    "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
    "SELECT * FROM t FOR UPDATE",
    "CREATE TABLE t2 (a int)",
    "DROP TABLE t",
    "TRUNCATE t",
    "COPY t FROM 's3://bucket/x' IAM_ROLE default",
    "UNLOAD ('select 1') TO 's3://bucket/x' IAM_ROLE default",
    "CALL p()",
    "BEGIN",
    "COMMIT",
    "SET search_path TO x",
    "GRANT SELECT ON t TO u",
    "VACUUM t",
    "EXPLAIN DELETE FROM t",
    "SELECT FROM WHERE",  # cannot be parsed: cannot be checked
]


@pytest.mark.parametrize("sql", READS)
def test_read_only_allows_queries(sql: str) -> None:
    assert read_only_refusal(sql) is None


@pytest.mark.parametrize("sql", WRITES)
def test_read_only_refuses_everything_else(sql: str) -> None:
    refused = read_only_refusal(sql)
    assert refused is not None
    assert (refused.code, refused.sqlstate) == ("permission_denied", "42501")
    assert "read_only" in refused.message


# -- parameters -------------------------------------------------------------------------------


def test_parameters_go_as_strings_and_null_into_the_text() -> None:
    sent = bind(
        "SELECT :a, :b, :c, :d, :e, :f, ':x'",
        {"a": 1, "b": 1.5, "c": True, "d": None, "e": "", "f": "s"},
    )
    assert sent.text == "SELECT :a, :b, :c, NULL, '', :f, ':x'"
    assert sent.parameters == [
        {"name": "a", "value": "1"},
        {"name": "b", "value": "1.5"},
        {"name": "c", "value": "true"},
        {"name": "f", "value": "s"},
    ]
    # A position after a replaced parameter is a position in the caller's text.
    caller = "SELECT :d + :zz FRM"
    moved = bind(caller, {"d": None, "zz": 2})
    assert moved.text == "SELECT NULL + :zz FRM"
    assert moved.caller_position(moved.text.index("FRM") + 1) == caller.index("FRM") + 1
    assert moved.caller_position(9) == caller.index(":d") + 1  # inside the replaced text


def test_a_missing_parameter() -> None:
    with pytest.raises(EngineError) as info:
        bind("SELECT :a + :b", {"a": 1})
    assert (info.value.code, info.value.sqlstate, info.value.position) == (
        "invalid_input",
        "42P02",
        13,
    )


# -- through the loopback Data API --------------------------------------------------------------


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataApiLoop]:
    with data_api_loop(tmp_path_factory.mktemp("rs-loop")) as running:
        yield running


def open_engine(url: str) -> RedshiftEngine:
    engine = engine_from_url("rs", url)
    assert isinstance(engine, RedshiftEngine)
    engine.open()
    return engine


class Requests:
    """The parameters of each Data API call an engine's client makes, by operation."""

    def __init__(self, engine: RedshiftEngine):
        self.calls: list[tuple[str, dict[str, Any]]] = []
        engine.client.meta.events.register("provide-client-params.redshift-data", self._seen)

    def _seen(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


def test_a_transaction_runs_in_one_data_api_session(loop: DataApiLoop) -> None:
    engine = open_engine(loop.warehouse_url(session_keep_alive="120"))
    seen = Requests(engine)
    try:
        conn = engine.connect()
        conn.execute("SELECT 1")  # outside a transaction: no session
        conn.begin()
        conn.execute("CREATE TABLE tx_session (a int)")
        conn.commit()
        conn.close()
    finally:
        engine.close()
    plain, begin, create, commit = seen.of("ExecuteStatement")
    assert "SessionKeepAliveSeconds" not in plain and "SessionId" not in plain
    assert plain["ClusterIdentifier"] == "pg" and plain["Database"] == loop.database
    assert begin["Sql"] == "BEGIN" and begin["SessionKeepAliveSeconds"] == 120
    session = create["SessionId"]
    assert commit == {"Sql": "COMMIT", "SessionId": session}
    assert "ClusterIdentifier" not in create  # a session knows where it runs


def test_polling_without_wait_time_seconds(loop: DataApiLoop) -> None:
    engine = open_engine(loop.warehouse_url(wait="0"))
    seen = Requests(engine)
    try:
        assert not engine.can_wait
        conn = engine.connect()
        result = conn.execute("SELECT pg_sleep(0.3), 7 AS n")
        assert result.batches is not None
        assert [b.column(1).to_pylist() for b in result.batches] == [[7]]
    finally:
        engine.close()
    polls = seen.of("DescribeStatement")
    assert len(polls) >= 2 and all("WaitTimeSeconds" not in p for p in polls)


def test_a_long_poll_uses_wait_time_seconds(loop: DataApiLoop) -> None:
    engine = open_engine(loop.warehouse_url(wait="7"))
    seen = Requests(engine)
    try:
        assert engine.can_wait
        engine.connect().execute("SELECT pg_sleep(0.2)")
    finally:
        engine.close()
    assert [p["WaitTimeSeconds"] for p in seen.of("DescribeStatement")] == [7]


def test_a_statement_past_its_timeout_is_cancelled(loop: DataApiLoop) -> None:
    engine = open_engine(loop.warehouse_url(timeout="1", wait="1"))
    seen = Requests(engine)
    try:
        with pytest.raises(EngineError) as info:
            engine.connect().execute("SELECT pg_sleep(20)")
        assert (info.value.code, info.value.sqlstate) == ("timeout", "57014")
        statement_id = info.value.details["statement_id"]
        assert [p["Id"] for p in seen.of("CancelStatement")] == [statement_id]
        ended = engine.call("describe_statement", Id=statement_id, WaitTimeSeconds=10)
        assert ended["Status"] == "ABORTED"
    finally:
        engine.close()


def test_a_database_role_runs_as_db_user(loop: DataApiLoop) -> None:
    engine = open_engine(loop.warehouse_url(db_user="etl_user"))
    seen = Requests(engine)
    try:
        engine.connect().execute("SELECT 1")
        engine.connect(Access(db_role="analyst")).execute("SELECT 1")
        mine, theirs = seen.of("ExecuteStatement")
        assert (mine["DbUser"], theirs["DbUser"]) == ("etl_user", "analyst")
        assert engine.list_schemas(None, "public", access=Access(db_role="analyst")) == ["public"]
        assert seen.of("ListSchemas")[-1]["DbUser"] == "analyst"
    finally:
        engine.close()
    # Where the user is fixed (a secret, a workgroup), a role cannot be honoured.
    for url in (
        loop.warehouse_url(secret_arn="arn:aws:secret"),
        loop.warehouse_url(workgroup="true"),
    ):
        fixed = engine_from_url("rs", url)
        with pytest.raises(EngineError) as info:
            fixed.connect(Access(db_role="analyst"))
        assert (info.value.code, info.value.sqlstate) == ("permission_denied", "42501")


def test_bad_credentials_and_unknown_clusters(loop: DataApiLoop) -> None:
    wrong = open_engine(loop.warehouse_url(secret=base64.b64encode(b"x" * 30).decode()))
    try:
        with pytest.raises(EngineError) as info:
            wrong.connect().execute("SELECT 1")
        assert (info.value.code, info.value.sqlstate) == ("auth_error", "28000")
    finally:
        wrong.close()
    nowhere = open_engine(loop.warehouse_url(cluster="no-such-cluster"))
    try:
        with pytest.raises(EngineError) as info:
            nowhere.connect().execute("SELECT 1")
        assert (info.value.code, info.value.sqlstate) == ("connection_error", "08001")
        with pytest.raises(EngineError) as info:
            nowhere.list_databases()
        assert info.value.code == "connection_error"
    finally:
        nowhere.close()


def test_an_unreachable_endpoint_is_a_connection_error() -> None:
    engine = open_engine(
        "redshift-data://KEY:SECRET@a/dev?region=us-east-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A9"
    )
    try:
        with pytest.raises(EngineError) as info:
            engine.connect().execute("SELECT 1")
        assert (info.value.code, info.value.sqlstate) == ("connection_error", "08001")
    finally:
        engine.close()


def test_a_failed_statement_in_a_transaction_has_its_error(loop: DataApiLoop) -> None:
    engine = open_engine(loop.warehouse_url())
    try:
        conn = engine.connect()
        conn.begin()
        with pytest.raises(EngineError) as info:
            conn.execute("SELECT * FROM tx_missing_table")
        assert (info.value.code, info.value.sqlstate) == ("undefined_object", "42P01")
        assert info.value.message == 'relation "tx_missing_table" does not exist'
        conn.rollback()
        result = conn.execute("SELECT 1 AS one")  # the session is still good
        assert result.batches is not None and [b.num_rows for b in result.batches] == [1]
        conn.close()
    finally:
        engine.close()


def test_catalog_calls_follow_next_token(loop: DataApiLoop) -> None:
    engine = open_engine(loop.warehouse_url())
    seen = Requests(engine)

    # One item a page (as a busy cluster might answer), so every list takes several calls.
    def one_a_page(params: dict[str, Any], **_: Any) -> None:
        params["MaxResults"] = 1

    for operation in ("ListSchemas", "DescribeTable"):
        engine.client.meta.events.register(
            f"provide-client-params.redshift-data.{operation}", one_a_page
        )
    try:
        assert engine.list_schemas(None, None) == ["information_schema", "pg_catalog", "public"]
        assert len(seen.of("ListSchemas")) == 3
        assert [p.get("NextToken") is None for p in seen.of("ListSchemas")] == [True, False, False]
        conn = engine.connect()
        conn.execute("CREATE TABLE paged (a int, b text, c date)")
        columns = engine.describe_table(None, "public", "paged")
        assert [c.name for c in columns] == ["a", "b", "c"]
        assert len(seen.of("DescribeTable")) == 3
    finally:
        engine.close()


def test_rows_without_columns() -> None:
    batch = record_batch([], pa.schema([]), [[], []])
    assert (batch.num_rows, batch.num_columns) == (2, 0)
