"""PostgreSQL warehouses (``postgresql://user@host:5432/db``, also spelled ``postgres://``).

:class:`PostgresEngine` holds the warehouse's settings, opens connections and answers catalog
calls. The rest lives beside it:

- ``pg_connection.py``: :class:`PostgresConnection`, running statements, streaming results,
  transactions, interrupts;
- ``pg_statement.py``: the statement text (one statement, ``:name`` as ``$n``, cursor or not);
- ``pg_types.py``: column types as Arrow types (the table is in its docstring), rows as batches;
- ``pg_errors.py``: psycopg errors as :class:`~sqltide.errors.EngineError`;
- ``pg_access.py``: grants (database roles, read-only transactions).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import RawCursor
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import ConfigError, EngineError
from . import pg_access
from .base import FULL_ACCESS, Access, ColumnMeta, Engine, TableInfo
from .pg_connection import PostgresConnection
from .pg_errors import map_error
from .pg_types import CHAR_TYPES, NUMERIC, builtin_type_names, loading_adapters, numeric_typmod

__all__ = ["PostgresConnection", "PostgresEngine", "map_error"]

logger = logging.getLogger(__name__)

_TABLE_KINDS = {
    "r": "TABLE",
    "p": "TABLE",  # partitioned table
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "f": "FOREIGN TABLE",
}
# Schemas that are not the user's: TOAST storage and other sessions' temporary schemas.
_HIDDEN_SCHEMAS = r"^pg_(toast|temp_\d+|toast_temp_\d+)$"


class PostgresEngine(Engine):
    """A PostgreSQL server; every worker process may serve it (``exclusive = False``)."""

    scheme = "postgresql"
    exclusive = False
    sql_dialect = "postgres"

    def __init__(
        self, name: str, url: str, batch_rows: int = 16_384, connect_timeout: float = 10.0
    ):
        # How a grant's database role is taken (pg_access.py); libpq must not see the option.
        url, self.role_mode = pg_access.split_role_mode(url, name)
        super().__init__(name, url)  # drops ?dialect= too: use self.url from here on
        self.batch_rows = batch_rows
        self.connect_timeout = connect_timeout
        try:
            self._info = conninfo_to_dict(self.url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"warehouse {name!r}: not a valid PostgreSQL URL: {exc}") from exc
        self._adapters = loading_adapters()
        self._type_name_cache = builtin_type_names()
        self._type_lock = threading.Lock()

    def display_url(self, database: str | None = None) -> str:
        """The URL without its password (for messages), optionally on another database."""
        info = self._info
        user = f"{info['user']}@" if info.get("user") else ""
        port = f":{info['port']}" if info.get("port") else ""
        dbname = database or info.get("dbname", "")
        return f"postgresql://{user}{info.get('host', 'localhost')}{port}/{dbname}"

    def _conninfo(
        self, database: str | None = None, timeout: float | None = None, login: str | None = None
    ) -> str:
        extra: dict[str, Any] = {"client_encoding": "UTF8"}
        if "connect_timeout" not in self._info or timeout is not None:
            extra["connect_timeout"] = max(1, round(timeout or self.connect_timeout))
        if "application_name" not in self._info:
            extra["application_name"] = "sqltide"
        if database:
            extra["dbname"] = database
        info = make_conninfo(self.url, **extra)
        return pg_access.login_conninfo(info, login) if login else info

    def open(self) -> None:
        # A server that is down now may be up later: statements fail with connection_error
        # meanwhile, and the rest of sqltide keeps running.
        try:
            with psycopg.connect(self._conninfo(timeout=min(self.connect_timeout, 5.0))):
                pass
        except psycopg.Error as exc:
            logger.warning(
                "warehouse %r: PostgreSQL at %s is not reachable now (%s); its statements "
                "fail with connection_error until it is",
                self.name,
                self.display_url(),
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )

    def close(self) -> None:
        pass  # connections belong to whoever asked for them

    def _connect(
        self, database: str | None = None, access: Access = FULL_ACCESS
    ) -> psycopg.Connection[Any]:
        role = access.db_role
        login = role if self.role_mode == pg_access.LOGIN else None
        try:
            conn = psycopg.connect(
                self._conninfo(database, login=login),
                autocommit=True,
                prepare_threshold=None,  # never prepare: DDL may change a statement's shape
                cursor_factory=RawCursor,
                context=self._adapters,
            )
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            as_role = f" as database role {login!r}" if login else ""
            raise EngineError(
                f"cannot connect to PostgreSQL warehouse {self.name!r} at "
                f"{self.display_url(database)}{as_role}: {reason}",
                sqlstate=exc.sqlstate or "08001",
                code="connection_error",
            ) from exc
        if role is not None and login is None:
            try:
                conn.execute(pg_access.set_role_sql(role))
            except psycopg.Error as exc:
                conn.close()
                raise EngineError(
                    f"cannot run as database role {role!r} on warehouse {self.name!r}: "
                    f"{map_error(exc).message}",
                    sqlstate="42501",
                    code="permission_denied",
                ) from exc
        if conn.info.server_version >= 140000:
            # A worker killed mid-statement leaves its query running on the server until
            # PostgreSQL notices the client is gone; ask it to check every second. Older
            # servers (and Redshift) do not know the setting, hence the version check and
            # the tolerance of a refusal.
            try:
                conn.execute("SET client_connection_check_interval = '1s'")
            except psycopg.Error:
                logger.debug("client_connection_check_interval refused", exc_info=True)
        if conn.info.parameter_status("IntervalStyle") not in (None, "postgres"):
            try:
                conn.execute("SET IntervalStyle = postgres")  # the style pg_types reads
            except psycopg.Error as exc:
                conn.close()
                raise map_error(exc) from exc
        return conn

    def connect(self, access: Access = FULL_ACCESS) -> PostgresConnection:
        return PostgresConnection(self, self._connect(access=access), access)

    def type_names(self, conn: psycopg.Connection[Any], oids: Sequence[int]) -> dict[int, str]:
        """pg_type's name of each type OID, looked up on ``conn`` the first time it is seen."""
        with self._type_lock:
            missing = sorted({oid for oid in oids if oid not in self._type_name_cache})
        if missing:
            found: dict[int, str] = {}
            rows = conn.execute(
                "SELECT oid::int8, typname FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])",
                [missing],
            ).fetchall()
            found = {int(oid): str(name) for oid, name in rows}
            with self._type_lock:
                self._type_name_cache.update(found)
        with self._type_lock:
            return {oid: self._type_name_cache.get(oid, str(oid)) for oid in oids}

    # -- catalog ------------------------------------------------------------------------

    # Catalog calls run as the caller's role and list only what it owns or holds a privilege
    # on (as information_schema does), so a mapped principal sees only what it may use.
    def _catalog(
        self, database: str | None, sql: str, params: list[Any], access: Access = FULL_ACCESS
    ) -> list[Any]:
        with self._connect(database, access) as conn:
            try:
                return conn.execute(sql, params).fetchall()
            except psycopg.Error as exc:
                raise map_error(exc) from exc

    def _database(self, database: str | None, access: Access = FULL_ACCESS) -> str:
        if database:
            return database
        return str(self._catalog(None, "SELECT current_database()", [], access)[0][0])

    def list_databases(self, *, access: Access = FULL_ACCESS) -> list[str]:
        rows = self._catalog(
            None,
            "SELECT datname FROM pg_catalog.pg_database "
            f"WHERE NOT datistemplate AND datallowconn AND {pg_access.VISIBLE_DATABASE} "
            "ORDER BY 1",
            [],
            access,
        )
        return [r[0] for r in rows]

    def list_schemas(
        self, database: str | None, pattern: str | None, *, access: Access = FULL_ACCESS
    ) -> list[str]:
        rows = self._catalog(
            database,
            "SELECT nspname FROM pg_catalog.pg_namespace "
            f"WHERE nspname LIKE $1 AND nspname !~ $2 AND {pg_access.VISIBLE_SCHEMA} "
            "ORDER BY 1",
            [pattern or "%", _HIDDEN_SCHEMAS],
            access,
        )
        return [r[0] for r in rows]

    def list_tables(
        self,
        database: str | None,
        schema_pattern: str | None,
        table_pattern: str | None,
        *,
        access: Access = FULL_ACCESS,
    ) -> list[TableInfo]:
        db = self._database(database, access)
        rows = self._catalog(
            db,
            "SELECT c.relname, n.nspname, c.relkind::text FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = ANY($1) AND n.nspname LIKE $2 AND c.relname LIKE $3 "
            f"AND n.nspname !~ $4 AND {pg_access.VISIBLE_TABLE} ORDER BY n.nspname, c.relname",
            [list(_TABLE_KINDS), schema_pattern or "%", table_pattern or "%", _HIDDEN_SCHEMAS],
            access,
        )
        return [
            TableInfo(name=r[0], schema=r[1], type=_TABLE_KINDS[r[2]], database=db) for r in rows
        ]

    def describe_table(
        self, database: str | None, schema: str, table: str, *, access: Access = FULL_ACCESS
    ) -> list[ColumnMeta]:
        rows = self._catalog(
            database,
            "SELECT a.attname, t.typname, NOT a.attnotnull, a.atttypmod, a.atttypid::int8 "
            "FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
            "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped "
            f"AND {pg_access.VISIBLE_TABLE} ORDER BY a.attnum",
            [schema, table],
            access,
        )
        out = []
        for name, type_name, nullable, typmod, oid in rows:
            precision, scale = numeric_typmod(typmod) if oid == NUMERIC else (None, None)
            length = typmod - 4 if oid in CHAR_TYPES and typmod >= 4 else None
            out.append(
                ColumnMeta(
                    name=name,
                    type_name=type_name,
                    nullable=bool(nullable),
                    precision=precision,
                    scale=scale,
                    length=length,
                )
            )
        return out
