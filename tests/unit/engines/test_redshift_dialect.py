"""Redshift SQL on DuckDB and PostgreSQL warehouses declared with ``?dialect=redshift``.

Every case runs for real on both engines (an in-memory DuckDB, a fresh PostgreSQL database)
and checks the rows, or the error when the translation is refused.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import pgtools
from sqltide.engines import engine_from_url
from sqltide.engines.base import Access, Engine, EngineConnection, ExecResult
from sqltide.engines.duckdb import DuckDBEngine
from sqltide.engines.postgres import PostgresEngine
from sqltide.engines.sandbox import protected_paths
from sqltide.engines.transpile import (
    CACHE_MAX_CHARS,
    Translator,
    _cached_translate,
    source_dialects,
    split_dialect,
)
from sqltide.errors import ConfigError, EngineError, UntranslatableSql, error_class_for
from sqltide.settings import Settings
from sqltide.statements.script import split_script

TARGETS = ["duckdb", "postgres"]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """One database for the cases that create nothing lasting (or drop what they make)."""
    with pgtools.fresh_database() as url:
        yield url


def _engine(target: str, pg_url: str, allowed_dir: str | None = None) -> Engine:
    if target == "duckdb":
        dirs = (allowed_dir,) if allowed_dir else ()
        return DuckDBEngine("rs", "duckdb:///:memory:?dialect=redshift", allowed_dirs=dirs)
    return PostgresEngine("rs", f"{pg_url}?dialect=redshift")


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(target: str, pg_url: str) -> Iterator[Engine]:
    eng = _engine(target, pg_url)
    eng.open()
    yield eng
    eng.close()


@pytest.fixture
def conn(engine: Engine) -> Iterator[EngineConnection]:
    c = engine.connect()
    yield c
    c.close()


def rows(result: ExecResult) -> list[tuple[Any, ...]]:
    assert result.has_result_set and result.batches is not None
    table = pa.Table.from_batches(list(result.batches), schema=result.schema)
    return [tuple(col[i].as_py() for col in table.columns) for i in range(table.num_rows)]


def query(conn: EngineConnection, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    return rows(conn.execute(sql, params))


def error_of(conn: EngineConnection, sql: str, params: dict[str, Any] | None = None) -> EngineError:
    with pytest.raises(EngineError) as info:
        result = conn.execute(sql, params)
        if result.batches is not None:
            list(result.batches)
    return info.value


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


# -- the URL option -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "stripped", "dialect"),
    [
        ("duckdb:///:memory:", "duckdb:///:memory:", None),
        ("duckdb:///w.db?dialect=redshift", "duckdb:///w.db", "redshift"),
        ("duckdb:///w.db?dialect=Redshift", "duckdb:///w.db", "redshift"),
        (
            "postgresql://u@h/db?sslmode=require&dialect=redshift&application_name=a%20b",
            "postgresql://u@h/db?sslmode=require&application_name=a%20b",
            "redshift",
        ),
        ("postgresql://u@h/db?dialect=snowflake", "postgresql://u@h/db", "snowflake"),
        ("postgresql://u@h/db?sslmode=disable", "postgresql://u@h/db?sslmode=disable", None),
        ("postgresql://u@h/db?sqltide_dialect=x", "postgresql://u@h/db?sqltide_dialect=x", None),
    ],
)
def test_the_dialect_parameter_is_taken_off_the_url(
    url: str, stripped: str, dialect: str | None
) -> None:
    assert split_dialect(url, "w") == (stripped, dialect)


def test_an_unknown_dialect_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        split_dialect("duckdb:///w.db?dialect=redshfit", "lake")
    message = info.value.message
    assert "warehouse 'lake'" in message and "'redshfit'" in message
    assert "did you mean 'redshift'?" in message
    assert "redshift" in source_dialects() and "snowflake" in source_dialects()
    assert ", ".join(source_dialects()) in message
    with pytest.raises(ConfigError):
        split_dialect("duckdb:///w.db?dialect=", "lake")


def test_engines_connect_without_the_parameter_and_translate_only_when_asked(
    pg_url: str, tmp_path: Path
) -> None:
    duck = engine_from_url("d", f"duckdb:///{tmp_path / 'w.duckdb'}?dialect=redshift")
    assert isinstance(duck, DuckDBEngine)
    assert duck.path == str(tmp_path / "w.duckdb") and duck.source_dialect == "redshift"
    assert duck.translator == Translator("redshift", "duckdb")
    pg = engine_from_url("p", f"{pg_url}?dialect=redshift&sqltide_role_mode=set_role")
    assert isinstance(pg, PostgresEngine)
    assert pg.url == pg_url and pg.role_mode == "set_role"
    assert pg.translator == Translator("redshift", "postgres")
    conn = pg.connect()  # libpq never sees "dialect" (it would refuse an unknown option)
    try:
        assert query(conn, "SELECT NVL(NULL, 7) AS n") == [(7,)]
    finally:
        conn.close()
    assert engine_from_url("p", pg_url).translator is None  # no parameter: as written
    assert engine_from_url("p", f"{pg_url}?dialect=postgres").translator is None  # its own


def test_the_sandbox_protects_the_warehouse_file_not_the_url(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        warehouses={"lake": f"duckdb:///{tmp_path / 'lake.duckdb'}?dialect=redshift"},
    )  # type: ignore[call-arg]
    protected = protected_paths(settings)
    assert protected[(tmp_path / "lake.duckdb").resolve()] == "warehouse 'lake''s database file"


# -- common idioms, run for real -------------------------------------------------------------

THREE = "(SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 3)"
WORDS = "(SELECT 'b' AS w UNION ALL SELECT 'a' UNION ALL SELECT 'c')"

IDIOMS: list[tuple[str, str, list[tuple[Any, ...]]]] = [
    (
        "casts with ::",
        "SELECT '42'::int + 1 AS n, '2020-01-02'::date AS d, 1.5::varchar(10) AS s",
        [(43, dt.date(2020, 1, 2), "1.5")],
    ),
    (
        "DATEADD",
        "SELECT DATEADD(day, 1, '2020-01-31'::date) AS a, DATEADD(month, 1, '2020-01-31') AS b, "
        "DATEADD(hour, -2, '2020-01-01 01:00'::timestamp) AS c",
        [(dt.datetime(2020, 2, 1), dt.datetime(2020, 2, 29), dt.datetime(2019, 12, 31, 23))],
    ),
    (
        "DATEDIFF counts boundaries",
        "SELECT DATEDIFF(day, '2020-01-01 23:00'::timestamp, '2020-01-02 01:00'::timestamp) AS a, "
        "DATEDIFF(days, '2020-01-01', '2020-03-01') AS b, "
        "DATEDIFF(day, '2020-01-02', '2020-01-01') AS c, "
        "DATEDIFF(month, '2020-01-31', '2020-02-01') AS d, "
        "DATEDIFF(week, '2020-01-05'::date, '2020-01-06'::date) AS e, "
        "DATEDIFF(hour, '2020-01-01 10:59'::timestamp, '2020-01-01 11:01'::timestamp) AS f, "
        "DATEDIFF(year, '2019-12-31', '2020-01-01') AS g, "
        "DATEDIFF(qtr, '2020-03-31', '2020-04-01') AS h, "
        "DATEDIFF(minute, '2020-01-01 10:00:59'::timestamp, '2020-01-01 10:01:00'::timestamp) AS i",
        [(1, 60, -1, 1, 1, 1, 1, 1, 1)],
    ),
    (
        "NVL, NVL2, DECODE",
        "SELECT NVL(NULL, 2) AS a, NVL2(NULL, 'x', 'y') AS b, NVL2(1, 'x', 'y') AS c, "
        "DECODE(2, 1, 'one', 2, 'two', 'other') AS d, DECODE(3, 1, 'one', 'other') AS e",
        [(2, "y", "x", "two", "other")],
    ),
    (
        "LISTAGG ... WITHIN GROUP",
        f"SELECT LISTAGG(w, ',') WITHIN GROUP (ORDER BY w) AS up, "
        f"LISTAGG(w, '|') WITHIN GROUP (ORDER BY w DESC) AS down FROM {WORDS} t",
        [("a,b,c", "c|b|a")],
    ),
    (
        "LISTAGG without an order",
        "SELECT LISTAGG(w, ',') AS one FROM (SELECT 'only' AS w) t",
        [("only",)],
    ),
    (
        "DATE_TRUNC('mon')",
        "SELECT DATE_TRUNC('mon', '2020-05-17 10:00'::timestamp) AS m, "
        "DATE_TRUNC('week', '2020-05-17 10:00'::timestamp) AS w",
        [(dt.datetime(2020, 5, 1), dt.datetime(2020, 5, 11))],
    ),
    ("TOP n", f"SELECT TOP 2 x FROM {THREE} t ORDER BY x DESC", [(3,), (2,)]),
    (
        "LEN, CHARINDEX",
        "SELECT LEN('abcd') AS a, CHARINDEX('b', 'abc') AS b, CHARINDEX('z', 'abc') AS c",
        [(4, 2, 0)],
    ),
    (
        "CONVERT_TIMEZONE",
        "SELECT CONVERT_TIMEZONE('UTC', 'America/New_York', '2020-01-01 10:00'::timestamp) AS a, "
        "CONVERT_TIMEZONE('Asia/Tokyo', '2020-07-01 00:00'::timestamp) AS b",
        [(dt.datetime(2020, 1, 1, 5), dt.datetime(2020, 7, 1, 9))],
    ),
    (
        "APPROXIMATE COUNT(DISTINCT), APPROXIMATE PERCENTILE_DISC, MEDIAN",
        "SELECT APPROXIMATE COUNT(DISTINCT x) AS n, MEDIAN(x) AS m, "
        "APPROXIMATE PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY x) AS p "
        "FROM (SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 2 UNION ALL SELECT 10) t",
        [(3, 2.0, 2)],
    ),
]


@pytest.mark.parametrize(("what", "sql", "expected"), IDIOMS, ids=[i[0] for i in IDIOMS])
def test_redshift_idioms_run_with_checked_results(
    conn: EngineConnection, what: str, sql: str, expected: list[tuple[Any, ...]]
) -> None:
    assert query(conn, sql) == expected


def test_getdate_and_sysdate_are_now(conn: EngineConnection) -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ((getdate, sysdate),) = query(conn, "SELECT GETDATE() AS g, SYSDATE AS s")
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for value in (getdate, sysdate):
        assert before - dt.timedelta(seconds=5) <= _naive_utc(value) <= after
    ((today,),) = query(conn, "SELECT GETDATE()::date AS d")
    assert today in (before.date(), after.date())


def test_a_statement_sqlglot_reads_only_as_a_command_runs_as_written(
    conn: EngineConnection,
) -> None:
    assert Translator("redshift", "postgres")("VACUUM") == "VACUUM"
    assert not conn.execute("VACUUM").has_result_set


# -- parameters survive ---------------------------------------------------------------------

PARAMETERS: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = [
    ("SELECT :a::int + 1 AS v", {"a": "41"}, [(42,)]),
    ("SELECT DATEADD(day, :n, '2020-01-01'::date) AS v", {"n": 3}, [(dt.datetime(2020, 1, 4),)]),
    (
        "SELECT NVL(:a, 'none') AS v, ':a' AS text, 'it''s :a' AS quoted -- :a in a comment",
        {"a": None},
        [("none", ":a", "it's :a")],
    ),
    ("SELECT DECODE(:k, 1, 'one', 2, 'two', 'other') AS v", {"k": 2}, [("two",)]),
    (
        "SELECT TOP 1 x FROM (SELECT 1 AS x UNION ALL SELECT 2) t WHERE x >= :lo ORDER BY x",
        {"lo": 2},
        [(2,)],
    ),
]


@pytest.mark.parametrize(("sql", "params", "expected"), PARAMETERS)
def test_parameters_keep_their_names(
    conn: EngineConnection, sql: str, params: dict[str, Any], expected: list[Any]
) -> None:
    assert query(conn, sql, params) == expected


@pytest.mark.parametrize("target_name", TARGETS)
def test_the_translation_keeps_each_parameter_as_written(target_name: str) -> None:
    text = Translator("redshift", target_name)(
        "SELECT NVL(:a, 0), x::int FROM t WHERE y = :b AND z = :a -- :c"
    )
    assert ":a" in text and ":b" in text and "$" not in text and "%(" not in text
    assert text.count(":a") == 2 and "/* :c */" in text


# -- what cannot be translated --------------------------------------------------------------

REFUSED: list[tuple[str, str, str, str, int | None]] = [
    # (target or "both", sql, sqlstate, words in the message, position)
    ("both", "SELEC 1", "42601", "cannot parse", 7),
    ("both", "SELECT 1,\n  2 +\n  FROM t", "42601", "cannot parse", 19),
    ("both", "SELECT 'open", "42601", "cannot read", None),
    ("both", "SELECT STRTOL('ff', 16) AS v", "0A000", "STRTOL", 8),
    ("both", "ALTER TABLE t ALTER DISTKEY a", "0A000", "ALTER DISTKEY", 29),
    (
        "both",
        "COPY t FROM 's3://b/p/' IAM_ROLE 'arn:aws:iam::1:role/r' DELIMITER '|'",
        "0A000",
        "IAM_ROLE",
        34,
    ),
    ("postgres", "SELECT DATEDIFF(decade, '2000-01-01', '2020-01-01')", "0A000", "decade", 8),
    ("duckdb", "CREATE MATERIALIZED VIEW v AS SELECT 1 AS x", "0A000", "materialized views", 1),
    ("duckdb", "DROP MATERIALIZED VIEW IF EXISTS v", "0A000", "materialized views", 1),
    ("duckdb", "  REFRESH MATERIALIZED VIEW v", "0A000", "materialized views", 3),
    (
        "duckdb",
        "CREATE PROCEDURE p() AS $$ BEGIN NULL; END; $$ LANGUAGE plpgsql",
        "0A000",
        "stored procedures",
        1,
    ),
    ("duckdb", "CREATE TABLE t (id INT IDENTITY(1, 1))", "0A000", "IDENTITY", 17),
]


@pytest.mark.parametrize(("only", "sql", "sqlstate", "said", "position"), REFUSED)
def test_untranslatable_sql_fails_clearly_and_runs_nothing(
    conn: EngineConnection,
    target: str,
    only: str,
    sql: str,
    sqlstate: str,
    said: str,
    position: int | None,
) -> None:
    if only not in ("both", target):  # the other engine has the feature: it translates
        assert Translator("redshift", target)(sql)
        return
    err = error_of(conn, sql)
    assert isinstance(err, UntranslatableSql)
    assert err.code == "untranslatable_sql" and err.sqlstate == sqlstate
    assert said in err.message and "this redshift SQL cannot run on" in err.message
    assert err.position == position
    assert err.to_dict()["details"]["source_dialect"] == "redshift"
    assert error_class_for("untranslatable_sql") is UntranslatableSql


def test_a_warehouse_error_on_a_translated_statement_says_what_ran(
    conn: EngineConnection,
) -> None:
    err = error_of(conn, "SELECT GETDATE() AS at, nosuchcol FROM (SELECT 1 AS a) t")
    assert err.code == "undefined_column" and err.position is None
    ran = err.details["transpiled_sql"]
    assert "CURRENT_TIMESTAMP" in ran and "GETDATE" not in ran
    assert err.details["transpiled_position"] == ran.index("nosuchcol") + 1
    # A statement the translation leaves as it is keeps its position in the caller's text.
    same = error_of(conn, "SELECT 1 FROM nowhere")
    assert same.position == len("SELECT 1 FROM ") + 1 and "transpiled_sql" not in same.details


def test_transaction_control_runs_as_written(conn: EngineConnection) -> None:
    conn.execute("CREATE TEMP TABLE tx (a INT)")
    conn.execute("START TRANSACTION")  # sqlglot would write START AS TRANSACTION
    conn.execute("INSERT INTO tx VALUES (1)")
    conn.execute("ROLLBACK")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO tx VALUES (2)")
    conn.execute("END")  # Redshift's (and PostgreSQL's) COMMIT
    assert query(conn, "SELECT a FROM tx") == [(2,)]


def test_a_read_only_grant_checks_the_translated_statement(engine: Engine) -> None:
    conn = engine.connect(Access(read_only=True))
    try:
        assert query(conn, "SELECT NVL(NULL, 'ok') AS v") == [("ok",)]
        err = error_of(conn, "CREATE TABLE w (a INT) SORTKEY(a)")
        assert err.code in ("permission_denied", "transaction_error")
    finally:
        conn.close()


def test_translations_are_cached_per_text_and_target() -> None:
    translate = Translator("redshift", "duckdb")
    sql = "SELECT NVL(a, 0) FROM cache_probe_table"
    translate(sql)
    hits = _cached_translate.cache_info().hits
    assert translate(sql) == translate(sql)
    assert _cached_translate.cache_info().hits == hits + 2
    misses = _cached_translate.cache_info().misses
    assert "COALESCE" in Translator("redshift", "postgres")(sql)  # another target: its own
    assert _cached_translate.cache_info().misses == misses + 1
    long = "SELECT NVL(a, 0) AS x FROM t WHERE " + " OR ".join(["a = 1"] * (CACHE_MAX_CHARS // 8))
    size = _cached_translate.cache_info().currsize
    assert "COALESCE" in translate(long)
    assert _cached_translate.cache_info().currsize == size  # too long to keep


# -- Redshift DDL ---------------------------------------------------------------------------

DDL: list[tuple[str, str, list[tuple[Any, ...]]]] = [
    (
        "CREATE TABLE ddl1 (a INT ENCODE az64, b VARCHAR(MAX) ENCODE zstd, c DATE DISTKEY, "
        "d TIMESTAMP SORTKEY) DISTSTYLE KEY DISTKEY(c) COMPOUND SORTKEY(d, a) BACKUP NO",
        "INSERT INTO ddl1 VALUES (1, 'x', '2020-01-01', '2020-01-01 10:00')",
        [(1, "x", dt.date(2020, 1, 1), dt.datetime(2020, 1, 1, 10))],
    ),
    (
        "CREATE TABLE ddl2 (a INT NOT NULL, b CHAR(3)) DISTSTYLE ALL "
        "INTERLEAVED SORTKEY(a, b) ENCODE AUTO",
        "INSERT INTO ddl2 VALUES (1, 'abc')",
        [(1, "abc")],
    ),
    (
        "CREATE TABLE ddl3 (a BIGINT, b NVARCHAR(MAX), c DOUBLE PRECISION) DISTSTYLE EVEN "
        "SORTKEY AUTO",
        "INSERT INTO ddl3 VALUES (1, 'b', 2.5)",
        [(1, "b", 2.5)],
    ),
    (
        "CREATE TEMP TABLE ddl4 DISTKEY(a) SORTKEY(a) AS SELECT 1 AS a",
        "INSERT INTO ddl4 VALUES (2)",
        [(1,), (2,)],
    ),
]


@pytest.mark.parametrize(("create", "insert", "expected"), DDL)
def test_redshift_table_layout_is_dropped(
    conn: EngineConnection, create: str, insert: str, expected: list[Any]
) -> None:
    table = create.split("TABLE ")[1].split()[0]
    conn.execute(create)
    try:
        conn.execute(insert)
        assert query(conn, f"SELECT * FROM {table} ORDER BY 1") == expected
    finally:
        conn.execute(f"DROP TABLE {table}")


def test_constraints_beside_redshift_attributes_are_kept(conn: EngineConnection) -> None:
    conn.execute("CREATE TEMP TABLE kept (a INT ENCODE az64 NOT NULL DISTKEY, b INT DEFAULT 7)")
    err = error_of(conn, "INSERT INTO kept (b) VALUES (1)")
    assert err.code == "constraint_violation"
    conn.execute("INSERT INTO kept (a) VALUES (1)")
    assert query(conn, "SELECT a, b FROM kept") == [(1, 7)]


def test_identity_columns_number_rows_on_postgresql(pg_url: str) -> None:
    engine = _engine("postgres", pg_url)
    conn = engine.connect()
    try:
        conn.execute("CREATE TABLE ident (id BIGINT IDENTITY(1, 1), name VARCHAR(10)) BACKUP NO")
        conn.execute("INSERT INTO ident (name) VALUES ('a'), ('b')")
        assert query(conn, "SELECT id, name FROM ident ORDER BY id") == [(1, "a"), (2, "b")]
        conn.execute("DROP TABLE ident")
    finally:
        conn.close()


# -- seed 000: the setup DDL and the ELT ------------------------------------------------------

# The setup SQL of seed 000 (seed-systems.md §2.3) exactly as the sample sends it to Redshift.
SEED_TABLE = """CREATE TABLE IF NOT EXISTS nyc_yellow_taxi
(pickup_date DATE, pickup_datetime TIMESTAMP, dropoff_datetime TIMESTAMP, ratecode SMALLINT,
 passenger_count SMALLINT, trip_distance FLOAT4, fare_amount FLOAT4, total_amount FLOAT4,
 payment_type SMALLINT, vendorid VARCHAR(20))
