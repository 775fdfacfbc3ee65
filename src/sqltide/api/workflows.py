"""``/v1/workflows``, ``/v1/executions``, ``/v1/callbacks``: durable workflows' faces.

Start an execution of a workflow this server loaded, describe it (with a long-poll until it
ends), list, read its operations and history, stop it, and complete or heartbeat its callbacks
from outside. The service (``workflows/service.py``) judges every input and keeps the tenants
apart: another principal's execution or callback answers exactly like an unknown one (404).
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from .. import errors
from ..store import (
    ExecutionFilter,
    ExecutionRecord,
    ExecutionStatus,
    HistoryRecord,
    OperationRecord,
)
from ..workflows.service import MAX_HISTORY_EVENTS, MAX_LIST_RESULTS, WorkflowService
from .auth import Caller, caller
from .calls import off_loop, read, write
from .responses import JSONResponse, items_fragment, renderable
from .schemas import ERROR_RESPONSES
from .views import iso, parse_iso
from .workflow_schemas import (
    CallbackOut,
    ExecutionHistoryOut,
    ExecutionListOut,
    ExecutionOut,
    FailCallbackBody,
    StartBody,
    StopBody,
    SucceedCallbackBody,
    WorkflowListOut,
)

router = APIRouter(tags=["workflows"], responses=ERROR_RESPONSES)
CallerDep = Annotated[Caller, Depends(caller)]


def _service(request: Request) -> WorkflowService:
    return request.app.state.runtime.workflows  # type: ignore[no-any-return]


# -- how records are shown -------------------------------------------------------------------
def payload(text: str | None) -> Any:
    """A stored payload as a JSON value: the default serdes writes JSON; text a custom serdes
    wrote that is not JSON is shown as a string."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _ns(start: float | None, end: float | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, round((end - start) * 1e9))


def execution_dict(rec: ExecutionRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "workflow": rec.workflow,
        "name": rec.name,
        "principal": rec.principal,
        "status": rec.status.value,
        "input": payload(rec.input),
        "result": payload(rec.result),
        "error": rec.error,
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
        "ended_at": iso(rec.ended_at),
        "duration_ns": _ns(rec.created_at, rec.ended_at),
        "timeout_at": iso(rec.timeout_at),
        "expires_at": iso(rec.expires_at),
        "next_run_at": iso(rec.next_run_at) if not rec.status.is_terminal else None,
        "replays": rec.replays,
        "parent_id": rec.parent_id,
        "parent_operation_id": rec.parent_operation_id,
    }


def operation_dict(op: OperationRecord) -> dict[str, Any]:
    return {
        "id": op.id,
        "parent_id": op.parent_id,
        "seq": op.seq,
        "type": op.type.value,
        "sub_type": op.sub_type,
        "name": op.name,
        "status": op.status.value,
        "attempt": op.attempt,
        "result": payload(op.result),
        "error": op.error,
        "started_at": iso(op.started_at),
        "ended_at": iso(op.ended_at),
        "updated_at": iso(op.updated_at),
        "duration_ns": _ns(op.started_at, op.ended_at),
        "next_attempt_at": iso(op.next_attempt_at),
        "wake_at": iso(op.wake_at),
        "callback_id": op.callback_id,
        "callback_timeout_at": iso(op.callback_timeout_at),
        "heartbeat_timeout_at": iso(op.heartbeat_timeout_at),
        "child_execution_id": op.child_execution_id,
    }


def event_dict(ev: HistoryRecord) -> dict[str, Any]:
    return {
        "seq": ev.seq,
        "at": iso(ev.at),
        "event": ev.event,
        "operation_id": ev.operation_id,
        "attempt": ev.attempt,
        "details": ev.details,
    }


def callback_dict(ex: ExecutionRecord, op: OperationRecord) -> dict[str, Any]:
    return {
        "callback_id": op.callback_id,
        "execution_id": ex.id,
        "execution_status": ex.status.value,
        "operation_id": op.id,
        "name": op.name,
        "status": op.status.value,
        "callback_timeout_at": iso(op.callback_timeout_at),
        "heartbeat_timeout_at": iso(op.heartbeat_timeout_at),
        "updated_at": iso(op.updated_at),
    }


def _execution_answer(rec: ExecutionRecord, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        renderable(execution_dict(rec), kind="execution", ident=rec.id), status_code=status_code
    )


def _error_object(body: Any) -> dict[str, Any] | None:
    error = getattr(body, "error", None) if body is not None else None
    return None if error is None else error.model_dump(exclude_none=True)


# -- workflows -------------------------------------------------------------------------------
@router.get(
    "/v1/workflows", summary="The workflows this server loaded", response_model=WorkflowListOut
)
async def list_workflows(request: Request, who: CallerDep) -> JSONResponse:
    service = _service(request)
    out = []
    for name in service.names():
        wf = service.registry.get(name)
        doc = (getattr(wf.fn, "__doc__", None) or "").strip() if wf is not None else ""
        out.append({"name": name, "description": doc.splitlines()[0] if doc else None})
    return JSONResponse({"workflows": out})


