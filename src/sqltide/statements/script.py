"""Split a SQL script into its statements, for a batch (``sqltide sql -f script.sql``).

Statement boundaries are the semicolons that are real tokens: sqlglot's tokenizer for the
warehouse's dialect decides what is a string, a quoted identifier, a comment or a
dollar-quoted body (so a PL/pgSQL ``AS $$ ... ; ... $$`` body stays whole). Each statement is
returned as the user wrote it, cut out of the original text: sqlglot's generator is never
used, because it would rewrite the SQL.

When the tokenizer gives up (an unterminated string or comment), the same cut is made with the
scanner :mod:`sqltide.engines.params` uses for parameters, so the statements before the broken
one still run and the broken one reaches the warehouse, which reports it properly.
"""

from __future__ import annotations

from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from ..engines.params import skip_literal

__all__ = ["split_script"]


def split_script(text: str, dialect: str = "duckdb") -> list[str]:
    """The statements of ``text``, each its original text, stripped, without the semicolon.

    Pieces holding only comments and whitespace (and empty ones, ``;;``) are dropped.
    ``dialect`` is a sqlglot dialect name (``duckdb``, ``postgres``, ``snowflake``...); an
    unknown one raises :class:`ValueError`.
    """
    tokenizer_dialect = Dialect.get_or_raise(dialect)
    try:
        spans = _spans_from_tokens(text, tokenizer_dialect)
    except (TokenError, _Unreliable):
        spans = _spans_from_scanner(text)
    return [piece for start, end in spans if (piece := text[start:end].strip())]


class _Unreliable(Exception):
    """The tokenizer's offsets do not point at the text's semicolons."""


def _spans_from_tokens(text: str, dialect: Dialect) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start, has_tokens = 0, False
    for token in dialect.tokenize(text):
        if token.token_type != TokenType.SEMICOLON:
            has_tokens = True  # comments are attached to tokens, never tokens themselves
            continue
        if text[token.start : token.start + 1] != ";":
            raise _Unreliable
        if has_tokens:
            spans.append((start, token.start))
        start, has_tokens = token.start + 1, False
    if has_tokens:
        spans.append((start, len(text)))
    return spans


def _spans_from_scanner(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start, i, n = 0, 0, len(text)
    while i < n:
        j = skip_literal(text, i)
        if j != i:
            i = j
        elif text[i] == ";":
            spans.append((start, i))
            start = i = i + 1
        else:
            i += 1
    spans.append((start, n))
    return [(s, e) for s, e in spans if not _only_comments(text, s, e)]


def _only_comments(text: str, start: int, end: int) -> bool:
    i = start
    while i < end:
        if text[i].isspace():
            i += 1
        elif text.startswith(("--", "/*"), i):
            i = skip_literal(text, i)
        else:
            return False
    return True