SORTKEY(pickup_date)"""
SEED_VIEW = """DROP MATERIALIZED VIEW IF EXISTS nyc_yellow_taxi_volume_analysis;
CREATE MATERIALIZED VIEW nyc_yellow_taxi_volume_analysis AS
SELECT DATE_TRUNC('mon', pickup_date) pickup_month,
       ROUND(AVG(trip_distance),2) avg_distance,
       ROUND(AVG(fare_amount),2)   avg_fare,
       COUNT(1)                    total_trips,
       SUM(trip_distance)          total_distance_per_month,
       SUM(fare_amount)            total_fare_per_month
FROM nyc_yellow_taxi GROUP BY 1"""
SEED_PROCEDURE = """CREATE OR REPLACE PROCEDURE run_elt_process() AS $$
BEGIN
  truncate table nyc_yellow_taxi;
  COPY nyc_yellow_taxi FROM 's3://event-driven-app-with-lambda-redshift/nyc_yellow_taxi_raw/'
  IAM_ROLE '<redshift role arn>' region 'us-west-2' delimiter '|';
  REFRESH MATERIALIZED VIEW nyc_yellow_taxi_volume_analysis;
END;
$$ LANGUAGE plpgsql"""
# The schedule's SqlText.
SEED_CALL = "call run_elt_process();"

# Three trips a day from 2015-01-01 to 2015-03-31: 1, 2 and 3 miles for $5, $10 and $15.
MONTHS = [(dt.date(2015, 1, 1), 93), (dt.date(2015, 2, 1), 84), (dt.date(2015, 3, 1), 93)]


def _trips_file() -> Path:
    """The seed's pipe-delimited trips, in a folder the PostgreSQL server can read too."""
    folder = Path(tempfile.mkdtemp(prefix="sqltide-redshift-"))
    folder.chmod(0o755)
    path = folder / "nyc_yellow_taxi_raw.psv"
    day, lines = dt.date(2015, 1, 1), []
    while day <= dt.date(2015, 3, 31):
        for n in (1, 2, 3):
            lines.append(f"{day}|{day} 08:00:00|{day} 08:20:00|1|1|{n}|{5 * n}|{5 * n + 1}|1|VTS")
        day += dt.timedelta(days=1)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


