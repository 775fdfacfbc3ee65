"""PostgreSQL errors as sqltide's :class:`~sqltide.errors.EngineError`.

SQLSTATEs keep the server's own code; sqltide's ``code`` is the same word DuckDB's engine gives
for the same mistake, so clients can branch on one code across warehouses.
"""

from __future__ import annotations

import psycopg

from ..errors import EngineError

# Exact SQLSTATEs first (the same codes DuckDB's engine gives for the same mistakes), then
# whole classes by their first two characters.
_CODE_OF_SQLSTATE = {
    "42601": "syntax_error",
    "42P01": "undefined_object",
    "42704": "undefined_object",
    "42883": "undefined_object",
    "3F000": "undefined_object",
    "42703": "undefined_column",
    "22003": "out_of_range",
    "22023": "invalid_input",
    "57014": "cancelled",
    "40001": "serialization_failure",
    "40P01": "deadlock_detected",
    "42501": "permission_denied",
    "0A000": "not_supported",
    "2BP01": "dependency_error",
    "53200": "out_of_memory",
    "57P01": "connection_error",  # the server is shutting down / restarting
    "57P02": "connection_error",
    "57P03": "connection_error",
}
_CODE_OF_CLASS = {
    "22": "invalid_value",
    "23": "constraint_violation",
    "08": "connection_error",
    "25": "transaction_error",
}
_CANCELLED_MESSAGE = "canceling statement due to user request"


def _code_for(sqlstate: str) -> str:
    return _CODE_OF_SQLSTATE.get(sqlstate) or _CODE_OF_CLASS.get(sqlstate[:2], "sql_error")


def map_error(exc: psycopg.Error, position: int | None = None) -> EngineError:
    """A psycopg error as an :class:`EngineError` with SQLSTATE, code and (given) position."""
    sqlstate = exc.sqlstate
    if sqlstate is not None:
        code = _code_for(sqlstate)
    elif isinstance(exc, psycopg.OperationalError):  # the connection broke, no server answer
        sqlstate, code = "08006", "connection_error"
    elif isinstance(exc, psycopg.DataError):  # a value psycopg could not convert
        sqlstate, code = "22000", "invalid_value"
    else:
        code = "sql_error"
    diag = exc.diag
    message = diag.message_primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    details = {
        key: value
        for key, value in (
            ("detail", diag.message_detail),
            ("hint", diag.message_hint),
            ("context", diag.context),
        )
        if value
    }
    return EngineError(message, sqlstate=sqlstate, position=position, code=code, details=details)


def cancelled_error() -> EngineError:
    return EngineError(_CANCELLED_MESSAGE, sqlstate="57014", code="cancelled")
