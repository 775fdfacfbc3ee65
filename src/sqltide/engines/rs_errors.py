"""Amazon Redshift's errors, as the Data API reports them, as :class:`~sqltide.errors.EngineError`.

Two kinds reach the engine:

- a statement that ran and failed: ``DescribeStatement`` says ``FAILED`` with an ``Error``
  text in Redshift's words (``ERROR: relation "x" does not exist``), and no SQLSTATE. The
  SQLSTATE is read from the words with the table below (PostgreSQL's codes, which Redshift
  keeps, for the messages Redshift and PostgreSQL write), and sqltide's ``code`` from the
  SQLSTATE exactly as the PostgreSQL engine derives it, so a client branches on one code on
  every warehouse. A ``Position: n`` in the text becomes the error's position.
- a call the Data API refused: a botocore ``ClientError`` naming one of the model's
  exceptions (or AWS's common ones: throttling, credentials), or a botocore error before any
  answer (no network, no credentials). Each gets a code and SQLSTATE of its own
  (:func:`aws_error`), with AWS's message kept.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import EngineError
from .pg_errors import _code_for as code_for_sqlstate

# Redshift's (and PostgreSQL's) message → SQLSTATE, first match wins. Redshift writes some in
# its own words: "Divide by zero", "Invalid digit, Value 'x'", "Numeric data overflow",
# "Query (123) cancelled on user's request", "Serializable isolation violation on table".
_SQLSTATE_OF_MESSAGE: tuple[tuple[str, str], ...] = (
    (r"syntax error at or near|syntax error at end of input", "42601"),
    (r"expected exactly one sql statement", "42601"),
    (r"relation .* already exists|table .* already exists", "42P07"),
    (r"(?:relation|table|view) .*does not exist", "42P01"),
    (r"column .*does not exist|column .* not found", "42703"),
    (r"column reference .* is ambiguous", "42702"),
    (r"schema .*does not exist", "3F000"),
    (r"database .*does not exist", "3D000"),
    (r"function .*does not exist|operator does not exist", "42883"),
    (r"type .*does not exist", "42704"),
    (r"must appear in the group by clause", "42803"),
    (r"no value given for parameter", "42P02"),
    (r"duplicate key value violates unique constraint", "23505"),
    (r"violates not-null constraint|cannot insert a null value", "23502"),
    (r"violates foreign key constraint", "23503"),
    (r"violates check constraint", "23514"),
    (r"divi(?:de|sion) by zero", "22012"),
    (r"value too long for type", "22001"),
    (r"invalid timestamp|date/time field value out of range|invalid date", "22007"),
    (r"out of range|numeric data overflow|overflow for", "22003"),
    (r"invalid input syntax|invalid digit|invalid input value", "22P02"),
    (r"current transaction is aborted", "25P02"),
    (r"there is no transaction in progress", "25P01"),
    (r"already a transaction in progress", "25001"),
    (r"read-only transaction", "25006"),
    (
        r"permission denied|must be owner of|must be superuser|is not allowed: this principal",
        "42501",
    ),
    (r"serializable isolation violation|could not serialize access", "40001"),
    (r"deadlock detected", "40P01"),
    (r"depend(?:s)? on it", "2BP01"),
    (r"cancel(?:l)?ed (?:on|due to) user'?s? request|canceling statement due to user", "57014"),
    (r"cancel(?:l)?ed on request while running", "57014"),
    (r"statement timeout|query timeout|timed out", "57014"),
    (r"terminating connection|server closed the connection|connection .* lost", "08006"),
    (r"out of memory", "53200"),
    (r"disk full|no space left", "53100"),
    (r"not supported|not implemented|unsupported", "0A000"),
)
_COMPILED = tuple((re.compile(p, re.IGNORECASE), s) for p, s in _SQLSTATE_OF_MESSAGE)
_PREFIX = re.compile(r"^\s*(?:ERROR|FATAL|PANIC)\s*:\s*", re.IGNORECASE)
_POSITION = re.compile(r"[\s;,]*\bPosition:\s*(\d+)\s*;?\s*$", re.IGNORECASE | re.MULTILINE)
_DETAIL_LINE = re.compile(r"^\s*(DETAIL|HINT|CONTEXT|WHERE)\s*:\s*(.*)$", re.IGNORECASE)
#: Unknown messages: SQLSTATE XX000 and code sql_error, as DuckDB's engine answers them.
_UNKNOWN = "XX000"


def sqlstate_of(message: str) -> str:
    """The SQLSTATE Redshift's message ``message`` stands for (``XX000`` when unknown)."""
    for pattern, sqlstate in _COMPILED:
        if pattern.search(message):
            return sqlstate
    return _UNKNOWN


