"""The PostgreSQL engine against a real server, each test on a fresh database."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest

import pgtools
from sqltide.engines import engine_from_url
from sqltide.engines.base import ColumnMeta, ExecResult, TableInfo
from sqltide.engines.postgres import PostgresConnection, PostgresEngine
from sqltide.errors import ConfigError, EngineError
from sqltide.statements.script import split_script

DEADLINE_S = 10.0
UTC = dt.UTC


@pytest.fixture
def db_url() -> Iterator[str]:
    with pgtools.fresh_database() as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[PostgresEngine]:
    eng = PostgresEngine("pg", db_url, batch_rows=1000)
    eng.open()
    yield eng
    eng.close()


@pytest.fixture
def conn(engine: PostgresEngine) -> Iterator[PostgresConnection]:
    c = engine.connect()
    yield c
    c.close()


@pytest.fixture(scope="module")
def shared_engine() -> Iterator[PostgresEngine]:
    """One database for the many table-driven cases that create nothing in it."""
    with pgtools.fresh_database() as url:
        eng = PostgresEngine("pg", url, batch_rows=1000)
        eng.open()
        yield eng
        eng.close()


@pytest.fixture
def read_only_conn(shared_engine: PostgresEngine) -> Iterator[PostgresConnection]:
    c = shared_engine.connect()  # a new session each: settings never leak between cases
    yield c
    c.close()


def rows(result: ExecResult) -> list[tuple[Any, ...]]:
    assert result.has_result_set and result.batches is not None
    table = pa.Table.from_batches(list(result.batches), schema=result.schema)
    return [tuple(col[i] for col in table.columns) for i in range(table.num_rows)]


def query(conn: PostgresConnection, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    return [tuple(v.as_py() for v in r) for r in rows(conn.execute(sql, params))]


def error_of(
    conn: PostgresConnection, sql: str, params: dict[str, Any] | None = None
) -> EngineError:
    with pytest.raises(EngineError) as info:
        result = conn.execute(sql, params)
        if result.batches is not None:
            list(result.batches)
    return info.value


def backend_state(pid: int) -> tuple[str, str]:
    with pgtools.admin() as admin:
        row = admin.execute(
            "SELECT state, query FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
    assert row is not None
    return row[0], row[1]


# -- opening and connecting ------------------------------------------------------------------


def test_urls_pick_the_postgres_engine(db_url: str) -> None:
    for url in (db_url, db_url.replace("postgresql://", "postgres://", 1)):
        eng = engine_from_url("pg", url)
        assert isinstance(eng, PostgresEngine)
        assert not eng.exclusive
        eng.open()
        c = eng.connect()
        try:
            assert query(c, "SELECT 1") == [(1,)]
        finally:
            c.close()


def test_a_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        PostgresEngine("bad", "postgresql://[::1")
    assert "bad" in info.value.message


def test_an_unreachable_server_fails_statements_not_the_engine(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eng = PostgresEngine("down", "postgresql://postgres:s3cret@127.0.0.1:1/x")
    with caplog.at_level(logging.WARNING):
        eng.open()  # lenient: the server may come up later
    assert "not reachable" in caplog.text and "s3cret" not in caplog.text
    started = time.monotonic()
    with pytest.raises(EngineError) as info:
        eng.connect()
    assert time.monotonic() - started < 5
    err = info.value
    assert (err.code, err.sqlstate) == ("connection_error", "08001")
    assert "127.0.0.1:1" in err.message and "down" in err.message
    assert "s3cret" not in err.message
    eng.close()


# -- results ---------------------------------------------------------------------------------


def test_a_large_result_streams_through_a_server_side_cursor(db_url: str) -> None:
    eng = PostgresEngine("pg", db_url, batch_rows=10_000)
    c = eng.connect()
    try:
        pid = query(c, "SELECT pg_backend_pid()")[0][0]
        result = c.execute("SELECT g, 'row ' || g AS label FROM generate_series(1, 200000) g")
        assert result.has_result_set and result.rows_affected is None
        assert result.schema == pa.schema([("g", pa.int32()), ("label", pa.string())])
        assert result.batches is not None
        first = next(result.batches)
        assert first.num_rows == 10_000
        # Only one chunk is on the client: the server holds the rest in an open cursor.
        state, running = backend_state(pid)
        assert state == "idle in transaction" and running.startswith("FETCH FORWARD 10000")
        batches = [first, *result.batches]
        assert len(batches) == 20
        assert all(b.num_rows == 10_000 and b.schema == result.schema for b in batches)
        assert batches[-1].to_pylist()[-1] == {"g": 200000, "label": "row 200000"}
        assert backend_state(pid)[0] == "idle"  # its own transaction ended with the stream
    finally:
        c.close()


_STAMP = dt.datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=UTC)
_UUID = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

# (sql expression, pg type name, Arrow type, value, precision, scale, length)
TYPE_CASES: list[tuple[str, str, pa.DataType, Any, int | None, int | None, int | None]] = [
    ("1::int2", "int2", pa.int16(), 1, None, None, None),
    ("2::int4", "int4", pa.int32(), 2, None, None, None),
    ("9007199254740993::int8", "int8", pa.int64(), 9007199254740993, None, None, None),
    ("NULL::int4", "int4", pa.int32(), None, None, None, None),
    ("1.5::float4", "float4", pa.float32(), 1.5, None, None, None),
    ("0.1::float8", "float8", pa.float64(), 0.1, None, None, None),
    ("true", "bool", pa.bool_(), True, None, None, None),
    ("'x'::text", "text", pa.string(), "x", None, None, None),
    ("'x'::varchar(5)", "varchar", pa.string(), "x", None, None, 5),
    ("'x'::char(3)", "bpchar", pa.string(), "x  ", None, None, 3),
    ("'pg'::name", "name", pa.string(), "pg", None, None, None),
    (
        "12345678901234.5678::numeric(18,4)",
        "numeric",
        pa.decimal128(18, 4),
        Decimal("12345678901234.5678"),
        18,
        4,
        None,
    ),
    ("(-0.5)::numeric(3,2)", "numeric", pa.decimal128(3, 2), Decimal("-0.50"), 3, 2, None),
    ("'NaN'::numeric(5,2)", "numeric", pa.decimal128(5, 2), None, 5, 2, None),
    ("7::numeric(50,2)", "numeric", pa.decimal256(50, 2), Decimal("7.00"), 50, 2, None),
    (
        "123456789012345678901234567890.50::numeric",
        "numeric",
        pa.string(),
        "123456789012345678901234567890.50",
        None,
        None,
        None,
    ),
    ("0.0000001::numeric", "numeric", pa.string(), "0.0000001", None, None, None),
    ("'NaN'::numeric", "numeric", pa.string(), "NaN", None, None, None),
    ("DATE '2024-01-02'", "date", pa.date32(), dt.date(2024, 1, 2), None, None, None),
    ("TIME '03:04:05.25'", "time", pa.time64("us"), dt.time(3, 4, 5, 250000), None, None, None),
    (
        "TIMESTAMP '2024-01-02 03:04:05.5'",
        "timestamp",
        pa.timestamp("us"),
        dt.datetime(2024, 1, 2, 3, 4, 5, 500000),
        None,
        None,
        None,
    ),
    (
        "TIMESTAMPTZ '2024-01-02 03:04:05.5+02'",
        "timestamptz",
        pa.timestamp("us", tz="UTC"),
        _STAMP,
        None,
        None,
        None,
    ),
    (
        "INTERVAL '1 year 2 mons 3 days 04:05:06.5'",
        "interval",
        pa.month_day_nano_interval(),
        (14, 3, (4 * 3600 + 5 * 60 + 6) * 10**9 + 500_000_000),
        None,
        None,
        None,
    ),
    (
        "INTERVAL '-1 mons +2 days -00:00:01.000001'",
        "interval",
        pa.month_day_nano_interval(),
        (-1, 2, -1_000_001_000),
        None,
        None,
        None,
    ),
    (
        """'{"b": [1, 2],  "a": 1}'::json""",
        "json",
        pa.string(),
        '{"b": [1, 2],  "a": 1}',
        *[None] * 3,
    ),
    ("""'{"b": 1, "a": 2}'::jsonb""", "jsonb", pa.string(), '{"a": 2, "b": 1}', *[None] * 3),
    (f"'{_UUID}'::uuid", "uuid", pa.string(), _UUID, None, None, None),
    ("'\\x00ff'::bytea", "bytea", pa.binary(), b"\x00\xff", None, None, None),
    ("ARRAY[1, NULL, 3]", "_int4", pa.list_(pa.int32()), [1, None, 3], None, None, None),
    ("'{}'::int8[]", "_int8", pa.list_(pa.int64()), [], None, None, None),
    ("ARRAY['a', NULL]::text[]", "_text", pa.list_(pa.string()), ["a", None], None, None, None),
    (
        "ARRAY[1.5, 'NaN']::numeric(4,2)[]",
        "_numeric",
        pa.list_(pa.decimal128(4, 2)),
        [Decimal("1.50"), None],
        None,
        None,
        None,
    ),
    (
        "ARRAY[TIMESTAMPTZ '2024-01-02 03:04:05.5+02']",
        "_timestamptz",
        pa.list_(pa.timestamp("us", tz="UTC")),
        [_STAMP],
        None,
        None,
        None,
    ),
    (f"ARRAY['{_UUID}'::uuid]", "_uuid", pa.list_(pa.string()), [_UUID], None, None, None),
    # anything else: its text form
    ("point(1, 2)", "point", pa.string(), "(1,2)", None, None, None),
    ("to_tsvector('simple', 'b a')", "tsvector", pa.string(), "'a':2 'b':1", None, None, None),
    ("'10.0.0.1/8'::inet", "inet", pa.string(), "10.0.0.1/8", None, None, None),
    ("int4range(1, 5)", "int4range", pa.string(), "[1,5)", None, None, None),
    ("ROW(1, 'a b')", "record", pa.string(), '(1,"a b")', None, None, None),
    ("'10:00+02'::timetz", "timetz", pa.string(), "10:00:00+02", None, None, None),
    ("'12.5'::money", "money", pa.string(), "$12.50", None, None, None),
    ("ARRAY[point(1, 2)]", "_point", pa.list_(pa.string()), ["(1,2)"], None, None, None),
]


@pytest.mark.parametrize(
    ("expr", "type_name", "arrow", "value", "precision", "scale", "length"),
    TYPE_CASES,
    ids=[c[0] for c in TYPE_CASES],
)
def test_types_round_trip_into_arrow(
    read_only_conn: PostgresConnection,
    expr: str,
    type_name: str,
    arrow: pa.DataType,
    value: Any,
    precision: int | None,
    scale: int | None,
    length: int | None,
) -> None:
    conn = read_only_conn
    if type_name == "money":
        conn.execute("SET lc_monetary = 'C'")
    conn.execute("SET TIME ZONE 'America/New_York'")  # timestamptz still arrives in UTC
    result = conn.execute(f"SELECT {expr} AS c")
    assert result.columns == [ColumnMeta("c", type_name, True, precision, scale, length)]
    assert result.schema == pa.schema([("c", arrow)])
    assert query(conn, f"SELECT {expr} AS c") == [(value,)]


def test_a_user_defined_type_has_its_name_and_text(conn: PostgresConnection) -> None:
    conn.execute("CREATE TYPE mood AS ENUM ('sad', 'happy')")
    conn.execute("CREATE DOMAIN positive AS int CHECK (VALUE > 0)")
    result = conn.execute("SELECT 'happy'::mood AS m, ARRAY['sad'::mood] AS ms, 3::positive AS p")
    assert [(c.name, c.type_name) for c in result.columns] == [
        ("m", "mood"),
        ("ms", "_mood"),
        ("p", "int4"),  # the server describes a domain by its base type
    ]
    assert result.schema == pa.schema([("m", pa.string()), ("ms", pa.string()), ("p", pa.int32())])
    assert [tuple(v.as_py() for v in r) for r in rows(result)] == [("happy", "{sad}", 3)]


@pytest.mark.parametrize(
    "expr", ["'{{1,2},{3,4}}'::int[]", "'infinity'::timestamp", "'2000-01-01 BC'::date"]
)
def test_values_arrow_cannot_hold_fail_cleanly(
    read_only_conn: PostgresConnection, expr: str
) -> None:
    conn = read_only_conn
    err = error_of(conn, f"SELECT {expr}")
    assert err.code == "invalid_value"
    assert query(conn, f"SELECT {expr}::text") != []  # the documented way around


def test_an_empty_result_has_a_schema_and_no_rows(conn: PostgresConnection) -> None:
    result = conn.execute("SELECT 1 AS a, 'x' AS b WHERE false")
    assert result.has_result_set
    assert result.schema == pa.schema([("a", pa.int32()), ("b", pa.string())])
    assert list(result.batches or []) == []


def test_dml_and_ddl(conn: PostgresConnection) -> None:
    ddl = conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
    assert not ddl.has_result_set and ddl.rows_affected is None and ddl.batches is None
    assert conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')").rows_affected == 3
    assert conn.execute("UPDATE t SET name = 'z' WHERE id >= 2").rows_affected == 2
    assert conn.execute("DELETE FROM t WHERE id = 1").rows_affected == 1
    assert conn.execute("DELETE FROM t WHERE id = 99").rows_affected == 0
    assert query(conn, "SELECT id, name FROM t ORDER BY id") == [(2, "z"), (3, "z")]
    assert not conn.execute("ALTER TABLE t ADD COLUMN n int").has_result_set
    assert not conn.execute("CREATE VIEW v AS SELECT id FROM t").has_result_set
    assert not conn.execute("DROP VIEW v").has_result_set
    # Statements a cursor cannot hold run plainly.
    assert conn.execute("SELECT id INTO copied FROM t").rows_affected == 2
    moved = conn.execute(
        "WITH gone AS (DELETE FROM t WHERE id = 2 RETURNING id) SELECT * FROM gone"
    )
    assert [r[0].as_py() for r in rows(moved)] == [2]
    assert (
        conn.execute("WITH x AS (SELECT 5 AS i) INSERT INTO t SELECT i FROM x").rows_affected == 1
    )


def test_insert_returning_gives_a_result_set(conn: PostgresConnection) -> None:
    conn.execute("CREATE TABLE t (id int, name text)")
    result = conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b') RETURNING id, upper(name) AS up")
    assert result.has_result_set
    assert [c.name for c in result.columns] == ["id", "up"]
    assert [tuple(v.as_py() for v in r) for r in rows(result)] == [(1, "A"), (2, "B")]
    assert sorted(query(conn, "UPDATE t SET id = id * 10 RETURNING id")) == [(10,), (20,)]


def test_show_and_explain_give_result_sets(conn: PostgresConnection) -> None:
    assert query(conn, "SHOW TimeZone") != []
    plan = query(conn, "EXPLAIN SELECT 1")
    assert "Result" in plan[0][0]


def test_a_returned_result_larger_than_a_batch_is_cut(conn: PostgresConnection) -> None:
    conn.execute("CREATE TABLE t (id int)")
    result = conn.execute("INSERT INTO t SELECT generate_series(1, 2500) RETURNING id")
    batches = list(result.batches or [])
    assert [b.num_rows for b in batches] == [1000, 1000, 500]


# -- parameters ------------------------------------------------------------------------------


def test_parameters_are_bound_by_the_server(conn: PostgresConnection) -> None:
    conn.execute("CREATE TABLE t (name text)")
    for value in ["it's 100% 'quoted'", "'x'); DROP TABLE t; --", "%(name)s %s $1"]:
        assert conn.execute("INSERT INTO t VALUES (:v)", {"v": value}).rows_affected == 1
        assert query(conn, "SELECT count(*) FROM t WHERE name = :v", {"v": value}) == [(1,)]
    assert query(conn, "SELECT :a + 1 AS a, ':a' AS literal, :a::text AS t", {"a": 41}) == [
        (42, ":a", "41")
    ]
    assert query(conn, "SELECT :a, :a", {"a": "same"}) == [("same", "same")]


def test_percent_signs_in_sql_text(conn: PostgresConnection) -> None:
    assert query(conn, "SELECT 50 % 7, 'a%' AS p") == [(1, "a%")]
    assert query(conn, "SELECT 'abc' LIKE 'a%' AS l, :v AS v", {"v": "x"}) == [(True, "x")]
    assert query(conn, "SELECT 50 % :n", {"n": 7}) == [(1,)]


def test_missing_parameter_value_is_an_error(conn: PostgresConnection) -> None:
    err = error_of(conn, "SELECT :a, :b", {"a": 1})
    assert err.code == "invalid_input"
    assert err.position == len("SELECT :a, ") + 1


# -- transactions ----------------------------------------------------------------------------


def test_begin_commit_rollback(engine: PostgresEngine, conn: PostgresConnection) -> None:
    conn.execute("CREATE TABLE t (a int)")
    other = engine.connect()
    try:
        conn.begin()
        conn.execute("INSERT INTO t VALUES (1)")
        assert query(conn, "SELECT count(*) FROM t") == [(1,)]  # a stream inside the transaction
        conn.execute("INSERT INTO t VALUES (2)")  # ... which goes on after it
        assert query(other, "SELECT count(*) FROM t") == [(0,)]  # not committed yet
        conn.rollback()
        assert query(conn, "SELECT count(*) FROM t") == [(0,)]

        conn.begin()
        conn.execute("INSERT INTO t VALUES (3)")
        conn.commit()
        assert query(other, "SELECT a FROM t") == [(3,)]

        conn.rollback()  # nothing open: ignored
        with pytest.raises(EngineError) as info:
            conn.commit()  # nothing open
        assert info.value.code == "transaction_error"
        conn.begin()
        with pytest.raises(EngineError) as info:
            conn.begin()
        assert info.value.code == "transaction_error"
        conn.rollback()
    finally:
        other.close()


def test_commit_after_an_error_reports_the_rollback(conn: PostgresConnection) -> None:
    conn.execute("CREATE TABLE t (a int)")
    conn.begin()
    conn.execute("INSERT INTO t VALUES (1)")
    assert error_of(conn, "SELECT 1/0").code == "invalid_value"
    assert error_of(conn, "SELECT 1").sqlstate == "25P02"  # the transaction is aborted
    with pytest.raises(EngineError) as info:
        conn.commit()
    assert (info.value.code, info.value.sqlstate) == ("transaction_error", "25P02")
    assert query(conn, "SELECT count(*) FROM t") == [(0,)]


# -- errors ----------------------------------------------------------------------------------


def test_two_statements_are_refused(conn: PostgresConnection) -> None:
    for sql in ["SELECT 1; SELECT 2", "CREATE TABLE t (a int); DROP TABLE t", "-- only a comment"]:
        err = error_of(conn, sql)
        assert (err.code, err.sqlstate) == ("multiple_statements", "42601")
    assert query(conn, "SELECT count(*) FROM pg_class WHERE relname = 't'") == [(0,)]


def test_copy_through_the_client_is_refused_cleanly(conn: PostgresConnection) -> None:
    conn.execute("CREATE TABLE t (a int)")
    for sql in ["COPY t FROM STDIN", "copy (SELECT 1) to stdout with csv"]:
        err = error_of(conn, sql)
        assert (err.code, err.sqlstate) == ("not_supported", "0A000")
    assert query(conn, "SELECT 42") == [(42,)]
    conn.execute("COPY t FROM PROGRAM 'echo 7'")  # a server-side COPY is a plain statement
    assert query(conn, "SELECT a FROM t") == [(7,)]


def test_one_statement_with_semicolons_inside(conn: PostgresConnection) -> None:
    assert query(conn, "-- leading;\nSELECT ';' /* ; */ ;  -- trailing;") == [(";",)]
    conn.execute(
        "CREATE FUNCTION f(x int) RETURNS int AS $$\nBEGIN\n  x := x + 1;\n  RETURN x;\nEND;\n"
        "$$ LANGUAGE plpgsql;"
    )
    conn.execute("CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END")
    assert query(conn, "SELECT f(1), g()") == [(2, 1)]


_LINES = "SELECT 1,\r\n       2\nFROM pg_class\rWHERE GROUP"

# (id, sql, params, code, sqlstate, the text the 1-based position must point at)
ERROR_CASES: list[tuple[str, str, dict[str, Any] | None, str, str, str | None]] = [
    ("typo first word", "SELEC 1", None, "syntax_error", "42601", "SELEC"),
    ("missing table", "SELECT * FROM nope", None, "undefined_object", "42P01", "nope"),
    ("missing column", "SELECT nocol FROM pg_class", None, "undefined_column", "42703", "nocol"),
    ("crlf and cr lines", _LINES, None, "syntax_error", "42601", "GROUP"),
    (
        "after parameters",
        "SELECT :a, :bb, :a, nocol FROM pg_class",
        {"a": 1, "bb": "it's"},
        "undefined_column",
        "42703",
        "nocol",
    ),
    (
        "syntax error after a long parameter name",
        "SELECT :a_rather_long_parameter_name FROM WHERE",
        {"a_rather_long_parameter_name": 1},
        "syntax_error",
        "42601",
        "WHERE",
    ),
    (
        "plain statement after a parameter",
        "INSERT INTO nope VALUES (:value)",
        {"value": 1},
        "undefined_object",
        "42P01",
        "nope",
    ),
    (
        "wide characters before the error",
        "SELECT '日本語', '👨\u200d👩\u200d👧', nocol FROM pg_class",
        None,
        "undefined_column",
        "42703",
        "nocol",
    ),
    ("bad value", "SELECT 'abc'::int", None, "invalid_value", "22P02", "'abc'"),
    (
        "bad value at run time",
        "SELECT 1 / (g - 2) FROM generate_series(1, 3) g",
        None,
        "invalid_value",
        "22012",
        None,
    ),
    ("unknown function", "SELECT nofunc(1)", None, "undefined_object", "42883", "nofunc"),
]


@pytest.mark.parametrize(
    ("sql", "params", "code", "sqlstate", "at"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
def test_error_code_sqlstate_and_position(
    read_only_conn: PostgresConnection,
    sql: str,
    params: dict[str, Any] | None,
    code: str,
    sqlstate: str,
    at: str | None,
) -> None:
    conn = read_only_conn
    err = error_of(conn, sql, params)
    assert (err.code, err.sqlstate) == (code, sqlstate)
    assert "LINE" not in err.message
    if at is not None:
        assert err.position == sql.index(at) + 1, sql[(err.position or 1) - 1 :][:20]
    assert query(conn, "SELECT 42") == [(42,)]  # the connection is still usable


def test_constraint_violation_has_details(conn: PostgresConnection) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES (1)")
    err = error_of(conn, "INSERT INTO t VALUES (1)")
    assert (err.code, err.sqlstate) == ("constraint_violation", "23505")
    assert "already exists" in err.details["detail"]


def test_error_while_streaming_is_mapped(conn: PostgresConnection) -> None:
    result = conn.execute("SELECT 1 / (g - 5000) FROM generate_series(1, 9000) g")
    assert result.batches is not None  # the failing row is only reached while reading
    with pytest.raises(EngineError) as info:
        list(result.batches)
    assert (info.value.code, info.value.sqlstate) == ("invalid_value", "22012")
    assert query(conn, "SELECT 42") == [(42,)]


def test_closing_a_stream_early_ends_its_transaction(conn: PostgresConnection) -> None:
    pid = query(conn, "SELECT pg_backend_pid()")[0][0]
    result = conn.execute("SELECT * FROM generate_series(1, 100000)")
    assert result.batches is not None
    next(result.batches)
    assert backend_state(pid)[0] == "idle in transaction"
    result.batches.close()  # type: ignore[attr-defined]
    assert backend_state(pid)[0] == "idle"
    conn.execute("SELECT * FROM generate_series(1, 100000)")  # never read at all
    assert query(conn, "SELECT 7") == [(7,)]
    assert backend_state(pid)[0] == "idle"


# -- interrupt -------------------------------------------------------------------------------


def _interrupt_until_done(conn: PostgresConnection, worker: threading.Thread) -> float:
    """Interrupt until the worker ends (one before the query starts is lost); returns seconds."""
    started = time.monotonic()
    while worker.is_alive() and time.monotonic() - started < DEADLINE_S:
        conn.interrupt()
        worker.join(0.05)
    assert not worker.is_alive(), "the query was not interrupted"
    return time.monotonic() - started


def test_interrupt_stops_execute(conn: PostgresConnection) -> None:
    outcome: dict[str, Any] = {}
    running = threading.Event()

    def run() -> None:
        running.set()
        try:
            conn.execute("SELECT pg_sleep(30)")
            outcome["result"] = "finished"
        except BaseException as exc:
            outcome["result"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    running.wait(DEADLINE_S)
    time.sleep(0.2)
    assert _interrupt_until_done(conn, worker) < 3
    err = outcome["result"]
    assert isinstance(err, EngineError), err
    assert (err.code, err.sqlstate) == ("cancelled", "57014")
    assert query(conn, "SELECT 42") == [(42,)]


def test_interrupt_stops_streaming_batches(db_url: str) -> None:
    conn = PostgresEngine("pg", db_url, batch_rows=100).connect()
    try:
        _interrupt_a_stream(conn)
    finally:
        conn.close()


def _interrupt_a_stream(conn: PostgresConnection) -> None:
    streaming = threading.Event()
    outcome: dict[str, Any] = {"batches": 0}

    def run() -> None:
        try:
            result = conn.execute("SELECT g, pg_sleep(0.001) FROM generate_series(1, 100000) g")
        except BaseException as exc:
            outcome["execute"] = exc
            streaming.set()
            return
        try:
            for _ in result.batches or []:
                outcome["batches"] += 1
                streaming.set()
            outcome["result"] = "finished"
        except BaseException as exc:
            outcome["result"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    assert streaming.wait(DEADLINE_S)
    assert "execute" not in outcome, outcome.get("execute")
    assert _interrupt_until_done(conn, worker) < 3
    err = outcome["result"]
    assert isinstance(err, EngineError), err
    assert (err.code, err.sqlstate) == ("cancelled", "57014")
    assert 1 <= outcome["batches"] < 1000
    assert query(conn, "SELECT 42") == [(42,)]


def test_interrupt_between_statements_does_not_leak(conn: PostgresConnection) -> None:
    conn.interrupt()  # nothing running: no cancel request, and the next statement runs
    assert query(conn, "SELECT 1") == [(1,)]


# -- catalog ---------------------------------------------------------------------------------


@pytest.fixture
def catalog(engine: PostgresEngine, conn: PostgresConnection) -> PostgresEngine:
    for sql in [
        "CREATE TABLE t (a int)",
        "CREATE SCHEMA sales",
        "CREATE TABLE sales.orders (id int NOT NULL, amount numeric(12, 3), note varchar(20),"
        " code char(2), price float8)",
        "CREATE TABLE sales.order_lines (order_id int)",
        "CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE amount > 100",
        "CREATE MATERIALIZED VIEW sales.totals AS SELECT sum(amount) AS total FROM sales.orders",
        "CREATE EXTENSION file_fdw",
        "CREATE SERVER files FOREIGN DATA WRAPPER file_fdw",
        "CREATE FOREIGN TABLE sales.feed (line text) SERVER files OPTIONS (filename '/dev/null')",
    ]:
        conn.execute(sql)
    return engine


def test_list_databases(catalog: PostgresEngine, db_url: str) -> None:
    databases = catalog.list_databases()
    assert db_url.rsplit("/", 1)[1] in databases and "postgres" in databases
    assert "template0" not in databases and "template1" not in databases


def test_list_schemas(catalog: PostgresEngine) -> None:
    everything = ["information_schema", "pg_catalog", "public", "sales"]
    assert catalog.list_schemas(None, None) == everything
    assert catalog.list_schemas(None, "%") == everything
    assert catalog.list_schemas(None, "s%") == ["sales"]
    assert catalog.list_schemas(None, "%ubl%") == ["public"]
    assert catalog.list_schemas(None, "nothing%") == []
    assert catalog.list_schemas("postgres", "sales") == []


def test_list_tables(catalog: PostgresEngine, db_url: str) -> None:
    db = db_url.rsplit("/", 1)[1]
    assert catalog.list_tables(None, "sales", None) == [
        TableInfo("big_orders", "sales", "VIEW", db),
        TableInfo("feed", "sales", "FOREIGN TABLE", db),
        TableInfo("order_lines", "sales", "TABLE", db),
        TableInfo("orders", "sales", "TABLE", db),
        TableInfo("totals", "sales", "MATERIALIZED VIEW", db),
    ]
    assert [t.name for t in catalog.list_tables(None, "sales", "order%")] == [
        "order_lines",
        "orders",
    ]
    assert [t.name for t in catalog.list_tables(None, "%", "order_")] == ["orders"]
    assert catalog.list_tables(db, "public", None) == [TableInfo("t", "public", "TABLE", db)]
    everything = catalog.list_tables(None, None, None)
    assert TableInfo("t", "public", "TABLE", db) in everything
    assert any(t.schema == "pg_catalog" and t.name == "pg_class" for t in everything)


def test_catalog_of_another_database(catalog: PostgresEngine) -> None:
    with pgtools.fresh_database() as other_url:
        other = other_url.rsplit("/", 1)[1]
        with psycopg.connect(other_url, autocommit=True) as c:
            c.execute("CREATE TABLE elsewhere (x int NOT NULL)")
        assert catalog.list_tables(other, "public", None) == [
            TableInfo("elsewhere", "public", "TABLE", other)
        ]
        assert catalog.list_schemas(other, "s%") == []
        assert catalog.describe_table(other, "public", "elsewhere") == [
            ColumnMeta("x", "int4", nullable=False)
        ]


def test_describe_table(catalog: PostgresEngine) -> None:
    assert catalog.describe_table(None, "sales", "orders") == [
        ColumnMeta("id", "int4", nullable=False),
        ColumnMeta("amount", "numeric", nullable=True, precision=12, scale=3),
        ColumnMeta("note", "varchar", nullable=True, length=20),
        ColumnMeta("code", "bpchar", nullable=True, length=2),
        ColumnMeta("price", "float8", nullable=True),
    ]
    assert catalog.describe_table(None, "sales", "big_orders")[1].precision == 12
    assert catalog.describe_table(None, "sales", "totals") == [ColumnMeta("total", "numeric")]
    assert catalog.describe_table(None, "sales", "missing") == []


def test_temp_tables_belong_to_their_connection(engine: PostgresEngine) -> None:
    first, second = engine.connect(), engine.connect()
    try:
        first.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS a")
        assert query(first, "SELECT a FROM scratch") == [(1,)]
        assert error_of(second, "SELECT a FROM scratch").code == "undefined_object"
        second.execute("CREATE TEMP TABLE scratch AS SELECT 2 AS a")  # its own, no clash
        assert query(second, "SELECT a FROM scratch") == [(2,)]
        assert query(first, "SELECT a FROM scratch") == [(1,)]
        assert all(t.name != "scratch" for t in engine.list_tables(None, None, None))
    finally:
        first.close()
        second.close()


# -- the seed's ELT script -------------------------------------------------------------------

# Seed 000's setup SQL (seed-systems.md §2.3) made PostgreSQL-compatible: Redshift's SORTKEY
# is dropped, ROUND gets a numeric (PostgreSQL has no round(double precision, int)), and the
# S3 COPY becomes a COPY from a local pipe-delimited file in the seed's layout. A server-side
# COPY reads the file as the server's own user, so it is written to a folder the server can
# read (the test's PostgreSQL runs on this machine). Three trips a day from 2015-01-01 to
# 2015-03-31, distances 1, 2, 3 miles and fares 5, 10, 15.
SEED_SETUP = """
CREATE TABLE IF NOT EXISTS nyc_yellow_taxi
(pickup_date DATE, pickup_datetime TIMESTAMP, dropoff_datetime TIMESTAMP, ratecode SMALLINT,
 passenger_count SMALLINT, trip_distance FLOAT4, fare_amount FLOAT4, total_amount FLOAT4,
 payment_type SMALLINT, vendorid VARCHAR(20));

