"""The Python client of the sqltide HTTP API.

    from sqltide.client import Client

    with Client() as client:
        statement = client.wait(client.execute("SELECT :n AS n", {"n": 1}).id, timeout=60)
        if statement.status == "FINISHED":
            for row in client.rows(statement.id):
                print(row)
        else:
            print(statement.error)

:class:`AsyncClient` has the same methods, awaited (the iterating ones are async generators).
Workflows: ``start_execution``, ``get_execution`` / ``wait_execution``, ``list_executions``,
``execution_history``, ``stop_execution``, and ``succeed_callback`` / ``fail_callback`` /
``heartbeat_callback`` for callbacks completed from outside.

Error answers are raised as the classes of :mod:`sqltide.errors`, re-exported here.
"""

from __future__ import annotations

from sqltide.client._async import AsyncClient
from sqltide.client._base import ConnectionFailed, ExecutionWaitTimeout, StatementWaitTimeout
from sqltide.client._sync import Client
from sqltide.client.models import (
    CallbackState,
    Column,
    Execution,
    ExecutionHistory,
    HistoryEvent,
    Operation,
    ResultPage,
    Statement,
    SubStatement,
)
from sqltide.errors import (
    BatchTooLarge,
    CallbackConflict,
    CallbackNotFound,
    Conflict,
    EmptySql,
    ExecutionConflict,
    ExecutionNotFound,
    Forbidden,
    IdempotencyConflict,
    InternalError,
    InvalidNextToken,
    InvalidRequest,
    InvalidState,
    MalformedJson,
    NotFound,
    ParameterError,
    PayloadTooLarge,
    ResultExpired,
    SessionBusy,
    SessionNotFound,
    SqltideError,
    SqlTooLarge,
    StatementFailed,
    StatementNotFinished,
    StatementNotFound,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
    WorkflowNotFound,
)

__all__ = [
    "AsyncClient",
    "BatchTooLarge",
    "CallbackConflict",
    "CallbackNotFound",
    "CallbackState",
    "Client",
    "Column",
    "Conflict",
    "ConnectionFailed",
    "EmptySql",
    "Execution",
    "ExecutionConflict",
    "ExecutionHistory",
    "ExecutionNotFound",
    "ExecutionWaitTimeout",
    "Forbidden",
    "HistoryEvent",
    "IdempotencyConflict",
    "InternalError",
    "InvalidNextToken",
    "InvalidRequest",
    "InvalidState",
    "MalformedJson",
    "NotFound",
    "Operation",
    "ParameterError",
    "PayloadTooLarge",
    "ResultExpired",
    "ResultPage",
    "SessionBusy",
    "SessionNotFound",
    "SqlTooLarge",
    "SqltideError",
    "Statement",
    "StatementFailed",
    "StatementNotFinished",
    "StatementNotFound",
    "StatementWaitTimeout",
    "SubStatement",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "WorkflowNotFound",
]
