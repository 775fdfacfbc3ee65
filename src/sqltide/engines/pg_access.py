"""Grants on a PostgreSQL warehouse: database roles and read-only transactions.

A principal's grant may name a database role (``db_role``, as Redshift's ``DbUser``): its
statements and catalog calls then run as that role, so the database's own privileges and
row-level security decide what it sees. How the role is taken is chosen per warehouse with a
query parameter on its URL, ``?sqltide_role_mode=login`` (the default) or ``set_role``:

- ``login``: sqltide connects as the role itself (the URL with its user replaced and its
  password dropped; the server authenticates the role by its own means: trust, peer,
  certificates, ``~/.pgpass``). Nothing the SQL does can make it anyone else. The safe mode.
- ``set_role``: sqltide connects as the URL's user and runs ``SET ROLE`` first. The obvious
  ways back (``SET ROLE``, ``RESET ROLE``, ``SET SESSION AUTHORIZATION``, ``RESET ALL``,
  ``DISCARD ALL``) are refused before they run, but SQL can still switch back in ways no text
  check can see (``set_config('role', ...)``, inside a function or a ``DO`` block) to any
  role the URL's user is a member of. It is a wall only when that user has no more rights
  than the mapped roles need (a ``NOINHERIT`` user holding just those roles, not a superuser).

A ``read_only`` grant runs every statement inside ``BEGIN READ ONLY`` and takes the
transaction's snapshot at once, so not even its first statement can turn it read-write
(``SET TRANSACTION READ WRITE`` is refused by the server after the first query); statements
that would end the transaction (``COMMIT``, ``ROLLBACK``, ``BEGIN``, ``SAVEPOINT``...) are
refused before they run.

Connections are never shared between principals (one per statement, or one per session), so
a role set on one never has to be reset.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import ConfigError, EngineError
from .base import Access

ROLE_MODE_PARAM = "sqltide_role_mode"
LOGIN = "login"
SET_ROLE = "set_role"
ROLE_MODES = (LOGIN, SET_ROLE)

#: Starts a read-only transaction and takes its snapshot (after which nothing can make the
#: transaction read-write).
BEGIN_READ_ONLY = "BEGIN READ ONLY; SELECT 1"

_TRANSACTION_CONTROL = re.compile(
    r"^\s*(?:begin|start\s+transaction|commit|end|rollback|abort|savepoint|release"
    r"|prepare\s+transaction)\b",
    re.IGNORECASE,
)
_ROLE_SWITCH = re.compile(
    r'^\s*(?:set\s+(?:session\s+|local\s+)?(?:"?role"?|session\s+authorization'
    r'|"?session_authorization"?)\b|reset\s+(?:"?role"?|session\s+authorization'
    r'|"?session_authorization"?|all)\b|discard\s+all\b)',
    re.IGNORECASE,
)


def split_role_mode(url: str, warehouse: str) -> tuple[str, str]:
    """``url`` without sqltide's ``sqltide_role_mode`` parameter, and the mode it gives."""
    if ROLE_MODE_PARAM not in url:
        return url, LOGIN  # (a malformed URL is left for libpq to explain)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"warehouse {warehouse!r}: not a valid PostgreSQL URL: {exc}") from exc
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    modes = [v for k, v in pairs if k == ROLE_MODE_PARAM]
    mode = modes[-1] if modes else LOGIN
    if mode not in ROLE_MODES:
        raise ConfigError(
            f"warehouse {warehouse!r}: {ROLE_MODE_PARAM} must be {' or '.join(ROLE_MODES)}, "
            f"not {mode!r}"
        )
    if not modes:
        return url, mode
    query = urlencode([(k, v) for k, v in pairs if k != ROLE_MODE_PARAM])
    return urlunsplit(parts._replace(query=query)), mode


def login_conninfo(conninfo: str, role: str) -> str:
    """``conninfo`` logging in as ``role``: its user replaced, its password dropped (the
    role authenticates by the server's own means, or ``~/.pgpass``)."""
    params = conninfo_to_dict(conninfo)
    params.pop("password", None)
    params["user"] = role
    return make_conninfo("", **params)


def set_role_sql(role: str) -> str:
    # Role names are checked when granted (sqltide.grants): never a double quote.
    return f'SET ROLE "{role}"'


def refusal(code: str, access: Access) -> EngineError | None:
    """Why a statement (its code, without comments and literals) may not run with ``access``."""
    if access.read_only and _TRANSACTION_CONTROL.match(code):
        return EngineError(
            "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT...) is not allowed: this "
            "principal's grant on the warehouse is read_only, and each statement runs in a "
            "read-only transaction of its own",
            sqlstate="42501",
            code="permission_denied",
        )
    if access.db_role is not None and _ROLE_SWITCH.match(code):
        return EngineError(
            f"changing the role is not allowed: this principal runs as database role "
            f"{access.db_role!r}",
            sqlstate="42501",
            code="permission_denied",
        )
    return None


def as_permission_error(exc: EngineError, access: Access) -> EngineError:
    """A write refused by a read-only transaction (25006), said as a permission error."""
    if access.read_only and exc.sqlstate == "25006":
        return EngineError(
            f"{exc.message} (this principal's grant on the warehouse is read_only)",
            sqlstate="42501",
            position=exc.position,
            code="permission_denied",
            details=exc.details,
        )
    return exc


# Catalog filters: what information_schema shows a role (what it owns or holds a privilege
# on), so a role lists only what it may use.
VISIBLE_DATABASE = "has_database_privilege(datname, 'CONNECT')"
VISIBLE_SCHEMA = "(pg_has_role(nspowner, 'USAGE') OR has_schema_privilege(oid, 'CREATE, USAGE'))"
VISIBLE_TABLE = (
    "(pg_has_role(c.relowner, 'USAGE') "
    "OR has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, "
    "TRIGGER') OR has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))"
)
