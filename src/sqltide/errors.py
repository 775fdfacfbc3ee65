"""The one exception tree of sqltide.

Every error a user can meet carries a stable ``code`` (a string that never changes once
released), the HTTP status the API answers with, a message a person understands and optional
``details``. The API turns any :class:`SqltideError` into the envelope
``{"error": {"code": ..., "message": ..., "details": {...}}}``; the Python client turns the
envelope back into the same class.

    SqltideError
    ├── InvalidRequest (400)
    │   ├── EmptySql
    │   ├── InvalidNextToken
    │   ├── BatchTooLarge
    │   └── MalformedJson
    ├── Unauthorized (401)
    │   └── AwsAuthFailure (400 or 403: AWS's status for details["aws_type"])
    ├── Forbidden (403)
    │   └── PermissionDenied
    ├── NotFound (404)
    │   ├── StatementNotFound
    │   ├── SessionNotFound
    │   ├── RuleNotFound, TopicNotFound, DeliveryNotFound
    ├── Conflict (409)
    │   ├── IdempotencyConflict
    │   ├── SessionBusy
    │   ├── StatementNotFinished
    │   ├── StatementFailed
    │   └── InvalidState
    ├── RequestTimeout (408)
    ├── ResultExpired (410)
    ├── PayloadTooLarge (413)
    │   └── SqlTooLarge
    ├── UnprocessableEntity (422)
    │   ├── ParameterError
    │   ├── InvalidRule, InvalidPattern, InvalidSchedule, InvalidTargetInput
    │   ├── InvalidMessage, InvalidFilterPolicy
    │   └── PipelineError (sqltide.pipeline.problems: it carries the file's problems)
    ├── TooManyRequests (429)
    ├── InternalError (500)
    ├── DataApiError (the Data API face: ``details['aws_type']`` names the AWS exception)
    ├── WarehouseUnavailable (503)
    ├── ConfigError (500, raised at start-up)
    └── EngineError (a statement's own failure, reported on the statement, not as an HTTP error)
        └── UntranslatableSql (a statement in a warehouse's source dialect, ?dialect=...)
"""

from __future__ import annotations

from typing import Any, ClassVar


class SqltideError(Exception):
    """Something went wrong in sqltide."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or (self.__doc__ or self.code).strip().splitlines()[0]
        self.details = dict(details or {})
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidRequest(SqltideError):
    """The request is not valid."""

    code = "invalid_request"
    http_status = 400


class EmptySql(InvalidRequest):
    """The SQL text is empty."""

    code = "empty_sql"


class InvalidNextToken(InvalidRequest):
    """The next token is not valid for this result; start again without one."""

    code = "invalid_next_token"


class BatchTooLarge(InvalidRequest):
    """The batch has too many statements."""

    code = "batch_too_large"


class MalformedJson(InvalidRequest):
    """The request body is not valid JSON."""

    code = "malformed_json"


class Unauthorized(SqltideError):
    """A valid API key is required (header 'Authorization: Bearer <key>')."""

    code = "unauthorized"
    http_status = 401


class AwsAuthFailure(Unauthorized):
    """The request's AWS signature could not be verified.

    The Data API face's answer to a bad signed request, built as
    ``AwsAuthFailure(message, details={"aws_type": ...})``: ``aws_type`` is the exception AWS
    answers with (``UnrecognizedClientException``, ``InvalidSignatureException``,
    ``IncompleteSignatureException`` or ``MissingAuthenticationTokenException``) and the
    message is AWS's text, so the SDKs show what they show for AWS itself. ``http_status`` is
    the status AWS uses for that exception.
    """

    code = "aws_auth_failure"
    #: AWS's HTTP status for each of its authentication exceptions (its JSON services answer
    #: bad credentials and signatures with 400, an unsigned request with 403).
    STATUSES: ClassVar[dict[str, int]] = {
        "UnrecognizedClientException": 400,
        "InvalidSignatureException": 400,
        "IncompleteSignatureException": 400,
        "MissingAuthenticationTokenException": 403,
    }

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        super().__init__(message, details=details)
        aws_type = str(self.details.setdefault("aws_type", "InvalidSignatureException"))
        self.http_status = self.STATUSES.get(aws_type, 403)  # type: ignore[misc]

    @property
    def aws_type(self) -> str:
        """The AWS exception name (``__type``) to answer with."""
        return str(self.details["aws_type"])


class Forbidden(SqltideError):
    """This API key may not do that."""

    code = "forbidden"
    http_status = 403


class PermissionDenied(Forbidden):
    """The caller's grants do not allow this (a warehouse, a file, a setting)."""

    code = "permission_denied"