@pytest.fixture
def trips() -> Iterator[Path]:
    path = _trips_file()
    yield path
    shutil.rmtree(path.parent)


def test_the_seed_setup_and_elt_run_on_postgresql(trips: Path) -> None:
    with pgtools.fresh_database() as url:
        engine = _engine("postgres", url)
        conn = engine.connect()
        try:
            # The procedure body is PL/pgSQL, passed through untranslated: its S3 COPY with
            # IAM_ROLE is PostgreSQL's syntax error, reported at its place in what ran.
            conn.execute(SEED_TABLE)
            for sql in split_script(SEED_VIEW, dialect="redshift"):
                conn.execute(sql)
            err = error_of(conn, SEED_PROCEDURE)
            assert err.code == "syntax_error" and "IAM_ROLE" in err.message
            ran = err.details["transpiled_sql"]
            assert err.details["transpiled_position"] == ran.index("IAM_ROLE") + 1
            # With the COPY reading a local file instead of S3, the whole seed runs.
            local = SEED_PROCEDURE.replace(
                "'s3://event-driven-app-with-lambda-redshift/nyc_yellow_taxi_raw/'\n"
                "  IAM_ROLE '<redshift role arn>' region 'us-west-2'",
                f"'{trips}'",
            )
            script = ";\n".join([SEED_TABLE, SEED_VIEW, local, SEED_CALL])
            statements = split_script(script, dialect="redshift")
            assert [s.split()[0].upper() for s in statements] == [
                "CREATE",
                "DROP",
                "CREATE",
                "CREATE",
                "CALL",
            ]
            for sql in statements:
                assert not conn.execute(sql).has_result_set
            assert not conn.execute(SEED_CALL).has_result_set  # runs again, same data
            # Redshift's COPY from a file the server can read, outside the procedure too.
            conn.execute("truncate table nyc_yellow_taxi")
            conn.execute(f"COPY nyc_yellow_taxi FROM '{trips}' delimiter '|'")
            assert query(conn, "SELECT COUNT(1) AS n FROM nyc_yellow_taxi") == [(270,)]
            conn.execute("REFRESH MATERIALIZED VIEW nyc_yellow_taxi_volume_analysis")
            assert query(
                conn,
                "SELECT pickup_month::date, avg_distance, avg_fare, total_trips, "
                "total_distance_per_month, total_fare_per_month "
                "FROM nyc_yellow_taxi_volume_analysis ORDER BY 1",
            ) == [(month, "2.00", "10.00", n, 2.0 * n, 10.0 * n) for month, n in MONTHS]
            kinds = {t.name: t.type for t in engine.list_tables(None, "public", "nyc%")}
            assert kinds == {
                "nyc_yellow_taxi": "TABLE",
                "nyc_yellow_taxi_volume_analysis": "MATERIALIZED VIEW",
            }
        finally:
            conn.close()


