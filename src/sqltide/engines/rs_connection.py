"""One "connection" to an Amazon Redshift warehouse over the Data API.

The Data API has no connections: each ``ExecuteStatement`` runs on its own, in a transaction
of its own, and is followed with ``DescribeStatement`` and ``GetStatementResult``. A
:class:`RedshiftConnection` runs one statement at a time like this:

1. ``ExecuteStatement`` with the SQL and its parameters (``:name`` stays in the text; each
   value goes as a ``{name, value}`` string, which Redshift casts where it is used; NULL and
   the empty string, which the Data API cannot carry, are written into the text as ``NULL``
   and ``''``);
2. ``DescribeStatement`` until the statement ends, long-polling with ``WaitTimeSeconds``
   where the installed botocore has it, else polling with backoff (20 ms doubling to 1 s);
   each with a deadline (the URL's ``timeout``);
3. if it has a result set, ``GetStatementResult`` page by page, each page converted to an
   Arrow record batch as the caller reads (``rs_types.py``): one page in memory at a time.

**Transactions and sessions.** :meth:`begin` opens a Data API session: the ``BEGIN`` goes
with ``SessionKeepAliveSeconds`` (the URL's ``session_keep_alive``), and every later call
passes the ``SessionId`` it got, so the statements, the ``COMMIT`` or the ``ROLLBACK`` land on
the same database connection. A connection that carries a sqltide session
(:meth:`hold_session`) opens its Data API session with its first statement, kept alive as
long as the sqltide session, so temporary tables and ``SET`` carry over. The Data API has no
call that closes a session: one ends when it has been idle for its keep-alive.

**Cancelling.** :meth:`interrupt` sends ``CancelStatement`` for the statement running (once
per statement); the long-poll then answers ``ABORTED`` and the statement raises
``cancelled`` (57014). An interrupt between pages of a result stops the stream.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from ..errors import EngineError
from .base import FULL_ACCESS, Access, EngineConnection, ExecResult
from .params import find_parameters
from .pg_statement import one_statement
from .rs_access import read_only_refusal
from .rs_errors import cancelled_error, statement_error
from .rs_types import ResultColumn, record_batch, result_column

if TYPE_CHECKING:
    from .redshift import RedshiftEngine

logger = logging.getLogger(__name__)

_FIRST_POLL = 0.02
_MAX_POLL = 1.0
_MAX_KEEP_ALIVE = 86_400


@dataclass(frozen=True, slots=True)
class Sent:
    """A statement as sent: its text, its Data API parameters, and where literals replaced
    ``:name`` references (``(sent_start, sent_end, caller_start, caller_end)``)."""

    text: str
    parameters: list[dict[str, str]] | None
    spans: tuple[tuple[int, int, int, int], ...] = ()

    def caller_position(self, sent: int) -> int:
        """The 1-based position in the caller's text of 1-based position ``sent``."""
        at, shift = sent - 1, 0
        for s_start, s_end, c_start, c_end in self.spans:
            if at >= s_end:
                shift = c_end - s_end
            elif at >= s_start:
                return c_start + 1
            else:
                break
        return at + shift + 1


