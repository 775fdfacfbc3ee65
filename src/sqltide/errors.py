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
    │   ├── ExecutionNotFound, WorkflowNotFound, CallbackNotFound
    ├── Conflict (409)
    │   ├── IdempotencyConflict
    │   ├── SessionBusy
    │   ├── StatementNotFinished
    │   ├── StatementFailed
    │   ├── InvalidState
    │   └── ExecutionConflict, CallbackConflict
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
    ├── LambdaApiError (the Lambda durable execution face: ``details['aws_type']`` likewise)
    ├── WarehouseUnavailable (503)
    ├── ConfigError (500, raised at start-up)
    ├── EngineError (a statement's own failure, reported on the statement, not as an HTTP error)
    │   └── UntranslatableSql (a statement in a warehouse's source dialect, ?dialect=...)
    ├── DurableFunctionsTestError (the workflow test runner's: no such operation, bad input)
    └── DurableExecutionsError (durable workflows: the AWS durable execution SDK's names)
        ├── UnrecoverableError
        │   ├── ExecutionError (fails the execution) → NonDeterministicExecutionError
        │   └── InvocationError (ends the replay) → StepInterruptedError, RetryableSerDesError
        ├── ValidationError (bad arguments to an operation)
        ├── SerDesError (a value that cannot be serialized or deserialized)
        └── DurableOperationError (an operation's failure, as the workflow code sees it)
            ├── StepError, InvokeError, ChildContextError, WaitForConditionError
            ├── BatchCompletionError
            └── CallbackError → CallbackExternalError, CallbackTimeoutError,
                CallbackSubmitterError

Control flow of a workflow replay, never errors and never caught by ``except Exception``:
``SuspendExecution`` (→ ``TimedSuspendExecution``), ``ExecutionAbandoned``, ``OrphanedBranch``.
"""

from __future__ import annotations

from enum import StrEnum
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


class ExecutionNotFound(NotFound):
    """No workflow execution with this id (or name)."""

    code = "execution_not_found"


class WorkflowNotFound(NotFound):
    """No workflow with this name is loaded."""

    code = "workflow_not_found"


class CallbackNotFound(NotFound):
    """No callback with this id."""

    code = "callback_not_found"


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


class ExecutionConflict(Conflict):
    """The workflow execution is in a state that does not allow this (it has ended)."""

    code = "execution_conflict"


class CallbackConflict(Conflict):
    """The callback can no longer be completed: it was completed or timed out already, or its
    execution has ended."""

    code = "callback_conflict"


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


class LambdaApiError(SqltideError):
    """The request is not valid for the Lambda durable execution API.

    Raised by the face unchanged AWS durable functions call (``sqltide.lambda_durable``), as
    ``LambdaApiError(message, details={"aws_type": "InvalidParameterValueException"})``: it
    answers with the AWS exception ``aws_type`` names and that exception's HTTP status
    (``sqltide.lambda_durable.routes`` holds them).
    """

    code = "lambda_api_error"
    http_status = 400

    @property
    def aws_type(self) -> str:
        """The AWS exception this answers as (``InvalidParameterValueException`` unless told)."""
        return str(self.details.get("aws_type", "InvalidParameterValueException"))


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


# -- durable workflows: the SDK's typed errors ---------------------------------------------------
# The names, hierarchy and attributes of the AWS durable execution SDK (3.x), so a handler that
# catches ``StepError`` or reads ``error.error_type`` runs unchanged on sqltide.workflows.


class TerminationReason(StrEnum):
    """Why an :class:`UnrecoverableError` ends a replay (the AWS SDK's reasons)."""

    UNHANDLED_ERROR = "UNHANDLED_ERROR"
    INVOCATION_ERROR = "INVOCATION_ERROR"
    EXECUTION_ERROR = "EXECUTION_ERROR"
    CHECKPOINT_FAILED = "CHECKPOINT_FAILED"
    NON_DETERMINISTIC_EXECUTION = "NON_DETERMINISTIC_EXECUTION"
    STEP_INTERRUPTED = "STEP_INTERRUPTED"
    SERIALIZATION_ERROR = "SERIALIZATION_ERROR"


class DurableExecutionsError(SqltideError):
    """A durable workflow operation went wrong.

    Every error of the SDK carries the fields of the AWS SDK's ``ErrorObject``: ``message``,
    ``error_type`` (for an operation's failure, the type of the error that escaped the user's
    code, ``"ValueError"``; otherwise this class's qualified name), ``data`` and
    ``stack_trace`` (a list of lines), which is what a checkpoint records of it.
    """

    code = "durable_execution_error"
    http_status = 500

    def __init__(
        self,
        message: str | None = None,
        *,
        error_type: str | None = None,
        data: str | None = None,
        stack_trace: list[str] | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, details=details)
        self.error_type: str = error_type or f"{type(self).__module__}.{type(self).__qualname__}"
        self.data = data
        self.stack_trace = stack_trace


class UnrecoverableError(DurableExecutionsError):
    """An error that ends the replay instead of reaching the workflow's code."""

    code = "unrecoverable_error"
    default_reason: ClassVar[TerminationReason] = TerminationReason.UNHANDLED_ERROR

    def __init__(
        self,
        message: str | None = None,
        termination_reason: TerminationReason | None = None,
        *,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, details=details)
        self.termination_reason = termination_reason or self.default_reason


class ExecutionError(UnrecoverableError):
    """The execution fails, without a retry."""

    code = "execution_error"
    default_reason = TerminationReason.EXECUTION_ERROR


class InvocationError(UnrecoverableError):
    """The replay ends without a result; the execution is replayed again later."""

    code = "invocation_error"
    default_reason = TerminationReason.INVOCATION_ERROR

    def is_retryable(self) -> bool:
        """Whether a later replay may succeed (always, unless a subclass knows better)."""
        return True


class NonDeterministicExecutionError(ExecutionError):
    """The workflow's code ran a different operation than its checkpoint at the same id.

    Raised on replay when the operation at a position differs in type, sub-type or name from
    the one checkpointed there (the code changed while executions were in flight, or it
    depends on time, randomness or I/O outside a step); ``step_id`` is the operation id. The
    execution fails.
    """

    code = "non_deterministic_execution"
    default_reason = TerminationReason.NON_DETERMINISTIC_EXECUTION

    def __init__(
        self,
        message: str | None = None,
        step_id: str | None = None,
        *,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, details=details)
        self.step_id = step_id


class StepInterruptedError(InvocationError):
    """An AT_MOST_ONCE_PER_RETRY step was found started by an earlier replay that never ended it.

    The interrupted attempt counts as failed with this error and the step's retry strategy
    decides what follows; when it gives up, the step fails with a :class:`StepError` whose
    ``error_type`` is ``"StepInterruptedError"``.
    """

    code = "step_interrupted"
    default_reason = TerminationReason.STEP_INTERRUPTED

    def __init__(
        self,
        message: str | None = None,
        step_id: str | None = None,
        *,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, details=details)
        self.step_id = step_id


class RetryableSerDesError(InvocationError):
    """A serializer failed for a passing reason: the replay ends and is tried again later."""

    code = "retryable_serdes_error"
    default_reason = TerminationReason.SERIALIZATION_ERROR


class ValidationError(DurableExecutionsError):
    """Incorrect arguments to a durable operation (a wait under one second, a bad config)."""

    code = "durable_validation_error"


class SerDesError(DurableExecutionsError):
    """A value could not be serialized or deserialized.

    The message names the value's type, the serializer and the operation; the operation
    fails with it (its checkpoint records the error, never half a value).
    """

    code = "serdes_error"

    def __init__(
        self,
        message: str | None = None,
        error_type: str | None = None,
        data: str | None = None,
        stack_trace: list[str] | None = None,
        *,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(
            message, error_type=error_type, data=data, stack_trace=stack_trace, details=details
        )


class DurableOperationError(DurableExecutionsError):
    """A durable operation failed; the subclass names the kind of operation.

    ``error_type`` is the type of the error that escaped the user's code (``"ValueError"``),
    ``message``, ``data`` and ``stack_trace`` its recorded fields: the same on the first run
    and on every replay, where the error is rebuilt from its checkpoint.
    """

    code = "durable_operation_error"

    def __init__(
        self,
        message: str | None = None,
        error_type: str | None = None,
        data: str | None = None,
        stack_trace: list[str] | None = None,
        *,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(
            message, error_type=error_type, data=data, stack_trace=stack_trace, details=details
        )


class StepError(DurableOperationError):
    """A step failed (its retry strategy gave up)."""

    code = "step_error"


class InvokeError(DurableOperationError):
    """A workflow started with ``context.invoke`` did not succeed."""

    code = "invoke_error"


class ChildContextError(DurableOperationError):
    """A child context (``run_in_child_context``, a map item, a parallel branch) failed."""

    code = "child_context_error"


class WaitForConditionError(DurableOperationError):
    """A ``wait_for_condition`` failed: its check raised, or its strategy ran out of attempts."""

    code = "wait_for_condition_error"


class BatchCompletionError(DurableOperationError):
    """A map or parallel completed as failed without any one item failing."""

    code = "batch_completion_error"


class CallbackError(DurableOperationError):
    """A callback failed; the subclasses tell how."""

    code = "callback_error"


class CallbackExternalError(CallbackError):
    """The outside system reported the callback as failed."""

    code = "callback_external_error"


class CallbackTimeoutError(CallbackError):
    """The callback timed out, or no heartbeat came within its heartbeat timeout."""

    code = "callback_timeout_error"


class CallbackSubmitterError(CallbackError):
    """The submitter step of a ``wait_for_callback`` failed."""

    code = "callback_submitter_error"


class DurableFunctionsTestError(SqltideError):
    """A workflow test (``sqltide.workflows.testing``) asked for what is not there: an
    operation no execution recorded, a callback that never came, an input that is not JSON.

    The AWS testing library's name, so tests ported from it catch the same error."""

    code = "durable_functions_test_error"


class SuspendExecution(BaseException):
    """The replay stops here: the execution waits (a timer, a retry, a callback, a child).

    A ``BaseException`` like ``KeyboardInterrupt``, so a workflow's ``except Exception`` never
    swallows it. Not an error: the replay returns the execution to the store.
    """

    def __init__(self, message: str = "suspended"):
        super().__init__(message)
        self.message = message


class TimedSuspendExecution(SuspendExecution):
    """A suspension with a time to resume at (``scheduled_timestamp``, epoch seconds)."""

    def __init__(self, message: str, scheduled_timestamp: float):
        super().__init__(message)
        self.scheduled_timestamp = scheduled_timestamp


class ExecutionAbandoned(BaseException):
    """The replay lost its lease, or its execution was stopped or timed out: stop at once."""


class OrphanedBranch(BaseException):
    """A map or parallel already completed: its remaining branches stop at their next operation."""


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
