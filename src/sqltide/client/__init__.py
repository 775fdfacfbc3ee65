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
Error answers are raised as the classes of :mod:`sqltide.errors`, re-exported here.
"""

from __future__ import annotations

from sqltide.client._async import AsyncClient
from sqltide.client._base import ConnectionFailed, StatementWaitTimeout
from sqltide.client._sync import Client
from sqltide.client.models import Column, ResultPage, Statement, SubStatement
from sqltide.errors import (
    BatchTooLarge,
    Conflict,
    EmptySql,
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
)

__all__ = [
    "AsyncClient",
    "BatchTooLarge",
    "Client",
    "Column",
    "Conflict",
    "ConnectionFailed",
    "EmptySql",
    "Forbidden",
    "IdempotencyConflict",
    "InternalError",
    "InvalidNextToken",
    "InvalidRequest",
    "InvalidState",
    "MalformedJson",
    "NotFound",
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
]
