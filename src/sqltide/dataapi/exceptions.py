"""sqltide's errors as the Data API's exceptions: ``__type``, ``message`` and AWS's HTTP status.

The AWS JSON 1.1 protocol answers an error with a body ``{"__type": "<Name>", "message": ...}``
(plus the exception's own members, such as ``ResourceId``); botocore reads ``__type`` and
raises ``client.exceptions.<Name>``. Client errors are 400, as AWS's JSON services answer
them; the model's faults (``InternalServerException``, ``ExecuteStatementException``,
``BatchExecuteStatementException``, ``DatabaseConnectionException``) are 500, which the SDKs
retry (a submit carries a ``ClientToken``, so a retry never runs a statement twice).

:func:`aws_error` maps any exception an operation raises; nothing reaches the client as
sqltide's own envelope or as a bare 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import errors

#: HTTP status of each exception the face answers with: the model's, and AWS's common ones.
STATUS: dict[str, int] = {
    # the model's (redshift-data 2019-12-20)
    "ValidationException": 400,
    "ResourceNotFoundException": 400,
    "ActiveStatementsExceededException": 400,
    "ActiveSessionsExceededException": 400,
    "ActiveWaitingRequestsExceededException": 400,
    "QueryTimeoutException": 400,
    "ExecuteStatementException": 500,
    "BatchExecuteStatementException": 500,
    "DatabaseConnectionException": 500,
    "InternalServerException": 500,
    # AWS's protocol and authentication errors, common to every JSON service
    "SerializationException": 400,
    "UnknownOperationException": 400,
    "AccessDeniedException": 400,
    "ThrottlingException": 400,
    "UnrecognizedClientException": 400,
    "InvalidSignatureException": 400,
    "IncompleteSignatureException": 400,
    "MissingAuthenticationTokenException": 403,
    "RequestTimeoutException": 408,
}

#: Members an exception's model requires beside ``Message``, as ``details`` may carry them.
MEMBERS: dict[str, tuple[str, ...]] = {
    "ResourceNotFoundException": ("ResourceId",),
    "ExecuteStatementException": ("StatementId",),
    "BatchExecuteStatementException": ("StatementId",),
}


@dataclass(frozen=True, slots=True)
class AwsError:
    """One answer: the exception's name, message, HTTP status and extra members."""

    type: str
    message: str
    status: int = 400
    members: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"__type": self.type, "message": self.message, **self.members}


def aws_error(exc: BaseException, *, operation: str | None = None) -> AwsError:
    """The Data API answer for ``exc``, raised while serving ``operation``."""
    if isinstance(exc, errors.SqltideError):
        return _from_sqltide(exc, operation)
    return AwsError("InternalServerException", "an unexpected error happened on the server", 500)


def _from_sqltide(exc: errors.SqltideError, operation: str | None) -> AwsError:
    details = exc.details
    name = _name_for(exc)
    status = int(details.get("http_status", STATUS.get(name, exc.http_status)))
    members: dict[str, Any] = {}
    for member in MEMBERS.get(name, ()):
        value = details.get(member)
        if value is None and member == "ResourceId":
            value = details.get("id") or details.get("session_id") or ""
        members[member] = "" if value is None else str(value)
    return AwsError(name, exc.message, status, members)


def _name_for(exc: errors.SqltideError) -> str:
    aws_type = exc.details.get("aws_type")
    if isinstance(aws_type, str) and aws_type:
        return aws_type  # DataApiError, AwsAuthFailure: they say what they are
    # A walk up the class tree: the most specific class with a mapping wins.
    for cls in type(exc).__mro__:
        name = _BY_CLASS.get(cls)
        if name is not None:
            return name
    return "InternalServerException"


_BY_CLASS: dict[type, str] = {
    errors.NotFound: "ResourceNotFoundException",
    errors.TooManyRequests: "ActiveStatementsExceededException",
    errors.WarehouseUnavailable: "DatabaseConnectionException",
    errors.RequestTimeout: "RequestTimeoutException",
    errors.Unauthorized: "UnrecognizedClientException",
    errors.Forbidden: "AccessDeniedException",
    # Everything the caller can fix is a ValidationException, as the Data API answers it:
    # bad input, a conflict with the statement's state (not finished, already ended, a busy
    # session: the Data API queues nothing), an expired result, a SQL text over 100 KB.
    errors.InvalidRequest: "ValidationException",
    errors.Conflict: "ValidationException",
    errors.ResultExpired: "ValidationException",
    errors.PayloadTooLarge: "ValidationException",
    errors.UnprocessableEntity: "ValidationException",
    errors.EngineError: "ValidationException",
    errors.InternalError: "InternalServerException",
    errors.ConfigError: "InternalServerException",
}
