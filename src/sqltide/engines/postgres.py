"""PostgreSQL warehouses (``postgresql://user@host:5432/db``, also spelled ``postgres://``).

Each :class:`PostgresConnection` owns one dedicated psycopg connection in autocommit mode;
:meth:`~PostgresConnection.begin` opens an explicit transaction (a session or a transactional
batch keeps it until commit or rollback).

Statements are sent exactly as written, except that each ``:name`` parameter becomes a
server-side ``$n`` placeholder (psycopg's raw cursor: no ``%`` escaping, values never enter
the text). Queries (``SELECT``, ``WITH``, ``VALUES``, ``TABLE``) are streamed through a
server-side cursor (``DECLARE ... NO SCROLL CURSOR`` + ``FETCH FORWARD n``), so a huge result
is never held in memory; a cursor needs a transaction, so outside one the stream runs in a
transaction of its own, committed when the stream is read to its end. Other statements run
plainly; those that return rows (``INSERT ... RETURNING``, ``SHOW``, ``EXPLAIN``) are cut into
record batches from the client-side result.

Column types become Arrow types as follows (anything not listed arrives as its PostgreSQL
text form, so an exotic or user-defined type never fails a query)::

    bool                          bool
    int2 / int4 / int8            int16 / int32 / int64
    float4 / float8               float32 / float64
    numeric(p, s)                 decimal128(p, s) (p <= 38), decimal256(p, s) (p <= 76);
                                  NaN becomes null
    numeric (no typmod), p > 76   string: the exact decimal text ("1.50", "NaN")
    text / varchar / bpchar       string
    name / "char"                 string
    bytea                         binary
    date                          date32
    time                          time64[us]
    timestamp                     timestamp[us]
    timestamptz                   timestamp[us, tz=UTC]
    interval                      month_day_nano_interval (months, days, nanoseconds: exact)
    json / jsonb                  string (the JSON text)
    uuid                          string
    T[] (one dimension)           list<T's type>
    anything else                 string (text form: point, tsvector, inet, ranges, enums...)

Values Arrow or psycopg cannot hold (timestamps at ±infinity or BC, multi-dimensional
arrays) fail the statement with ``invalid_value``; cast them to text in the query.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import RawCursor
from psycopg.abc import Buffer
from psycopg.adapt import AdaptersMap, Loader
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.types.string import TextLoader

from ..errors import ConfigError, EngineError
from . import pg_access
from .base import (
    FULL_ACCESS,
    Access,
    ColumnMeta,
    Engine,
    EngineConnection,
    ExecResult,
    TableInfo,
)
from .params import code_only, find_parameters, skip_literal

logger = logging.getLogger(__name__)

# -- errors ---------------------------------------------------------------------------------

# Exact SQLSTATEs first (the same codes DuckDB's engine gives for the same mistakes), then
# whole classes by their first two characters.
_CODE_OF_SQLSTATE = {
    "42601": "syntax_error",
    "42P01": "undefined_object",
    "42704": "undefined_object",
    "42883": "undefined_object",
    "3F000": "undefined_object",
    "42703": "undefined_column",
    "22003": "out_of_range",
    "22023": "invalid_input",
    "57014": "cancelled",
    "40001": "serialization_failure",
    "40P01": "deadlock_detected",
    "42501": "permission_denied",
    "0A000": "not_supported",
    "2BP01": "dependency_error",
    "53200": "out_of_memory",
    "57P01": "connection_error",  # the server is shutting down / restarting
    "57P02": "connection_error",
    "57P03": "connection_error",
}
_CODE_OF_CLASS = {
    "22": "invalid_value",
    "23": "constraint_violation",
    "08": "connection_error",
    "25": "transaction_error",
}
_CANCELLED_MESSAGE = "canceling statement due to user request"


def _code_for(sqlstate: str) -> str:
    return _CODE_OF_SQLSTATE.get(sqlstate) or _CODE_OF_CLASS.get(sqlstate[:2], "sql_error")


def map_error(exc: psycopg.Error, position: int | None = None) -> EngineError:
    """A psycopg error as an :class:`EngineError` with SQLSTATE, code and (given) position."""
    sqlstate = exc.sqlstate
    if sqlstate is not None:
        code = _code_for(sqlstate)
    elif isinstance(exc, psycopg.OperationalError):  # the connection broke, no server answer
        sqlstate, code = "08006", "connection_error"
    elif isinstance(exc, psycopg.DataError):  # a value psycopg could not convert
        sqlstate, code = "22000", "invalid_value"
    else:
        code = "sql_error"
    diag = exc.diag
    message = diag.message_primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    details = {
        key: value
        for key, value in (
            ("detail", diag.message_detail),
            ("hint", diag.message_hint),
            ("context", diag.context),
        )
        if value
    }
    return EngineError(message, sqlstate=sqlstate, position=position, code=code, details=details)


def _cancelled() -> EngineError:
    return EngineError(_CANCELLED_MESSAGE, sqlstate="57014", code="cancelled")


# -- statement text -------------------------------------------------------------------------

_BEGIN_ATOMIC = re.compile(r"\bbegin\s+atomic\b", re.IGNORECASE)
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")
_CURSOR_WORDS = {"select", "with", "values", "table"}
_WRITES = re.compile(r"\b(?:insert|update|delete|merge)\b", re.IGNORECASE)
_INTO = re.compile(r"\binto\b", re.IGNORECASE)
_STDIO = re.compile(r"\b(?:stdin|stdout)\b", re.IGNORECASE)


def _one_statement(sql: str) -> str:
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


def _check_supported(code: str) -> None:
    """Refuse what would leave the connection stuck: COPY needs a client-side data stream."""
    m = _FIRST_WORD.match(code)
    if m and m.group(1).lower() == "copy" and _STDIO.search(code):
        raise EngineError(
            "COPY ... FROM STDIN / TO STDOUT is not supported: it needs a client-side data "
            "stream; COPY from or to a file the server can read, or use INSERT / SELECT",
            sqlstate="0A000",
            code="not_supported",
        )


def _uses_cursor(code: str) -> bool:
    """Whether a statement can be streamed through ``DECLARE CURSOR`` (a plain query)."""
    m = _FIRST_WORD.match(code)
    if not m or m.group(1).lower() not in _CURSOR_WORDS:
        return False
    if _INTO.search(code):  # SELECT ... INTO creates a table; WITH ... INSERT INTO writes
        return False
    # A cursor cannot hold a data-modifying WITH (WITH d AS (DELETE ...) SELECT ...).
    return not (m.group(1).lower() == "with" and _WRITES.search(code))


@dataclass(frozen=True, slots=True)
class _Bound:
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


def _bind(sql: str, params: Mapping[str, Any] | None) -> _Bound:
    if params is None:
        return _Bound(sql, None)
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
    return _Bound("".join(out), args, tuple(spans))


# -- types ----------------------------------------------------------------------------------

_NUMERIC = 1700
_NUMERIC_OIDS = {_NUMERIC, 1231}  # numeric, numeric[]
_CHAR_TYPES = {1042, 1043}  # bpchar(n), varchar(n): their typmod is a length
# The OIDs loaded by psycopg's own loaders, with their Arrow types. Every other type psycopg
# knows is loaded as text (see _adapters); types it does not know are text already.
_ARROW_OF_OID: dict[int, pa.DataType] = {
    16: pa.bool_(),
    17: pa.binary(),
    18: pa.string(),  # "char"
    19: pa.string(),  # name
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    700: pa.float32(),
    701: pa.float64(),
    1042: pa.string(),
    1043: pa.string(),
    1082: pa.date32(),
    1083: pa.time64("us"),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    1186: pa.month_day_nano_interval(),
}
_NATIVE_OIDS = {*_ARROW_OF_OID, _NUMERIC}

# IntervalStyle "postgres", the default: "1 year 2 mons -3 days +04:05:06.789".
_INTERVAL = re.compile(
    r"(?:([+-]?\d+) years? ?)?(?:([+-]?\d+) mons? ?)?(?:([+-]?\d+) days? ?)?"
    r"(?:([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?"
)


class _IntervalLoader(Loader):
    """An interval as exact (months, days, nanoseconds); psycopg's timedelta loses months."""

    def load(self, data: Buffer) -> tuple[int, int, int]:
        text = bytes(data).decode()
        m = _INTERVAL.fullmatch(text)
        if not text or m is None:
            raise psycopg.DataError(
                f"cannot read interval {text!r}: sqltide reads IntervalStyle 'postgres' only "
                "(or cast the column to text)"
            )
        years, mons, days, sign, hours, minutes, seconds, fraction = m.groups()
        micros = (int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)) * 10**6
        micros += int((fraction or "").ljust(6, "0"))
        if sign == "-":
            micros = -micros
        return (int(years or 0) * 12 + int(mons or 0), int(days or 0), micros * 1000)