DROP MATERIALIZED VIEW IF EXISTS nyc_yellow_taxi_volume_analysis;
CREATE MATERIALIZED VIEW nyc_yellow_taxi_volume_analysis AS
SELECT DATE_TRUNC('mon', pickup_date) pickup_month,
       ROUND(AVG(trip_distance)::numeric,2) avg_distance,
       ROUND(AVG(fare_amount)::numeric,2)   avg_fare,
       COUNT(1)                    total_trips,
       SUM(trip_distance)          total_distance_per_month,
       SUM(fare_amount)            total_fare_per_month
FROM nyc_yellow_taxi GROUP BY 1;

CREATE OR REPLACE PROCEDURE run_elt_process() AS $$
BEGIN
  truncate table nyc_yellow_taxi;
  COPY nyc_yellow_taxi FROM '{trips_file}' delimiter '|';
  REFRESH MATERIALIZED VIEW nyc_yellow_taxi_volume_analysis;
END;
$$ LANGUAGE plpgsql;

CALL run_elt_process();
"""
SEED_TEARDOWN = (
    "DROP PROCEDURE run_elt_process(); DROP MATERIALIZED VIEW IF EXISTS "
    "nyc_yellow_taxi_volume_analysis; DROP TABLE IF EXISTS nyc_yellow_taxi;"
)


def _seed_trips_file() -> str:
    """The seed's pipe-delimited trips, in a folder the PostgreSQL server can read."""
    folder = Path(tempfile.mkdtemp(prefix="sqltide-seed-"))
    folder.chmod(0o755)
    path = folder / "nyc_yellow_taxi_raw.psv"
    day = dt.date(2015, 1, 1)
    lines = []
    while day <= dt.date(2015, 3, 31):
        for n in (1, 2, 3):
            lines.append(f"{day}|{day} 08:00:00|{day} 08:20:00|1|1|{n}|{5 * n}|{5 * n + 1}|1|VTS")
        day += dt.timedelta(days=1)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return str(path)


