"""Finding ``:name`` parameters in SQL without touching literals, comments or casts."""

from __future__ import annotations

import pytest

from sqltide.engines.params import (
    ParamRef,
    code_only,
    find_parameters,
    rewrite_parameters,
    skip_literal,
)

# (id, sql, the names found in order)
FIND_CASES = [
    ("plain", "SELECT :a", ["a"]),
    ("several", "SELECT * FROM t WHERE x = :x AND y IN (:y1,:y2) LIMIT :n", ["x", "y1", "y2", "n"]),
    ("repeated", "SELECT :a + :a, :b", ["a", "a", "b"]),
    ("underscore and digits", "SELECT :_p1, :camelCase_2", ["_p1", "camelCase_2"]),
    ("cast after column", "SELECT x::int FROM t", []),
    ("cast after param", "SELECT :a::int, :b::DECIMAL(10, 2)", ["a", "b"]),
    ("cast of a literal", "SELECT '1'::int, ' :s '::text", []),
    ("in string", "SELECT 'a :x b'", []),
    ("string with doubled quotes", "SELECT 'it''s :x', :y, 'x'':z'''", ["y"]),
    ("empty string", "SELECT '', :a, ''", ["a"]),
    ("escape string backslash", r"SELECT E'it\'s :x', :y", ["y"]),
    ("escape string lower e", r"SELECT e'\\', :y, '\'", ["y"]),
    ("column ending in e is no escape string", r"SELECT name'\', :y", ["y"]),
    ("quoted identifier", 'SELECT "quoted:ident", :a FROM "t:1"', ["a"]),
    ("quoted identifier doubled quote", 'SELECT "a"":b", :c', ["c"]),
    ("line comment", "SELECT 1 -- :c\n, :d", ["d"]),
    ("line comment at end", "SELECT :a -- :c", ["a"]),
    ("block comment", "SELECT /* :x */ :y", ["y"]),
    ("nested block comment", "SELECT /* outer /* :x */ still :z */ :y", ["y"]),
    ("comment markers in string", "SELECT '/* --', :a, '*/'", ["a"]),
    ("dollar body", "SELECT $$ :x ' $$, :y", ["y"]),
    ("tagged dollar body", "SELECT $tag$ :x $$ :z $tag$, :y", ["y"]),
    ("plpgsql body", "CREATE FUNCTION f() AS $body$ BEGIN x := :v; END $body$; SELECT :w", ["w"]),
    ("positional dollar", "SELECT $1, $2, :a", ["a"]),
    ("dollar in identifier", "SELECT a$$b, :a", ["a"]),
    ("digit after colon", "SELECT :1, :2a", []),
    ("lone colon", "SELECT a : b, ':'", []),
    ("colon after word char", "SELECT arr[1:n], a:b, x.y:z", []),
    ("colon after bracket or paren", "SELECT arr[:lo], (:hi)", ["lo", "hi"]),
    ("assignment", "x := :v", ["v"]),
    ("non-ascii name is no parameter", "SELECT 'é:x', :ü, é:x", []),
    ("unterminated string", "SELECT :a, 'never closed :b", ["a"]),
    ("unterminated quoted identifier", 'SELECT :a, "never closed :b', ["a"]),
    ("unterminated block comment", "SELECT :a /* never closed :b", ["a"]),
    ("unterminated dollar body", "SELECT :a, $$ never closed :b", ["a"]),
    ("unterminated escape string", "SELECT :a, E'ends in backslash \\", ["a"]),
    ("colon at the very end", "SELECT :", []),
    ("empty", "", []),
]


@pytest.mark.parametrize(
    ("sql", "names"), [c[1:] for c in FIND_CASES], ids=[c[0] for c in FIND_CASES]
)
def test_find_parameters(sql: str, names: list[str]) -> None:
    refs = find_parameters(sql)
    assert [r.name for r in refs] == names
    for ref in refs:
        assert sql[ref.start] == ":"
        assert sql[ref.start + 1 : ref.end] == ref.name


