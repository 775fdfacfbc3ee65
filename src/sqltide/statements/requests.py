"""What a caller asks for when it submits statements, checked before anything is recorded."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from .. import errors
from ..engines.params import find_parameters
from ..validation import check_json_value, check_text

_PARAM_NAME = re.compile(r"^[0-9A-Za-z_]+$")
BATCH_MODES = ("transaction", "auto_commit")


@dataclass(frozen=True, slots=True)
class StatementRequest:
    """One statement (``sqls`` of one) or a batch, with the Data API's options."""

    sqls: tuple[str, ...]
    is_batch: bool = False
    parameters: dict[str, Any] | None = None
    statement_name: str | None = None
    client_token: str | None = None
    with_event: bool = False
    warehouse: str | None = None
    session_id: str | None = None
    session_keep_alive_seconds: int | None = None
    batch_mode: str = "transaction"
    #: Where the request came from, recorded on the statement (and a session it opens) as
    #: it is: the Data API face's cluster, database, user... (``StatementRecord.origin``).
    origin: dict[str, Any] | None = None

    def fingerprint(self) -> str:
        """A hash of everything but the client token: same token + same hash = same request."""
        data = asdict(self)
        data.pop("client_token")
        blob = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def validate(
    req: StatementRequest,
    *,
    max_sql_bytes: int,
    max_batch: int,
    max_keep_alive: int,
    max_parameter_bytes: int = 64 * 1024,
    max_parameters_bytes: int = 256 * 1024,
) -> None:
    """Raise a clear error for anything wrong with ``req`` that needs no engine to see.

    Everything recorded must be servable later: text is valid Unicode without NUL (see
    :mod:`sqltide.validation`), parameters are within what the engines and the JSON encoders
    take.
    """
    if not req.sqls:
        raise errors.EmptySql("a batch needs at least one SQL statement")
    if len(req.sqls) > max_batch:
        raise errors.BatchTooLarge(
            f"a batch may have at most {max_batch} statements, got {len(req.sqls)}",
            details={"limit": max_batch, "count": len(req.sqls)},
        )
    for n, sql in enumerate(req.sqls, start=1):
        where = {"index": n} if req.is_batch else {}
        if isinstance(sql, str):
            check_text(sql, where="sql" + (f"[{n}]" if req.is_batch else ""), details=where)
        if not sql or not sql.strip():
            raise errors.EmptySql(
                "SQL statement is empty" + (f" (batch item {n})" if req.is_batch else ""),
                details=where,
            )
        size = len(sql.encode())
        if size > max_sql_bytes:
            raise errors.SqlTooLarge(
                f"SQL is {size} bytes; the limit is {max_sql_bytes}",
                details={**where, "size": size, "limit": max_sql_bytes},
            )
    if req.batch_mode not in BATCH_MODES:
        raise errors.UnprocessableEntity(
            f"mode must be one of {', '.join(BATCH_MODES)}", details={"mode": req.batch_mode}
        )
    if req.client_token is not None and not 1 <= len(req.client_token) <= 64:
        raise errors.UnprocessableEntity("client_token must be 1 to 64 characters")
    if req.statement_name is not None and len(req.statement_name) > 2048:
        raise errors.UnprocessableEntity("statement_name must be at most 2048 characters")
    for field in ("statement_name", "client_token", "warehouse", "session_id"):
        if getattr(req, field) is not None:
            check_text(getattr(req, field), where=field, identifier=True)
    keep = req.session_keep_alive_seconds
    if keep is not None:
        if req.session_id is not None:
            raise errors.UnprocessableEntity(
                "give session_id to run in an open session, or session_keep_alive_seconds to "
                "open a new one, not both"
            )
        if not 0 < keep <= max_keep_alive:
            raise errors.UnprocessableEntity(
                f"session_keep_alive_seconds must be between 1 and {max_keep_alive}"
            )
    check_parameters(
        req.sqls,
        req.parameters,
        max_value_bytes=max_parameter_bytes,
        max_total_bytes=max_parameters_bytes,
    )


def check_parameters(
    sqls: tuple[str, ...],
    parameters: dict[str, Any] | None,
    *,
    max_value_bytes: int = 64 * 1024,
    max_total_bytes: int = 256 * 1024,
) -> None:
    """Every ``:name`` in the SQL has a value the engines take, and every value is used.

    A value is null, a boolean, a signed 64-bit integer, a finite float or a string (valid
    Unicode, at most ``max_value_bytes`` as UTF-8); all of them together at most
    ``max_total_bytes``.
    """
    if parameters is not None and not isinstance(parameters, dict):
        raise errors.ParameterError("parameters must be an object of name: value")
    given = dict(parameters or {})
    total = 0
    for name, value in given.items():
        if not isinstance(name, str) or not _PARAM_NAME.match(name):
            raise errors.ParameterError(
                f"parameter name {name!r} may only hold letters, digits and underscores",
                details={"parameter": name if isinstance(name, str) else repr(name)},
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise errors.ParameterError(
                f"parameter {name!r} must be a string, number, boolean or null",
                details={"parameter": name},
            )
        total += check_json_value(
            value,
            where=f"parameter {name!r}",
            max_bytes=max_value_bytes,
            cls=errors.ParameterError,
            details={"parameter": name},
        )
        if total > max_total_bytes:
            raise errors.ParameterError(
                f"the parameters are larger than {max_total_bytes} bytes together",
                details={"parameter": name, "limit": max_total_bytes},
            )
    used: set[str] = set()
    for n, sql in enumerate(sqls, start=1):
        names = {ref.name for ref in find_parameters(sql)}
        missing = sorted(names - given.keys())
        if missing:
            raise errors.ParameterError(
                f"no value for parameter(s) {', '.join(':' + m for m in missing)}"
                + (f" in statement {n}" if len(sqls) > 1 else ""),
                details={"missing": missing},
            )
        used |= names
    unknown = sorted(given.keys() - used)
    if unknown:
        raise errors.ParameterError(
            f"parameter(s) {', '.join(unknown)} not used in the SQL (reference them as :name)",
            details={"unknown": unknown},
        )
