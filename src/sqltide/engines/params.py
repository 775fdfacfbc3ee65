"""Named parameters written ``:name`` in SQL, found without touching strings or comments.

The Data API binds parameters written ``:name``; drivers want other spellings (DuckDB
``$name``, psycopg ``%(name)s``). :func:`find_parameters` tokenizes just enough SQL to skip
string literals, quoted identifiers, comments, dollar-quoted bodies and ``::`` casts, so a
colon inside any of those is never taken for a parameter. Values are always bound by the
driver, never formatted into the text.

A colon right after a letter, digit or underscore is not a parameter either (``arr[1:n]``,
DuckDB's ``alias: expr``, Snowflake's ``col:field``), the rule SQLAlchemy's ``text()`` uses.
Nor is a colon followed by a digit (``:1``).

:func:`skip_literal` and :func:`code_only` expose the same skipping to other scanners (the
script splitter, keyword checks) so every part of sqltide agrees on what is code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True, slots=True)
class ParamRef:
    name: str
    start: int  # index of the colon
    end: int  # index after the name


def find_parameters(sql: str) -> list[ParamRef]:
    """Every ``:name`` reference in ``sql``, in order."""
    if ":" not in sql:
        return []  # the common case, without scanning
    refs: list[ParamRef] = []
    i, n = 0, len(sql)
    while i < n:
        j = skip_literal(sql, i)
        if j != i:
            i = j
            continue
        if sql[i] != ":":
            i += 1
        elif sql.startswith("::", i):
            i += 2
        elif i > 0 and _is_word_char(sql[i - 1]):
            i += 1
        elif m := _NAME.match(sql, i + 1):
            refs.append(ParamRef(m.group(0), i, m.end()))
            i = m.end()
        else:
            i += 1
    return refs


def rewrite_parameters(sql: str, spell: Callable[[str], str], escape_percent: bool = False) -> str:
    """``sql`` with each ``:name`` replaced by ``spell(name)``.

    With ``escape_percent`` every ``%`` outside a parameter is doubled (for pyformat drivers).
    """
    out: list[str] = []
    last = 0
    for ref in find_parameters(sql):
        chunk = sql[last : ref.start]
        out.append(chunk.replace("%", "%%") if escape_percent else chunk)
        out.append(spell(ref.name))
        last = ref.end
    tail = sql[last:]
    out.append(tail.replace("%", "%%") if escape_percent else tail)
    return "".join(out)


def skip_literal(sql: str, i: int) -> int:
    """The index after the literal or comment starting at ``sql[i]``, or ``i`` when none does.

    A literal is a string (``'...'``, ``E'...'`` with backslash escapes), a quoted identifier
    (``"..."``), a ``--`` or (nested) ``/* */`` comment, or a ``$$``/``$tag$`` body. One that is
    never closed runs to the end of the text.
    """
    c = sql[i]
    if c == "'" or c == '"':
        return _skip_quoted(sql, i, c)
    if c in "eE" and sql.startswith("'", i + 1) and not (i > 0 and _is_word_char(sql[i - 1])):
        return _skip_quoted(sql, i + 1, "'", backslash=True)
    if c == "-" and sql.startswith("--", i):
        j = sql.find("\n", i)
        return len(sql) if j < 0 else j + 1
    if c == "/" and sql.startswith("/*", i):
        return _skip_block_comment(sql, i)
    if c == "$" and not (i > 0 and _is_word_char(sql[i - 1])):
        m = _DOLLAR_TAG.match(sql, i)
        if m:
            j = sql.find(m.group(0), m.end())
            return len(sql) if j < 0 else j + len(m.group(0))
    return i


def code_only(sql: str) -> str:
    """``sql`` with every literal and comment blanked to spaces (same length, same offsets)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        j = skip_literal(sql, i)
        if j != i:
            out.append(" " * (j - i))
            i = j
        else:
            out.append(sql[i])
            i += 1
    return "".join(out)


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _skip_quoted(sql: str, i: int, quote: str, backslash: bool = False) -> int:
    j = i + 1
    n = len(sql)
    while j < n:
        c = sql[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and sql[j + 1] == quote:  # doubled quote is an escaped quote
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _skip_block_comment(sql: str, i: int) -> int:
    depth, j, n = 0, i, len(sql)
    while j < n:
        if sql.startswith("/*", j):
            depth += 1
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    return n