def statement_error(text: str | None) -> tuple[EngineError, int | None]:
    """A FAILED statement's ``Error`` text as an :class:`EngineError`, and the 1-based
    position (in the text as sent) that the text gives, if any."""
    raw = (text or "").strip() or "ERROR: the statement failed (the Data API gave no reason)"
    body = _PREFIX.sub("", raw, count=1)
    position: int | None = None
    if m := _POSITION.search(body):
        position = int(m.group(1))
        body = (body[: m.start()] + body[m.end() :]).strip()
    lines = body.splitlines() or [body]
    message = lines[0].strip()
    details: dict[str, Any] = {}
    rest: list[str] = []
    for line in lines[1:]:
        if d := _DETAIL_LINE.match(line):
            details[d.group(1).lower()] = d.group(2).strip()
        elif line.strip():
            rest.append(line.strip())
    if rest:
        details.setdefault("detail", " ".join(rest))
    sqlstate = sqlstate_of(body)
    code = "sql_error" if sqlstate == _UNKNOWN else code_for_sqlstate(sqlstate)
    return EngineError(message, sqlstate=sqlstate, code=code, details=details), position


def cancelled_error(message: str = "statement was cancelled") -> EngineError:
    return EngineError(message, sqlstate="57014", code="cancelled")


# AWS's exception name → (code, SQLSTATE, what it means for the user).
_AWS_ERRORS: dict[str, tuple[str, str, str]] = {
    "ValidationException": ("invalid_input", "22023", "the Data API refused the request"),
    "ResourceNotFoundException": (
        "connection_error",
        "08003",
        "the Data API does not know the statement or session (it expired or was closed)",
    ),
    "ActiveStatementsExceededException": (
        "warehouse_busy",
        "53300",
        "too many statements are active on the cluster or workgroup; retry later",
    ),
    "ActiveSessionsExceededException": (
        "warehouse_busy",
        "53300",
        "too many Data API sessions are open on the cluster or workgroup; retry later",
    ),
    "ActiveWaitingRequestsExceededException": (
        "warehouse_busy",
        "53300",
        "too many requests are waiting on the statement",
    ),
    "DatabaseConnectionException": (
        "connection_error",
        "08001",
        "the Data API could not connect to the database",
    ),
    "ExecuteStatementException": (
        "warehouse_error",
        "58000",
        "the statement met an environmental error on the cluster or workgroup",
    ),
    "BatchExecuteStatementException": (
        "warehouse_error",
        "58000",
        "the batch met an environmental error on the cluster or workgroup",
    ),
    "QueryTimeoutException": ("timeout", "57014", "the Data API timed out"),
    "InternalServerException": ("warehouse_error", "XX000", "the Data API failed"),
    "ThrottlingException": (
        "throttled",
        "53000",
        "the Data API is throttling this account's requests; retry later",
    ),
    "TooManyRequestsException": (
        "throttled",
        "53000",
        "the Data API is throttling this account's requests; retry later",
    ),
    "AccessDeniedException": (
        "permission_denied",
        "42501",
        "the AWS credentials are not allowed to do this",
    ),
}
# Credentials the Data API did not accept.
_AUTH_ERRORS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
        "SignatureDoesNotMatch",
    }
)
# Validation messages that mean the cluster, workgroup or database is not there.
_NO_ENDPOINT = re.compile(
    r"endpoint doesn't exist|cluster .*not found|workgroup .*not found|does not exist on",
    re.IGNORECASE,
)


def aws_error(name: str, message: str, warehouse: str, *, in_session: bool = False) -> EngineError:
    """The Data API's exception ``name`` (its ``message``) as an :class:`EngineError`."""
    details = {"aws_error": name}
    text = message.strip() or name
    if name in _AUTH_ERRORS:
        return EngineError(
            f"the Data API did not accept the AWS credentials of warehouse {warehouse!r}: "
            f"{text} ({name})",
            sqlstate="28000",
            code="auth_error",
            details=details,
        )
    if name == "ValidationException" and _NO_ENDPOINT.search(text):
        return EngineError(
            f"warehouse {warehouse!r}: {text} (check the cluster or workgroup, the database "
            "and the region in its URL)",
            sqlstate="08001",
            code="connection_error",
            details=details,
        )
    if name == "ResourceNotFoundException" and in_session:
        return EngineError(
            f"the warehouse's Data API session is gone (it outlived its keep-alive or was "
            f"closed): {text}; open a new session",
            sqlstate="08003",
            code="session_lost",
            details=details,
        )
    code, sqlstate, meaning = _AWS_ERRORS.get(
        name, ("warehouse_error", "58000", "the Data API answered with an error")
    )
    return EngineError(f"{meaning}: {text} ({name})", sqlstate=sqlstate, code=code, details=details)


def botocore_error(exc: Exception, warehouse: str) -> EngineError:
    """A botocore error raised before any answer (network, credentials, parameters)."""
    kind = type(exc).__name__
    text = str(exc).strip() or kind
    details = {"aws_error": kind}
    if kind in ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError"):
        return EngineError(
            f"no usable AWS credentials for warehouse {warehouse!r}: {text}; give them in the "
            "URL (redshift-data://KEY_ID:SECRET@...), as ?profile=, or through the usual AWS "
            "chain (AWS_ACCESS_KEY_ID..., ~/.aws/credentials, an instance role)",
            sqlstate="28000",
            code="auth_error",
            details=details,
        )
    if kind == "ParamValidationError":
        return EngineError(
            f"the Data API request is not valid: {text}",
            sqlstate="22023",
            code="invalid_input",
            details=details,
        )
    return EngineError(
        f"cannot reach the Data API of warehouse {warehouse!r}: {text}",
        sqlstate="08001",
        code="connection_error",
        details=details,
    )