# DuckDB has neither materialized views nor procedures: the aggregate is a table that the ELT
# script (the procedure's body, as a batch) rebuilds, all in Redshift's SQL.
DUCKDB_AGGREGATE = """CREATE TABLE IF NOT EXISTS nyc_yellow_taxi_volume_analysis AS
SELECT DATE_TRUNC('mon', pickup_date) pickup_month,
       ROUND(AVG(trip_distance),2) avg_distance,
       ROUND(AVG(fare_amount),2)   avg_fare,
       COUNT(1)                    total_trips,
       SUM(trip_distance)          total_distance_per_month,
       SUM(fare_amount)            total_fare_per_month
FROM nyc_yellow_taxi GROUP BY 1"""
DUCKDB_ELT = """truncate table nyc_yellow_taxi;
COPY nyc_yellow_taxi FROM '{trips}' delimiter '|';
DELETE FROM nyc_yellow_taxi_volume_analysis;
INSERT INTO nyc_yellow_taxi_volume_analysis
SELECT DATE_TRUNC('mon', pickup_date), ROUND(AVG(trip_distance),2), ROUND(AVG(fare_amount),2),
       COUNT(1), SUM(trip_distance), SUM(fare_amount)
FROM nyc_yellow_taxi GROUP BY 1;"""


def test_the_seed_setup_and_elt_run_on_duckdb(trips: Path, pg_url: str) -> None:
    engine = _engine("duckdb", pg_url, allowed_dir=str(trips.parent))
    engine.open()
    conn = engine.connect()
    try:
        conn.execute(SEED_TABLE)  # SORTKEY dropped
        for sql in [*split_script(SEED_VIEW, dialect="redshift"), SEED_PROCEDURE]:
            err = error_of(conn, sql)
            assert err.code == "untranslatable_sql" and err.sqlstate == "0A000"
            assert "DuckDB has no" in err.message
        conn.execute(DUCKDB_AGGREGATE)
        for _ in range(2):  # the ELT is safe to run again
            conn.begin()
            for sql in split_script(DUCKDB_ELT.replace("{trips}", str(trips)), "redshift"):
                conn.execute(sql)
            conn.commit()
        assert query(
            conn,
            "SELECT pickup_month::date, avg_distance, avg_fare, total_trips, "
            "total_distance_per_month, total_fare_per_month "
            "FROM nyc_yellow_taxi_volume_analysis ORDER BY 1",
        ) == [(month, 2.0, 10.0, n, 2.0 * n, 10.0 * n) for month, n in MONTHS]
    finally:
        conn.close()
        engine.close()
