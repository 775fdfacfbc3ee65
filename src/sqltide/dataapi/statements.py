"""Statements over the Data API: ExecuteStatement, BatchExecuteStatement, DescribeStatement,
CancelStatement, ListStatements, ListSessions.

A statement submitted here is an ordinary sqltide statement (``StatementService.submit``):
``/v1`` shows it, and ``DescribeStatement`` shows one submitted through ``/v1``. What only
the Data API has (cluster or workgroup, database, ``DbUser``, ``SecretArn``, result format,
the caller's ARN) is recorded on it as its ``origin`` (:func:`origin_of` reads it back).

Answers carry exactly the model's members: times as epoch seconds, ``Duration`` in
nanoseconds, and where AWS has no value yet or none applies, AWS's fillers: ``Duration``,
``ResultRows`` and ``ResultSize`` are -1 until the statement ends, ``RedshiftPid`` and
``RedshiftQueryId`` are 0 (no Redshift process runs a sqltide statement). A failed
statement's ``Error`` reads like Redshift's (``ERROR: syntax error at or near "FRM"``); its
sqltide code and SQLSTATE stay in ``GET /v1/statements/{id}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..api.calls import off_loop, write
from ..statements.requests import StatementRequest
from ..statements.service import StatementService, StatementView
from ..store import SessionRecord, StatementRecord, StatementStatus
from .protocol import DataApiCall, operation, read
from .warehouses import Target, resolve, validation, warehouse_map

#: sqltide's batch modes by the Data API's ExecutionMode, and back.
EXECUTION_MODES = {"TRANSACTION": "transaction", "AUTO_COMMIT": "auto_commit"}
_MODE_NAMES = {v: k for k, v in EXECUTION_MODES.items()}
#: Rows one ListStatements/ListSessions call looks at before answering with what it found
#: and a NextToken (filters that the store cannot apply are applied to pages of this many).
_SCAN_PAGE = 100
_SCAN_PAGES = 10
#: DuckDB starts its messages with the kind of error ("Parser Error: ..."); Redshift does not.
_KIND_PREFIX = re.compile(r"^[A-Z][A-Za-z ]*? Error: ")


# -- origin ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Origin:
    """What the Data API recorded on a statement (or session), read back for answers.

    Statements submitted through ``/v1`` have no origin: they show their warehouse as the
    cluster identifier, its own database, and the JSON result format.
    """

    cluster: str | None
    workgroup: str | None
    database: str | None
    db_user: str | None
    secret_arn: str | None
    result_format: str
    arn: str | None

    def location(self) -> dict[str, Any]:
        """The connection members of an answer (those AWS leaves out when unset)."""
        out: dict[str, Any] = {}
        for key, value in (
            ("ClusterIdentifier", self.cluster),
            ("WorkgroupName", self.workgroup),
            ("Database", self.database),
            ("DbUser", self.db_user),
            ("SecretArn", self.secret_arn),
        ):
            if value is not None:
                out[key] = value
        return out


def origin_of(call: DataApiCall, rec: StatementRecord | SessionRecord) -> Origin:
    """The Data API origin of a statement or session (defaults for one from ``/v1``)."""
    data = rec.origin or {}
    if not data:
        wmap = warehouse_map(call.runtime)
        known = rec.warehouse in wmap.engines
        return Origin(
            cluster=rec.warehouse,
            workgroup=None,
            database=wmap.own_database(rec.warehouse) if known else None,
            db_user=None,
            secret_arn=None,
            result_format="JSON",
            arn=None,
        )
    return Origin(
        cluster=data.get("cluster"),
        workgroup=data.get("workgroup"),
        database=data.get("database"),
        db_user=data.get("db_user"),
        secret_arn=data.get("secret_arn"),
        result_format=data.get("result_format") or "JSON",
        arn=data.get("arn"),
    )


def result_format(rec: StatementRecord) -> str:
    """``JSON`` or ``CSV``: the format the statement's result is fetched in
    (``GetStatementResult`` for JSON, ``GetStatementResultV2`` for CSV)."""
    return str((rec.origin or {}).get("result_format") or "JSON")


# -- submitting --------------------------------------------------------------------------------
def _parameters(body: dict[str, Any]) -> dict[str, Any] | None:
    given = body.get("Parameters")
    if given is None:
        return None
    out: dict[str, Any] = {}
    for item in given:
        name = item["name"]
        if name in out:
            raise validation(f"Parameter {name!r} is given more than once")
        out[name] = item["value"]  # strings, as Redshift takes them: the engine casts
    return out


def _target(call: DataApiCall, body: dict[str, Any]) -> tuple[Target, dict[str, Any] | None]:
    """Where a submit runs, and the origin of the session it runs in (if any). Blocking."""
    runtime = call.runtime
    cluster, workgroup = body.get("ClusterIdentifier"), body.get("WorkgroupName")
    database = body.get("Database")
    session_id = body.get("SessionId")
    if session_id is None:
        target = resolve(
            warehouse_map(runtime),
            runtime.statements.grants,
            call.principal,
            is_admin=call.is_admin,
            cluster=cluster,
            workgroup=workgroup,
            database=database,
        )
        return target, None
    # In a session: it knows where it runs; names given as well must agree with it.
    if body.get("SessionKeepAliveSeconds"):
        raise validation(
            "SessionKeepAliveSeconds opens a new session; it cannot be given with SessionId"
        )
    session = runtime.store.get_session(session_id)
    if session is None or session.principal != call.principal:
        raise errors.SessionNotFound(details={"session_id": session_id})
    sorigin = session.origin or {}
    if cluster is not None or workgroup is not None:
        named = resolve(
            warehouse_map(runtime),
            runtime.statements.grants,
            call.principal,
            is_admin=call.is_admin,
            cluster=cluster,
            workgroup=workgroup,
            database=database or sorigin.get("database"),
        )
        if named.warehouse != session.warehouse:
            raise validation(
                f"Session {session_id} runs on another cluster or workgroup than "
                f"{cluster or workgroup!r}; leave ClusterIdentifier and WorkgroupName out "
                "when you give SessionId"
            )
    own = sorigin.get("database") or warehouse_map(runtime).own_database(session.warehouse)
    if database is not None and database != own:
        raise validation(f"Session {session_id} is connected to database {own!r}, not {database!r}")
    target = Target(
        session.warehouse,
        own,
        sorigin.get("cluster") if sorigin else session.warehouse,
        sorigin.get("workgroup"),
    )
    return target, sorigin


def _submit_blocking(
    call: DataApiCall, body: dict[str, Any], sqls: tuple[str, ...], is_batch: bool
) -> StatementView:
    target, session_origin = _target(call, body)
    origin = {
        "api": "redshift-data",
        "cluster": target.cluster,
        "workgroup": target.workgroup,
        "database": target.database,
        "db_user": body.get("DbUser", (session_origin or {}).get("db_user")),
        "secret_arn": body.get("SecretArn", (session_origin or {}).get("secret_arn")),
        "result_format": body.get("ResultFormat", "JSON"),
        "arn": call.arn,
        "access_key_id": call.access_key_id,
    }
    keep = body.get("SessionKeepAliveSeconds") or None  # 0: no session, as AWS reads it
    req = StatementRequest(
        sqls=sqls,
        is_batch=is_batch,
        parameters=_parameters(body),
        statement_name=body.get("StatementName"),
        client_token=body.get("ClientToken"),
        with_event=bool(body.get("WithEvent", False)),
        warehouse=target.warehouse,
        session_id=body.get("SessionId"),
        session_keep_alive_seconds=keep,
        batch_mode=EXECUTION_MODES[body.get("ExecutionMode", "TRANSACTION")],
        origin={k: v for k, v in origin.items() if v is not None},
    )
    try:
        view, _ = call.runtime.statements.submit(call.principal, req, is_admin=call.is_admin)
    except errors.SessionBusy as exc:
        raise validation(
            f"Session {req.session_id} is busy: statement {exc.details.get('statement_id')} "
            "is running in it. A session runs one statement at a time and queues none: "
            "wait for it to end (DescribeStatement)"
        ) from exc
    return view


async def _submit(
    call: DataApiCall, body: dict[str, Any], sqls: tuple[str, ...], *, is_batch: bool
) -> dict[str, Any]:
    # The grant and session reads and the write together: on the loop if the store's writer
    # is free this moment, else in one hop to a thread (api/calls.py).
    view = await write(call.runtime.store, _submit_blocking, call, body, sqls, is_batch)
    wait = body.get("WaitTimeSeconds")
    if wait:
        view = await describe_wait(call, view.record.id, wait)
    rec = view.record
    out: dict[str, Any] = {
        "Id": rec.id,
        "CreatedAt": rec.created_at,
        **origin_of(call, rec).location(),
    }
    if rec.session_id is not None:
        out["SessionId"] = rec.session_id
    if wait:
        out.update(Status=rec.status.value, HasResultSet=rec.has_result_set, RedshiftPid=0)
    return out


@operation("ExecuteStatement")
async def execute_statement(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    return await _submit(call, body, (body["Sql"],), is_batch=False)


@operation("BatchExecuteStatement")
async def batch_execute_statement(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    return await _submit(call, body, tuple(body["Sqls"]), is_batch=True)


# -- describing --------------------------------------------------------------------------------
async def describe_wait(call: DataApiCall, statement_id: str, wait: float) -> StatementView:
    """``describe_wait`` of the service, its too-many-waiters error as AWS names it."""
    service: StatementService = call.runtime.statements
    try:
        return await service.describe_wait(call.principal, statement_id, wait)
    except errors.TooManyRequests as exc:
        raise errors.DataApiError(
            "Too many requests are waiting (WaitTimeSeconds) right now; retry without waiting, "
            "or later",
            details={"aws_type": "ActiveWaitingRequestsExceededException"},
        ) from exc


def redshift_error(error: dict[str, Any] | None) -> str | None:
    """A recorded error as Redshift words it: ``ERROR: <message>``."""
    if not error:
        return None
    message = _KIND_PREFIX.sub("", str(error.get("message") or "").strip(), count=1)
    return f"ERROR: {message}" if message else "ERROR: the statement failed"


def _ended(rec: StatementRecord) -> bool:
    return rec.status.is_terminal


def _duration(rec: StatementRecord) -> int:
    if not _ended(rec) or rec.started_at is None or rec.ended_at is None:
        return -1
    return max(0, round((rec.ended_at - rec.started_at) * 1e9))


def _rows_and_size(rec: StatementRecord) -> dict[str, int]:
    if not _ended(rec):
        return {"ResultRows": -1, "ResultSize": -1}
    finished = rec.status is StatementStatus.FINISHED
    rows = rec.result_rows if rec.result_rows is not None else (0 if finished else -1)
    size = rec.result_size if rec.result_size is not None else (0 if finished else -1)
    return {"ResultRows": rows, "ResultSize": size}


def _common(rec: StatementRecord) -> dict[str, Any]:
    """The members a statement and a sub-statement share."""
    out: dict[str, Any] = {
        "Id": rec.id,
        "Duration": _duration(rec),
        "Status": rec.status.value,
        "CreatedAt": rec.created_at,
        "UpdatedAt": rec.updated_at,
        "QueryString": rec.query_string,
        **_rows_and_size(rec),
        "RedshiftQueryId": 0,
        "HasResultSet": rec.has_result_set,
    }
    error = redshift_error(rec.error) if rec.status is not StatementStatus.FINISHED else None
    if error is not None:
        out["Error"] = error
    return out


def query_parameters(parameters: dict[str, Any] | None) -> list[dict[str, str]] | None:
    """Parameters as the Data API lists them: ``[{"name", "value"}]``, values as text."""
    if not parameters:
        return None
    return [
        {"name": name, "value": value if isinstance(value, str) else json.dumps(value)}
        for name, value in parameters.items()
    ]


def describe_dict(call: DataApiCall, view: StatementView) -> dict[str, Any]:
    """A DescribeStatement answer."""
    rec = view.record
    origin = origin_of(call, rec)
    out = {**_common(rec), **origin.location(), "RedshiftPid": 0}
    failed = [s for s in view.sub_statements if s.status is StatementStatus.FAILED and s.error]
    if failed and "Error" in out:
        # Redshift reports a failed batch with the error of the statement that failed.
        out["Error"] = redshift_error(failed[0].error)
    out["ResultFormat"] = origin.result_format
    params = query_parameters(rec.parameters)
    if params is not None:
        out["QueryParameters"] = params
    if rec.session_id is not None:
        out["SessionId"] = rec.session_id
    if rec.is_batch:
        if rec.batch_mode in _MODE_NAMES:
            out["ExecutionMode"] = _MODE_NAMES[rec.batch_mode]
        out["SubStatements"] = [_common(sub) for sub in view.sub_statements]
    return out


@operation("DescribeStatement")
async def describe_statement(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    statement_id = body["Id"]
    wait = body.get("WaitTimeSeconds")
    if wait:
        view = await describe_wait(call, statement_id, wait)
    else:
        service = call.runtime.statements
        view = await read(call, service.describe, call.principal, statement_id)
    return describe_dict(call, view)


# -- cancelling --------------------------------------------------------------------------------
@operation("CancelStatement")
async def cancel_statement(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    service = call.runtime.statements
    try:
        # A write and a wake-up (a NOTIFY on PostgreSQL): never on the event loop.
        await off_loop(service.cancel, call.principal, body["Id"])
    except errors.InvalidState as exc:
        status = exc.details.get("status", "ended")
        raise validation(f"Could not cancel a query that is already in {status} state.") from exc
    return {"Status": True}


# -- listing -----------------------------------------------------------------------------------
def _scan(
    fetch: Callable[[str | None, int], tuple[list[Any], str | None]],
    keep: Callable[[Any], bool] | None,
    limit: int,
    cursor_after: Callable[[Any], str],
    token: str | None,
) -> tuple[list[Any], str | None]:
    """Up to ``limit`` items that ``keep`` accepts, from pages ``fetch(token, n)`` gives.

    Without ``keep`` it is one page. With it, at most ``_SCAN_PAGES`` pages are read; a call
    that found fewer than ``limit`` answers with those and a token to go on from (AWS's lists
    may also answer short pages with a NextToken).
    """
    if keep is None:
        return fetch(token, limit)
    found: list[Any] = []
    for _ in range(_SCAN_PAGES):
        rows, token = fetch(token, _SCAN_PAGE)
        for n, row in enumerate(rows):
            if not keep(row):
                continue
            found.append(row)
            if len(found) == limit:
                more = n + 1 < len(rows) or token is not None
                return found, cursor_after(row) if more else None
        if token is None:
            break
    return found, token


@dataclass(frozen=True, slots=True)
class _Where:
    """What a list selects beyond its status: a warehouse, and a filter for what the store
    cannot select (Database, RoleLevel=false). ``nowhere``: the name given reaches no
    warehouse, so nothing ran there."""

    nowhere: bool = False
    warehouse: str | None = None
    keep: Callable[[Any], bool] | None = None


def _where(call: DataApiCall, body: dict[str, Any]) -> _Where:
    cluster, workgroup = body.get("ClusterIdentifier"), body.get("WorkgroupName")
    if cluster is not None and workgroup is not None:
        raise validation(
            "ClusterIdentifier and WorkgroupName cannot both be specified; give one of them."
        )
    database = body.get("Database")
    name = cluster or workgroup
    warehouse = None
    if name is not None:
        warehouse = warehouse_map(call.runtime).lookup(name, database)
        if warehouse is None:
            return _Where(nowhere=True)  # an empty list, not an error
    checks: list[Callable[[Any], bool]] = []
    if database is not None:
        checks.append(lambda rec: origin_of(call, rec).database == database)
    if body.get("RoleLevel") is False:
        # "Only statements run by the caller's IAM role in the current IAM session": those
        # signed with the caller's access key, not with every key of its principal.
        def same_key(rec: Any) -> bool:
            origin = rec.origin or {}
            return origin.get("access_key_id") == call.access_key_id and (
                call.access_key_id is not None or origin.get("arn") == call.arn
            )

        checks.append(same_key)
    if not checks:
        return _Where(warehouse=warehouse)
    return _Where(warehouse=warehouse, keep=lambda rec: all(check(rec) for check in checks))


def statement_data(call: DataApiCall, rec: StatementRecord) -> dict[str, Any]:
    """One item of a ListStatements answer."""
    origin = origin_of(call, rec)
    out: dict[str, Any] = {
        "Id": rec.id,
        "QueryString": rec.query_string,
        "Status": rec.status.value,
        "CreatedAt": rec.created_at,
        "UpdatedAt": rec.updated_at,
        "IsBatchStatement": rec.is_batch,
        "ResultFormat": origin.result_format,
    }
    if rec.is_batch and rec.query_strings is not None:
        out["QueryStrings"] = list(rec.query_strings)
    if origin.secret_arn is not None:
        out["SecretArn"] = origin.secret_arn
    if rec.statement_name is not None:
        out["StatementName"] = rec.statement_name
    params = query_parameters(rec.parameters)
    if params is not None:
        out["QueryParameters"] = params
    if rec.session_id is not None:
        out["SessionId"] = rec.session_id
    return out


@operation("ListStatements")
async def list_statements(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    service: StatementService = call.runtime.statements
    # The model: "By default, only finished statements are shown"; ALL lists every status.
    status_name = body.get("Status", "FINISHED")
    status = None if status_name == "ALL" else StatementStatus(status_name)
    limit = body.get("MaxResults") or 100
    where = _where(call, body)
    if where.nowhere:
        return {"Statements": []}
    keep = where.keep
    if where.warehouse is not None:
        warehouse, also = where.warehouse, where.keep

        def keep(rec: Any) -> bool:
            return rec.warehouse == warehouse and (also is None or also(rec))

    def fetch(token: str | None, n: int) -> tuple[list[StatementRecord], str | None]:
        return service.list(
            call.principal,
            status=status,
            name_prefix=body.get("StatementName") or None,
            max_results=n,
            next_token=token,
        )

    def after(rec: StatementRecord) -> str:
        return service.cursors.encode(call.principal, "statements", rec.created_at, rec.id)

    rows, token = await off_loop(_scan, fetch, keep, limit, after, body.get("NextToken"))
    out: dict[str, Any] = {"Statements": [statement_data(call, r) for r in rows]}
    if token is not None:
        out["NextToken"] = token
    return out


def session_data(
    call: DataApiCall, session: SessionRecord, current: str | None, now: float
) -> dict[str, Any]:
    """One item of a ListSessions answer."""
    if session.closed_at is not None or (current is None and session.expires_at <= now):
        status = "CLOSED"
    else:
        status = "BUSY" if current is not None else "AVAILABLE"
    origin = origin_of(call, session)
    out: dict[str, Any] = {
        "SessionId": session.id,
        "Status": status,
        "CreatedAt": session.created_at,
        # When it last changed: its last statement's end (the keep-alive runs from there),
        # or its closing.
        "UpdatedAt": session.closed_at
        or max(session.created_at, session.expires_at - session.keep_alive_seconds),
        **{k: v for k, v in origin.location().items() if k != "SecretArn"},
        "SessionAliveSeconds": session.keep_alive_seconds,
        "SessionTtl": session.closed_at or session.expires_at,
    }
    if status == "BUSY" and current is not None:
        out["CurrentStatementId"] = current
    return out


@operation("ListSessions")
async def list_sessions(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    service: StatementService = call.runtime.statements
    session_id = body.get("SessionId")
    if session_id is not None and any(
        body.get(k) is not None
        for k in ("Status", "ClusterIdentifier", "WorkgroupName", "Database")
    ):
        raise validation(
            "When you provide SessionId, you can't specify Status, ClusterIdentifier, "
            "WorkgroupName, or Database"
        )
    # The model: with no Status, sessions that are AVAILABLE or BUSY; one session by id in
    # whatever state it is.
    if session_id is not None:
        states = frozenset(("AVAILABLE", "BUSY", "CLOSED"))
    elif "Status" in body:
        states = frozenset((body["Status"],))
    else:
        states = frozenset(("AVAILABLE", "BUSY"))
    limit = body.get("MaxResults") or 100
    where = _where(call, body)
    if where.nowhere:
        return {"Sessions": []}
    keep = where.keep

    def fetch(
        token: str | None, n: int
    ) -> tuple[list[tuple[SessionRecord, str | None]], str | None]:
        return service.list_sessions(
            call.principal,
            states=states,
            session_id=session_id,
            warehouse=where.warehouse,
            max_results=n,
            next_token=token,
        )

    def after(row: tuple[SessionRecord, str | None]) -> str:
        return service.cursors.encode(call.principal, "sessions", row[0].created_at, row[0].id)

    keep_row = None if keep is None else (lambda row: keep(row[0]))
    rows, token = await off_loop(_scan, fetch, keep_row, limit, after, body.get("NextToken"))
    now = service.clock()
    out: dict[str, Any] = {"Sessions": [session_data(call, s, cur, now) for s, cur in rows]}
    if token is not None:
        out["NextToken"] = token
    return out
