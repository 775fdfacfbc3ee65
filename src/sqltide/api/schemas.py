"""Request bodies and answers at the HTTP edge, and how /openapi.json describes them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import models_json_schema

ParamValue = str | int | float | bool | None


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, ParamValue] | None = Field(
        default=None, description="Values for the `:name` parameters in the SQL."
    )
    statement_name: str | None = Field(default=None, max_length=2048)
    client_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Idempotency key: the same token and request give back the same statement.",
    )
    with_event: bool = Field(default=False, description="Emit a status event when it ends.")
    warehouse: str | None = Field(default=None, description="Warehouse name (default: `default`).")
    session_id: str | None = Field(default=None, description="Run in this open session.")
    session_keep_alive_seconds: int | None = Field(
        default=None,
        ge=1,
        le=86_400,
        description="Open a session kept this long after each statement.",
    )


class ExecuteBody(_Common):
    sql: str = Field(description="One SQL statement; parameters written `:name`.")


class BatchBody(_Common):
    sqls: list[str] = Field(description="Statements run in order (1 to 40).")
    mode: Literal["transaction", "auto_commit"] = Field(
        default="transaction",
        description="`transaction`: all or nothing; `auto_commit`: each commits on its own.",
    )


class ErrorBody(BaseModel):
    code: str = Field(description="Stable error code, e.g. `statement_not_found`.")
    message: str = Field(description="What went wrong, for a person.")
    details: dict[str, object] = Field(default_factory=dict)


class ErrorEnvelope(BaseModel):
    """Every error answer has this shape."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in {
        400: "Invalid request",
        401: "Missing or invalid API key",
        404: "Unknown id (or another principal's)",
        409: "Conflict with the current state",
        413: "Body or SQL too large",
        422: "Invalid content",
        429: "Too many requests",
        500: "Unexpected server error",
        503: "Warehouse unreachable",
    }.items()
}


# -- answers (documentation of the shapes in docs/api.md; the handlers build them directly) --
class StatementError(BaseModel):
    code: str
    message: str
    sqlstate: str | None = None
    position: int | None = Field(default=None, description="1-based character in the SQL")
    details: dict[str, object] = Field(default_factory=dict)


class SubStatementOut(BaseModel):
    id: str = Field(description="`<batch id>:<n>`, n from 1")
    status: Literal["SUBMITTED", "PICKED", "STARTED", "FINISHED", "FAILED", "ABORTED"]
    query_string: str
    created_at: str
    updated_at: str
    started_at: str | None
    ended_at: str | None
    duration_ns: int | None
    result_rows: int | None
    result_size: int | None
    has_result_set: bool
    error: StatementError | None


class StatementOut(SubStatementOut):
    statement_name: str | None
    query_strings: list[str] | None
    is_batch: bool
    batch_mode: Literal["transaction", "auto_commit"] | None
    warehouse: str
    parameters: dict[str, ParamValue] | None
    principal: str
    client_token: str | None
    with_event: bool
    session_id: str | None
    result_expires_at: str | None
    sub_statements: list[SubStatementOut] | None = None


class ColumnOut(BaseModel):
    name: str
    type_name: str
    nullable: bool
    precision: int | None
    scale: int | None
    length: int | None


class ResultPageOut(BaseModel):
    id: str
    columns: list[ColumnOut]
    rows: list[list[object]]
    total_rows: int
    next_token: str | None


class StatementListOut(BaseModel):
    statements: list[StatementOut]
    next_token: str | None


# -- bodies taken as raw JSON ----------------------------------------------------------------
#: Models of request bodies a route takes as raw JSON (see :func:`described`).
_DESCRIBED: dict[str, type[BaseModel]] = {}


def described(model: type[BaseModel]) -> WithJsonSchema:
    """Describe a body taken as raw JSON (``dict[str, Any]``) as ``model`` in /openapi.json.

    The events endpoints take the body as it is and let the service judge it with the model:
    its problems then come back in sqltide's words and codes (``invalid_rule``,
    ``invalid_filter_policy``, one error per PutEvents entry) rather than as pydantic's 422.
    """
    _DESCRIBED[model.__name__] = model
    return WithJsonSchema({"$ref": f"#/components/schemas/{model.__name__}"})


def add_described_models(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (an OpenAPI document) with the :func:`described` models as components."""
    _, found = models_json_schema(
        [(model, "validation") for model in _DESCRIBED.values()],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in found.get("$defs", {}).items():
        components.setdefault(name, definition)
    return schema
