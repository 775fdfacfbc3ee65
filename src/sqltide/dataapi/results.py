"""GetStatementResult (Field unions) and GetStatementResultV2 (CSV): a result page by page.

A page is read from the statement's stored result (``statements.results.ResultReader.parts``)
and written in the Data API's form (``records.py``). It holds at most
``SQLTIDE_PAGE_MAX_ROWS`` rows and, past its first row, at most ``SQLTIDE_PAGE_MAX_BYTES`` of
records, far below the 100 MB AWS allows a call to return. ``NextToken`` is the page's
position signed with the server's secret (``statements/result_tokens.py``) and bound to the
statement and to the operation's form, so a token of another statement, of the other
operation or of ``/v1``, or an edited one, is a ``ValidationException``.

Errors as AWS answers them: a statement that is not finished, failed, was aborted, has no
result set (DDL, DML) or is a batch's parent is ``ValidationException`` "Query does not have
result. Please check query status with DescribeStatement."; a CSV statement asked for by
GetStatementResult, or a JSON one (or one from ``/v1``) by GetStatementResultV2, is a
``ValidationException`` naming the operation to use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pyarrow.compute as pc

from .. import errors
from ..api.calls import off_loop
from ..statements.results import ResultReader
from ..store import StatementRecord, StatementStatus
from .protocol import DataApiCall, operation, read
from .records import csv_lines, csv_pieces, plan_columns, records
from .statements import describe_wait, result_format

NO_RESULT = "Query does not have result. Please check query status with DescribeStatement."
#: The forms a page's next token is bound to (never one of /v1's: json, csv, arrow).
JSON_FORM = "dataapi-json"
CSV_FORM = "dataapi-csv"
#: A result this small (rows times columns) is converted on the event loop: a hop to a thread
#: would cost more than the conversion.
_ON_LOOP_CELLS = 2_000
#: CSVRecords pieces: AWS answers CSV in pieces of about 1 MB.
CSV_PIECE_BYTES = 1024 * 1024


@operation("GetStatementResult")
async def get_statement_result(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    """One page of a JSON-format statement's result, as lists of Field unions."""
    reader = await _reader(call, body, csv=False)
    page = await _convert(call, reader, lambda: _json_page(call, reader, body.get("NextToken")))
    return page


@operation("GetStatementResultV2")
async def get_statement_result_v2(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    """One page of a CSV-format statement's result, as CSV text."""
    reader = await _reader(call, body, csv=True)
    page = await _convert(call, reader, lambda: _csv_page(call, reader, body.get("NextToken")))
    page["ResultFormat"] = "CSV"
    return page


# -- the statement ----------------------------------------------------------------------------


async def _reader(call: DataApiCall, body: dict[str, Any], *, csv: bool) -> ResultReader:
    service = call.runtime.statements
    statement_id = str(body["Id"])
    wait = body.get("WaitTimeSeconds")
    if wait:
        # Long-poll: the answer comes when the statement ends or the wait is over.
        rec = (await describe_wait(call, statement_id, float(wait))).record
    else:
        rec = await read(call, service.statement, call.principal, statement_id)
    _check_format(rec, csv=csv)
    if rec.is_batch or rec.status is not StatementStatus.FINISHED or not rec.has_result_set:
        raise errors.DataApiError(
            NO_RESULT,
            details={
                "aws_type": "ValidationException",
                "id": rec.id,
                "status": rec.status.value,
            },
        )
    return service.reader_of(rec)  # an expired result raises ResultExpired


def _check_format(rec: StatementRecord, *, csv: bool) -> None:
    recorded = result_format(rec).upper()
    if csv and recorded != "CSV":
        raise errors.DataApiError(
            "The statement's ResultFormat is JSON (or it was not run through the Data API): "
            "fetch its result with GetStatementResult.",
            details={"aws_type": "ValidationException", "id": rec.id, "result_format": recorded},
        )
    if not csv and recorded == "CSV":
        raise errors.DataApiError(
            "The statement's ResultFormat is CSV: fetch its result with GetStatementResultV2.",
            details={"aws_type": "ValidationException", "id": rec.id, "result_format": recorded},
        )


async def _convert(
    call: DataApiCall, reader: ResultReader, page: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``page``: on the loop for a small result kept in memory, else in a thread."""
    manifest = reader.manifest
    if reader.in_memory and manifest.rows * max(1, len(manifest.columns)) <= _ON_LOOP_CELLS:
        return page()
    return await off_loop(page)


# -- pages ------------------------------------------------------------------------------------


def _limits(call: DataApiCall) -> tuple[int, int]:
    settings = call.runtime.settings
    return settings.page_max_rows, settings.page_max_bytes


def _json_page(call: DataApiCall, reader: ResultReader, token: str | None) -> dict[str, Any]:
    max_rows, max_bytes = _limits(call)
    pieces: list[bytes] = []
    used = 2  # the array's brackets
    last: tuple[Any, int] | None = None
    cut = False
    with reader.parts(token, fmt=JSON_FORM, max_rows=max_rows, max_bytes=max_bytes) as (
        schema,
        parts,
    ):
        plans = plan_columns(schema, reader.columns)
        for start, part in parts:
            rows = records(part, plans)
            blob = orjson.dumps(rows)[1:-1]
            comma = 1 if pieces else 0
            n = len(rows)
            if used + len(blob) + comma > max_bytes:
                n, blob = _fit_json(rows, max_bytes - used - comma, first=not pieces)
                cut = True
            if n:
                pieces.append(blob)
                used += len(blob) + comma
                last = (start, n)
            if cut:
                break
    next_token = None if last is None else reader.token_after(*last, JSON_FORM)
    return {
        "Records": orjson.Fragment(b"[" + b",".join(pieces) + b"]"),
        "ColumnMetadata": [plan.metadata for plan in plans],
        "TotalNumRows": reader.manifest.rows,
        **({"NextToken": next_token} if next_token else {}),
    }


def _fit_json(rows: list[Any], budget: int, *, first: bool) -> tuple[int, bytes]:
    """The rows of ``rows`` that fit in ``budget`` bytes (the first row of a page always)."""
    total = n = 0
    for row in rows:
        size = len(orjson.dumps(row)) + (1 if n else 0)
        if total + size > budget and (n or not first):
            break
        total += size
        n += 1
    return n, orjson.dumps(rows[:n])[1:-1] if n else b""


def _csv_page(call: DataApiCall, reader: ResultReader, token: str | None) -> dict[str, Any]:
    max_rows, max_bytes = _limits(call)
    lines: list[str] = []
    used = 0
    last: tuple[Any, int] | None = None
    with reader.parts(token, fmt=CSV_FORM, max_rows=max_rows, max_bytes=max_bytes) as (
        schema,
        parts,
    ):
        plans = plan_columns(schema, reader.columns)
        for start, part in parts:
            text = csv_lines(part, plans)
            n = 0
            for size in pc.binary_length(text).to_pylist():
                if used + size > max_bytes and (n or last is not None):
                    break  # past the budget (the page's first row goes in whatever its size)
                used += size
                n += 1
            if n:
                lines.extend(text.slice(0, n).to_pylist())
                last = (start, n)
            if n < part.num_rows:
                break
    next_token = None if last is None else reader.token_after(*last, CSV_FORM)
    return {
        "Records": [{"CSVRecords": piece} for piece in csv_pieces(lines, CSV_PIECE_BYTES)],
        "ColumnMetadata": [plan.metadata for plan in plans],
        "TotalNumRows": reader.manifest.rows,
        **({"NextToken": next_token} if next_token else {}),
    }