def test_find_parameters_offsets() -> None:
    assert find_parameters("x = :a AND y = :bb") == [ParamRef("a", 4, 6), ParamRef("bb", 15, 18)]


def _dollar(name: str) -> str:
    return f"${name}"


def _pyformat(name: str) -> str:
    return f"%({name})s"


# (id, sql, spell, escape_percent, expected)
REWRITE_CASES = [
    ("duckdb", "SELECT :a, :b", _dollar, False, "SELECT $a, $b"),
    ("repeated", "SELECT :a + :a", _dollar, False, "SELECT $a + $a"),
    ("casts kept", "SELECT :a::int, x::text", _dollar, False, "SELECT $a::int, x::text"),
    (
        "literals kept",
        "SELECT ':x', \":y\", /* :z */ $$ :w $$ -- :v\n, :u",
        _dollar,
        False,
        "SELECT ':x', \":y\", /* :z */ $$ :w $$ -- :v\n, $u",
    ),
    ("no parameters", "SELECT 1", _dollar, False, "SELECT 1"),
    ("pyformat", "SELECT :a", _pyformat, True, "SELECT %(a)s"),
    (
        "pyformat escapes percent everywhere",
        "SELECT 5 % 2, 'a%', :p, x LIKE '%b' -- 100%",
        _pyformat,
        True,
        "SELECT 5 %% 2, 'a%%', %(p)s, x LIKE '%%b' -- 100%%",
    ),
    ("percent left alone without escaping", "SELECT '%', :p", _dollar, False, "SELECT '%', $p"),
    ("percent after last parameter", "SELECT :p || '%'", _pyformat, True, "SELECT %(p)s || '%%'"),
    ("unterminated string", "SELECT :a, 'oops :b", _dollar, False, "SELECT $a, 'oops :b"),
]


@pytest.mark.parametrize(
    ("sql", "spell", "escape", "expected"),
    [c[1:] for c in REWRITE_CASES],
    ids=[c[0] for c in REWRITE_CASES],
)
def test_rewrite_parameters(sql: str, spell, escape: bool, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert rewrite_parameters(sql, spell, escape_percent=escape) == expected


def test_rewrite_keeps_length_for_dollar_spelling() -> None:
    # The DuckDB engine relies on this to report error positions in the caller's text.
    sql = "SELECT :alpha, ':no', :b -- :c"
    assert len(rewrite_parameters(sql, _dollar)) == len(sql)


# (id, sql, index, expected end)
SKIP_CASES = [
    ("not a literal", "abc", 0, 0),
    ("string", "'a''b' x", 0, 6),
    ("identifier", '"a" x', 0, 3),
    ("line comment", "-- c\nx", 0, 5),
    ("line comment without newline", "-- c", 0, 4),
    ("block comment nested", "/* /* */ */x", 0, 11),
    ("dollar", "$$;$$x", 0, 5),
    ("tagged dollar", "$a$ $$ $a$x", 0, 10),
    ("positional is not a body", "$1", 0, 0),
    ("escape string", r"E'\''x", 0, 5),
    ("minus is not a comment", "- 1", 0, 0),
    ("slash is not a comment", "/ 1", 0, 0),
]


@pytest.mark.parametrize(
    ("sql", "index", "end"), [c[1:] for c in SKIP_CASES], ids=[c[0] for c in SKIP_CASES]
)
def test_skip_literal(sql: str, index: int, end: int) -> None:
    assert skip_literal(sql, index) == end


def test_code_only_blanks_literals_and_keeps_offsets() -> None:
    sql = "INSERT INTO t VALUES ('returning') /* returning */ -- returning\nRETURNING a"
    code = code_only(sql)
    assert len(code) == len(sql)
    assert "returning" not in code
    assert code.index("RETURNING") == sql.index("RETURNING")