class NotFound(SqltideError):
    """Not found."""

    code = "not_found"
    http_status = 404


class StatementNotFound(NotFound):
    """No statement with this id."""

    code = "statement_not_found"


class SessionNotFound(NotFound):
    """No open session with this id (it may have expired)."""

    code = "session_not_found"


class RuleNotFound(NotFound):
    """No rule with this name."""

    code = "rule_not_found"


class TopicNotFound(NotFound):
    """No topic with this name."""

    code = "topic_not_found"


class DeliveryNotFound(NotFound):
    """No dead-lettered delivery with this id."""

    code = "delivery_not_found"


class Conflict(SqltideError):
    """The request conflicts with the current state."""

    code = "conflict"
    http_status = 409


class IdempotencyConflict(Conflict):
    """This client token was already used for a different request."""

    code = "idempotency_conflict"


class SessionBusy(Conflict):
    """The session is running another statement; statements in a session run one at a time."""

    code = "session_busy"


class StatementNotFinished(Conflict):
    """The statement has not finished yet, so it has no result to fetch."""

    code = "statement_not_finished"


class StatementFailed(Conflict):
    """The statement did not finish successfully, so it has no result to fetch."""

    code = "statement_failed"


class InvalidState(Conflict):
    """The statement is in a state that does not allow this."""

    code = "invalid_state"


class RequestTimeout(SqltideError):
    """The request did not arrive in time: its headers or body stalled."""

    code = "request_timeout"
    http_status = 408


class ResultExpired(SqltideError):
    """The result is past its retention period and was deleted."""

    code = "result_expired"
    http_status = 410


class PayloadTooLarge(SqltideError):
    """The request body is too large."""

    code = "payload_too_large"
    http_status = 413


class SqlTooLarge(PayloadTooLarge):
    """The SQL text is larger than the limit."""

    code = "sql_too_large"


class UnprocessableEntity(SqltideError):
    """The request is well-formed but its content is not valid."""

    code = "validation_error"
    http_status = 422


class ParameterError(UnprocessableEntity):
    """The statement's parameters do not match the SQL."""

    code = "parameter_error"


class InvalidRule(UnprocessableEntity):
    """The rule is not valid."""

    code = "invalid_rule"


class InvalidPattern(UnprocessableEntity):
    """The event pattern is not valid."""

    code = "invalid_pattern"


class InvalidSchedule(UnprocessableEntity):
    """The schedule expression is not valid."""

    code = "invalid_schedule"

    @property
    def reason(self) -> str:
        """What is wrong, naming the field (``"day-of-week: 8 is outside 1-7"``)."""
        return str(self.details.get("reason", self.message))


class InvalidTargetInput(UnprocessableEntity):
    """The target's input settings are not valid."""

    code = "invalid_target_input"


class InvalidMessage(UnprocessableEntity):
    """The notification message is not valid."""

    code = "invalid_message"


