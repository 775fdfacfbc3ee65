"""Grants on an Amazon Redshift warehouse: read-only principals and database users.

**read_only.** The Data API has no read-only switch, and a read-only transaction would need a
Data API session per statement, so a read-only principal's statements are checked before they
are sent. Each is parsed with sqlglot (Redshift's dialect), and runs only if it is:

- a query: ``SELECT``, ``WITH ... SELECT``, ``UNION`` / ``INTERSECT`` / ``EXCEPT`` of queries,
  a parenthesised query; with nothing anywhere in it that writes or takes locks
  (``SELECT ... INTO``, ``INSERT`` / ``UPDATE`` / ``DELETE`` / ``MERGE`` / ``COPY``, DDL,
  ``FOR UPDATE``);
- ``SHOW ...`` (settings, tables, columns, grants: all read-only in Redshift);
- ``EXPLAIN [VERBOSE]`` of such a query (Redshift's ``EXPLAIN`` never runs the statement).

Everything else (DDL, DML, ``COPY``, ``UNLOAD``, ``CALL``, ``SET``, ``VACUUM``, ``GRANT``,
transaction control...) and anything sqlglot cannot parse is refused before it is sent,
``permission_denied`` (SQLSTATE 42501). An allowlist, so a statement sqlglot does not know
is refused rather than guessed at.

What no text check can see: the functions a query calls. Redshift's user-defined functions
cannot write (SQL and Python UDFs only compute; writing takes a stored procedure, and
``CALL`` is refused), so what is left are the system functions that act on sessions
(``set_config``, ``pg_cancel_backend``, ``pg_terminate_backend``). For a wall that holds
against those too, map the principal to a database user of its own (``db_role``, below) that
holds only ``SELECT`` privileges.

**db_role.** Redshift has no ``SET ROLE``, so a grant's database role is taken the way the Data
API takes a user: as ``DbUser`` (temporary credentials: the Data API asks
``GetClusterCredentials`` for that database user, so the database's own privileges apply).
That works on a provisioned cluster authenticated with IAM; a Secrets Manager secret
(``secret_arn=``) fixes the user, and a serverless workgroup derives it from the IAM identity,
so there a grant naming a database role fails its statements with ``permission_denied``
rather than run them as someone else.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import EngineError
from .params import code_only

_EXPLAIN = re.compile(r"^\s*explain(?:\s+verbose)?\b", re.IGNORECASE)
_SHOW = re.compile(r"^\s*show\b", re.IGNORECASE)
_QUERY_START = re.compile(r"^[\s(]*(?:select|with)\b", re.IGNORECASE)

_WHY = (
    "this principal's grant on the warehouse is read_only, and the Data API has no read-only "
    "mode: a read-only principal may run queries (SELECT, WITH, UNION...), SHOW and EXPLAIN "
    "only"
)


def permission_denied(what: str) -> EngineError:
    return EngineError(f"{what} is not allowed: {_WHY}", sqlstate="42501", code="permission_denied")


def read_only_refusal(sql: str) -> EngineError | None:
    """Why a read-only principal may not run ``sql`` (None: it only reads)."""
    code = code_only(sql)
    if _SHOW.match(code):
        return None
    if m := _EXPLAIN.match(code):
        sql, code = sql[m.end() :], code[m.end() :]
    if not _QUERY_START.match(code):
        first = code.split(None, 1)[0].upper() if code.strip() else "an empty statement"
        return permission_denied(f"{first} (anything but a query)")
    return _query_refusal(sql)


def _query_refusal(sql: str) -> EngineError | None:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        trees = [t for t in sqlglot.parse(sql, read="redshift") if t is not None]
    except SqlglotError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return permission_denied(
            f"a statement sqltide cannot check (sqlglot cannot parse it: {first})"
        )
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        return permission_denied("anything but one query")
    writes: tuple[type[Any], ...] = (
        exp.DML,  # INSERT, UPDATE, DELETE, MERGE, COPY (also in a WITH)
        exp.Into,  # SELECT ... INTO makes a table
        exp.Create,
        exp.Drop,
        exp.Alter,
        exp.TruncateTable,
        exp.Command,
        exp.Transaction,
        exp.Commit,
        exp.Rollback,
        exp.Set,
        exp.Grant,
        exp.Revoke,
        exp.Lock,  # FOR UPDATE / FOR SHARE take row locks
    )
    for node in trees[0].walk():
        if isinstance(node, writes):
            name = "SELECT ... INTO" if isinstance(node, exp.Into) else node.key.upper()
            if isinstance(node, exp.Lock):
                name = "FOR UPDATE / FOR SHARE"
            return permission_denied(f"{name} inside a query")
    return None