@router.post(
    "/v1/workflows/{workflow}/executions",
    status_code=201,
    summary="Start an execution (the same name gives back the same execution)",
    response_model=ExecutionOut,
    responses={200: {"model": ExecutionOut, "description": "Started before under this name"}},
)
async def start_execution(
    workflow: str, body: StartBody, request: Request, who: CallerDep
) -> JSONResponse:
    service = _service(request)
    # A short write (one insert): on the loop only if the store's writer is free (calls.py).
    rec, created = await write(
        service.store,
        service.start,
        who.principal,
        workflow,
        body.input,
        name=body.name,
        timeout_seconds=body.timeout_seconds,
        is_admin=who.is_admin,
    )
    return _execution_answer(rec, 201 if created else 200)


# -- executions ------------------------------------------------------------------------------
@router.get(
    "/v1/executions", summary="List your executions, newest first", response_model=ExecutionListOut
)
async def list_executions(
    request: Request,
    who: CallerDep,
    workflow: str | None = None,
    status: ExecutionStatus | None = None,
    created_after: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    created_before: Annotated[str | None, Query(description="ISO 8601, exclusive")] = None,
    max_results: Annotated[int, Query(ge=1, le=MAX_LIST_RESULTS)] = 100,
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
    filters = ExecutionFilter(
        workflow=workflow, status=status, created_after=after, created_before=before
    )
    rows, token = await off_loop(
        service.list, who.principal, filters, max_results, next_token or None
    )
    return JSONResponse(
        {
            "executions": items_fragment([execution_dict(r) for r in rows], kind="execution"),
            "next_token": token,
        }
    )


@router.get(
    "/v1/executions/{execution_id}",
    summary="Describe an execution, optionally waiting for it to end",
    response_model=ExecutionOut,
)
async def describe_execution(
    execution_id: str,
    request: Request,
    who: CallerDep,
    wait: Annotated[float | None, Query(ge=0, le=3600, description="Seconds to wait")] = None,
) -> JSONResponse:
    service = _service(request)
    if wait:
        rec = await service.describe_wait(who.principal, execution_id, wait, is_admin=who.is_admin)
    else:
        describe = functools.partial(service.describe, is_admin=who.is_admin)
        rec = await read(request, describe, who.principal, execution_id)
    return _execution_answer(rec)


@router.get(
    "/v1/executions/{execution_id}/history",
    summary="An execution's operations (timings, attempts, results, errors) and history",
    response_model=ExecutionHistoryOut,
)
async def execution_history(
    execution_id: str,
    request: Request,
    who: CallerDep,
    after_seq: Annotated[
        int, Query(ge=0, le=2**53, description="Only history events after this one (paging)")
    ] = 0,
    max_events: Annotated[int, Query(ge=1, le=MAX_HISTORY_EVENTS)] = MAX_HISTORY_EVENTS,
) -> JSONResponse:
    service = _service(request)
    found = await off_loop(
        service.history,
        who.principal,
        execution_id,
        after_seq=after_seq,
        max_events=max_events,
        is_admin=who.is_admin,
    )
    return JSONResponse(
        {
            "execution": renderable(
                execution_dict(found.execution), kind="execution", ident=found.execution.id
            ),
            "operations": items_fragment(
                [operation_dict(op) for op in found.operations], kind="operation"
            ),
            "events": items_fragment([event_dict(ev) for ev in found.events], kind="event"),
            "next_after_seq": found.next_after,
        }
    )


@router.post(
    "/v1/executions/{execution_id}/stop",
    summary="Stop a running execution",
    response_model=ExecutionOut,
)
async def stop_execution(
    execution_id: str, request: Request, who: CallerDep, body: StopBody | None = None
) -> JSONResponse:
    service = _service(request)
    rec = await write(
        service.store,
        service.stop,
        who.principal,
        execution_id,
        error=_error_object(body),
        is_admin=who.is_admin,
    )
    return _execution_answer(rec)


# -- callbacks -------------------------------------------------------------------------------
async def _complete(
    request: Request,
    who: Caller,
    callback_id: str,
    outcome: str,
    result: Any = None,
    error: dict[str, Any] | None = None,
) -> JSONResponse:
    service = _service(request)
    ex, op = await write(
        service.store,
        service.complete_callback,
        who.principal,
        callback_id,
        outcome,
        result,
        error,
        is_admin=who.is_admin,
    )
    return JSONResponse(renderable(callback_dict(ex, op), kind="callback", ident=callback_id))


@router.post(
    "/v1/callbacks/{callback_id}/succeed",
    summary="Complete a callback with its result",
    response_model=CallbackOut,
)
async def succeed_callback(
    callback_id: str, request: Request, who: CallerDep, body: SucceedCallbackBody | None = None
) -> JSONResponse:
    result = body.result if body is not None else None
    return await _complete(request, who, callback_id, "succeed", result=result)


@router.post(
    "/v1/callbacks/{callback_id}/fail",
    summary="Fail a callback with an error",
    response_model=CallbackOut,
)
async def fail_callback(
    callback_id: str, request: Request, who: CallerDep, body: FailCallbackBody | None = None
) -> JSONResponse:
    return await _complete(request, who, callback_id, "fail", error=_error_object(body))


@router.post(
    "/v1/callbacks/{callback_id}/heartbeat",
    summary="Tell a callback's workflow its outside work is still going",
    response_model=CallbackOut,
)
async def heartbeat_callback(callback_id: str, request: Request, who: CallerDep) -> JSONResponse:
    return await _complete(request, who, callback_id, "heartbeat")
