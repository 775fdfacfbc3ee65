"""Request bodies and answers of the workflow endpoints (``api/workflows.py``), as
/openapi.json describes them and docs/api.md shows them.

The handlers build the answers as plain dicts (rendered once with orjson); these models are
their documentation, and ``tests/integration/test_workflows_api.py`` validates real answers
against them so the two cannot drift.

Payloads (an execution's ``input`` and ``result``, an operation's ``result``) are stored as
the text the workflow's serdes wrote. The default serdes writes JSON, so the answers show them
as JSON values; a value the default serdes tags (``Decimal``, ``datetime``, ...) shows as its
tagged tree ``{"t": ..., "v": ...}``, and text a custom serdes wrote that is not JSON shows as
a JSON string.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ExecutionStatusName = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"]
OperationStatusName = Literal[
    "STARTED", "PENDING", "READY", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "STOPPED"
]
OperationTypeName = Literal["EXECUTION", "CONTEXT", "STEP", "WAIT", "CALLBACK", "CHAINED_INVOKE"]


# -- bodies ----------------------------------------------------------------------------------
class StartBody(BaseModel):
    """``POST /v1/workflows/{name}/executions``."""

    model_config = ConfigDict(extra="forbid")

    input: Any = Field(
        default=None,
        description="The workflow's event: any JSON value (at most "
        "`SQLTIDE_WORKFLOW_MAX_PAYLOAD_BYTES`, 256 KiB, as compact JSON).",
    )
    name: str | None = Field(
        default=None,
        description="The execution's name (letters, digits, `_ . : -`; 1 to 256). Starting the "
        "same workflow under the same name gives back the same execution (200 instead of 201); "
        "with another input it is 409 `execution_conflict`. Default: a new UUID.",
    )
    timeout_seconds: float | None = Field(
        default=None,
        description="Still running this long after its start, the execution ends TIMED_OUT "
        "(1 s to 366 days; default `SQLTIDE_WORKFLOW_TIMEOUT_SECONDS`, 1 day).",
    )


class ErrorObject(BaseModel):
    """An error as the AWS durable execution SDK writes it (each field optional)."""

    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(default=None, description="The error's type, e.g. `Rejected`.")
    message: str | None = None
    data: str | None = Field(default=None, description="Anything more, as a string.")
    stack: list[str] | str | None = Field(default=None, description="Stack trace lines.")


class StopBody(BaseModel):
    """``POST /v1/executions/{id}/stop`` (the body is optional)."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorObject | None = Field(
        default=None,
        description="What the stopped execution records as its error (default: type "
        "`ExecutionStopped`).",
    )


class SucceedCallbackBody(BaseModel):
    """``POST /v1/callbacks/{id}/succeed``."""

    model_config = ConfigDict(extra="forbid")

    result: Any = Field(
        default=None,
        description="What `callback.result()` gives the workflow: a string is handed over as "
        "it is (read by the callback's serdes), any other JSON value as its JSON text.",
    )


class FailCallbackBody(BaseModel):
    """``POST /v1/callbacks/{id}/fail``."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorObject | None = Field(
        default=None, description="Why; `callback.result()` raises it as `CallbackError`."
    )


# -- answers ---------------------------------------------------------------------------------
class ErrorOut(BaseModel):
    type: str | None = None
    message: str | None = None
    data: str | None = None
    stack: list[str] | str | None = None


class ExecutionOut(BaseModel):
    """An execution's description."""

    id: str = Field(description="UUID")
    workflow: str
    name: str = Field(description="As it was given at the start (or the UUID made then).")
    principal: str
    status: ExecutionStatusName
    input: Any = None
    result: Any = Field(default=None, description="Set once SUCCEEDED.")
    error: ErrorOut | None = Field(
        default=None, description="Set once FAILED, TIMED_OUT or STOPPED."
    )
    created_at: str
    updated_at: str
    ended_at: str | None
    duration_ns: int | None = Field(description="From the start to the end, once ended.")
    timeout_at: str | None
    expires_at: str | None = Field(description="When the ended execution is deleted.")
    next_run_at: str | None = Field(
        description="RUNNING: when it is replayed next (a wait's end, a retry); null while a "
        "replay runs it or while it waits for an outside event (a callback, a child)."
    )
    replays: int = Field(description="How many times its function was (re)run so far.")
    parent_id: str | None = Field(description="The execution that started it with `invoke`.")
    parent_operation_id: str | None


class ExecutionListOut(BaseModel):
    executions: list[ExecutionOut]
    next_token: str | None


class OperationOut(BaseModel):
    """One durable operation's checkpoint."""

    id: str = Field(description="Its position in its context, prefixed by the context's: `3-1`.")
    parent_id: str | None = Field(description="The context (child, map item, branch) it ran in.")
    seq: int = Field(description="Creation order in the execution, from 1.")
    type: OperationTypeName
    sub_type: str = Field(description="Step, Wait, Callback, RunInChildContext, Map, ...")
    name: str | None
    status: OperationStatusName
    attempt: int = Field(description="The attempt it is on (steps; 0 for the others).")
    result: Any = None
    error: ErrorOut | None = None
    started_at: str | None
    ended_at: str | None
    updated_at: str | None
    duration_ns: int | None
    next_attempt_at: str | None = Field(description="A pending retry's time.")
    wake_at: str | None = Field(description="A wait's end.")
    callback_id: str | None
    callback_timeout_at: str | None
    heartbeat_timeout_at: str | None
    child_execution_id: str | None = Field(description="The execution an `invoke` started.")


class HistoryEventOut(BaseModel):
    """One line of an execution's history (append-only)."""

    seq: int
    at: str
    event: str = Field(
        description="execution_started, resumed, started, succeeded, failed, retry_scheduled, "
        "wait_started, callback_created, callback_succeeded, heartbeat, suspended, ..."
    )
    operation_id: str | None
    attempt: int | None
    details: dict[str, Any] | None


class ExecutionHistoryOut(BaseModel):
    execution: ExecutionOut
    operations: list[OperationOut] = Field(description="Every operation, in creation order.")
    events: list[HistoryEventOut] = Field(description="A page of the history, oldest first.")
    next_after_seq: int | None = Field(
        description="Ask again with `after_seq` set to this for the next page of events."
    )


class CallbackOut(BaseModel):
    """A callback after its completion or heartbeat."""

    callback_id: str
    execution_id: str
    execution_status: ExecutionStatusName
    operation_id: str
    name: str | None
    status: OperationStatusName
    callback_timeout_at: str | None
    heartbeat_timeout_at: str | None
    updated_at: str | None


class WorkflowOut(BaseModel):
    name: str
    description: str | None = Field(description="The first line of its docstring.")


class WorkflowListOut(BaseModel):
    workflows: list[WorkflowOut]
