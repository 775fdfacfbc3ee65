"""Value objects the state store keeps: statements, sessions and API keys."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, fields
from typing import Any


class StatementStatus(enum.StrEnum):
    """Where a statement is in its life (the Redshift Data API's statuses)."""

    #: Accepted and recorded; waiting for a worker.
    SUBMITTED = "SUBMITTED"
    #: Claimed by a worker under a lease; about to run.
    PICKED = "PICKED"
    #: Running on the warehouse.
    STARTED = "STARTED"
    #: Ended successfully; its result (if any) can be fetched.
    FINISHED = "FINISHED"
    #: Ended with an error (the SQL failed, or the worker running it was lost).
    FAILED = "FAILED"
    #: Stopped on request before it ended.
    ABORTED = "ABORTED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({StatementStatus.FINISHED, StatementStatus.FAILED, StatementStatus.ABORTED})
ACTIVE = frozenset({StatementStatus.SUBMITTED, StatementStatus.PICKED, StatementStatus.STARTED})


@dataclass(slots=True)
class StatementRecord:
    """One row of the ``statements`` table: a statement, a batch, or a batch's sub-statement."""

    id: str
    principal: str
    warehouse: str
    status: StatementStatus
    query_string: str
    created_at: float
    updated_at: float
    parent_id: str | None = None
    idx: int = 0
    query_strings: list[str] | None = None
    parameters: dict[str, Any] | None = None
    statement_name: str | None = None
    client_token: str | None = None
    request_hash: str | None = None
    with_event: bool = False
    is_batch: bool = False
    batch_mode: str | None = None
    session_id: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    result_rows: int | None = None
    result_size: int | None = None
    has_result_set: bool = False
    result_meta: str | None = None
    result_expired: bool = False
    error: dict[str, Any] | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    attempts: int = 0
    #: What the principal's grant allowed when the statement was accepted (``read_write`` or
    #: ``read_only``; None for statements recorded before grants existed: unrestricted), and
    #: the database role it runs as. Recorded at submit, so the worker acts on the record.
    access: str | None = None
    db_role: str | None = None
    #: Where it came from when submitted through the Data API face (``sqltide.dataapi``):
    #: cluster or workgroup, database, db_user, secret_arn, result_format, the caller's ARN
    #: and access key id (``dataapi/statements.py``). None for statements from ``/v1``.
    origin: dict[str, Any] | None = None

    _JSON = ("query_strings", "parameters", "error", "origin")
    _BOOL = ("with_event", "is_batch", "has_result_set", "result_expired", "cancel_requested")

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name in _STATEMENT_FIELDS:
            value = getattr(self, name)
            if name in self._JSON:
                value = None if value is None else json.dumps(value)
            elif name in self._BOOL:
                value = int(bool(value))
            elif name == "status":
                value = value.value
            row[name] = value
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StatementRecord:
        kwargs = dict(row)
        for name in cls._JSON:
            if kwargs.get(name) is not None:
                kwargs[name] = json.loads(kwargs[name])
        for name in cls._BOOL:
            kwargs[name] = bool(kwargs.get(name))
        kwargs["status"] = StatementStatus(kwargs["status"])
        return cls(**kwargs)


_STATEMENT_FIELDS = tuple(f.name for f in fields(StatementRecord))


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session: statements that run in order on one warehouse connection."""

    id: str
    principal: str
    warehouse: str
    keep_alive_seconds: int
    created_at: float
    expires_at: float
    closed_at: float | None = None
    owner: str | None = None
    #: The Data API origin of the statement that opened it (see ``StatementRecord.origin``).
    origin: dict[str, Any] | None = None

    def to_row(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["origin"] = None if self.origin is None else json.dumps(self.origin)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SessionRecord:
        kwargs = dict(row)
        if kwargs.get("origin") is not None:
            kwargs["origin"] = json.loads(kwargs["origin"])
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key; only the SHA-256 of the secret part is kept.

    A key may also carry AWS credentials for the Data API face (``sqltide.keys``): an access
    key id and the secret access key sealed with the server's secret (it must be read back to
    verify signatures), and optionally the ARN its caller appears as.
    """

    id: str
    principal: str
    key_hash: str
    created_at: float
    name: str | None = None
    is_admin: bool = False
    revoked_at: float | None = None
    last_used_at: float | None = None
    aws_access_key_id: str | None = None
    aws_secret_sealed: str | None = field(default=None, repr=False)
    aws_arn: str | None = None


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """A principal's right to use one warehouse.

    ``access`` is ``read_write`` or ``read_only``; ``db_role`` is the database role the
    principal's statements and catalog calls run as (PostgreSQL warehouses; None: the
    warehouse URL's own user).
    """

    principal: str
    warehouse: str
    access: str
    created_at: float
    db_role: str | None = None


@dataclass(frozen=True, slots=True)
class StatementFilter:
    """What :meth:`Store.list_statements` selects."""

    principal: str
    status: StatementStatus | None = None
    name_prefix: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    limit: int = 100
    #: Keyset cursor: (created_at, id) of the last row of the previous page.
    after: tuple[float, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: What a session can be, as ListSessions shows it: open and idle, open and running a
#: statement, or closed (closed by the worker, or past its keep-alive while idle).
SESSION_STATES = ("AVAILABLE", "BUSY", "CLOSED")


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """What :meth:`Store.list_sessions` selects: a principal's sessions, newest first."""

    principal: str
    #: The time the states are judged at (an idle session past ``expires_at`` is CLOSED).
    now: float
    session_id: str | None = None
    #: Which states to list (of :data:`SESSION_STATES`).
    states: frozenset[str] = frozenset(SESSION_STATES)
    warehouse: str | None = None
    created_after: float | None = None
    limit: int = 100
    #: Keyset cursor: (created_at, id) of the last row of the previous page.
    after: tuple[float, str] | None = None
