"""The shared state store: PostgreSQL (``postgresql://user:password@host:port/dbname``).

Many processes (API servers, workers) share one database. Each method is one transaction on a
pooled connection (``psycopg_pool``), at READ COMMITTED; where SQLite relies on having one
writer, this store says what it serializes on:

- claiming locks the rows it takes with ``FOR UPDATE SKIP LOCKED``, so two workers never get
  the same statement and never wait on each other;
- a statement for an existing session locks the session row (``SELECT … FOR UPDATE``) before
  checking that the session is open and idle;
- the active-statement limit takes a per-principal advisory lock, so two concurrent submits
  cannot both see room for one more;
- the client-token check relies on the unique index: the loser of a race catches the unique
  violation and returns the winner;
- migrations run under a transaction-scoped advisory lock, so processes starting together
  apply each migration once.

Lost connections (the server restarting, a connection killed) are retried with backoff and
jitter for up to :attr:`PostgresStore.retry_seconds`, then the driver's error is raised. Reads
and idempotent writes simply run again. A retry must not turn a commit whose answer was lost
into a failure: ``create_statement``, ``insert_api_key``, ``revoke_api_key``,
``start_statement``, ``finish_statement``, ``request_cancel``, ``upsert_rule``,
``upsert_topic``, ``upsert_grant``, ``record_firing``, ``route_event``, ``finish_delivery``
and ``redrive_delivery`` look for their own first attempt's effect and report success;
``delete_rule``, ``delete_topic`` and ``delete_grant`` report success when the row is gone on
a retry. Three do
not: a lost ``claim_statements`` leaves its statements PICKED until their lease expires (then
recovery hands them out again; never twice), a lost ``claim_deliveries`` leaves its deliveries
leased until then, and a lost ``recover_statements`` returns only what is still left to settle.

The event bus half of the store (events, rules, topics, deliveries) is in ``postgres_bus.py``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolClosed

from .. import errors
from .base import Store
from .events import statement_event
from .migrations import migration_files
from .postgres_bus import _PostgresBusMixin
from .records import (
    ACTIVE,
    ApiKeyRecord,
    GrantRecord,
    SessionRecord,
    StatementFilter,
    StatementRecord,
    StatementStatus,
)

if TYPE_CHECKING:
    from .notify import Notifier
    from .pg_notify import PostgresNotifyTransport

logger = logging.getLogger(__name__)

T = TypeVar("T")
Cursor = psycopg.Cursor[DictRow]

_STATEMENT_COLUMNS = [f.name for f in fields(StatementRecord)]
_ACTIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE))
_WORKER_LOST: dict[str, Any] = {
    "code": "worker_lost",
    "message": "the worker running this statement stopped (crashed or was killed) before it "
    "ended; the statement may or may not have taken effect",
    "sqlstate": None,
    "position": None,
    "details": {},
}
#: First key of the two-key advisory locks this store takes (per-principal submit lock).
_LOCK_CLASS = 0x5174_0001
#: Errors after which the transaction surely or possibly did not happen and may be retried.
_RETRYABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,  # connection lost, server shutting down, pool timeout
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{host}"
        query = parts.query
        if "password" in query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "<unparsable URL>"


def conninfo_for(url: str, **defaults: Any) -> str:
    """libpq connection string for a ``postgresql://`` or ``postgres://`` URL.

    ``defaults`` apply unless the URL sets them. Raises ``ConfigError`` for a malformed URL.
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise errors.ConfigError(f"invalid PostgreSQL URL {redact(url)}: {exc}") from exc
    for key, value in defaults.items():
        params.setdefault(key, value)
    return make_conninfo("", **params)


def _statement(row: DictRow) -> StatementRecord:
    return StatementRecord.from_row(row)


def _session(row: DictRow) -> SessionRecord:
    return SessionRecord(**row)


def _api_key(row: DictRow) -> ApiKeyRecord:
    return ApiKeyRecord(**row)


def _grant(row: DictRow) -> GrantRecord:
    return GrantRecord(**row)


def _statement_row(rec: StatementRecord) -> dict[str, Any]:
    row = rec.to_row()
    for name in StatementRecord._BOOL:
        row[name] = bool(row[name])
    return row


