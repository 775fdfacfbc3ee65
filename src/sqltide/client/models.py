"""Value objects the client hands back: statements, result pages, columns, workflow
executions, their operations and history, callbacks.

Each mirrors one JSON shape of the HTTP API (see ``docs/api.md``). ``from_dict`` ignores keys it
does not know, so a newer server does not break an older client; ``to_dict`` gives the JSON
shape back (times as ISO 8601 in UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: The statuses a statement never leaves.
TERMINAL_STATUSES = frozenset({"FINISHED", "FAILED", "ABORTED"})


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time from the API as an aware ``datetime`` (UTC when it names no zone)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_time(value: datetime | None) -> str | None:
    """An aware or naive (taken as UTC) ``datetime`` as the API writes it: ``…123456Z``."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Column:
    """One result column's metadata."""

    name: str
    type_name: str
    nullable: bool = True
    precision: int | None = None
    scale: int | None = None
    length: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Column:
        """A column from the API's column metadata object."""
        return cls(
            name=data["name"],
            type_name=data.get("type_name", ""),
            nullable=data.get("nullable", True),
            precision=data.get("precision"),
            scale=data.get("scale"),
            length=data.get("length"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON shape of this column."""
        return {
            "name": self.name,
            "type_name": self.type_name,
            "nullable": self.nullable,
            "precision": self.precision,
            "scale": self.scale,
            "length": self.length,
        }


@dataclass(frozen=True, slots=True)
class SubStatement:
    """One statement of a batch; its id is ``<batch id>:<n>``, n from 1."""

    id: str
    status: str
    query_string: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ns: int | None = None
    result_rows: int | None = None
    result_size: int | None = None
    has_result_set: bool = False
    error: dict[str, Any] | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the sub-statement has ended (FINISHED, FAILED or ABORTED)."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubStatement:
        """A sub-statement from its entry in a batch's ``sub_statements``."""
        return cls(
            id=data["id"],
            status=data["status"],
            query_string=data.get("query_string", ""),
            created_at=_required_time(data, "created_at"),
            updated_at=_required_time(data, "updated_at"),
            started_at=parse_time(data.get("started_at")),
            ended_at=parse_time(data.get("ended_at")),
            duration_ns=data.get("duration_ns"),
            result_rows=data.get("result_rows"),
            result_size=data.get("result_size"),
            has_result_set=bool(data.get("has_result_set", False)),
            error=data.get("error"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON shape of this sub-statement."""
        return {
            "id": self.id,
            "status": self.status,
            "query_string": self.query_string,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
            "started_at": format_time(self.started_at),
            "ended_at": format_time(self.ended_at),
            "duration_ns": self.duration_ns,
            "result_rows": self.result_rows,
            "result_size": self.result_size,
            "has_result_set": self.has_result_set,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement's (or a batch's) description, as ``GET /v1/statements/{id}`` answers it."""

    id: str
    status: str
    query_string: str
    created_at: datetime
    updated_at: datetime
    statement_name: str | None = None
    query_strings: tuple[str, ...] | None = None
    is_batch: bool = False
    batch_mode: str | None = None
    warehouse: str | None = None
    parameters: dict[str, Any] | None = None
    principal: str | None = None
    client_token: str | None = None
    with_event: bool = False
    session_id: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ns: int | None = None
    result_rows: int | None = None
    result_size: int | None = None
    has_result_set: bool = False
    result_expires_at: datetime | None = None
    error: dict[str, Any] | None = None
    sub_statements: tuple[SubStatement, ...] = ()

    @property
    def is_terminal(self) -> bool:
        """Whether the statement has ended (FINISHED, FAILED or ABORTED)."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Statement:
        """A statement from the API's description object (list entries have no sub-statements)."""
        query_strings = data.get("query_strings")
        return cls(
            id=data["id"],
            status=data["status"],
            query_string=data.get("query_string", ""),
            created_at=_required_time(data, "created_at"),
            updated_at=_required_time(data, "updated_at"),
            statement_name=data.get("statement_name"),
            query_strings=None if query_strings is None else tuple(query_strings),
            is_batch=bool(data.get("is_batch", False)),
            batch_mode=data.get("batch_mode"),
            warehouse=data.get("warehouse"),
            parameters=data.get("parameters"),
            principal=data.get("principal"),
            client_token=data.get("client_token"),
            with_event=bool(data.get("with_event", False)),
            session_id=data.get("session_id"),
            started_at=parse_time(data.get("started_at")),
            ended_at=parse_time(data.get("ended_at")),
            duration_ns=data.get("duration_ns"),
            result_rows=data.get("result_rows"),
            result_size=data.get("result_size"),
            has_result_set=bool(data.get("has_result_set", False)),
            result_expires_at=parse_time(data.get("result_expires_at")),
            error=data.get("error"),
            sub_statements=tuple(
                SubStatement.from_dict(sub) for sub in data.get("sub_statements") or ()
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON shape of this description."""
        return {
            "id": self.id,
            "status": self.status,
            "statement_name": self.statement_name,
            "query_string": self.query_string,
            "query_strings": None if self.query_strings is None else list(self.query_strings),
            "is_batch": self.is_batch,
            "batch_mode": self.batch_mode,
            "warehouse": self.warehouse,
            "parameters": self.parameters,
            "principal": self.principal,
            "client_token": self.client_token,
            "with_event": self.with_event,
            "session_id": self.session_id,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
            "started_at": format_time(self.started_at),
            "ended_at": format_time(self.ended_at),
            "duration_ns": self.duration_ns,
            "result_rows": self.result_rows,
            "result_size": self.result_size,
            "has_result_set": self.has_result_set,
            "result_expires_at": format_time(self.result_expires_at),
            "error": self.error,
            "sub_statements": [sub.to_dict() for sub in self.sub_statements],
        }


@dataclass(frozen=True, slots=True)
class ResultPage:
    """One page of a statement's result; ``next_token`` is ``None`` on the last page."""

    columns: tuple[Column, ...]
    rows: list[list[Any]]
    total_rows: int | None = None
    next_token: str | None = None
    id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResultPage:
        """A page from the JSON answer of ``GET /v1/statements/{id}/result``."""
        return cls(
            columns=tuple(Column.from_dict(c) for c in data.get("columns") or ()),
            rows=list(data.get("rows") or []),
            total_rows=data.get("total_rows"),
            next_token=data.get("next_token"),
            id=data.get("id"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON shape of this page."""
        return {
            "id": self.id,
            "columns": [c.to_dict() for c in self.columns],
            "rows": self.rows,
            "total_rows": self.total_rows,
            "next_token": self.next_token,
        }


#: The statuses an execution never leaves.
EXECUTION_TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})


@dataclass(frozen=True, slots=True)
class Execution:
    """A workflow execution's description, as ``GET /v1/executions/{id}`` answers it.

    ``input`` and ``result`` are JSON values (what the workflow's default serdes wrote);
    ``error`` is ``{"type", "message", "data", "stack"}``.
    """

    id: str
    workflow: str
    name: str
    status: str
    created_at: datetime
    updated_at: datetime
    principal: str | None = None
    input: Any = None
    result: Any = None
    error: dict[str, Any] | None = None
    ended_at: datetime | None = None
    duration_ns: int | None = None
    timeout_at: datetime | None = None
    expires_at: datetime | None = None
    next_run_at: datetime | None = None
    replays: int = 0
    parent_id: str | None = None
    parent_operation_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the execution has ended (SUCCEEDED, FAILED, TIMED_OUT or STOPPED)."""
        return self.status in EXECUTION_TERMINAL_STATUSES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Execution:
        """An execution from the API's description object."""
        return cls(
            id=data["id"],
            workflow=data.get("workflow", ""),
            name=data.get("name", ""),
            status=data["status"],
            created_at=_required_time(data, "created_at"),
            updated_at=_required_time(data, "updated_at"),
            principal=data.get("principal"),
            input=data.get("input"),
            result=data.get("result"),
            error=data.get("error"),
            ended_at=parse_time(data.get("ended_at")),
            duration_ns=data.get("duration_ns"),
            timeout_at=parse_time(data.get("timeout_at")),
            expires_at=parse_time(data.get("expires_at")),
            next_run_at=parse_time(data.get("next_run_at")),
            replays=int(data.get("replays") or 0),
            parent_id=data.get("parent_id"),
            parent_operation_id=data.get("parent_operation_id"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON shape of this description."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "name": self.name,
            "principal": self.principal,
            "status": self.status,
            "input": self.input,
            "result": self.result,
            "error": self.error,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
            "ended_at": format_time(self.ended_at),
            "duration_ns": self.duration_ns,
            "timeout_at": format_time(self.timeout_at),
            "expires_at": format_time(self.expires_at),
            "next_run_at": format_time(self.next_run_at),
            "replays": self.replays,
            "parent_id": self.parent_id,
            "parent_operation_id": self.parent_operation_id,
        }


#: An operation's fields that are times (ISO 8601 in the API).
_OPERATION_TIMES = (
    "started_at",
    "ended_at",
    "updated_at",
    "next_attempt_at",
    "wake_at",
    "callback_timeout_at",
    "heartbeat_timeout_at",
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One durable operation of an execution (a step, a wait, a callback, a context...).

    ``id`` is its position in its context prefixed by the context's (``3-1``); ``parent_id``
    the context it ran in (a child context, a map item, a parallel branch).
    """

    id: str
    type: str
    sub_type: str
    status: str
    seq: int = 0
    parent_id: str | None = None
    name: str | None = None
    attempt: int = 0
    result: Any = None
    error: dict[str, Any] | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime | None = None
    duration_ns: int | None = None
    next_attempt_at: datetime | None = None
    wake_at: datetime | None = None
    callback_id: str | None = None
    callback_timeout_at: datetime | None = None
    heartbeat_timeout_at: datetime | None = None
    child_execution_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the operation has ended (it never changes again)."""
        return self.status in ("SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "STOPPED")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Operation:
        """An operation from its entry in ``GET /v1/executions/{id}/history``."""
        times = {key: parse_time(data.get(key)) for key in _OPERATION_TIMES}
        return cls(
            id=data["id"],
            type=data["type"],
            sub_type=data.get("sub_type", ""),
            status=data["status"],
            seq=int(data.get("seq") or 0),
            parent_id=data.get("parent_id"),
            name=data.get("name"),
            attempt=int(data.get("attempt") or 0),
            result=data.get("result"),
            error=data.get("error"),
            duration_ns=data.get("duration_ns"),
            callback_id=data.get("callback_id"),
            child_execution_id=data.get("child_execution_id"),
            **times,
        )

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON shape of this operation."""
        out: dict[str, Any] = {
            "id": self.id,
            "parent_id": self.parent_id,
            "seq": self.seq,
            "type": self.type,
            "sub_type": self.sub_type,
            "name": self.name,
            "status": self.status,
            "attempt": self.attempt,
            "result": self.result,
            "error": self.error,
            "duration_ns": self.duration_ns,
            "callback_id": self.callback_id,
            "child_execution_id": self.child_execution_id,
        }
        out.update({key: format_time(getattr(self, key)) for key in _OPERATION_TIMES})
        return out


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One line of an execution's history (``resumed``, ``succeeded``, ``retry_scheduled``...)."""

    seq: int
    at: datetime
    event: str
    operation_id: str | None = None
    attempt: int | None = None
    details: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEvent:
        return cls(
            seq=int(data["seq"]),
            at=_required_time(data, "at"),
            event=data["event"],
            operation_id=data.get("operation_id"),
            attempt=data.get("attempt"),
            details=data.get("details"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": format_time(self.at),
            "event": self.event,
            "operation_id": self.operation_id,
            "attempt": self.attempt,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class ExecutionHistory:
    """An execution, every one of its operations (creation order) and its history events."""

    execution: Execution
    operations: tuple[Operation, ...] = ()
    events: tuple[HistoryEvent, ...] = ()

    def operation(self, name: str) -> Operation | None:
        """The first operation named ``name``, if any."""
        return next((op for op in self.operations if op.name == name), None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionHistory:
        """From one answer of ``GET /v1/executions/{id}/history`` (its page of events)."""
        return cls(
            execution=Execution.from_dict(data["execution"]),
            operations=tuple(Operation.from_dict(op) for op in data.get("operations") or ()),
            events=tuple(HistoryEvent.from_dict(ev) for ev in data.get("events") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON shape (every event, so no ``next_after_seq``)."""
        return {
            "execution": self.execution.to_dict(),
            "operations": [op.to_dict() for op in self.operations],
            "events": [ev.to_dict() for ev in self.events],
        }


@dataclass(frozen=True, slots=True)
class CallbackState:
    """A callback as its completion or heartbeat left it, and its execution's status."""

    callback_id: str
    execution_id: str
    execution_status: str
    operation_id: str
    status: str
    name: str | None = None
    callback_timeout_at: datetime | None = None
    heartbeat_timeout_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallbackState:
        return cls(
            callback_id=data["callback_id"],
            execution_id=data["execution_id"],
            execution_status=data.get("execution_status", ""),
            operation_id=data.get("operation_id", ""),
            status=data["status"],
            name=data.get("name"),
            callback_timeout_at=parse_time(data.get("callback_timeout_at")),
            heartbeat_timeout_at=parse_time(data.get("heartbeat_timeout_at")),
            updated_at=parse_time(data.get("updated_at")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "callback_id": self.callback_id,
            "execution_id": self.execution_id,
            "execution_status": self.execution_status,
            "operation_id": self.operation_id,
            "name": self.name,
            "status": self.status,
            "callback_timeout_at": format_time(self.callback_timeout_at),
            "heartbeat_timeout_at": format_time(self.heartbeat_timeout_at),
            "updated_at": format_time(self.updated_at),
        }


def _required_time(data: Mapping[str, Any], key: str) -> datetime:
    value = parse_time(data.get(key))
    if value is None:
        raise ValueError(f"the API answer has no {key!r}")
    return value