def _parameter_text(value: Any) -> str:
    """A parameter value as the Data API's string (Redshift casts it where it is used)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return orjson.dumps(value).decode()


def bind(sql: str, params: Mapping[str, Any] | None) -> Sent:
    """``sql`` with its ``:name`` parameters as Data API parameters."""
    if not params:
        return Sent(sql, None)
    parameters: dict[str, str] = {}
    out: list[str] = []
    spans: list[tuple[int, int, int, int]] = []
    last = length = 0
    for ref in find_parameters(sql):
        if ref.name not in params:
            raise EngineError(
                f"no value given for parameter :{ref.name}",
                sqlstate="42P02",
                position=ref.start + 1,
                code="invalid_input",
            )
        value = params[ref.name]
        # The Data API takes non-empty strings only: NULL and '' go into the text.
        literal = "NULL" if value is None else "''" if value == "" else None
        if literal is None:
            parameters[ref.name] = _parameter_text(value)
            continue
        out.append(sql[last : ref.start])
        length += ref.start - last
        spans.append((length, length + len(literal), ref.start, ref.end))
        out.append(literal)
        length += len(literal)
        last = ref.end
    out.append(sql[last:])
    listed = [{"name": name, "value": value} for name, value in parameters.items()]
    return Sent("".join(out), listed or None, tuple(spans))


class RedshiftConnection(EngineConnection):
    """Statements on one Redshift warehouse, in a Data API session once one is needed."""

    def __init__(
        self, engine: RedshiftEngine, access: Access = FULL_ACCESS, db_user: str | None = None
    ):
        self._engine = engine
        self._access = access
        self._db_user = db_user
        self._batch_rows = max(1, engine.batch_rows)
        #: The Data API session every call goes to once opened (by a transaction or a hold).
        self._session_id: str | None = None
        #: Keep-alive of the session to open with the next statement (hold_session).
        self._hold: int | None = None
        self._in_transaction = False
        self._transaction_failed = False
        self._stream: Iterator[pa.RecordBatch] | None = None
        self._lock = threading.Lock()
        self._running: str | None = None  # the statement id interrupt() cancels
        self._cancelled: str | None = None  # the last one it cancelled (once each)
        self._interrupted = False
        self._wake = threading.Event()  # cuts a backoff poll short on interrupt

    # -- running ------------------------------------------------------------------------

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> ExecResult:
        translator = self._engine.translator  # a source dialect (?dialect=): translated first
        if translator is not None:
            return translator.run(sql, params, self._execute)
        return self._execute(sql, params)

    def _execute(self, sql: str, params: Mapping[str, Any] | None) -> ExecResult:
        self._end_stream()
        with self._lock:
            self._interrupted = False
        self._wake.clear()
        text = one_statement(sql)
        if self._access.read_only:
            refused = read_only_refusal(text)
            if refused is not None:
                raise refused
        sent = bind(text, params)
        statement_id, description = self._run(sent)
        if not description.get("HasResultSet"):
            rows = description.get("ResultRows")
            affected = rows if isinstance(rows, int) and rows >= 0 else None
            return ExecResult(has_result_set=False, rows_affected=affected)
        first = self._engine.call("get_statement_result", Id=statement_id)
        columns = [result_column(m) for m in first.get("ColumnMetadata") or []]
        schema = pa.schema([pa.field(c.meta.name, c.arrow) for c in columns])
        stream = self._batches(statement_id, columns, schema, first)
        self._stream = stream
        return ExecResult(
            has_result_set=True,
            columns=[c.meta for c in columns],
            schema=schema,
            batches=stream,
        )

    def _run(self, sent: Sent, *, cancellable: bool = True) -> tuple[str, dict[str, Any]]:
        """Submit one statement and wait for it to end; its id and final description.

        Transaction control is not ``cancellable``: an interrupt that keeps coming while a
        failed batch rolls back must not cancel the ``ROLLBACK``."""
        request: dict[str, Any] = {"Sql": sent.text}
        if sent.parameters:
            request["Parameters"] = sent.parameters
        in_session = self._session_id is not None
        if self._session_id is not None:
            request["SessionId"] = self._session_id
        else:
            request.update(self._engine.location(self._db_user))
            keep = self._hold or (
                self._engine.settings.session_keep_alive if self._in_transaction else None
            )
            if keep:
                request["SessionKeepAliveSeconds"] = keep
        answer = self._engine.call("execute_statement", in_session=in_session, **request)
        if self._session_id is None and "SessionKeepAliveSeconds" in request:
            self._session_id = answer.get("SessionId")
        statement_id = str(answer["Id"])
        with self._lock:
            if cancellable:
                self._running = statement_id
            interrupted = self._interrupted and cancellable
        try:
            if interrupted:  # interrupt() came while ExecuteStatement was on its way
                self._cancel(statement_id)
            description = self._wait(statement_id)
        except EngineError:
            if self._in_transaction:  # a timeout cancelled it: Redshift aborts the transaction
                self._transaction_failed = True
            raise
        finally:
            with self._lock:
                self._running = None
        status = description.get("Status")
        if status == "FINISHED":
            return statement_id, description
        if self._in_transaction:
            self._transaction_failed = True
        if status == "ABORTED":
            raise cancelled_error()
        error, position = statement_error(description.get("Error"))
        if position is not None:
            error.position = sent.caller_position(position)
        raise error

    def _wait(self, statement_id: str) -> dict[str, Any]:
        """DescribeStatement until the statement has ended (or the deadline passes)."""
        engine = self._engine
        deadline = time.monotonic() + engine.settings.timeout
        wait = engine.settings.wait if engine.can_wait else 0
        delay = _FIRST_POLL
        while True:
            left = deadline - time.monotonic()
            request: dict[str, Any] = {"Id": statement_id}
            if wait:
                request["WaitTimeSeconds"] = max(1, min(wait, math.ceil(left)))
            try:
                description = engine.call("describe_statement", **request)
            except EngineError as exc:
                if (
                    wait
                    and exc.details.get("aws_error") == "ActiveWaitingRequestsExceededException"
                ):
                    wait = 0  # too many long-polls on the service: poll instead
                    continue
                raise
            if description.get("Status") in ("FINISHED", "FAILED", "ABORTED"):
                return description
            if time.monotonic() >= deadline:
                self._cancel(statement_id)
                raise EngineError(
                    f"the statement ran longer than the warehouse's timeout "
                    f"({engine.settings.timeout:g} s) and was cancelled",
                    sqlstate="57014",
                    code="timeout",
                    details={"statement_id": statement_id},
                )
            if not wait:
                if self._wake.wait(min(delay, max(left, 0.0))):
                    self._wake.clear()  # an interrupt: its cancel is sent, poll on to see it
                delay = min(delay * 2, _MAX_POLL)

    def _batches(
        self,
        statement_id: str,
        columns: list[ResultColumn],
        schema: pa.Schema,
        page: dict[str, Any],
    ) -> Iterator[pa.RecordBatch]:
        while True:
            records = page.get("Records") or []
            if records:
                batch = record_batch(columns, schema, records)
                del records
                for start in range(0, batch.num_rows, self._batch_rows):
                    yield batch.slice(start, self._batch_rows)
            token = page.get("NextToken")
            if not token:
                return
            if self._interrupted:
                raise cancelled_error()
            page = self._engine.call("get_statement_result", Id=statement_id, NextToken=token)

    def _end_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    # -- transactions and sessions ------------------------------------------------------

    def hold_session(self, keep_alive_seconds: float) -> None:
        if self._session_id is None:
            self._hold = min(max(1, math.ceil(keep_alive_seconds)), _MAX_KEEP_ALIVE)

    def begin(self) -> None:
        self._end_stream()
        if self._in_transaction:
            raise EngineError(
                "a transaction is already open", sqlstate="25001", code="transaction_error"
            )
        self._in_transaction = True  # so that BEGIN opens a Data API session
        try:
            self._command("BEGIN")
        except BaseException:
            self._in_transaction = False
            raise
        self._transaction_failed = False

    def commit(self) -> None:
        self._end_stream()
        if not self._in_transaction:
            raise EngineError("no transaction is open", sqlstate="25P01", code="transaction_error")
        if self._transaction_failed:
            # Redshift would answer COMMIT with a rollback; say so instead.
            self._end_transaction("ROLLBACK")
            raise EngineError(
                "the transaction was aborted by an earlier error and has been rolled back",
                sqlstate="25P02",
                code="transaction_error",
            )
        self._end_transaction("COMMIT")

    def rollback(self) -> None:
        self._end_stream()
        if not self._in_transaction:
            return  # nothing open is fine: a failure may already have ended it
        try:
            self._end_transaction("ROLLBACK")
        except EngineError as exc:
            # The statement's own failure is what the caller reports; an open transaction in
            # an unreachable session ends when the session's keep-alive runs out.
            logger.warning(
                "warehouse %r: ROLLBACK failed (%s); the Data API session rolls back when its "
                "keep-alive runs out",
                self._engine.name,
                exc.message,
            )

    def _end_transaction(self, sql: str) -> None:
        try:
            self._command(sql)
        finally:
            self._in_transaction = False
            self._transaction_failed = False

    def _command(self, sql: str) -> None:
        self._run(Sent(sql, None), cancellable=False)

    # -- stopping -----------------------------------------------------------------------

    def interrupt(self) -> None:
        with self._lock:
            self._interrupted = True
            statement_id = self._running
        self._wake.set()
        if statement_id is not None:
            self._cancel(statement_id)

    def _cancel(self, statement_id: str) -> None:
        with self._lock:
            if self._cancelled == statement_id:
                return  # asked once already; the long-poll will see it end
            self._cancelled = statement_id
        try:
            self._engine.call("cancel_statement", Id=statement_id)
        except EngineError as exc:  # it ended meanwhile, or the service is unreachable
            logger.debug("CancelStatement %s failed: %s", statement_id, exc.message)

    def close(self) -> None:
        self._end_stream()
        with self._lock:
            running = self._running
        if running is not None:
            self._cancel(running)
        if self._in_transaction:
            with contextlib.suppress(EngineError):
                self.rollback()
