"""Statement text for PostgreSQL: one statement, ``:name`` parameters as ``$n``, and how to run it.

Statements are sent exactly as written, except that each ``:name`` parameter becomes a
server-side ``$n`` placeholder (psycopg's raw cursor: no ``%`` escaping, values never enter
the text). :class:`Bound` remembers where each placeholder went, so a server error position
is reported in the caller's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import EngineError
from .params import code_only, find_parameters, skip_literal

_BEGIN_ATOMIC = re.compile(r"\bbegin\s+atomic\b", re.IGNORECASE)
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")
_CURSOR_WORDS = {"select", "with", "values", "table"}
_WRITES = re.compile(r"\b(?:insert|update|delete|merge)\b", re.IGNORECASE)
_INTO = re.compile(r"\binto\b", re.IGNORECASE)
_STDIO = re.compile(r"\b(?:stdin|stdout)\b", re.IGNORECASE)


def one_statement(sql: str) -> str:
    """``sql`` without its trailing semicolon; several statements raise ``multiple_statements``.

    A ``BEGIN ATOMIC ... END`` function body holds semicolons of its own: those after the
    ``BEGIN ATOMIC`` are left to the server's parser.
    """
    semicolons: list[int] = []
    content_end = 0  # after the last character that is neither space, comment nor ";"
    i, n = 0, len(sql)
    while i < n:
        j = skip_literal(sql, i)
        if j != i:
            if not sql.startswith(("--", "/*"), i):  # a string or quoted name is content
                content_end = j
            i = j
            continue
        if sql[i] == ";":
            semicolons.append(i)
        elif not sql[i].isspace():
            content_end = i + 1
        i += 1
    inner = [at for at in semicolons if at < content_end]
    if inner and (atomic := _BEGIN_ATOMIC.search(code_only(sql[:content_end]))):
        inner = [at for at in inner if at < atomic.start()]
    if content_end == 0 or inner:
        raise EngineError(
            f"expected exactly one SQL statement, got {len(inner) + 1 if content_end else 0}; "
            "send several as a batch",
            sqlstate="42601",
            code="multiple_statements",
        )
    return sql[:content_end]


def check_supported(code: str) -> None:
    """Refuse what would leave the connection stuck: COPY needs a client-side data stream."""
    m = _FIRST_WORD.match(code)
    if m and m.group(1).lower() == "copy" and _STDIO.search(code):
        raise EngineError(
            "COPY ... FROM STDIN / TO STDOUT is not supported: it needs a client-side data "
            "stream; COPY from or to a file the server can read, or use INSERT / SELECT",
            sqlstate="0A000",
            code="not_supported",
        )


def uses_cursor(code: str) -> bool:
    """Whether a statement can be streamed through ``DECLARE CURSOR`` (a plain query)."""
    m = _FIRST_WORD.match(code)
    if not m or m.group(1).lower() not in _CURSOR_WORDS:
        return False
    if _INTO.search(code):  # SELECT ... INTO creates a table; WITH ... INSERT INTO writes
        return False
    # A cursor cannot hold a data-modifying WITH (WITH d AS (DELETE ...) SELECT ...).
    return not (m.group(1).lower() == "with" and _WRITES.search(code))


@dataclass(frozen=True, slots=True)
class Bound:
    """A statement as sent: ``$n`` placeholders, their values, and where each replaced one."""

    text: str
    args: list[Any] | None
    # (start, end) in ``text`` and (start, end) in the caller's text, for each placeholder.
    spans: tuple[tuple[int, int, int, int], ...] = ()

    def caller_position(self, sent: int, prefix: int = 0) -> int | None:
        """The 1-based position in the caller's text of 1-based ``sent`` in prefix + text."""
        at = sent - 1 - prefix
        if at < 0:
            return None
        shift = 0
        for s_start, s_end, o_start, o_end in self.spans:
            if at >= s_end:
                shift = o_end - s_end
            elif at >= s_start:
                return o_start + 1
            else:
                break
        return at + shift + 1


def bind(sql: str, params: Mapping[str, Any] | None) -> Bound:
    if params is None:
        return Bound(sql, None)
    numbers: dict[str, int] = {}
    args: list[Any] = []
    out: list[str] = []
    spans: list[tuple[int, int, int, int]] = []
    last = length = 0
    for ref in find_parameters(sql):
        if ref.name not in numbers:
            if ref.name not in params:
                raise EngineError(
                    f"no value given for parameter :{ref.name}",
                    sqlstate="42P02",
                    position=ref.start + 1,
                    code="invalid_input",
                )
            numbers[ref.name] = len(numbers) + 1
            args.append(params[ref.name])
        placeholder = f"${numbers[ref.name]}"
        out.append(sql[last : ref.start])
        length += ref.start - last
        spans.append((length, length + len(placeholder), ref.start, ref.end))
        out.append(placeholder)
        length += len(placeholder)
        last = ref.end
    out.append(sql[last:])
    return Bound("".join(out), args, tuple(spans))
