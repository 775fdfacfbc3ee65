"""The embedded state store: one SQLite file (``sqlite:///path.db``), WAL mode.

SQLite has one writer at a time. Every write here is one ``BEGIN IMMEDIATE`` transaction taken
under a process-wide lock, so threads of this process queue in Python instead of spinning on
SQLITE_BUSY; other processes (the CLI's ``keys`` commands) wait on the busy timeout.

The event bus half of the store (events, rules, topics, deliveries) is in ``sqlite_bus.py``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, fields
from typing import Any

from .. import errors
from ..files import private_file, tighten
from ..urls import path_of
from .base import Store
from .events import statement_event
from .migrations import migration_files
from .records import (
    ACTIVE,
    ApiKeyRecord,
    GrantRecord,
    SessionRecord,
    StatementFilter,
    StatementRecord,
    StatementStatus,
)
from .sqlite_bus import _SQLiteBusMixin

_STATEMENT_COLUMNS = [f.name for f in fields(StatementRecord)]
_ACTIVE = tuple(s.value for s in ACTIVE)
_WORKER_LOST: dict[str, Any] = {
    "code": "worker_lost",
    "message": "the worker running this statement stopped (crashed or was killed) before it "
    "ended; the statement may or may not have taken effect",
    "sqlstate": None,
    "position": None,
    "details": {},
}


def _statement(row: sqlite3.Row) -> StatementRecord:
    return StatementRecord.from_row({k: row[k] for k in _STATEMENT_COLUMNS})


def _session(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(**{k: row[k] for k in row.keys()})  # noqa: SIM118 (Row iterates values)


def _api_key(row: sqlite3.Row) -> ApiKeyRecord:
    data = {k: row[k] for k in row.keys()}  # noqa: SIM118 (Row iterates values)
    data["is_admin"] = bool(data["is_admin"])
    return ApiKeyRecord(**data)


def _grant(row: sqlite3.Row) -> GrantRecord:
    return GrantRecord(**{k: row[k] for k in row.keys()})  # noqa: SIM118 (Row iterates values)


class SQLiteStore(_SQLiteBusMixin, Store):
    dialect = "sqlite"
    fast_calls = True

    def __init__(self, url: str):
        self.url = url
        self.path = path_of(url)
        if self.path == ":memory:":
            # One shared in-memory database for every thread of this process.
            self.path = f"file:sqltide-{id(self)}?mode=memory&cache=shared"
        else:
            # Made owner-only before SQLite opens it: SQLite gives its -wal and -shm files
            # the database file's mode.
            private_file(self.path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._keeper = self._connect()  # keeps a shared in-memory database alive
        if not self.path.startswith("file:"):
            for journal in ("-wal", "-shm"):  # left looser by an older sqltide
                tighten(self.path + journal)

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(
                self.path,
                uri=self.path.startswith("file:"),
                isolation_level=None,
                check_same_thread=False,
                timeout=30.0,
            )
        except sqlite3.Error as exc:
            raise errors.ConfigError(f"cannot open SQLite store {self.path}: {exc}") from exc
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
        with self._all_lock:
            self._all.append(con)
        return con

    @property
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._con
        with self._write_lock:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self._con.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._all_lock:
            for con in self._all:
                with suppress(sqlite3.Error):
                    con.close()
            self._all.clear()
        self._local = threading.local()

    # -- migrations ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._write() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in con.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in migration_files(self.dialect):
                if version in done:
                    continue
                for stmt in _split_sql(sql):
                    con.execute(stmt)
                con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, datetime('now'))", (version, name)
                )
                applied.append(name)
        return applied

    # -- meta ----------------------------------------------------------------------------------
    def get_or_set_meta(self, key: str, value: str) -> str:
        with self._write() as con:
            con.execute(
                "INSERT INTO sqltide_meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (key, value),
            )
            return con.execute("SELECT value FROM sqltide_meta WHERE key = ?", (key,)).fetchone()[0]

    # -- API keys ------------------------------------------------------------------------------
    def insert_api_key(self, key: ApiKeyRecord) -> None:
        row = asdict(key)
        with self._write() as con:
            con.execute(
                f"INSERT INTO api_keys ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                [int(v) if isinstance(v, bool) else v for v in row.values()],
            )

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        rows = self._read("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,))
        return _api_key(rows[0]) if rows else None

    def list_api_keys(self) -> list[ApiKeyRecord]:
        return [_api_key(r) for r in self._read("SELECT * FROM api_keys ORDER BY created_at")]

    def revoke_api_key(self, key_id: str, now: float) -> bool:
        with self._write() as con:
            cur = con.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now, key_id),
            )
            return cur.rowcount > 0

    # -- warehouse grants ----------------------------------------------------------------------
    def upsert_grant(self, grant: GrantRecord) -> bool:
        with self._write() as con:
            new = (
                con.execute(
                    "SELECT 1 FROM warehouse_grants WHERE principal = ? AND warehouse = ?",
                    (grant.principal, grant.warehouse),
                ).fetchone()
                is None
            )
            con.execute(
                "INSERT INTO warehouse_grants (principal, warehouse, access, db_role, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (principal, warehouse) DO UPDATE SET "
                "access = excluded.access, db_role = excluded.db_role",
                (grant.principal, grant.warehouse, grant.access, grant.db_role, grant.created_at),
            )
            return new

    def get_grant(self, principal: str, warehouse: str) -> GrantRecord | None:
        rows = self._read(
            "SELECT * FROM warehouse_grants WHERE principal = ? AND warehouse = ?",
            (principal, warehouse),
        )
        return _grant(rows[0]) if rows else None

    def list_grants(self, principal: str | None = None) -> list[GrantRecord]:
        if principal is None:
            rows = self._read("SELECT * FROM warehouse_grants ORDER BY principal, warehouse")
        else:
            rows = self._read(
                "SELECT * FROM warehouse_grants WHERE principal = ? ORDER BY warehouse",
                (principal,),
            )
        return [_grant(r) for r in rows]

    def delete_grant(self, principal: str, warehouse: str) -> bool:
        with self._write() as con:
            cur = con.execute(
                "DELETE FROM warehouse_grants WHERE principal = ? AND warehouse = ?",
                (principal, warehouse),
            )
            return cur.rowcount > 0

    # -- statements ----------------------------------------------------------------------------
    def _insert_statement(self, con: sqlite3.Connection, rec: StatementRecord) -> None:
        row = rec.to_row()
        con.execute(
            f"INSERT INTO statements ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})",
            row,
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
        with self._write() as con:
            if statement.client_token is not None:
                rows = con.execute(
                    "SELECT * FROM statements WHERE principal = ? AND client_token = ? "
                    "AND parent_id IS NULL",
                    (statement.principal, statement.client_token),
                ).fetchall()
                if rows:
                    return _statement(rows[0]), False
            if max_active is not None:
                active = con.execute(
                    "SELECT count(*) FROM statements WHERE principal = ? AND parent_id IS NULL "
                    f"AND status IN ({', '.join('?' * len(_ACTIVE))})",
                    (statement.principal, *_ACTIVE),
                ).fetchone()[0]
                if active >= max_active:
                    raise errors.TooManyRequests(
                        f"principal has {active} unfinished statements (limit {max_active}); "
                        "wait for some to end",
                        details={"active": active, "limit": max_active},
                    )
            if new_session is not None:
                row = asdict(new_session)
                con.execute(
                    f"INSERT INTO sessions ({', '.join(row)}) "
                    f"VALUES ({', '.join(':' + k for k in row)})",
                    row,
                )
            elif statement.session_id is not None:
                self._check_session_idle(con, statement, now)
            self._insert_statement(con, statement)
            for sub in sub_statements:
                self._insert_statement(con, sub)
            return statement, True

    def _check_session_idle(
        self, con: sqlite3.Connection, statement: StatementRecord, now: float
    ) -> None:
        row = con.execute("SELECT * FROM sessions WHERE id = ?", (statement.session_id,)).fetchone()
        details = {"session_id": statement.session_id}
        if (
            row is None
            or row["principal"] != statement.principal
            or row["closed_at"] is not None
            or (row["expires_at"] <= now and not self._session_active(con, row["id"]))
        ):
            raise errors.SessionNotFound(details=details)
        if row["warehouse"] != statement.warehouse:
            raise errors.InvalidRequest(
                f"session {row['id']} is on warehouse {row['warehouse']!r}, "
                f"not {statement.warehouse!r}",
                details=details,
            )
        busy = self._session_active(con, row["id"])
        if busy:
            raise errors.SessionBusy(details={**details, "statement_id": busy})

    @staticmethod
    def _session_active(con: sqlite3.Connection, session_id: str) -> str | None:
        row = con.execute(
            "SELECT id FROM statements WHERE session_id = ? AND parent_id IS NULL "
            f"AND status IN ({', '.join('?' * len(_ACTIVE))}) LIMIT 1",
            (session_id, *_ACTIVE),
        ).fetchone()
        return row[0] if row else None

    def get_statement(self, statement_id: str) -> StatementRecord | None:
        rows = self._read("SELECT * FROM statements WHERE id = ?", (statement_id,))
        return _statement(rows[0]) if rows else None

    def get_sub_statements(self, parent_id: str) -> list[StatementRecord]:
        rows = self._read("SELECT * FROM statements WHERE parent_id = ? ORDER BY idx", (parent_id,))
        return [_statement(r) for r in rows]

    def list_statements(self, flt: StatementFilter) -> list[StatementRecord]:
        where = ["parent_id IS NULL", "principal = :principal"]
        params: dict[str, Any] = {"principal": flt.principal, "limit": flt.limit}
        if flt.status is not None:
            where.append("status = :status")
            params["status"] = flt.status.value
        if flt.name_prefix:
            # substr keeps the match case-sensitive and free of LIKE wildcards
            where.append("substr(statement_name, 1, :plen) = :prefix")
            params.update(prefix=flt.name_prefix, plen=len(flt.name_prefix))
        if flt.created_after is not None:
            where.append("created_at >= :after_t")
            params["after_t"] = flt.created_after
        if flt.created_before is not None:
            where.append("created_at < :before_t")
            params["before_t"] = flt.created_before
        if flt.after is not None:
            where.append("(created_at < :cur_t OR (created_at = :cur_t AND id < :cur_id))")
            params.update(cur_t=flt.after[0], cur_id=flt.after[1])
        rows = self._read(
            f"SELECT * FROM statements WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT :limit",
            params,
        )
        return [_statement(r) for r in rows]

    def claim_statements(
        self, warehouses: Sequence[str], owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[StatementRecord]:
        if not warehouses or limit <= 0:
            return []
        marks = ", ".join("?" * len(warehouses))
        with self._write() as con:
            rows = con.execute(
                "UPDATE statements SET status = 'PICKED', lease_owner = ?, lease_expires_at = ?, "
                "updated_at = ?, attempts = attempts + 1 WHERE id IN ("
                "  SELECT id FROM statements WHERE status = 'SUBMITTED' AND parent_id IS NULL"
                f"  AND warehouse IN ({marks}) AND (session_id IS NULL OR session_id IN ("
                "    SELECT id FROM sessions WHERE owner IS NULL OR owner = ?))"
                "  ORDER BY created_at LIMIT ?) RETURNING *",
                (owner, now + lease_seconds, now, *warehouses, owner, limit),
            ).fetchall()
            claimed = [_statement(r) for r in rows]
            sessions = {r.session_id for r in claimed if r.session_id}
            for sid in sessions:
                con.execute(
                    "UPDATE sessions SET owner = ? WHERE id = ? AND owner IS NULL", (owner, sid)
                )
        claimed.sort(key=lambda r: r.created_at)
        return claimed

    def start_statement(self, statement_id: str, owner: str, now: float) -> bool:
        with self._write() as con:
            cur = con.execute(
                "UPDATE statements SET status = 'STARTED', started_at = ?, updated_at = ? "
                "WHERE id = ? AND status = 'PICKED' AND lease_owner = ? AND cancel_requested = 0",
                (now, now, statement_id, owner),
            )
            return cur.rowcount > 0

    def update_statement(self, statement_id: str, fields: dict[str, object]) -> None:
        row = _encode_fields(fields)
        with self._write() as con:
            con.execute(
                f"UPDATE statements SET {', '.join(f'{k} = :{k}' for k in row)} WHERE id = :_id",
                {**row, "_id": statement_id},
            )

    def finish_statement(
        self, statement_id: str, owner: str, fields: dict[str, object], now: float
    ) -> bool:
        row = _encode_fields({**fields, "lease_owner": None, "lease_expires_at": None})
        with self._write() as con:
            cur = con.execute(
                f"UPDATE statements SET {', '.join(f'{k} = :{k}' for k in row)} "
                "WHERE id = :_id AND lease_owner = :_owner AND status IN ('PICKED', 'STARTED')",
                {**row, "_id": statement_id, "_owner": owner},
            )
            if cur.rowcount == 0:
                return False
            self._extend_session(con, statement_id, now)
            self._emit_statement_event(con, statement_id, now)
            return True

    def _emit_statement_event(self, con: sqlite3.Connection, statement_id: str, now: float) -> None:
        """The status change event of a statement that just ended, if it asked for one."""
        row = con.execute("SELECT * FROM statements WHERE id = ?", (statement_id,)).fetchone()
        if row is None or not row["with_event"] or row["parent_id"] is not None:
            return
        rec = _statement(row)
        if rec.status.is_terminal:
            self._insert_events(con, [statement_event(rec, now, self.result_retention_seconds)])

    @staticmethod
    def _extend_session(con: sqlite3.Connection, statement_id: str, now: float) -> None:
        con.execute(
            "UPDATE sessions SET expires_at = ? + keep_alive_seconds WHERE id = "
            "(SELECT session_id FROM statements WHERE id = ?) AND closed_at IS NULL",
            (now, statement_id),
        )

    def request_cancel(self, statement_id: str, now: float) -> StatementRecord:
        with self._write() as con:
            row = con.execute("SELECT * FROM statements WHERE id = ?", (statement_id,)).fetchone()
            if row is None:
                raise errors.StatementNotFound(details={"id": statement_id})
            rec = _statement(row)
            if rec.status.is_terminal:
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
                con.execute(
                    "UPDATE statements SET status = 'ABORTED', cancel_requested = 1, "
                    "updated_at = :now, ended_at = :now, error = :error "
                    "WHERE id = :id OR parent_id = :id",
                    {"now": now, "id": statement_id, "error": json.dumps(error)},
                )
                self._extend_session(con, statement_id, now)
                self._emit_statement_event(con, statement_id, now)
            else:
                con.execute(
                    "UPDATE statements SET cancel_requested = 1, updated_at = ? WHERE id = ?",
                    (now, statement_id),
                )
            return _statement(
                con.execute("SELECT * FROM statements WHERE id = ?", (statement_id,)).fetchone()
            )

    def heartbeat(
        self, owner: str, statement_ids: Sequence[str], lease_until: float, now: float
    ) -> list[str]:
        if not statement_ids:
            return []
        marks = ", ".join("?" * len(statement_ids))
        with self._write() as con:
            con.execute(
                f"UPDATE statements SET lease_expires_at = ? WHERE lease_owner = ? "
                f"AND id IN ({marks})",
                (lease_until, owner, *statement_ids),
            )
            rows = con.execute(
                f"SELECT id FROM statements WHERE cancel_requested = 1 AND id IN ({marks})",
                tuple(statement_ids),
            ).fetchall()
        return [r[0] for r in rows]

    def recover_statements(
        self, now: float, *, orphaned_warehouses: Sequence[str] = (), owner: str = ""
    ) -> list[StatementRecord]:
        cond = "lease_expires_at < ?"
        args: list[Any] = [now]
        if orphaned_warehouses:
            marks = ", ".join("?" * len(orphaned_warehouses))
            cond = f"({cond} OR (warehouse IN ({marks}) AND lease_owner IS NOT ?))"
            args += [*orphaned_warehouses, owner]
        changed: list[StatementRecord] = []
        with self._write() as con:
            rows = con.execute(
                "SELECT * FROM statements WHERE parent_id IS NULL "
                f"AND status IN ('PICKED', 'STARTED') AND {cond}",
                args,
            ).fetchall()
            for row in rows:
                rec = _statement(row)
                if rec.status is StatementStatus.PICKED and not rec.cancel_requested:
                    con.execute(
                        "UPDATE statements SET status = 'SUBMITTED', lease_owner = NULL, "
                        "lease_expires_at = NULL, updated_at = ? WHERE id = ?",
                        (now, rec.id),
                    )
                    rec.status = StatementStatus.SUBMITTED
                else:
                    aborted = rec.status is StatementStatus.PICKED
                    error: dict[str, Any] = dict(_WORKER_LOST)
                    if aborted:
                        error.update(code="cancelled", message="cancelled before it started")
                    status = "ABORTED" if aborted else "FAILED"
                    con.execute(
                        "UPDATE statements SET status = :status, lease_owner = NULL, "
                        "lease_expires_at = NULL, updated_at = :now, ended_at = :now, "
                        "error = :error WHERE id = :id",
                        {"status": status, "now": now, "error": json.dumps(error), "id": rec.id},
                    )
                    # sub-statements that had not ended end with their batch
                    con.execute(
                        "UPDATE statements SET status = :status, updated_at = :now, "
                        "ended_at = :now, error = :error WHERE parent_id = :id "
                        f"AND status IN ({', '.join(repr(s) for s in _ACTIVE)})",
                        {"status": status, "now": now, "error": json.dumps(error), "id": rec.id},
                    )
                    self._extend_session(con, rec.id, now)
                    self._emit_statement_event(con, rec.id, now)
                    rec.status = StatementStatus(status)
                    rec.error = error
                changed.append(rec)
            # A session's connection lives in its worker: when that worker is gone the session
            # is too. Close it and release it, so what waits in it is claimed (and ended as
            # "session closed") instead of waiting for the dead owner forever.
            session_ids = sorted({r.session_id for r in changed if r.session_id})
            lost: list[str] = []
            lost_args: list[Any] = [now]
            if session_ids:
                lost.append(f"id IN ({', '.join('?' * len(session_ids))})")
                lost_args += session_ids
            if orphaned_warehouses:
                marks = ", ".join("?" * len(orphaned_warehouses))
                lost.append(f"(warehouse IN ({marks}) AND owner IS NOT NULL AND owner IS NOT ?)")
                lost_args += [*orphaned_warehouses, owner]
            if lost:
                con.execute(
                    "UPDATE sessions SET closed_at = ?, owner = NULL "
                    f"WHERE closed_at IS NULL AND ({' OR '.join(lost)})",
                    lost_args,
                )
        return changed

    def statements_with_expired_results(
        self, ended_before: float, limit: int
    ) -> list[StatementRecord]:
        rows = self._read(
            "SELECT * FROM statements WHERE parent_id IS NULL AND result_expired = 0 "
            "AND ended_at < ? ORDER BY ended_at LIMIT ?",
            (ended_before, limit),
        )
        return [_statement(r) for r in rows]

    def mark_results_expired(self, statement_ids: Sequence[str]) -> None:
        if not statement_ids:
            return
        marks = ", ".join("?" * len(statement_ids))
        with self._write() as con:
            con.execute(
                "UPDATE statements SET result_expired = 1, result_meta = NULL "
                f"WHERE id IN ({marks}) "
                f"OR parent_id IN ({marks})",
                (*statement_ids, *statement_ids),
            )

    def delete_statements_ended_before(
        self, before: float, limit: int = 1000
    ) -> list[tuple[str, bool]]:
        with self._write() as con:
            rows = con.execute(
                "SELECT id, result_expired FROM statements WHERE parent_id IS NULL "
                "AND ended_at < ? AND status IN ('FINISHED', 'FAILED', 'ABORTED') "
                "ORDER BY ended_at LIMIT ?",
                (before, limit),
            ).fetchall()
            ids = [r["id"] for r in rows]
            if ids:
                marks = ", ".join("?" * len(ids))
                con.execute(
                    f"DELETE FROM statements WHERE parent_id IN ({marks}) OR id IN ({marks})",
                    (*ids, *ids),
                )
            return [(r["id"], bool(r["result_expired"])) for r in rows]

    # -- sessions ------------------------------------------------------------------------------
    def get_session(self, session_id: str) -> SessionRecord | None:
        rows = self._read("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return _session(rows[0]) if rows else None

    def expired_sessions(self, now: float) -> list[SessionRecord]:
        rows = self._read(
            "SELECT * FROM sessions s WHERE closed_at IS NULL AND expires_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM statements t WHERE t.session_id = s.id "
            f"AND t.parent_id IS NULL AND t.status IN ({', '.join('?' * len(_ACTIVE))}))",
            (now, *_ACTIVE),
        )
        return [_session(r) for r in rows]

    def close_session(self, session_id: str, now: float) -> None:
        with self._write() as con:
            con.execute(
                "UPDATE sessions SET closed_at = ? WHERE id = ? AND closed_at IS NULL",
                (now, session_id),
            )


def _encode_fields(fields: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in fields.items():
        if key not in _STATEMENT_COLUMNS:
            raise ValueError(f"unknown statement column {key!r}")
        if key in StatementRecord._JSON:
            value = None if value is None else json.dumps(value)
        elif isinstance(value, bool):
            value = int(value)
        elif isinstance(value, StatementStatus):
            value = value.value
        out[key] = value
    return out


def _split_sql(script: str) -> Iterator[str]:
    """Statements of a migration file (they hold no semicolons inside literals)."""
    for part in script.split(";"):
        lines = [ln for ln in part.splitlines() if not ln.strip().startswith("--")]
        if "\n".join(lines).strip():
            yield part