class InvalidFilterPolicy(UnprocessableEntity):
    """The filter policy is not valid.

    Raised as ``InvalidFilterPolicy(message, details={"reason": ..., "path": ...})``, like
    every other error (``sqltide.notify.filters`` builds it with the JSON path of the bad part).
    """

    code = "invalid_filter_policy"

    @property
    def reason(self) -> str:
        """What is wrong with the policy."""
        return str(self.details.get("reason", self.message))

    @property
    def path(self) -> str:
        """The JSON path of the offending part (``$`` for the whole policy)."""
        return str(self.details.get("path", "$"))


class TooManyRequests(SqltideError):
    """Too many requests; slow down and retry."""

    code = "too_many_requests"
    http_status = 429


class InternalError(SqltideError):
    """An unexpected error happened on the server."""

    code = "internal_error"
    http_status = 500


class WarehouseUnavailable(SqltideError):
    """The warehouse cannot be reached right now; try again later."""

    code = "warehouse_unavailable"
    http_status = 503


class DataApiError(SqltideError):
    """The request is not valid for the Amazon Redshift Data API.

    Raised by the Data API face (``sqltide.dataapi``) for what only that face checks, as
    ``DataApiError(message, details={"aws_type": "ValidationException", ...})``: it answers
    with the AWS exception ``aws_type`` names (``sqltide.dataapi.exceptions`` holds the HTTP
    status of each); other keys of ``details`` that the exception's model has as members
    (``ResourceId``, ``StatementId``) are sent as those members.
    """

    code = "data_api_error"
    http_status = 400

    @property
    def aws_type(self) -> str:
        """The AWS exception this answers as (``ValidationException`` unless told)."""
        return str(self.details.get("aws_type", "ValidationException"))


class ConfigError(SqltideError):
    """The configuration is not valid."""

    code = "config_error"
    http_status = 500


class EngineError(SqltideError):
    """The warehouse reported an error running the statement.

    It is recorded on the statement (status FAILED) with the SQLSTATE and the character
    position in the SQL text where the engine can tell.
    """

    code = "sql_error"
    http_status = 400

    def __init__(
        self,
        message: str | None = None,
        *,
        sqlstate: str | None = None,
        position: int | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, details=details)
        self.sqlstate = sqlstate
        self.position = position
        if code:
            self.code = code  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["sqlstate"] = self.sqlstate
        out["position"] = self.position
        return out


class UntranslatableSql(EngineError):
    """The statement cannot be translated from the warehouse's source dialect.

    A warehouse declared with ``?dialect=...`` (``redshift``) transpiles each statement with
    sqlglot before it runs; this is the statement's failure when sqlglot cannot parse it
    (SQLSTATE ``42601``, syntax error, as the source database would answer a statement it
    cannot read) or when it holds a construct the warehouse cannot express (``0A000``, feature
    not supported: valid SQL in the source dialect, with no equivalent here). Either way the
    statement does not run: a near translation could run something different. ``position``
    points at the construct in the caller's text where sqlglot knows it.
    """

    code = "untranslatable_sql"

    def __init__(
        self,
        message: str | None = None,
        *,
        sqlstate: str | None = "0A000",
        position: int | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, sqlstate=sqlstate, position=position, code=code, details=details)


_BY_CODE: dict[str, type[SqltideError]] = {}


def _register(cls: type[SqltideError]) -> None:
    _BY_CODE.setdefault(cls.code, cls)
    for sub in cls.__subclasses__():
        _register(sub)


_register(SqltideError)


#: The one error class that lives beside the data it carries, imported when first asked for.
_ELSEWHERE = {"invalid_pipeline": "sqltide.pipeline.problems:PipelineError"}


def error_class_for(code: str) -> type[SqltideError]:
    """The exception class for a stable error code (the base class for unknown codes)."""
    if code not in _BY_CODE and code in _ELSEWHERE:
        import importlib

        module, name = _ELSEWHERE[code].split(":")
        getattr(importlib.import_module(module), name)  # defined now; the walk below finds it
    if code not in _BY_CODE:
        _register(SqltideError)
    return _BY_CODE.get(code, SqltideError)
