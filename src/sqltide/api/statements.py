"""``/v1/statements``: execute, batch, describe (long-poll), result pages, cancel, list."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from .. import errors
from ..statements.requests import StatementRequest
from ..statements.results import json_bytes
from ..statements.service import StatementService
from ..store import StatementStatus
from .auth import Caller, caller
from .calls import off_loop, read, write
from .responses import JSONResponse, items_fragment
from .schemas import (
    ERROR_RESPONSES,
    BatchBody,
    ExecuteBody,
    ResultPageOut,
    StatementListOut,
    StatementOut,
)
from .views import parse_iso, statement_dict, view_dict

ARROW_STREAM = "application/vnd.apache.arrow.stream"
router = APIRouter(prefix="/v1/statements", tags=["statements"], responses=ERROR_RESPONSES)
CallerDep = Annotated[Caller, Depends(caller)]


def _service(request: Request) -> StatementService:
    return request.app.state.runtime.statements


def _request(
    body: ExecuteBody | BatchBody, sqls: tuple[str, ...], **batch: Any
) -> StatementRequest:
    return StatementRequest(
        sqls=sqls,
        parameters=body.parameters,
        statement_name=body.statement_name,
        client_token=body.client_token,
        with_event=body.with_event,
        warehouse=body.warehouse,
        session_id=body.session_id,
        session_keep_alive_seconds=body.session_keep_alive_seconds,
        **batch,
    )


async def _submit(request: Request, who: Caller, req: StatementRequest) -> JSONResponse:
    service = _service(request)
    # A short write: on the loop only if the store's writer is free this moment (calls.py).
    view, created = await write(
        service.store, service.submit, who.principal, req, is_admin=who.is_admin
    )
    return JSONResponse(view_dict(view), status_code=201 if created else 200)


@router.post("", status_code=201, summary="Execute one statement", response_model=StatementOut)
async def execute(body: ExecuteBody, request: Request, who: CallerDep) -> JSONResponse:
    return await _submit(
        request,
        who,
        _request(body, (body.sql,)),
    )


@router.post(
    "/batch",
    status_code=201,
    summary="Execute a batch (one transaction by default)",
    response_model=StatementOut,
)
async def batch(body: BatchBody, request: Request, who: CallerDep) -> JSONResponse:
    return await _submit(
        request,
        who,
        _request(body, tuple(body.sqls), is_batch=True, batch_mode=body.mode),
    )


@router.get(
    "/{statement_id}",
    summary="Describe a statement, optionally waiting for it to end",
    response_model=StatementOut,
)
async def describe(
    statement_id: str,
    request: Request,
    who: CallerDep,
    wait: Annotated[float | None, Query(ge=0, le=3600, description="Seconds to wait")] = None,
) -> JSONResponse:
    service = _service(request)
    if wait:
        view = await service.describe_wait(who.principal, statement_id, wait)
    else:
        view = await read(request, service.describe, who.principal, statement_id)
    return JSONResponse(view_dict(view))


@router.get(
    "/{statement_id}/result",
    summary="One page of a statement's result (JSON, or CSV with `format=csv`)",
    response_model=ResultPageOut,
)
async def result(
    statement_id: str,
    request: Request,
    who: CallerDep,
    format: Literal["json", "csv", "arrow"] = "json",
    next_token: str | None = None,
    max_rows: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    service = _service(request)
    settings = service.settings
    if format == "arrow":  # no conversion: pages may be far larger
        rows = min(max_rows or settings.arrow_page_max_rows, settings.arrow_page_max_rows)
        max_bytes = settings.arrow_page_max_bytes
    else:
        rows = min(max_rows or settings.page_max_rows, settings.page_max_rows)
        max_bytes = settings.page_max_bytes

    reader = await read(request, service.result_reader, who.principal, statement_id)

    def read_page() -> Any:
        return reader.page(next_token or None, fmt=format, max_rows=rows, max_bytes=max_bytes)

    # A small inline result is read on the loop; files (up to a page's megabytes) off it.
    page = read_page() if reader.in_memory else await off_loop(read_page)
    if format != "json":
        headers = {"Sqltide-Total-Rows": str(page.total_rows)}
        if page.next_token:
            headers["Sqltide-Next-Token"] = page.next_token
        if format == "csv":
            return Response(page.csv, media_type="text/csv; charset=utf-8", headers=headers)
        return Response(page.arrow, media_type=ARROW_STREAM, headers=headers)
    body = {
        "id": statement_id,
        "columns": page.columns,
        "rows": orjson.Fragment(page.rows_json),
        "total_rows": page.total_rows,
        "next_token": page.next_token,
    }
    return Response(json_bytes(body), media_type="application/json")


@router.post("/{statement_id}/cancel", summary="Cancel a statement", response_model=StatementOut)
async def cancel(statement_id: str, request: Request, who: CallerDep) -> JSONResponse:
    view = await _service(request).cancel_wait(who.principal, statement_id)
    return JSONResponse(view_dict(view))


@router.get("", summary="List your statements, newest first", response_model=StatementListOut)
async def list_statements(
    request: Request,
    who: CallerDep,
    status: StatementStatus | None = None,
    name_prefix: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    max_results: Annotated[int, Query(ge=1, le=100)] = 100,
    next_token: str | None = None,
) -> JSONResponse:
    try:
        after = parse_iso(created_after) if created_after else None
        before = parse_iso(created_before) if created_before else None
    except ValueError as exc:
        raise errors.UnprocessableEntity(
            f"created_after/created_before must be ISO 8601 times: {exc}"
        ) from exc
    service = _service(request)
    rows, token = await off_loop(
        lambda: service.list(
            who.principal,
            status=status,
            name_prefix=name_prefix,
            created_after=after,
            created_before=before,
            max_results=max_results,
            next_token=next_token,
        ),
    )
    return JSONResponse(
        {
            "statements": items_fragment(
                [statement_dict(r, None, service.settings.result_retention_seconds) for r in rows],
                kind="statement",
            ),
            "next_token": token,
        }
    )
