"""Request bodies, validated by pydantic at the HTTP edge."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