def _adapters() -> AdaptersMap:
    """psycopg's adapters, but every type outside _NATIVE_OIDS loads as its text form."""
    adapters = AdaptersMap(psycopg.adapters)
    for info in psycopg.adapters.types:
        if info.oid not in _NATIVE_OIDS:
            adapters.register_loader(info.oid, TextLoader)  # arrays keep their list loader
    adapters.register_loader("interval", _IntervalLoader)
    return adapters


def _numeric_typmod(typmod: int) -> tuple[int | None, int | None]:
    if typmod < 4:
        return None, None
    scale = (typmod - 4) & 0x7FF
    return ((typmod - 4) >> 16) & 0xFFFF, scale - 0x800 if scale >= 0x400 else scale


def _numeric_arrow(precision: int | None, scale: int | None) -> pa.DataType:
    if precision is None or scale is None or not 0 <= scale <= precision:
        return pa.string()
    if precision <= 38:
        return pa.decimal128(precision, scale)
    if precision <= 76:
        return pa.decimal256(precision, scale)
    return pa.string()


def _decimal_or_null(value: Any) -> Any:
    return None if value is None or value.is_nan() else value


def _decimal_text(value: Any) -> Any:
    return None if value is None else format(value, "f")  # never "1E-7"


def _deep(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        if isinstance(value, list):
            return [apply(v) for v in value]
        return fn(value)

    return apply


@dataclass(frozen=True, slots=True)
class _Column:
    meta: ColumnMeta
    arrow: pa.DataType
    clean: Callable[[Any], Any] | None  # applied to each value before Arrow sees it

    def array(self, values: Sequence[Any]) -> pa.Array:
        if self.clean is not None:
            values = [self.clean(v) for v in values]
        return pa.array(values, type=self.arrow)


def _column(
    name: str,
    oid: int,
    type_name: str,
    precision: int | None,
    scale: int | None,
    length: int | None,
) -> _Column:
    registry = psycopg.adapters.types
    element = registry.get(oid)
    is_array = element is not None and element.array_oid == oid and element.oid != oid
    base = element.oid if is_array and element is not None else oid
    clean: Callable[[Any], Any] | None = None
    if base == _NUMERIC:
        arrow = _numeric_arrow(precision, scale)
        clean = _decimal_text if pa.types.is_string(arrow) else _decimal_or_null
    else:
        arrow = _ARROW_OF_OID.get(base, pa.string())
    if is_array:
        arrow = pa.list_(arrow)
        clean = _deep(clean) if clean is not None else None
    numeric = oid == _NUMERIC
    meta = ColumnMeta(
        name=name,
        type_name=type_name,
        precision=precision if numeric else None,
        scale=scale if numeric else None,
        length=length if oid in _CHAR_TYPES else None,
    )
    return _Column(meta, arrow, clean)


def _record_batch(columns: list[_Column], schema: pa.Schema, rows: list[Any]) -> pa.RecordBatch:
    values: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else []
    if not values:
        values = [[] for _ in columns]
    try:
        arrays = [col.array(vals) for col, vals in zip(columns, values, strict=True)]
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
        raise EngineError(
            f"a value cannot be converted to Arrow: {exc}; multi-dimensional arrays and "
            "out-of-range values need a cast to text in the query",
            sqlstate="22000",
            code="invalid_value",
        ) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# -- connections ----------------------------------------------------------------------------

_CURSOR_NAME = "_sqltide_stream"
_DECLARE = f'DECLARE "{_CURSOR_NAME}" NO SCROLL CURSOR FOR '


@dataclass(slots=True)
class _Stream:
    cursor: psycopg.Cursor[Any]
    own_transaction: bool
    generator: Iterator[pa.RecordBatch] | None = None


class PostgresConnection(EngineConnection):
    """One dedicated psycopg connection (autocommit unless :meth:`begin` opened a transaction)."""

    def __init__(
        self, engine: PostgresEngine, conn: psycopg.Connection[Any], access: Access = FULL_ACCESS
    ):
        self._engine = engine
        self._conn = conn
        #: What the principal's grant allows (read-only transactions, role switches refused).
        self._access = access
        self._batch_rows = max(1, engine.batch_rows)
        self._stream: _Stream | None = None
        # Set by interrupt(); every server call checks it first, so an interrupt that lands
        # between two calls (between FETCHes) still stops the statement.
        self._interrupted = False
        self._busy = False

    # -- running ------------------------------------------------------------------------

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> ExecResult:
        if self._conn.closed:  # the server or the network dropped it since the last call
            raise EngineError(
                "the connection to the warehouse was lost (the server closed it); run the "
                "statement again",
                sqlstate="08003",
                code="connection_error",
            )
        self._end_stream()
        self._interrupted = False
        bound = _bind(_one_statement(sql), params)
        code = code_only(bound.text)
        _check_supported(code)
        refused = pg_access.refusal(code, self._access)
        if refused is not None:
            raise refused
        if _uses_cursor(code):
            return self._query(bound)
        if self._access.read_only and self._conn.info.transaction_status == TransactionStatus.IDLE:
            return self._read_only(bound)
        return self._plain(bound)

    def _read_only(self, bound: _Bound) -> ExecResult:
        """A statement outside a transaction, run in a read-only transaction of its own."""
        self._command(pg_access.BEGIN_READ_ONLY)
        try:
            result = self._plain(bound)  # its rows, if any, are on the client already
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("ROLLBACK")
            raise
        self._command("COMMIT")
        return result

    def _plain(self, bound: _Bound) -> ExecResult:
        """A statement sent as it is (not through a cursor); its rows come client-side."""
        try:
            cur = self._conn.cursor()
        except psycopg.Error as exc:
            raise self._error(exc, bound) from exc
        try:
            self._call(cur, bound.text, bound.args)
            description = cur.description
            rows_affected = cur.rowcount if cur.rowcount >= 0 else None
            if description is None:
                cur.close()
                return ExecResult(has_result_set=False, rows_affected=rows_affected)
            columns = self._columns(description)
        except psycopg.Error as exc:
            cur.close()
            raise self._error(exc, bound) from exc
        except BaseException:
            cur.close()
            raise
        schema = pa.schema([pa.field(c.meta.name, c.arrow) for c in columns])
        return ExecResult(
            has_result_set=True,
            columns=[c.meta for c in columns],
            schema=schema,
            batches=self._client_batches(cur, columns, schema),
        )

    def _query(self, bound: _Bound) -> ExecResult:
        own = self._conn.info.transaction_status == TransactionStatus.IDLE
        try:
            stream = _Stream(self._conn.cursor(), own)
        except psycopg.Error as exc:
            raise self._error(exc, bound) from exc
        self._stream = stream
        prefix: int | None = None  # where the caller's text starts in what the server got
        try:
            if own:
                # A read-only transaction; DECLARE takes its snapshot, so it stays read-only.
                begin = "BEGIN READ ONLY" if self._access.read_only else "BEGIN"
                self._call(stream.cursor, begin, None)
            prefix = len(_DECLARE)
            self._call(stream.cursor, _DECLARE + bound.text, bound.args)
            prefix = None  # a FETCH's error positions are not in the caller's text
            rows = self._fetch(stream.cursor)
            assert stream.cursor.description is not None
            columns = self._columns(stream.cursor.description)
        except psycopg.Error as exc:
            self._close_stream(stream, commit=False)
            raise self._error(exc, bound, prefix) from exc
        except BaseException:
            self._close_stream(stream, commit=False)
            raise
        schema = pa.schema([pa.field(c.meta.name, c.arrow) for c in columns])
        stream.generator = self._server_batches(stream, columns, schema, rows)
        return ExecResult(
            has_result_set=True,
            columns=[c.meta for c in columns],
            schema=schema,
            batches=stream.generator,
        )

    def _server_batches(
        self, stream: _Stream, columns: list[_Column], schema: pa.Schema, rows: list[Any]
    ) -> Iterator[pa.RecordBatch]:
        committed = False
        try:
            while True:
                if rows:
                    yield _record_batch(columns, schema, rows)
                if len(rows) < self._batch_rows:
                    break
                rows = self._fetch(stream.cursor)
            self._close_stream(stream, commit=True)
            committed = True
        except psycopg.Error as exc:
            raise map_error(exc) from exc
        finally:
            if not committed:
                self._close_stream(stream, commit=False)

    def _client_batches(
        self, cur: psycopg.Cursor[Any], columns: list[_Column], schema: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        try:
            while True:
                if self._interrupted:
                    raise _cancelled()
                rows = cur.fetchmany(self._batch_rows)
                if not rows:
                    return
                yield _record_batch(columns, schema, rows)
        except psycopg.Error as exc:
            raise map_error(exc) from exc
        finally:
            cur.close()

    def _fetch(self, cur: psycopg.Cursor[Any]) -> list[Any]:
        self._call(cur, f'FETCH FORWARD {self._batch_rows} FROM "{_CURSOR_NAME}"', None)
        return cur.fetchall()

    def _call(self, cur: psycopg.Cursor[Any], text: str, args: list[Any] | None) -> None:
        """One round trip that :meth:`interrupt` may cancel."""
        self._busy = True
        try:
            # Checked after _busy is set (interrupt sets the flag, then reads _busy), so an
            # interrupt either stops us here or sends the server a cancel request.
            if self._interrupted:
                raise _cancelled()
            cur.execute(text, args)
        finally:
            self._busy = False

    def _columns(self, description: Sequence[psycopg.Column]) -> list[_Column]:
        names = self._engine.type_names(self._conn, [d.type_code for d in description])
        return [
            _column(
                d.name,
                d.type_code,
                names[d.type_code],
                # numeric(p, s)[] carries its elements' typmod too
                d.precision if d.type_code in _NUMERIC_OIDS else None,
                d.scale if d.type_code in _NUMERIC_OIDS else None,
                d.display_size if d.type_code in _CHAR_TYPES else None,
            )
            for d in description
        ]

    def _error(self, exc: psycopg.Error, bound: _Bound, prefix: int | None = 0) -> EngineError:
        raw = exc.diag.statement_position
        position = None
        if prefix is not None and raw and raw.isdigit():
            position = bound.caller_position(int(raw), prefix)
        return pg_access.as_permission_error(map_error(exc, position), self._access)

    def _close_stream(self, stream: _Stream, *, commit: bool) -> None:
        """End a stream: close its cursor, and end the transaction it opened for itself."""
        if self._stream is not stream:
            return  # already closed
        self._stream = None
        status = self._conn.info.transaction_status
        try:
            if stream.own_transaction:
                if commit and status == TransactionStatus.INTRANS:
                    self._conn.execute("COMMIT")
                elif status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
                    self._conn.execute("ROLLBACK")
            elif status == TransactionStatus.INTRANS:  # the caller's transaction goes on
                with contextlib.suppress(psycopg.errors.InvalidCursorName):
                    self._conn.execute(f'CLOSE "{_CURSOR_NAME}"')
        except psycopg.Error as exc:
            if commit:
                raise
            logger.debug("closing a result stream failed: %s", exc)
        finally:
            stream.cursor.close()

    def _end_stream(self) -> None:
        """Close a stream the caller left unread (its transaction, if its own, rolls back)."""
        stream = self._stream
        if stream is None:
            return
        if stream.generator is not None:
            close = getattr(stream.generator, "close", None)
            if close is not None:
                close()
        self._close_stream(stream, commit=False)  # the generator may never have started

    # -- transactions -------------------------------------------------------------------

    def begin(self) -> None:
        self._end_stream()
        if self._conn.info.transaction_status != TransactionStatus.IDLE:
            raise EngineError(
                "a transaction is already open", sqlstate="25001", code="transaction_error"
            )
        self._command(pg_access.BEGIN_READ_ONLY if self._access.read_only else "BEGIN")

    def commit(self) -> None:
        self._end_stream()
        status = self._conn.info.transaction_status
        if status == TransactionStatus.IDLE:
            raise EngineError("no transaction is open", sqlstate="25P01", code="transaction_error")
        if status == TransactionStatus.INERROR:
            # PostgreSQL would answer COMMIT with a silent ROLLBACK; say so instead.
            self._command("ROLLBACK")
            raise EngineError(
                "the transaction was aborted by an earlier error and has been rolled back",
                sqlstate="25P02",
                code="transaction_error",
            )
        self._command("COMMIT")

    def rollback(self) -> None:
        self._end_stream()
        # Nothing open (or a broken connection) is fine: a failure may already have ended it.
        if self._conn.info.transaction_status in (
            TransactionStatus.INTRANS,
            TransactionStatus.INERROR,
        ):
            self._command("ROLLBACK")

    def _command(self, sql: str) -> None:
        try:
            self._conn.execute(sql)
        except psycopg.Error as exc:
            raise map_error(exc) from exc

    # -- stopping -----------------------------------------------------------------------

    def interrupt(self) -> None:
        self._interrupted = True
        if self._busy:
            try:
                self._conn.cancel_safe(timeout=10)
            except psycopg.Error as exc:  # e.g. the server is gone: the statement fails anyway
                logger.debug("cancel request failed: %s", exc)

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._end_stream()
        with contextlib.suppress(psycopg.Error):
            self._conn.close()


# -- the engine -----------------------------------------------------------------------------

_TABLE_KINDS = {
    "r": "TABLE",
    "p": "TABLE",  # partitioned table
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "f": "FOREIGN TABLE",
}
# Schemas that are not the user's: TOAST storage and other sessions' temporary schemas.
_HIDDEN_SCHEMAS = r"^pg_(toast|temp_\d+|toast_temp_\d+)$"


def _builtin_type_names() -> dict[int, str]:
    names: dict[int, str] = {}
    for info in psycopg.adapters.types:
        name = info.name.strip('"')  # the registry spells "char" quoted
        names[info.oid] = name
        if info.array_oid:
            names[info.array_oid] = f"_{name}"  # pg_type's name for the array type
    return names


class PostgresEngine(Engine):
    """A PostgreSQL server; every worker process may serve it (``exclusive = False``)."""

    scheme = "postgresql"
    exclusive = False

    def __init__(
        self, name: str, url: str, batch_rows: int = 16_384, connect_timeout: float = 10.0
    ):
        # How a grant's database role is taken (pg_access.py); libpq must not see the option.
        url, self.role_mode = pg_access.split_role_mode(url, name)
        super().__init__(name, url)
        self.batch_rows = batch_rows
        self.connect_timeout = connect_timeout
        try:
            self._info = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"warehouse {name!r}: not a valid PostgreSQL URL: {exc}") from exc
        self._adapters = _adapters()
        self._type_name_cache = _builtin_type_names()
        self._type_lock = threading.Lock()

    def display_url(self, database: str | None = None) -> str:
        """The URL without its password (for messages), optionally on another database."""
        info = self._info
        user = f"{info['user']}@" if info.get("user") else ""
        port = f":{info['port']}" if info.get("port") else ""
        dbname = database or info.get("dbname", "")
        return f"postgresql://{user}{info.get('host', 'localhost')}{port}/{dbname}"

    def _conninfo(
        self, database: str | None = None, timeout: float | None = None, login: str | None = None
    ) -> str:
        extra: dict[str, Any] = {"client_encoding": "UTF8"}
        if "connect_timeout" not in self._info or timeout is not None:
            extra["connect_timeout"] = max(1, round(timeout or self.connect_timeout))
        if "application_name" not in self._info:
            extra["application_name"] = "sqltide"
        if database:
            extra["dbname"] = database
        info = make_conninfo(self.url, **extra)
        return pg_access.login_conninfo(info, login) if login else info

    def open(self) -> None:
        # A server that is down now may be up later: statements fail with connection_error
        # meanwhile, and the rest of sqltide keeps running.
        try:
            with psycopg.connect(self._conninfo(timeout=min(self.connect_timeout, 5.0))):
                pass
        except psycopg.Error as exc:
            logger.warning(
                "warehouse %r: PostgreSQL at %s is not reachable now (%s); its statements "
                "fail with connection_error until it is",
                self.name,
                self.display_url(),
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )

    def close(self) -> None:
        pass  # connections belong to whoever asked for them

    def _connect(
        self, database: str | None = None, access: Access = FULL_ACCESS
    ) -> psycopg.Connection[Any]:
        role = access.db_role
        login = role if self.role_mode == pg_access.LOGIN else None
        try:
            conn = psycopg.connect(
                self._conninfo(database, login=login),
                autocommit=True,
                prepare_threshold=None,  # never prepare: DDL may change a statement's shape
                cursor_factory=RawCursor,
                context=self._adapters,
            )
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            as_role = f" as database role {login!r}" if login else ""
            raise EngineError(
                f"cannot connect to PostgreSQL warehouse {self.name!r} at "
                f"{self.display_url(database)}{as_role}: {reason}",
                sqlstate=exc.sqlstate or "08001",
                code="connection_error",
            ) from exc
        if role is not None and login is None:
            try:
                conn.execute(pg_access.set_role_sql(role))
            except psycopg.Error as exc:
                conn.close()
                raise EngineError(
                    f"cannot run as database role {role!r} on warehouse {self.name!r}: "
                    f"{map_error(exc).message}",
                    sqlstate="42501",
                    code="permission_denied",
                ) from exc
        if conn.info.server_version >= 140000:
            # A worker killed mid-statement leaves its query running on the server until
            # PostgreSQL notices the client is gone; ask it to check every second. Older
            # servers (and Redshift) do not know the setting, hence the version check and
            # the tolerance of a refusal.
            try:
                conn.execute("SET client_connection_check_interval = '1s'")
            except psycopg.Error:
                logger.debug("client_connection_check_interval refused", exc_info=True)
        if conn.info.parameter_status("IntervalStyle") not in (None, "postgres"):
            try:
                conn.execute("SET IntervalStyle = postgres")  # the style _IntervalLoader reads
            except psycopg.Error as exc:
                conn.close()
                raise map_error(exc) from exc
        return conn

    def connect(self, access: Access = FULL_ACCESS) -> PostgresConnection:
        return PostgresConnection(self, self._connect(access=access), access)

    def type_names(self, conn: psycopg.Connection[Any], oids: Sequence[int]) -> dict[int, str]:
        """pg_type's name of each type OID, looked up on ``conn`` the first time it is seen."""
        with self._type_lock:
            missing = sorted({oid for oid in oids if oid not in self._type_name_cache})
        if missing:
            found: dict[int, str] = {}
            rows = conn.execute(
                "SELECT oid::int8, typname FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])",
                [missing],
            ).fetchall()
            found = {int(oid): str(name) for oid, name in rows}
            with self._type_lock:
                self._type_name_cache.update(found)
        with self._type_lock:
            return {oid: self._type_name_cache.get(oid, str(oid)) for oid in oids}

    # -- catalog ------------------------------------------------------------------------

    # Catalog calls run as the caller's role and list only what it owns or holds a privilege
    # on (as information_schema does), so a mapped principal sees only what it may use.
    def _catalog(
        self, database: str | None, sql: str, params: list[Any], access: Access = FULL_ACCESS
    ) -> list[Any]:
        with self._connect(database, access) as conn:
            try:
                return conn.execute(sql, params).fetchall()
            except psycopg.Error as exc:
                raise map_error(exc) from exc

    def _database(self, database: str | None, access: Access = FULL_ACCESS) -> str:
        if database:
            return database
        return str(self._catalog(None, "SELECT current_database()", [], access)[0][0])

    def list_databases(self, *, access: Access = FULL_ACCESS) -> list[str]:
        rows = self._catalog(
            None,
            "SELECT datname FROM pg_catalog.pg_database "
            f"WHERE NOT datistemplate AND datallowconn AND {pg_access.VISIBLE_DATABASE} "
            "ORDER BY 1",
            [],
            access,
        )
        return [r[0] for r in rows]

    def list_schemas(
        self, database: str | None, pattern: str | None, *, access: Access = FULL_ACCESS
    ) -> list[str]:
        rows = self._catalog(
            database,
            "SELECT nspname FROM pg_catalog.pg_namespace "
            f"WHERE nspname LIKE $1 AND nspname !~ $2 AND {pg_access.VISIBLE_SCHEMA} "
            "ORDER BY 1",
            [pattern or "%", _HIDDEN_SCHEMAS],
            access,
        )
        return [r[0] for r in rows]

    def list_tables(
        self,
        database: str | None,
        schema_pattern: str | None,
        table_pattern: str | None,
        *,
        access: Access = FULL_ACCESS,
    ) -> list[TableInfo]:
        db = self._database(database, access)
        rows = self._catalog(
            db,
            "SELECT c.relname, n.nspname, c.relkind::text FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = ANY($1) AND n.nspname LIKE $2 AND c.relname LIKE $3 "
            f"AND n.nspname !~ $4 AND {pg_access.VISIBLE_TABLE} ORDER BY n.nspname, c.relname",
            [list(_TABLE_KINDS), schema_pattern or "%", table_pattern or "%", _HIDDEN_SCHEMAS],
            access,
        )
        return [
            TableInfo(name=r[0], schema=r[1], type=_TABLE_KINDS[r[2]], database=db) for r in rows
        ]

    def describe_table(
        self, database: str | None, schema: str, table: str, *, access: Access = FULL_ACCESS
    ) -> list[ColumnMeta]:
        rows = self._catalog(
            database,
            "SELECT a.attname, t.typname, NOT a.attnotnull, a.atttypmod, a.atttypid::int8 "
            "FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
            "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped "
            f"AND {pg_access.VISIBLE_TABLE} ORDER BY a.attnum",
            [schema, table],
            access,
        )
        out = []
        for name, type_name, nullable, typmod, oid in rows:
            precision, scale = _numeric_typmod(typmod) if oid == _NUMERIC else (None, None)
            length = typmod - 4 if oid in _CHAR_TYPES and typmod >= 4 else None
            out.append(
                ColumnMeta(
                    name=name,
                    type_name=type_name,
                    nullable=bool(nullable),
                    precision=precision,
                    scale=scale,
                    length=length,
                )
            )
        return out