def _encode_fields(fields: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in fields.items():
        if key not in _STATEMENT_COLUMNS:
            raise ValueError(f"unknown statement column {key!r}")
        if key in StatementRecord._JSON:
            value = None if value is None else json.dumps(value)
        elif key in StatementRecord._BOOL:
            value = bool(value)
        elif isinstance(value, StatementStatus):
            value = value.value
        out[key] = value
    return out


class PostgresStore(_PostgresBusMixin, Store):
    dialect = "postgres"
    fast_calls = False
    #: How long a call keeps retrying after losing its connection before giving up.
    retry_seconds: float = 30.0
    #: First and longest pause between retries (exponential in between, with jitter).
    retry_initial: float = 0.05
    retry_max_delay: float = 2.0

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10):
        self.url = url
        self.safe_url = redact(url)
        self.conninfo = conninfo_for(url, connect_timeout=5, application_name="sqltide")
        # One plain connection first: it fails at once, with libpq's reason (refused, unknown
        # database, bad password), where the pool would retry quietly until its timeout.
        try:
            psycopg.connect(self.conninfo).close()
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise errors.ConfigError(
                f"cannot connect to the PostgreSQL store at {self.safe_url}: {reason}",
                details={"url": self.safe_url},
            ) from exc
        self._pool: ConnectionPool = ConnectionPool(
            self.conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            name="sqltide-store",
            timeout=10.0,
            # Give up reconnecting soon: the next call starts a fresh attempt at once, where
            # the pool's own backoff would leave a server that is back unused for seconds.
            # _call's retry loop is what waits out an outage.
            reconnect_timeout=2.0,
        )
        try:
            self._pool.open(wait=True, timeout=10.0)
        except psycopg.Error as exc:
            self._pool.close()
            raise errors.ConfigError(
                f"cannot open connections to the PostgreSQL store at {self.safe_url}: {exc}",
                details={"url": self.safe_url},
            ) from exc

    def close(self) -> None:
        self._pool.close()

    def make_transport(self, notifier: Notifier) -> PostgresNotifyTransport:
        """A ``LISTEN/NOTIFY`` transport carrying ``notifier``'s wake-ups to other processes.

        Attach it with ``notifier.transport = store.make_transport(notifier)``; from then on
        ``notifier.publish`` reaches every process on this database, and ``notifier.close()``
        stops it (close the notifier before the store: sending uses the store's pool).
        """
        from .pg_notify import PostgresNotifyTransport

        return PostgresNotifyTransport(self.url, notifier, pool=self._pool)

    # -- transactions ----------------------------------------------------------------------------
    def _call(self, name: str, fn: Callable[[Cursor, bool], T]) -> T:
        """Run ``fn(cursor, retried)`` in one transaction, retrying on a lost connection.

        ``retried`` is True on every attempt after the first. A write that is not naturally
        idempotent uses it to look for its own earlier effect: the previous attempt may have
        committed and only lost its answer.
        """
        deadline = time.monotonic() + self.retry_seconds
        delay = self.retry_initial
        attempt = 0
        while True:
            try:
                # short, so a call whose connection attempt is waiting out the pool's backoff
                # comes back here and asks again
                timeout = max(0.5, min(3.0, deadline - time.monotonic()))
                with (
                    self._pool.connection(timeout=timeout) as conn,
                    conn.cursor(row_factory=dict_row) as cur,
                ):
                    return fn(cur, attempt > 0)
            except PoolClosed:
                raise
            except _RETRYABLE as exc:
                attempt += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.error(
                        "store call %s failed after %d attempts over %.0f s: %s",
                        name,
                        attempt,
                        self.retry_seconds,
                        exc,
                    )
                    raise
                pause = min(remaining, delay * (0.5 + random.random() / 2))
                logger.warning(
                    "store call %s failed (%s: %s); retry %d in %.2f s",
                    name,
                    type(exc).__name__,
                    " ".join(str(exc).split()),
                    attempt,
                    pause,
                )
                # Throw away every idle connection that died with the one that failed, so the
                # retry does not pick up the next dead one.
                with suppress(Exception):
                    self._pool.check()
                time.sleep(pause)
                delay = min(delay * 2, self.retry_max_delay)

    def _read(
        self, name: str, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[DictRow]:
        return self._call(name, lambda cur, _: cur.execute(sql, params).fetchall())

    # -- migrations ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        def run(cur: Cursor, _retried: bool) -> list[str]:
            applied: list[str] = []
            # Held to the end of the transaction: a second process starting now waits here,
            # then finds everything applied.
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('sqltide.migrate', 0))")
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in cur.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in migration_files(self.dialect):
                if version in done:
                    continue
                cur.execute(sql.encode())  # a whole file, several statements, no parameters
                cur.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (version, name),
                )
                applied.append(name)
            return applied

        return self._call("migrate", run)

    # -- meta ----------------------------------------------------------------------------------
    def get_or_set_meta(self, key: str, value: str) -> str:
        def run(cur: Cursor, _retried: bool) -> str:
            cur.execute(
                "INSERT INTO sqltide_meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (key, value),
            )
            row = cur.execute("SELECT value FROM sqltide_meta WHERE key = %s", (key,)).fetchone()
            assert row is not None
            return str(row["value"])

        return self._call("get_or_set_meta", run)

    # -- API keys ------------------------------------------------------------------------------
    def insert_api_key(self, key: ApiKeyRecord) -> None:
        row = asdict(key)

        def run(cur: Cursor, retried: bool) -> None:
            if (
                retried
                and cur.execute("SELECT 1 FROM api_keys WHERE id = %s", (key.id,)).fetchone()
            ):
                return  # the first attempt committed
            cur.execute(
                f"INSERT INTO api_keys ({', '.join(row)}) "
                f"VALUES ({', '.join(f'%({k})s' for k in row)})",
                row,
            )

        self._call("insert_api_key", run)

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        rows = self._read("find_api_key", "SELECT * FROM api_keys WHERE key_hash = %s", (key_hash,))
        return _api_key(rows[0]) if rows else None

    def list_api_keys(self) -> list[ApiKeyRecord]:
        rows = self._read("list_api_keys", "SELECT * FROM api_keys ORDER BY created_at")
        return [_api_key(r) for r in rows]

    def revoke_api_key(self, key_id: str, now: float) -> bool:
        def run(cur: Cursor, retried: bool) -> bool:
            cur.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                (now, key_id),
            )
            if cur.rowcount > 0:
                return True
            if retried:  # revoked by our own first attempt?
                row = cur.execute(
                    "SELECT revoked_at FROM api_keys WHERE id = %s", (key_id,)
                ).fetchone()
                return row is not None and row["revoked_at"] == now
            return False

        return self._call("revoke_api_key", run)

    # -- warehouse grants ----------------------------------------------------------------------
    def upsert_grant(self, grant: GrantRecord) -> bool:
        def run(cur: Cursor, retried: bool) -> bool:
            # xmax = 0 only for a row this statement inserted (an update sets it).
            row = cur.execute(
                "INSERT INTO warehouse_grants (principal, warehouse, access, db_role, created_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (principal, warehouse) DO UPDATE SET "
                "access = excluded.access, db_role = excluded.db_role "
                "RETURNING (xmax = 0) AS inserted, created_at",
                (grant.principal, grant.warehouse, grant.access, grant.db_role, grant.created_at),
            ).fetchone()
            assert row is not None
            # On a retry, a row our own first attempt inserted carries our created_at.
            return bool(row["inserted"]) or (retried and row["created_at"] == grant.created_at)

        return self._call("upsert_grant", run)

    def get_grant(self, principal: str, warehouse: str) -> GrantRecord | None:
        rows = self._read(
            "get_grant",
            "SELECT * FROM warehouse_grants WHERE principal = %s AND warehouse = %s",
            (principal, warehouse),
        )
        return _grant(rows[0]) if rows else None

    def list_grants(self, principal: str | None = None) -> list[GrantRecord]:
        if principal is None:
            rows = self._read(
                "list_grants", "SELECT * FROM warehouse_grants ORDER BY principal, warehouse"
            )
        else:
            rows = self._read(
                "list_grants",
                "SELECT * FROM warehouse_grants WHERE principal = %s ORDER BY warehouse",
                (principal,),
            )
        return [_grant(r) for r in rows]

    def delete_grant(self, principal: str, warehouse: str) -> bool:
        def run(cur: Cursor, retried: bool) -> bool:
            cur.execute(
                "DELETE FROM warehouse_grants WHERE principal = %s AND warehouse = %s",
                (principal, warehouse),
            )
            # A retry finding nothing: our first attempt deleted it (as delete_rule does).
            return cur.rowcount > 0 or retried

        return self._call("delete_grant", run)

    # -- statements ----------------------------------------------------------------------------
    @staticmethod
    def _insert_statements(cur: Cursor, recs: Sequence[StatementRecord]) -> None:
        if not recs:
            return
        cols = _STATEMENT_COLUMNS
        cur.executemany(
            f"INSERT INTO statements ({', '.join(cols)}) "
            f"VALUES ({', '.join(f'%({k})s' for k in cols)})",
            [_statement_row(r) for r in recs],
        )

    def create_statement(
        self,
        statement: StatementRecord,
        sub_statements: Sequence[StatementRecord] = (),
        *,
        new_session: SessionRecord | None = None,
        max_active: int | None = None,
        now: float,
    ) -> tuple[StatementRecord, bool]:
        def run(cur: Cursor, retried: bool) -> tuple[StatementRecord, bool]:
            if (
                retried
                and cur.execute(
                    "SELECT 1 FROM statements WHERE id = %s", (statement.id,)
                ).fetchone()
            ):
                # The first attempt committed and only its answer was lost.
                return statement, True
            if max_active is not None:
                # Count and insert as one step per principal (SQLite has a single writer).
                cur.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    (_LOCK_CLASS, statement.principal),
                )
            if statement.client_token is not None:
                existing = self._by_client_token(cur, statement)
                if existing is not None:
                    return existing, False
            if max_active is not None:
                row = cur.execute(
                    "SELECT count(*) AS n FROM statements WHERE principal = %s "
                    f"AND parent_id IS NULL AND status IN ({_ACTIVE_SQL})",
                    (statement.principal,),
                ).fetchone()
                active = int(row["n"]) if row else 0
                if active >= max_active:
                    raise errors.TooManyRequests(
                        f"principal has {active} unfinished statements (limit {max_active}); "
                        "wait for some to end",
                        details={"active": active, "limit": max_active},
                    )
            if new_session is not None:
                srow = asdict(new_session)
                cur.execute(
                    f"INSERT INTO sessions ({', '.join(srow)}) "
                    f"VALUES ({', '.join(f'%({k})s' for k in srow)})",
                    srow,
                )
            elif statement.session_id is not None:
                self._check_session_idle(cur, statement, now)
            self._insert_statements(cur, [statement, *sub_statements])
            return statement, True

        try:
            return self._call("create_statement", run)
        except pg_errors.UniqueViolation as exc:
            if statement.client_token is None or exc.diag.constraint_name != (
                "statements_client_token"
            ):
                raise
        # A concurrent request with the same token committed first: answer with its statement.
        winner = self._call(
            "create_statement", lambda cur, _: self._by_client_token(cur, statement)
        )
        if winner is None:  # pragma: no cover - the unique index says it exists
            raise errors.InternalError("client token conflict without a statement")
        return winner, False

    @staticmethod
    def _by_client_token(cur: Cursor, statement: StatementRecord) -> StatementRecord | None:
        row = cur.execute(
            "SELECT * FROM statements WHERE principal = %s AND client_token = %s "
            "AND parent_id IS NULL",
            (statement.principal, statement.client_token),
        ).fetchone()
        return _statement(row) if row else None

    def _check_session_idle(self, cur: Cursor, statement: StatementRecord, now: float) -> None:
        # The row lock makes concurrent submits to one session (and closing it) take turns.
        row = cur.execute(
            "SELECT * FROM sessions WHERE id = %s FOR UPDATE", (statement.session_id,)
        ).fetchone()
        details = {"session_id": statement.session_id}
        if (
            row is None
            or row["principal"] != statement.principal
            or row["closed_at"] is not None
            or (row["expires_at"] <= now and not self._session_active(cur, row["id"]))
        ):
            raise errors.SessionNotFound(details=details)
        if row["warehouse"] != statement.warehouse:
            raise errors.InvalidRequest(
                f"session {row['id']} is on warehouse {row['warehouse']!r}, "
                f"not {statement.warehouse!r}",
                details=details,
            )
        busy = self._session_active(cur, row["id"])
        if busy:
            raise errors.SessionBusy(details={**details, "statement_id": busy})

    @staticmethod
    def _session_active(cur: Cursor, session_id: str) -> str | None:
        row = cur.execute(
            "SELECT id FROM statements WHERE session_id = %s AND parent_id IS NULL "
            f"AND status IN ({_ACTIVE_SQL}) LIMIT 1",
            (session_id,),
        ).fetchone()
        return str(row["id"]) if row else None

    def get_statement(self, statement_id: str) -> StatementRecord | None:
        rows = self._read(
            "get_statement", "SELECT * FROM statements WHERE id = %s", (statement_id,)
        )
        return _statement(rows[0]) if rows else None

    def get_sub_statements(self, parent_id: str) -> list[StatementRecord]:
        rows = self._read(
            "get_sub_statements",
            "SELECT * FROM statements WHERE parent_id = %s ORDER BY idx",
            (parent_id,),
        )
        return [_statement(r) for r in rows]

    def list_statements(self, flt: StatementFilter) -> list[StatementRecord]:
        where = ["parent_id IS NULL", "principal = %(principal)s"]
        params: dict[str, Any] = {"principal": flt.principal, "limit": flt.limit}
        if flt.status is not None:
            where.append("status = %(status)s")
            params["status"] = flt.status.value
        if flt.name_prefix:
            # starts_with keeps the match case-sensitive and free of LIKE wildcards
            where.append("starts_with(statement_name, %(prefix)s)")
            params["prefix"] = flt.name_prefix
        if flt.created_after is not None:
            where.append("created_at >= %(after_t)s")
            params["after_t"] = flt.created_after
        if flt.created_before is not None:
            where.append("created_at < %(before_t)s")
            params["before_t"] = flt.created_before
        if flt.after is not None:
            where.append("(created_at < %(cur_t)s OR (created_at = %(cur_t)s AND id < %(cur_id)s))")
            params.update(cur_t=flt.after[0], cur_id=flt.after[1])
        rows = self._read(
            "list_statements",
            f"SELECT * FROM statements WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            params,
        )
        return [_statement(r) for r in rows]

    def claim_statements(
        self, warehouses: Sequence[str], owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[StatementRecord]:
        if not warehouses or limit <= 0:
            return []
        params = {
            "owner": owner,
            "until": now + lease_seconds,
            "now": now,
            "wh": list(warehouses),
            "limit": limit,
        }

        # Not checked on retry: statements a first attempt claimed before its answer was lost
        # are PICKED under our name but unknown to the caller. Handing them out now could hand
        # out twice (a caller reusing ``now``); left alone, their lease expires and recovery
        # puts them back (one lease of delay, rare, never run twice).
        def run(cur: Cursor, _retried: bool) -> list[StatementRecord]:
            # SKIP LOCKED: rows another worker is claiming right now are not ours to wait for;
            # the lock is re-checked against the latest row, so none is claimed twice.
            rows = cur.execute(
                "UPDATE statements SET status = 'PICKED', lease_owner = %(owner)s, "
                "lease_expires_at = %(until)s, updated_at = %(now)s, attempts = attempts + 1 "
                "WHERE id IN ("
                "  SELECT id FROM statements WHERE status = 'SUBMITTED' AND parent_id IS NULL"
                "  AND warehouse = ANY(%(wh)s) AND (session_id IS NULL OR session_id IN ("
                "    SELECT id FROM sessions WHERE owner IS NULL OR owner = %(owner)s))"
                "  ORDER BY created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) RETURNING *",
                params,
            ).fetchall()
            claimed = [_statement(r) for r in rows]
            sessions = sorted({r.session_id for r in claimed if r.session_id})
            if sessions:
                cur.execute(
                    "UPDATE sessions SET owner = %s WHERE id = ANY(%s) AND owner IS NULL",
                    (owner, sessions),
                )
            return claimed

        claimed = self._call("claim_statements", run)
        claimed.sort(key=lambda r: r.created_at)
        return claimed

    def start_statement(self, statement_id: str, owner: str, now: float) -> bool:
        def run(cur: Cursor, retried: bool) -> bool:
            cur.execute(
                "UPDATE statements SET status = 'STARTED', started_at = %(now)s, "
                "updated_at = %(now)s WHERE id = %(id)s AND status = 'PICKED' "
                "AND lease_owner = %(owner)s AND NOT cancel_requested",
                {"now": now, "id": statement_id, "owner": owner},
            )
            if cur.rowcount > 0:
                return True
            if retried:  # started by our own first attempt?
                return (
                    cur.execute(
                        "SELECT 1 FROM statements WHERE id = %s AND status = 'STARTED' "
                        "AND lease_owner = %s AND started_at = %s",
                        (statement_id, owner, now),
                    ).fetchone()
                    is not None
                )
            return False

        return self._call("start_statement", run)

    def update_statement(self, statement_id: str, fields: dict[str, object]) -> None:
        row = _encode_fields(fields)
        if not row:
            return
        self._call(
            "update_statement",
            lambda cur, _: cur.execute(
                f"UPDATE statements SET {', '.join(f'{k} = %({k})s' for k in row)} "
                "WHERE id = %(_id)s",
                {**row, "_id": statement_id},
            ),
        )

    def finish_statement(
        self, statement_id: str, owner: str, fields: dict[str, object], now: float
    ) -> bool:
        row = _encode_fields({**fields, "lease_owner": None, "lease_expires_at": None})

        def run(cur: Cursor, retried: bool) -> bool:
            cur.execute(
                f"UPDATE statements SET {', '.join(f'{k} = %({k})s' for k in row)} "
                "WHERE id = %(_id)s AND lease_owner = %(_owner)s "
                "AND status IN ('PICKED', 'STARTED')",
                {**row, "_id": statement_id, "_owner": owner},
            )
            if cur.rowcount > 0:
                self._extend_session(cur, statement_id, now)
                self._emit_statement_event(cur, statement_id, now)
                return True
            if retried:  # finished by our own first attempt: the row holds exactly our fields
                got = cur.execute(
                    "SELECT * FROM statements WHERE id = %s", (statement_id,)
                ).fetchone()
                return got is not None and all(got[k] == v for k, v in row.items())
            return False

        return self._call("finish_statement", run)

    def _emit_statement_event(self, cur: Cursor, statement_id: str, now: float) -> None:
        """The status change event of a statement that just ended, if it asked for one."""
        row = cur.execute("SELECT * FROM statements WHERE id = %s", (statement_id,)).fetchone()
        if row is None or not row["with_event"] or row["parent_id"] is not None:
            return
        rec = _statement(row)
        if rec.status.is_terminal:
            self._insert_events(cur, [statement_event(rec, now, self.result_retention_seconds)])

    @staticmethod
    def _extend_session(cur: Cursor, statement_id: str, now: float) -> None:
        cur.execute(
            "UPDATE sessions SET expires_at = %(now)s + keep_alive_seconds WHERE id = "
            "(SELECT session_id FROM statements WHERE id = %(id)s) AND closed_at IS NULL",
            {"now": now, "id": statement_id},
        )

    def request_cancel(self, statement_id: str, now: float) -> StatementRecord:
        def run(cur: Cursor, retried: bool) -> StatementRecord:
            row = cur.execute(
                "SELECT * FROM statements WHERE id = %s FOR UPDATE", (statement_id,)
            ).fetchone()
            if row is None:
                raise errors.StatementNotFound(details={"id": statement_id})
            rec = _statement(row)
            if rec.status.is_terminal:
                if (
                    retried
                    and rec.status is StatementStatus.ABORTED
                    and rec.cancel_requested
                    and rec.ended_at == now
                ):
                    return rec  # aborted by our own first attempt
                raise errors.InvalidState(
                    f"statement is already {rec.status.value}; only a statement that has not "
                    "ended can be cancelled",
                    details={"id": statement_id, "status": rec.status.value},
                )
            if rec.status is StatementStatus.SUBMITTED:
                error: dict[str, Any] = {
                    "code": "cancelled",
                    "message": "cancelled before it started",
                    "sqlstate": "57014",
                    "position": None,
                    "details": {},
                }
                cur.execute(
                    "UPDATE statements SET status = 'ABORTED', cancel_requested = true, "
                    "updated_at = %(now)s, ended_at = %(now)s, error = %(error)s "
                    "WHERE id = %(id)s OR parent_id = %(id)s",
                    {"now": now, "id": statement_id, "error": json.dumps(error)},
                )
                self._extend_session(cur, statement_id, now)
                self._emit_statement_event(cur, statement_id, now)
            else:
                cur.execute(
                    "UPDATE statements SET cancel_requested = true, updated_at = %s WHERE id = %s",
                    (now, statement_id),
                )
            got = cur.execute("SELECT * FROM statements WHERE id = %s", (statement_id,)).fetchone()
            assert got is not None
            return _statement(got)

        return self._call("request_cancel", run)

    def heartbeat(
        self, owner: str, statement_ids: Sequence[str], lease_until: float, now: float
    ) -> list[str]:
        if not statement_ids:
            return []
        ids = list(statement_ids)

        def run(cur: Cursor, _retried: bool) -> list[str]:
            cur.execute(
                "UPDATE statements SET lease_expires_at = %s WHERE lease_owner = %s "
                "AND id = ANY(%s)",
                (lease_until, owner, ids),
            )
            rows = cur.execute(
                "SELECT id FROM statements WHERE cancel_requested AND id = ANY(%s)", (ids,)
            ).fetchall()
            return [str(r["id"]) for r in rows]

        return self._call("heartbeat", run)

    def recover_statements(
        self, now: float, *, orphaned_warehouses: Sequence[str] = (), owner: str = ""
    ) -> list[StatementRecord]:
        # A retry after a commit whose answer was lost returns only what is still left to
        # settle: the changes themselves are durable, their wake-ups fall back to polling.
        orphaned = list(orphaned_warehouses)
        cond = "lease_expires_at < %(now)s"
        if orphaned:
            cond = (
                f"({cond} OR (warehouse = ANY(%(orphaned)s) "
                "AND lease_owner IS DISTINCT FROM %(owner)s))"
            )
        params = {"now": now, "orphaned": orphaned, "owner": owner}

        def run(cur: Cursor, _retried: bool) -> list[StatementRecord]:
            changed: list[StatementRecord] = []
            # SKIP LOCKED: a row locked now is being finished, heartbeated or recovered by
            # someone else, so it is not ours to settle.
            rows = cur.execute(
                "SELECT * FROM statements WHERE parent_id IS NULL "
                f"AND status IN ('PICKED', 'STARTED') AND {cond} "
                "ORDER BY created_at, id FOR UPDATE SKIP LOCKED",
                params,
            ).fetchall()
            for row in rows:
                rec = _statement(row)
                if rec.status is StatementStatus.PICKED and not rec.cancel_requested:
                    cur.execute(
                        "UPDATE statements SET status = 'SUBMITTED', lease_owner = NULL, "
                        "lease_expires_at = NULL, updated_at = %s WHERE id = %s",
                        (now, rec.id),
                    )
                    rec.status = StatementStatus.SUBMITTED
                else:
                    aborted = rec.status is StatementStatus.PICKED
                    error: dict[str, Any] = dict(_WORKER_LOST)
                    if aborted:
                        error.update(code="cancelled", message="cancelled before it started")
                    status = "ABORTED" if aborted else "FAILED"
                    args = {"status": status, "now": now, "error": json.dumps(error), "id": rec.id}
                    cur.execute(
                        "UPDATE statements SET status = %(status)s, lease_owner = NULL, "
                        "lease_expires_at = NULL, updated_at = %(now)s, ended_at = %(now)s, "
                        "error = %(error)s WHERE id = %(id)s",
                        args,
                    )
                    # sub-statements that had not ended end with their batch
                    cur.execute(
                        "UPDATE statements SET status = %(status)s, updated_at = %(now)s, "
                        "ended_at = %(now)s, error = %(error)s WHERE parent_id = %(id)s "
                        f"AND status IN ({_ACTIVE_SQL})",
                        args,
                    )
                    self._extend_session(cur, rec.id, now)
                    self._emit_statement_event(cur, rec.id, now)
                    rec.status = StatementStatus(status)
                    rec.error = error
                changed.append(rec)
            # A session's connection lives in its worker: when that worker is gone the session
            # is too. Close it and release it, so what waits in it is claimed (and ended as
            # "session closed") instead of waiting for the dead owner forever.
            session_ids = sorted({r.session_id for r in changed if r.session_id})
            lost: list[str] = []
            if session_ids:
                lost.append("id = ANY(%(sessions)s)")
            if orphaned:
                lost.append(
                    "(warehouse = ANY(%(orphaned)s) AND owner IS NOT NULL "
                    "AND owner IS DISTINCT FROM %(owner)s)"
                )
            if lost:
                cur.execute(
                    "UPDATE sessions SET closed_at = %(now)s, owner = NULL "
                    f"WHERE closed_at IS NULL AND ({' OR '.join(lost)})",
                    {**params, "sessions": session_ids},
                )
            return changed

        return self._call("recover_statements", run)

    def statements_with_expired_results(
        self, ended_before: float, limit: int
    ) -> list[StatementRecord]:
        rows = self._read(
            "statements_with_expired_results",
            "SELECT * FROM statements WHERE parent_id IS NULL AND NOT result_expired "
            "AND ended_at < %s ORDER BY ended_at LIMIT %s",
            (ended_before, limit),
        )
        return [_statement(r) for r in rows]

    def mark_results_expired(self, statement_ids: Sequence[str]) -> None:
        if not statement_ids:
            return
        ids = list(statement_ids)
        self._call(
            "mark_results_expired",
            lambda cur, _: cur.execute(
                "UPDATE statements SET result_expired = true, result_meta = NULL "
                "WHERE id = ANY(%(ids)s) OR parent_id = ANY(%(ids)s)",
                {"ids": ids},
            ),
        )

    def delete_statements_ended_before(
        self, before: float, limit: int = 1000
    ) -> list[tuple[str, bool]]:
        def run(cur: Cursor, _retried: bool) -> list[tuple[str, bool]]:
            # A retry after a lost commit finds the next slice; the ids of the first one are
            # lost with its reply, and their results were expired before in the usual case.
            cur.execute(
                "WITH old AS (SELECT id, result_expired FROM statements WHERE parent_id IS NULL "
                "AND ended_at < %s AND status IN ('FINISHED', 'FAILED', 'ABORTED') "
                "ORDER BY ended_at LIMIT %s FOR UPDATE SKIP LOCKED), "
                "subs AS (DELETE FROM statements WHERE parent_id IN (SELECT id FROM old)) "
                "DELETE FROM statements s USING old WHERE s.id = old.id "
                "RETURNING old.id, old.result_expired",
                (before, limit),
            )
            return [(r["id"], bool(r["result_expired"])) for r in cur.fetchall()]

        return self._call("delete_statements_ended_before", run)

    # -- sessions ------------------------------------------------------------------------------
    def get_session(self, session_id: str) -> SessionRecord | None:
        rows = self._read("get_session", "SELECT * FROM sessions WHERE id = %s", (session_id,))
        return _session(rows[0]) if rows else None

    def expired_sessions(self, now: float) -> list[SessionRecord]:
        rows = self._read(
            "expired_sessions",
            "SELECT * FROM sessions s WHERE closed_at IS NULL AND expires_at <= %s "
            "AND NOT EXISTS (SELECT 1 FROM statements t WHERE t.session_id = s.id "
            f"AND t.parent_id IS NULL AND t.status IN ({_ACTIVE_SQL}))",
            (now,),
        )
        return [_session(r) for r in rows]

    def close_session(self, session_id: str, now: float) -> None:
        self._call(
            "close_session",
            lambda cur, _: cur.execute(
                "UPDATE sessions SET closed_at = %s WHERE id = %s AND closed_at IS NULL",
                (now, session_id),
            ),
        )
