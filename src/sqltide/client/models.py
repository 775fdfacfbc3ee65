"""Value objects the client hands back: statements, result pages and columns.

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


def _required_time(data: Mapping[str, Any], key: str) -> datetime:
    value = parse_time(data.get(key))
    if value is None:
        raise ValueError(f"the API answer has no {key!r}")
    return value