def test_the_seed_elt_script_runs_statement_by_statement(
    engine: PostgresEngine, conn: PostgresConnection
) -> None:
    trips_file = _seed_trips_file()
    script = SEED_SETUP.replace("{trips_file}", trips_file)
    statements = split_script(script, dialect="postgres")
    assert [s.split()[0] for s in statements] == ["CREATE", "DROP", "CREATE", "CREATE", "CALL"]
    for sql in statements:
        result = conn.execute(sql)
        assert not result.has_result_set
    assert conn.execute("CALL run_elt_process()").rows_affected is None  # runs again, same data
    assert query(
        conn,
        "SELECT pickup_month::date, avg_distance, avg_fare, total_trips, "
        "total_distance_per_month, total_fare_per_month "
        "FROM nyc_yellow_taxi_volume_analysis ORDER BY 1",
    ) == [
        (dt.date(2015, 1, 1), "2.00", "10.00", 93, 186.0, 930.0),
        (dt.date(2015, 2, 1), "2.00", "10.00", 84, 168.0, 840.0),
        (dt.date(2015, 3, 1), "2.00", "10.00", 93, 186.0, 930.0),
    ]
    kinds = {t.name: t.type for t in engine.list_tables(None, "public", "nyc%")}
    assert kinds == {
        "nyc_yellow_taxi": "TABLE",
        "nyc_yellow_taxi_volume_analysis": "MATERIALIZED VIEW",
    }
    for sql in split_script(SEED_TEARDOWN, dialect="postgres"):
        conn.execute(sql)
    assert engine.list_tables(None, "public", "nyc%") == []
    shutil.rmtree(Path(trips_file).parent)


def test_the_unmodified_seed_ddl_fails_where_redshift_differs(conn: PostgresConnection) -> None:
    original = SEED_SETUP.split(";")[0].strip() + "\nSORTKEY(pickup_date)"
    err = error_of(conn, original)
    assert err.code == "syntax_error" and err.position == original.index("SORTKEY") + 1
