"""Source dialects: a warehouse that takes SQL written for another database.

A warehouse URL may declare the dialect its statements are written in, ``?dialect=redshift``
(any dialect sqlglot knows). The parameter is removed before the engine connects. Every
statement run on such a warehouse is transpiled with sqlglot from that dialect to the engine's
own (``duckdb`` or ``postgres``) before it runs: in the engine layer, so the Data API, ``/v1``,
sessions and batches (each sub-statement) all get the same translation, on the worker thread
that runs the statement, never on the HTTP event loop. Without the parameter nothing is
transpiled.

What is translated, and how (``transpile_rules.py`` holds the dialect-specific rules):

- the statement is parsed in the source dialect and generated in the target's with
  ``unsupported_level=RAISE``: a statement sqlglot cannot parse, or that holds a construct
  the target cannot express, fails with :class:`~sqltide.errors.UntranslatableSql` (code
  ``untranslatable_sql``) naming the construct and its position, rather than running
  something different;
- ``:name`` parameters are kept as ``:name`` (sqlglot would respell them ``$name`` or
  ``%(name)s``), and a translation that loses or invents one is refused;
- transaction control (``BEGIN``, ``COMMIT``, ``END``, ``ROLLBACK``...) and statements sqlglot
  understands only as an opaque command (``CALL``, ``VACUUM``, ``SHOW``...) run as written;
- an error the warehouse reports on a transpiled statement carries the text that ran
  (``details.transpiled_sql``); its position, which points into that text, moves to
  ``details.transpiled_position``.

Translations are cached (an LRU keyed by text, source and target), so a statement repeated by a
dashboard or a poller is parsed once per process.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from ..errors import ConfigError, EngineError, UntranslatableSql
from .params import code_only, find_parameters

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect

    from .base import ExecResult

logger = logging.getLogger(__name__)

#: The warehouse URL's query parameter naming the source dialect.
DIALECT_PARAM = "dialect"

#: Statements longer than this are translated every time rather than cached, so the cache
#: holds at most ~1,024 x 2 x 16 KB of text.
CACHE_MAX_CHARS = 16_384
CACHE_SIZE = 1_024

# Transaction control runs as written: sqlglot would respell some of it (START TRANSACTION),
# and the engines' own checks (read-only grants) must see what the user wrote.
_TRANSACTION_CONTROL = re.compile(
    r"\s*(?:begin|start|commit|end|rollback|abort|savepoint|release)\b", re.IGNORECASE
)

_TARGET_NAMES = {"duckdb": "DuckDB", "postgres": "PostgreSQL"}


def source_dialects() -> list[str]:
    """The dialect names a warehouse URL may give (sqlglot's)."""
    from sqlglot.dialects import Dialects

    return sorted(d.value for d in Dialects if d.value)


def split_dialect(url: str, warehouse: str) -> tuple[str, str | None]:
    """``url`` without its ``dialect`` parameter, and the dialect it names (None: none).

    The other query parameters are kept exactly as written. An unknown dialect raises
    :class:`~sqltide.errors.ConfigError` naming the valid ones.
    """
    base, sep, query = url.partition("?")
    if not sep or DIALECT_PARAM not in query:
        return url, None
    kept: list[str] = []
    named: list[str] = []
    for piece in query.split("&"):
        key, _, value = piece.partition("=")
        if unquote_plus(key) == DIALECT_PARAM:
            named.append(unquote_plus(value).strip().lower())
        elif piece:
            kept.append(piece)
    if not named:
        return url, None
    dialect = named[-1]
    known = source_dialects()
    if dialect not in known:
        close = difflib.get_close_matches(dialect, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"warehouse {warehouse!r}: unknown SQL dialect {dialect!r} in ?{DIALECT_PARAM}=; "
            f"valid: {', '.join(known)}{hint}"
        )
    return base + ("?" + "&".join(kept) if kept else ""), dialect


@dataclass(frozen=True, slots=True)
class Translator:
    """Turns statements written in ``source`` into the engine's ``target`` dialect."""

    source: str
    target: str

    def __call__(self, sql: str) -> str:
        """``sql`` as the target runs it; raises :class:`~sqltide.errors.UntranslatableSql`."""
        if len(sql) <= CACHE_MAX_CHARS:
            return _cached_translate(sql, self.source, self.target)
        return _translate(sql, self.source, self.target)

    def run(
        self,
        sql: str,
        params: Mapping[str, Any] | None,
        execute: Callable[[str, Mapping[str, Any] | None], ExecResult],
    ) -> ExecResult:
        """``execute`` the translation of ``sql``; its errors say what ran."""
        text = self(sql)
        if text == sql:
            return execute(sql, params)
        try:
            return execute(text, params)
        except EngineError as exc:
            exc.details.setdefault("transpiled_sql", text)
            if exc.position is not None:  # a place in the text that ran, not in the caller's
                exc.details.setdefault("transpiled_position", exc.position)
                exc.position = None
            raise


def translator_for(source: str | None, target: str, warehouse: str) -> Translator | None:
    """The translator from ``source`` to an engine's ``target`` (None: SQL runs as written)."""
    if source is None or source == target:
        return None
    if target not in _TARGET_NAMES:
        raise ConfigError(
            f"warehouse {warehouse!r}: ?{DIALECT_PARAM}= is not supported on this kind of "
            "warehouse (it runs its own dialect only)"
        )
    return Translator(source, target)


# -- translating ----------------------------------------------------------------------------


def _translate(sql: str, source: str, target: str) -> str:
    if _TRANSACTION_CONTROL.match(code_only(sql)):
        return sql
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    from . import transpile_rules as rules

    read, write = rules.source_dialect(source), rules.target_dialect(target)
    where = f"this {source} SQL cannot run on {_TARGET_NAMES[target]}"
    try:
        trees = [tree for tree in read.parse(sql) if tree is not None]
    except ParseError as exc:
        raise _parse_failure(exc, sql, where, source) from exc
    except TokenError as exc:
        raise UntranslatableSql(
            f"{where}: sqlglot cannot read it ({exc})", sqlstate="42601", details=_details(source)
        ) from exc
    except Exception as exc:  # a gap in sqlglot is still "cannot translate", not a crash
        raise UntranslatableSql(
            f"{where}: sqlglot failed to parse it ({type(exc).__name__}: {exc})",
            sqlstate="42601",
            details=_details(source),
        ) from exc
    if not trees:
        return sql  # only comments: the engine says so in its own words
    texts: list[str] = []
    for tree in trees:
        try:
            tree = rules.rewrite(tree, source, target)
        except rules.Refused as refused:
            raise _refusal(refused.message, refused.node, sql, where, source) from None
        if isinstance(tree, exp.Command):
            if len(trees) == 1:
                return sql  # sqlglot does not understand it: it runs exactly as written
            texts.append(tree.sql(dialect=write))
            continue
        _keep_parameters(tree)
        texts.append(_generate(tree, write, sql, where, source))
    # Several statements stay several: the engine refuses them as it always does.
    text = ";\n".join(texts)
    _check_parameters(sql, text, where, source)
    return text


_cached_translate = functools.lru_cache(maxsize=CACHE_SIZE)(_translate)


def _keep_parameters(tree: exp.Expr) -> None:
    """Turn each ``:name`` placeholder into text that is generated as ``:name`` again."""
    from sqlglot import exp

    for node in list(tree.find_all(exp.Placeholder)):
        name = node.args.get("this")
        if isinstance(name, str) and name and not node.args.get("kind"):
            kept = exp.var(f":{name}")
            kept.comments = node.comments  # a comment after a parameter stays
            node.replace(kept)


def _check_parameters(sql: str, text: str, where: str, source: str) -> None:
    before = {ref.name for ref in find_parameters(sql)}
    after = {ref.name for ref in find_parameters(text)}
    if before != after:
        lost = ", ".join(f":{name}" for name in sorted(before - after)) or "none"
        added = ", ".join(f":{name}" for name in sorted(after - before)) or "none"
        raise UntranslatableSql(
            f"{where}: the translation does not keep its parameters (lost: {lost}; "
            f"new: {added}); write the parameter where a value may stand alone",
            details={**_details(source), "transpiled_sql": text},
        )


def _generate(tree: exp.Expr, dialect: Dialect, sql: str, where: str, source: str) -> str:
    from sqlglot.errors import ErrorLevel, UnsupportedError

    generator = _tracking_generator(dialect.generator_class)(
        dialect=dialect, unsupported_level=ErrorLevel.RAISE
    )
    try:
        return generator.generate(tree, copy=False)
    except UnsupportedError as exc:
        node = generator.first_unsupported
        message = str(exc).replace("\n\n", "; ").strip()
        raise _refusal(message, node, sql, where, source) from exc
    except Exception as exc:
        raise UntranslatableSql(
            f"{where}: sqlglot failed to generate it ({type(exc).__name__}: {exc})",
            details=_details(source),
        ) from exc


@functools.cache
def _tracking_generator(base: type[Any]) -> type[Any]:
    """``base`` (a sqlglot generator class) that remembers where it met the first construct
    it cannot express, so the error can point at it."""

    class Tracking(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.stack: list[Any] = []
            self.first_unsupported: Any = None

        def sql(self, expression: Any, key: str | None = None, comment: bool = True) -> str:
            if key is not None or isinstance(expression, str) or not expression:
                return str(super().sql(expression, key, comment))
            self.stack.append(expression)
            try:
                return str(super().sql(expression, key, comment))
            finally:
                self.stack.pop()

        def unsupported(self, message: str) -> None:
            if self.first_unsupported is None and self.stack:
                self.first_unsupported = self.stack[-1]
            super().unsupported(message)

    return Tracking


# -- errors ---------------------------------------------------------------------------------


def _details(source: str) -> dict[str, Any]:
    return {"source_dialect": source}


def position_of(node: exp.Expr | None, sql: str) -> int | None:
    """The 1-based position in ``sql`` (the parsed text) where ``node``, or the first of its
    parts that sqlglot placed, starts; the statement's start for no node; None when sqlglot
    kept no place for it."""
    if node is None:
        code = code_only(sql)
        start = len(code) - len(code.lstrip())
        return start + 1 if start < len(code) else None
    starts = [n.meta["start"] for n in node.walk() if isinstance(n.meta.get("start"), int)]
    return min(starts) + 1 if starts else None


def _refusal(
    message: str, node: exp.Expr | None, sql: str, where: str, source: str
) -> UntranslatableSql:
    position = position_of(node, sql)
    at = f" (at character {position})" if position is not None else ""
    return UntranslatableSql(
        f"{where}: {message}{at}", sqlstate="0A000", position=position, details=_details(source)
    )


def _parse_failure(exc: Exception, sql: str, where: str, source: str) -> UntranslatableSql:
    errors = getattr(exc, "errors", None) or [{}]
    first = errors[0]
    description = first.get("description") or str(exc).splitlines()[0]
    highlight = first.get("highlight") or ""
    line, col = first.get("line"), first.get("col")
    position = None
    if isinstance(line, int) and isinstance(col, int) and line >= 1:
        lines = sql.split("\n")
        if line <= len(lines):
            # sqlglot's column is where the offending token ends; step back to its start.
            end = sum(len(text) + 1 for text in lines[: line - 1]) + col - 1
            position = max(0, end - max(len(highlight), 1) + 1) + 1
    near = f" near {highlight!r}" if highlight else ""
    at = f" at line {line}, column {col}" if line is not None else ""
    return UntranslatableSql(
        f"{where}: sqlglot cannot parse it: {description}{near}{at}",
        sqlstate="42601",
        position=position,
        details=_details(source),
    )
