"""Splitting a SQL script into statements, each kept as the user wrote it."""

from __future__ import annotations

import pytest

from sqltide.statements.script import split_script

PLPGSQL = """CREATE PROCEDURE add_row(v integer)
LANGUAGE plpgsql
AS $$
BEGIN
    -- two statements inside the body; neither ends the script's statement
    INSERT INTO t VALUES (v);
    UPDATE counters SET n = n + 1;
END;
$$"""

TAGGED = """CREATE FUNCTION f() RETURNS int AS $body$
    SELECT 1; -- ;
$body$ LANGUAGE sql"""

# (id, script, dialect, statements)
CASES = [
    ("one", "SELECT 1", "duckdb", ["SELECT 1"]),
    ("one with semicolon", "SELECT 1;", "duckdb", ["SELECT 1"]),
    ("two", "SELECT 1; SELECT 2;", "duckdb", ["SELECT 1", "SELECT 2"]),
    ("no trailing semicolon", "SELECT 1;\nSELECT 2", "duckdb", ["SELECT 1", "SELECT 2"]),
    ("empty", "", "duckdb", []),
    ("whitespace only", "  \n\t ", "duckdb", []),
    ("empty statements", ";;SELECT 1;; ;\n;", "duckdb", ["SELECT 1"]),
    ("comments only", "-- nothing\n/* at ; all */", "duckdb", []),
    (
        "comment-only pieces dropped",
        "SELECT 1;\n-- between ; here\n;\nSELECT 2; -- trailing ; note",
        "duckdb",
        ["SELECT 1", "SELECT 2"],
    ),
    (
        "comments inside statements kept",
        "-- create it\nCREATE TABLE t (a INT); /* fill */ INSERT INTO t VALUES (1) -- one\n;",
        "duckdb",
        ["-- create it\nCREATE TABLE t (a INT)", "/* fill */ INSERT INTO t VALUES (1) -- one"],
    ),
    (
        "semicolon in string",
        "SELECT ';' AS s; SELECT 'a;b'",
        "duckdb",
        ["SELECT ';' AS s", "SELECT 'a;b'"],
    ),
    (
        "doubled quotes",
        "SELECT 'it''s; fine'; SELECT 2",
        "duckdb",
        ["SELECT 'it''s; fine'", "SELECT 2"],
    ),
    (
        "quoted identifier",
        'SELECT 1 AS "a;b"; SELECT 2',
        "duckdb",
        ['SELECT 1 AS "a;b"', "SELECT 2"],
    ),
    (
        "line comment",
        "SELECT 1 -- ; not here\n; SELECT 2",
        "duckdb",
        ["SELECT 1 -- ; not here", "SELECT 2"],
    ),
    (
        "nested block comment",
        "SELECT /* a; /* b; */ c; */ 1; SELECT 2",
        "duckdb",
        ["SELECT /* a; /* b; */ c; */ 1", "SELECT 2"],
    ),
    ("dollar body", "SELECT $$a;b$$; SELECT 2", "duckdb", ["SELECT $$a;b$$", "SELECT 2"]),
    ("escape string", "SELECT E'\\';'; SELECT 2", "duckdb", ["SELECT E'\\';'", "SELECT 2"]),
    (
        "backslash ends a plain string",
        "SELECT 'a\\'; SELECT 2",
        "duckdb",
        ["SELECT 'a\\'", "SELECT 2"],
    ),
    ("parameters kept", "SELECT :a; SELECT $1, ?", "duckdb", ["SELECT :a", "SELECT $1, ?"]),
    (
        "commands",
        "CALL p(';'); PRAGMA version; SET threads = 2; COPY t TO 'a;b.csv'",
        "duckdb",
        ["CALL p(';')", "PRAGMA version", "SET threads = 2", "COPY t TO 'a;b.csv'"],
    ),
    (
        "text kept verbatim",
        "select   A ,b\n  from T where x=1 ;  SeLeCt 2",
        "duckdb",
        ["select   A ,b\n  from T where x=1", "SeLeCt 2"],
    ),
    ("unicode", "SELECT 'é;😀'; SELECT '日本'", "duckdb", ["SELECT 'é;😀'", "SELECT '日本'"]),
    ("crlf", "SELECT 1;\r\nSELECT 2;\r\n", "duckdb", ["SELECT 1", "SELECT 2"]),
    (
        "plpgsql procedure stays whole",
        f"{PLPGSQL};\nCALL add_row(1);",
        "postgres",
        [PLPGSQL, "CALL add_row(1)"],
    ),
    ("tagged dollar body", f"{TAGGED};\nSELECT f();", "postgres", [TAGGED, "SELECT f()"]),
    (
        "do block",
        "DO $$ BEGIN PERFORM 1; END $$; SELECT 1",
        "postgres",
        ["DO $$ BEGIN PERFORM 1; END $$", "SELECT 1"],
    ),
    (
        "backslash escapes in mysql",
        "SELECT 'a\\';b'; SELECT 2",
        "mysql",
        ["SELECT 'a\\';b'", "SELECT 2"],
    ),
    # The tokenizer gives up on these; the fallback scanner still cuts at the real semicolons.
    (
        "unterminated string",
        "SELECT 1; SELECT 'never; closed",
        "duckdb",
        ["SELECT 1", "SELECT 'never; closed"],
    ),
    (
        "unterminated comment",
        "SELECT 1; -- fine\nSELECT 2 /* never; closed",
        "duckdb",
        ["SELECT 1", "-- fine\nSELECT 2 /* never; closed"],
    ),
    (
        "unterminated string after comment-only piece",
        "SELECT 1; /* only ; a comment */; SELECT 'x",
        "duckdb",
        ["SELECT 1", "SELECT 'x"],
    ),
]


@pytest.mark.parametrize(
    ("script", "dialect", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_split_script(script: str, dialect: str, expected: list[str]) -> None:
    assert split_script(script, dialect) == expected


def test_default_dialect_is_duckdb() -> None:
    assert split_script("SELECT $$;$$; SELECT 2") == ["SELECT $$;$$", "SELECT 2"]


def test_statements_are_slices_of_the_script() -> None:
    script = "  SELECT 1 ;\n\n  INSERT INTO t\n  VALUES (1);  "
    for statement in split_script(script):
        assert statement in script


def test_unknown_dialect() -> None:
    with pytest.raises(ValueError):
        split_script("SELECT 1", "no-such-dialect")


def test_each_statement_runs_alone_on_duckdb() -> None:
    from sqltide.engines.duckdb import DuckDBEngine

    script = """
    -- a small migration
    CREATE TABLE t (a INTEGER, note VARCHAR);
    INSERT INTO t VALUES (1, 'x; y'), (2, '-- not a comment');
    /* done; */
    SELECT count(*) AS n FROM t;
    """
    engine = DuckDBEngine("script", "duckdb:///:memory:")
    engine.open()
    try:
        conn = engine.connect()
        results = [conn.execute(statement) for statement in split_script(script)]
        assert [r.has_result_set for r in results] == [False, False, True]
        assert results[1].rows_affected == 2
        batches = list(results[2].batches or [])
        assert batches[0].to_pylist() == [{"n": 2}]
        conn.close()
    finally:
        engine.close()
