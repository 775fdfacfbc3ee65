"""One connection to a PostgreSQL warehouse: running statements, streaming rows, transactions.

Each :class:`PostgresConnection` owns one dedicated psycopg connection in autocommit mode;
:meth:`~PostgresConnection.begin` opens an explicit transaction (a session or a transactional
batch keeps it until commit or rollback).

Queries (``SELECT``, ``WITH``, ``VALUES``, ``TABLE``) are streamed through a server-side
cursor (``DECLARE ... NO SCROLL CURSOR`` + ``FETCH FORWARD n``), so a huge result is never
held in memory; a cursor needs a transaction, so outside one the stream runs in a transaction
of its own, committed when the stream is read to its end. Other statements run plainly; those
that return rows (``INSERT ... RETURNING``, ``SHOW``, ``EXPLAIN``) are cut into record batches
from the client-side result.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
import pyarrow as pa
from psycopg.pq import TransactionStatus

from ..errors import EngineError
from . import pg_access
from .base import FULL_ACCESS, Access, EngineConnection, ExecResult
from .params import code_only
from .pg_errors import cancelled_error, map_error
from .pg_statement import Bound, bind, check_supported, one_statement, uses_cursor
from .pg_types import CHAR_TYPES, NUMERIC_OIDS, ArrowColumn, arrow_column, record_batch

if TYPE_CHECKING:
    from .postgres import PostgresEngine

logger = logging.getLogger(__name__)

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
        translator = self._engine.translator  # a source dialect (?dialect=): translated first
        if translator is not None:
            return translator.run(sql, params, self._execute)
        return self._execute(sql, params)

    def _execute(self, sql: str, params: Mapping[str, Any] | None) -> ExecResult:
        if self._conn.closed:  # the server or the network dropped it since the last call
            raise EngineError(
                "the connection to the warehouse was lost (the server closed it); run the "
                "statement again",
                sqlstate="08003",
                code="connection_error",
            )
        self._end_stream()
        self._interrupted = False
        bound = bind(one_statement(sql), params)
        code = code_only(bound.text)
        check_supported(code)
        refused = pg_access.refusal(code, self._access)
        if refused is not None:
            raise refused
        if uses_cursor(code):
            return self._query(bound)
        if self._access.read_only and self._conn.info.transaction_status == TransactionStatus.IDLE:
            return self._read_only(bound)
        return self._plain(bound)

    def _read_only(self, bound: Bound) -> ExecResult:
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

    def _plain(self, bound: Bound) -> ExecResult:
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

    def _query(self, bound: Bound) -> ExecResult:
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
        self, stream: _Stream, columns: list[ArrowColumn], schema: pa.Schema, rows: list[Any]
    ) -> Iterator[pa.RecordBatch]:
        committed = False
        try:
            while True:
                if rows:
                    yield record_batch(columns, schema, rows)
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
        self, cur: psycopg.Cursor[Any], columns: list[ArrowColumn], schema: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        try:
            while True:
                if self._interrupted:
                    raise cancelled_error()
                rows = cur.fetchmany(self._batch_rows)
                if not rows:
                    return
                yield record_batch(columns, schema, rows)
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
                raise cancelled_error()
            cur.execute(text, args)
        finally:
            self._busy = False

    def _columns(self, description: Sequence[psycopg.Column]) -> list[ArrowColumn]:
        names = self._engine.type_names(self._conn, [d.type_code for d in description])
        return [
            arrow_column(
                d.name,
                d.type_code,
                names[d.type_code],
                # numeric(p, s)[] carries its elements' typmod too
                d.precision if d.type_code in NUMERIC_OIDS else None,
                d.scale if d.type_code in NUMERIC_OIDS else None,
                d.display_size if d.type_code in CHAR_TYPES else None,
            )
            for d in description
        ]

    def _error(self, exc: psycopg.Error, bound: Bound, prefix: int | None = 0) -> EngineError:
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
