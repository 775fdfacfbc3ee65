"""The DuckDB engine against a real in-memory (or file) DuckDB."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sqltide.engines.base import ColumnMeta, ExecResult, TableInfo
from sqltide.engines.duckdb import DuckDBConnection, DuckDBEngine
from sqltide.errors import ConfigError, EngineError

DEADLINE_S = 10.0


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine("default", "duckdb:///:memory:", batch_rows=1000)
    eng.open()
    yield eng
    eng.close()


@pytest.fixture
def conn(engine: DuckDBEngine) -> Iterator[DuckDBConnection]:
    c = engine.connect()
    yield c
    c.close()


def rows(result: ExecResult) -> list[tuple[Any, ...]]:
    assert result.has_result_set and result.batches is not None
    table = pa.Table.from_batches(list(result.batches), schema=result.schema)
    return [tuple(r.values()) for r in table.to_pylist()]


def query(conn: DuckDBConnection, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    return rows(conn.execute(sql, params))


def error_of(conn: DuckDBConnection, sql: str, params: dict[str, Any] | None = None) -> EngineError:
    with pytest.raises(EngineError) as info:
        result = conn.execute(sql, params)
        if result.batches is not None:
            list(result.batches)
    return info.value


# -- results -------------------------------------------------------------------------------


def test_select_streams_batches_with_column_meta(conn: DuckDBConnection) -> None:
    result = conn.execute(
        "SELECT i, i::DECIMAL(10, 2) AS price, 'row ' || i AS label FROM range(2500) t(i)"
    )
    assert result.has_result_set
    assert result.rows_affected is None
    assert result.columns == [
        ColumnMeta("i", "BIGINT"),
        ColumnMeta("price", "DECIMAL(10,2)", precision=10, scale=2),
        ColumnMeta("label", "VARCHAR"),
    ]
    assert result.schema is not None and result.schema.names == ["i", "price", "label"]
    batches = list(result.batches or [])
    assert len(batches) >= 3
    assert all(0 < b.num_rows <= 1000 for b in batches)
    assert all(b.schema == result.schema for b in batches)
    assert sum(b.num_rows for b in batches) == 2500
    first = batches[0].to_pylist()[0]
    assert first["i"] == 0 and first["label"] == "row 0"


TYPE_CASES = [
    ("1::INTEGER", "INTEGER", None, None),
    ("1::BIGINT", "BIGINT", None, None),
    ("1.5::DOUBLE", "DOUBLE", None, None),
    ("true", "BOOLEAN", None, None),
    ("'x'", "VARCHAR", None, None),
    ("DATE '2024-01-02'", "DATE", None, None),
    ("TIMESTAMP '2024-01-02 03:04:05'", "TIMESTAMP", None, None),
    ("1.25::DECIMAL(38, 10)", "DECIMAL(38,10)", 38, 10),
    ("1::DECIMAL(4, 0)", "DECIMAL(4,0)", 4, 0),
    ("[1, 2]", "INTEGER[]", None, None),
    ("{'a': 1}", "STRUCT(a INTEGER)", None, None),
]


@pytest.mark.parametrize(("expr", "type_name", "precision", "scale"), TYPE_CASES)
def test_column_types(
    conn: DuckDBConnection, expr: str, type_name: str, precision: int | None, scale: int | None
) -> None:
    result = conn.execute(f"SELECT {expr} AS c")
    assert result.columns == [ColumnMeta("c", type_name, precision=precision, scale=scale)]
    assert len(rows(result)) == 1


def test_dml_reports_rows_affected(conn: DuckDBConnection) -> None:
    ddl = conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR)")
    assert not ddl.has_result_set
    assert ddl.rows_affected is None and ddl.batches is None

    inserted = conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    assert not inserted.has_result_set and inserted.rows_affected == 3
    assert conn.execute("UPDATE t SET name = 'z' WHERE id >= 2").rows_affected == 2
    assert conn.execute("DELETE FROM t WHERE id = 1").rows_affected == 1
    assert conn.execute("DELETE FROM t WHERE id = 99").rows_affected == 0
    assert query(conn, "SELECT id, name FROM t ORDER BY id") == [(2, "z"), (3, "z")]

    assert not conn.execute("ALTER TABLE t ADD COLUMN n INTEGER").has_result_set
    assert not conn.execute("CREATE VIEW v AS SELECT id FROM t").has_result_set
    assert not conn.execute("DROP VIEW v").has_result_set


def test_insert_returning_gives_a_result_set(conn: DuckDBConnection) -> None:
    conn.execute("CREATE TABLE t (id INTEGER, name VARCHAR)")
    result = conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b') RETURNING id, upper(name) AS up")
    assert result.has_result_set
    assert [c.name for c in result.columns] == ["id", "up"]
    assert rows(result) == [(1, "A"), (2, "B")]
    updated = conn.execute("UPDATE t SET id = id * 10 RETURNING id")
    assert sorted(rows(updated)) == [(10,), (20,)]


def test_returning_inside_a_literal_is_not_a_result_set(conn: DuckDBConnection) -> None:
    conn.execute("CREATE TABLE t (name VARCHAR)")
    result = conn.execute("INSERT INTO t VALUES ('returning') -- returning *")
    assert not result.has_result_set and result.rows_affected == 1


# -- parameters ----------------------------------------------------------------------------


def test_pivot_and_execute_of_a_prepared_query_give_result_sets(conn: DuckDBConnection) -> None:
    conn.execute("CREATE TABLE sales AS SELECT range % 3 AS k, range AS v FROM range(10)")
    pivot = conn.execute("PIVOT sales ON k USING sum(v) AS total")
    assert pivot.has_result_set
    assert [c.name for c in pivot.columns] == ["0_total", "1_total", "2_total"]
    assert pa.Table.from_batches(list(pivot.batches or [])).to_pylist() == [
        {"0_total": 18, "1_total": 12, "2_total": 15}
    ]
    assert not conn.execute("PREPARE answer AS SELECT 42 AS a").has_result_set
    executed = conn.execute("EXECUTE answer")
    assert executed.has_result_set and [c.name for c in executed.columns] == ["a"]
    assert [b.to_pylist() for b in executed.batches or []] == [[{"a": 42}]]


def test_statements_of_those_kinds_without_rows_have_no_result_set(conn: DuckDBConnection) -> None:
    conn.execute("CREATE TABLE sales AS SELECT range % 3 AS k, range AS v FROM range(10)")
    created = conn.execute("CREATE TABLE wide AS PIVOT sales ON k USING sum(v)")
    assert not created.has_result_set
    conn.execute("PREPARE add_one AS INSERT INTO sales VALUES (7, 7), (8, 8)")
    inserted = conn.execute("EXECUTE add_one")
    assert not inserted.has_result_set and inserted.rows_affected == 2


def test_named_parameters_are_bound(conn: DuckDBConnection) -> None:
    result = query(
        conn,
        "SELECT :a + 1 AS a, :b AS b, ':a' AS literal, :a::VARCHAR AS cast_a",
        {"a": 41, "b": "x"},
    )
    assert result == [(42, "x", ":a", "41")]


def test_parameter_values_are_never_sql(conn: DuckDBConnection) -> None:
    conn.execute("CREATE TABLE t (name VARCHAR)")
    evil = "'x'); DROP TABLE t; --"
    assert conn.execute("INSERT INTO t VALUES (:v)", {"v": evil}).rows_affected == 1
    assert conn.execute("INSERT INTO t VALUES (:v)", {"v": "it's"}).rows_affected == 1
    assert query(conn, "SELECT name FROM t ORDER BY name") == [
        ("'x'); DROP TABLE t; --",),
        ("it's",),
    ]
    assert query(conn, "SELECT count(*) FROM t WHERE name = :v", {"v": evil}) == [(1,)]


def test_missing_parameter_value_is_an_error(conn: DuckDBConnection) -> None:
    err = error_of(conn, "SELECT :a, :b", {"a": 1})
    assert err.code == "invalid_input"


# -- transactions --------------------------------------------------------------------------


def test_begin_commit_rollback(engine: DuckDBEngine, conn: DuckDBConnection) -> None:
    conn.execute("CREATE TABLE t (a INTEGER)")
    other = engine.connect()
    try:
        conn.begin()
        conn.execute("INSERT INTO t VALUES (1)")
        assert query(conn, "SELECT count(*) FROM t") == [(1,)]
        assert query(other, "SELECT count(*) FROM t") == [(0,)]  # not committed yet
        conn.rollback()
        assert query(conn, "SELECT count(*) FROM t") == [(0,)]

        conn.begin()
        conn.execute("INSERT INTO t VALUES (2)")
        conn.commit()
        assert query(other, "SELECT a FROM t") == [(2,)]

        conn.rollback()  # nothing open: ignored
        with pytest.raises(EngineError) as info:
            conn.commit()  # nothing open
        assert info.value.code == "transaction_error"
    finally:
        other.close()


# -- errors --------------------------------------------------------------------------------


def test_two_statements_are_refused(conn: DuckDBConnection) -> None:
    err = error_of(conn, "SELECT 1; SELECT 2")
    assert err.code == "multiple_statements"
    assert err.sqlstate == "42601"


def test_one_statement_with_semicolon_and_comments_is_fine(conn: DuckDBConnection) -> None:
    assert query(conn, "-- leading\nSELECT ';' /* ; */ ;  -- trailing") == [(";",)]


_LONG_HEAD = "SELECT " + ", ".join(f"col_{i}" for i in range(40))
_LONG_TAIL = ", ".join(str(i) for i in range(40))

# (id, sql, params, code, sqlstate, the text the 1-based position must point at)
ERROR_CASES = [
    ("typo first word", "SELEC 1", None, "syntax_error", "42601", "SELEC"),
    ("missing table", "SELECT * FROM nope", None, "undefined_object", "42P01", "nope"),
    (
        "missing column",
        "SELECT 1 FROM range(3) t(i) WHERE nocol > 1",
        None,
        "undefined_column",
        "42703",
        "nocol",
    ),
    (
        "multi-line",
        "SELECT 1,\n       2\nFROM range(3)\nWHERE GROUP",
        None,
        "syntax_error",
        "42601",
        "GROUP",
    ),
    (
        "crlf and cr lines",
        "SELECT 1,\r\n  2\rFROM range(3)\r\nWHERE GROUP",
        None,
        "syntax_error",
        "42601",
        "GROUP",
    ),
    (
        "long line shortened by duckdb",
        f"{_LONG_HEAD} FROM WHERE {_LONG_TAIL}",
        None,
        "syntax_error",
        "42601",
        "WHERE",
    ),
    (
        "wide and combining characters before the error",
        "SELECT '日本語', 'e\u0301', '👨\u200d👩\u200d👧', '\t', nocol FROM range(1)",
        None,
        "undefined_column",
        "42703",
        "nocol",
    ),
    (
        "long line with wide characters",
        "SELECT '日本語日本語" + "x" * 100 + "', 1 FROM WHERE 1, 2, 3",
        None,
        "syntax_error",
        "42601",
        "WHERE",
    ),
    (
        "with parameters",
        "SELECT :a, :b, nocol FROM range(1)",
        {"a": 1, "b": "it's"},
        "undefined_column",
        "42703",
        "nocol",
    ),
    (
        "bad value",
        "SELECT 1 FROM range(3) t(i) WHERE i = 'abc'",
        None,
        "invalid_value",
        "22P02",
        "'abc'",
    ),
    (
        "dml on missing column",
        "CREATE TABLE t AS SELECT nocol",
        None,
        "undefined_column",
        "42703",
        None,
    ),
]


@pytest.mark.parametrize(
    ("sql", "params", "code", "sqlstate", "at"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
def test_error_code_sqlstate_and_position(
    conn: DuckDBConnection,
    sql: str,
    params: dict[str, Any] | None,
    code: str,
    sqlstate: str,
    at: str | None,
) -> None:
    err = error_of(conn, sql, params)
    assert (err.code, err.sqlstate) == (code, sqlstate)
    assert "LINE" not in err.message
    if at is None:
        return
    assert err.position == sql.index(at) + 1, sql[(err.position or 1) - 1 :][:20]


def test_long_line_is_really_shortened_by_duckdb(conn: DuckDBConnection) -> None:
    # Guards the long-line case above: DuckDB must show the line cut with "..." on both sides.
    sql = f"{_LONG_HEAD} FROM WHERE {_LONG_TAIL}"
    err = error_of(conn, sql)
    raw = str(err.__cause__)
    shown = raw.split("LINE 1: ", 1)[1].split("\n", 1)[0]
    assert shown.startswith("...") and shown.endswith("...")
    assert err.position == sql.index("WHERE") + 1


def test_error_while_streaming_is_mapped(conn: DuckDBConnection) -> None:
    sql = "SELECT CAST(CASE WHEN i = 5000 THEN 'x' ELSE i::VARCHAR END AS INTEGER) FROM range(9000) t(i)"
    result = conn.execute(sql)  # the failing row is only reached while the stream is read
    assert result.batches is not None
    with pytest.raises(EngineError) as info:
        list(result.batches)
    assert (info.value.code, info.value.sqlstate) == ("invalid_value", "22P02")
    assert query(conn, "SELECT 42") == [(42,)]


def test_closing_a_stream_early_frees_the_connection(conn: DuckDBConnection) -> None:
    result = conn.execute("SELECT * FROM range(100000)")
    assert result.batches is not None
    next(result.batches)
    result.batches.close()  # type: ignore[attr-defined]
    assert query(conn, "SELECT 7") == [(7,)]


def test_python_variables_are_not_readable_from_sql(conn: DuckDBConnection) -> None:
    secret = pa.table({"s": ["do not leak"]})
    assert secret.num_rows == 1
    err = error_of(conn, "SELECT * FROM secret")
    assert err.code == "undefined_object"


# -- interrupt -----------------------------------------------------------------------------


def _interrupt_until_done(conn: DuckDBConnection, worker: threading.Thread) -> None:
    """Interrupt every 10 ms until the worker ends (an interrupt before the query starts is lost)."""
    deadline = time.monotonic() + DEADLINE_S
    while worker.is_alive() and time.monotonic() < deadline:
        conn.interrupt()
        worker.join(0.01)
    assert not worker.is_alive(), "the query was not interrupted"


def test_interrupt_stops_execute(conn: DuckDBConnection) -> None:
    outcome: dict[str, BaseException | str] = {}

    def run() -> None:
        try:
            conn.execute("SELECT count(*) FROM range(10000000000)")
            outcome["result"] = "finished"
        except BaseException as exc:
            outcome["result"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    _interrupt_until_done(conn, worker)
    err = outcome["result"]
    assert isinstance(err, EngineError), err
    assert (err.code, err.sqlstate) == ("cancelled", "57014")
    assert query(conn, "SELECT 42") == [(42,)]  # the connection still works


def test_interrupt_stops_streaming_batches(conn: DuckDBConnection) -> None:
    streaming = threading.Event()
    outcome: dict[str, Any] = {"batches": 0}

    def run() -> None:
        try:
            result = conn.execute("SELECT * FROM range(10000000000)")
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
    _interrupt_until_done(conn, worker)
    err = outcome["result"]
    assert isinstance(err, EngineError), err
    assert (err.code, err.sqlstate) == ("cancelled", "57014")
    assert outcome["batches"] >= 1
    assert query(conn, "SELECT 42") == [(42,)]


# -- catalog -------------------------------------------------------------------------------


@pytest.fixture
def catalog(engine: DuckDBEngine, conn: DuckDBConnection) -> DuckDBEngine:
    for sql in [
        "CREATE TABLE t (a INTEGER)",
        "CREATE SCHEMA sales",
        "CREATE TABLE sales.orders (id INTEGER NOT NULL, amount DECIMAL(12, 3), note VARCHAR,"
        " price DOUBLE)",
        "CREATE TABLE sales.order_lines (order_id INTEGER)",
        "CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE amount > 100",
        "ATTACH ':memory:' AS other",
        "CREATE TABLE other.main.elsewhere (x INTEGER)",
    ]:
        conn.execute(sql)
    return engine


def test_list_databases(catalog: DuckDBEngine) -> None:
    assert catalog.list_databases() == ["memory", "other"]


def test_list_schemas(catalog: DuckDBEngine) -> None:
    assert catalog.list_schemas(None, None) == ["main", "sales"]
    assert catalog.list_schemas(None, "%") == ["main", "sales"]
    assert catalog.list_schemas(None, "s%") == ["sales"]
    assert catalog.list_schemas(None, "%ai%") == ["main"]
    assert catalog.list_schemas(None, "nothing%") == []
    assert catalog.list_schemas("other", "%") == ["main"]


def test_list_tables(catalog: DuckDBEngine) -> None:
    assert catalog.list_tables(None, None, None) == [
        TableInfo("t", "main", "TABLE", "memory"),
        TableInfo("big_orders", "sales", "VIEW", "memory"),
        TableInfo("order_lines", "sales", "TABLE", "memory"),
        TableInfo("orders", "sales", "TABLE", "memory"),
    ]
    assert [t.name for t in catalog.list_tables(None, "sales", "order%")] == [
        "order_lines",
        "orders",
    ]
    assert [t.name for t in catalog.list_tables(None, "%", "order_")] == ["orders"]
    assert [t.name for t in catalog.list_tables(None, "%", "orders")] == ["orders"]
    assert catalog.list_tables(None, "s%", "big%") == [
        TableInfo("big_orders", "sales", "VIEW", "memory")
    ]
    assert catalog.list_tables("other", None, None) == [
        TableInfo("elsewhere", "main", "TABLE", "other")
    ]


def test_describe_table(catalog: DuckDBEngine) -> None:
    assert catalog.describe_table(None, "sales", "orders") == [
        ColumnMeta("id", "INTEGER", nullable=False),
        ColumnMeta("amount", "DECIMAL(12,3)", nullable=True, precision=12, scale=3),
        ColumnMeta("note", "VARCHAR", nullable=True),
        ColumnMeta("price", "DOUBLE", nullable=True),
    ]
    assert catalog.describe_table(None, "sales", "big_orders")[1].precision == 12
    assert catalog.describe_table(None, "sales", "missing") == []


def test_temp_tables_belong_to_their_connection(engine: DuckDBEngine) -> None:
    first, second = engine.connect(), engine.connect()
    try:
        first.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS a")
        assert query(first, "SELECT a FROM scratch") == [(1,)]
        err = error_of(second, "SELECT a FROM scratch")
        assert err.code == "undefined_object"
        second.execute("CREATE TEMP TABLE scratch AS SELECT 2 AS a")  # its own, no clash
        assert query(second, "SELECT a FROM scratch") == [(2,)]
        assert query(first, "SELECT a FROM scratch") == [(1,)]
        assert all(t.name != "scratch" for t in engine.list_tables(None, None, None))
    finally:
        first.close()
        second.close()


# -- opening -------------------------------------------------------------------------------


def test_engine_on_a_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "warehouse.db"
    url = f"duckdb:///{path}"
    first = DuckDBEngine("files", url)
    assert first.exclusive
    first.open()
    try:
        c = first.connect()
        c.execute("CREATE TABLE kept (a INTEGER)")
        c.execute("INSERT INTO kept VALUES (1), (2)")
        c.close()
    finally:
        first.close()
    assert path.exists()

    again = DuckDBEngine("files", url)
    again.open()
    try:
        c = again.connect()
        assert query(c, "SELECT sum(a) FROM kept") == [(3,)]
        c.close()
        assert again.list_databases() == ["warehouse"]
    finally:
        again.close()


def test_engine_must_be_open() -> None:
    with pytest.raises(ConfigError):
        DuckDBEngine("closed", "duckdb:///:memory:").connect()


_HOLD_OPEN = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held (a INTEGER)")
print("ready", flush=True)
sys.stdin.read()
"""


def test_file_open_in_another_process_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_OPEN, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()  # EOF (""), not a hang, if the holder dies
        assert line.strip() == "ready", holder.stderr.read() if holder.stderr else line
        engine = DuckDBEngine("locked", f"duckdb:///{path}")
        with pytest.raises(ConfigError) as info:
            engine.open()
        assert "locked" in info.value.message and str(path) in info.value.message
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        try:
            holder.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
        for stream in (holder.stdout, holder.stderr):
            if stream is not None:
                stream.close()
