"""Statements and their leases, written once for both dialects.

The life of a statement: SUBMITTED (``create_statement``) → PICKED under a worker's lease
(``claim_statements``) → STARTED (``start_statement``) → FINISHED, FAILED or ABORTED
(``finish_statement``, ``request_cancel``, or ``recover_statements`` when its worker is gone).
A statement submitted ``with_event`` gets its status change event written to the outbox in the
same transaction as the change that ends it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from ... import errors
from ..event_records import statement_event
from ..interfaces.statements import StatementStore
from ..records import (
    SessionRecord,
    StatementFilter,
    StatementRecord,
    StatementStatus,
)
from . import base as codec
from .base import ACTIVE_SQL, SqlHooks, Tx, insert_events
from .sessions import SessionsMixin

_STATEMENT_COLUMNS = tuple(f.name for f in fields(StatementRecord))
_INSERT_STATEMENT = (
    f"INSERT INTO statements ({', '.join(_STATEMENT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + k for k in _STATEMENT_COLUMNS)})"
)
#: The error of a statement whose worker was lost while it ran.
WORKER_LOST: dict[str, Any] = {
    "code": "worker_lost",
    "message": "the worker running this statement stopped (crashed or was killed) before it "
    "ended; the statement may or may not have taken effect",
    "sqlstate": None,
    "position": None,
    "details": {},
}
#: The error of a statement cancelled before it started.
CANCELLED: dict[str, Any] = {
    "code": "cancelled",
    "message": "cancelled before it started",
    "sqlstate": "57014",
    "position": None,
    "details": {},
}


def encode_fields(fields: dict[str, object]) -> dict[str, object]:
    """Statement columns to write, as the database stores them."""
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


class StatementsMixin(SessionsMixin, SqlHooks, StatementStore):
    """Statements (:class:`~sqltide.store.interfaces.statements.StatementStore`)."""

    # -- submit and read -----------------------------------------------------------------------
    def create_statement(
        self,
        statement: StatementRecord,
        sub_statements: Sequence[StatementRecord] = (),
        *,
        new_session: SessionRecord | None = None,
        max_active: int | None = None,
        now: float,
    ) -> tuple[StatementRecord, bool]:
        def run(tx: Tx) -> tuple[StatementRecord, bool]:
            if tx.retried and tx.one("SELECT 1 FROM statements WHERE id = ?", (statement.id,)):
                return statement, True  # the first attempt committed, its answer was lost
            if max_active is not None:
                self._serialize_submits(tx, statement.principal)
            if statement.client_token is not None:
                existing = _by_client_token(tx, statement)
                if existing is not None:
                    return existing, False
            if max_active is not None:
                row = tx.one(
                    "SELECT count(*) AS n FROM statements WHERE principal = ? "
                    f"AND parent_id IS NULL AND status IN ({ACTIVE_SQL})",
                    (statement.principal,),
                )
                active = int(row["n"]) if row else 0
                if active >= max_active:
                    raise errors.TooManyRequests(
                        f"principal has {active} unfinished statements (limit {max_active}); "
                        "wait for some to end",
                        details={"active": active, "limit": max_active},
                    )
            if new_session is not None:
                srow = new_session.to_row()
                tx.execute(
                    f"INSERT INTO sessions ({', '.join(srow)}) "
                    f"VALUES ({', '.join(':' + k for k in srow)})",
                    srow,
                )
            elif statement.session_id is not None:
                self._check_session_idle(tx, statement, now)
            tx.executemany(
                _INSERT_STATEMENT, [codec.statement_row(r) for r in (statement, *sub_statements)]
            )
            return statement, True

        try:
            return self._tx("create_statement", run)
        except Exception as exc:
            if statement.client_token is None or not self._is_client_token_conflict(exc):
                raise
        # A concurrent request with the same token committed first: answer with its statement.
        winner = self._tx("create_statement", lambda tx: _by_client_token(tx, statement))
        if winner is None:  # pragma: no cover - the unique index says it exists
            raise errors.InternalError("client token conflict without a statement")
        return winner, False

    def get_statement(self, statement_id: str) -> StatementRecord | None:
        rows = self._rows("get_statement", "SELECT * FROM statements WHERE id = ?", (statement_id,))
        return codec.statement(rows[0]) if rows else None

    def get_sub_statements(self, parent_id: str) -> list[StatementRecord]:
        rows = self._rows(
            "get_sub_statements",
            "SELECT * FROM statements WHERE parent_id = ? ORDER BY idx",
            (parent_id,),
        )
        return [codec.statement(r) for r in rows]

    def list_statements(self, flt: StatementFilter) -> list[StatementRecord]:
        where = ["parent_id IS NULL", "principal = :principal"]
        params: dict[str, Any] = {"principal": flt.principal, "limit": flt.limit}
        if flt.status is not None:
            where.append("status = :status")
            params["status"] = flt.status.value
        if flt.name_prefix:
            where.append(self.sql_dialect.starts_with)
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
        rows = self._rows(
            "list_statements",
            f"SELECT * FROM statements WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT :limit",
            params,
        )
        return [codec.statement(r) for r in rows]

    # -- the worker's side -----------------------------------------------------------------------
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
        def run(tx: Tx) -> list[StatementRecord]:
            # SKIP LOCKED (PostgreSQL): rows another worker is claiming right now are not ours
            # to wait for; the lock is re-checked against the latest row, so none is claimed
            # twice. SQLite's single writer gives the same.
            rows = tx.execute(
                "UPDATE statements SET status = 'PICKED', lease_owner = :owner, "
                "lease_expires_at = :until, updated_at = :now, attempts = attempts + 1 "
                "WHERE id IN ("
                "  SELECT id FROM statements WHERE status = 'SUBMITTED' AND parent_id IS NULL"
                "  AND warehouse IN (:wh) AND (session_id IS NULL OR session_id IN ("
                "    SELECT id FROM sessions WHERE owner IS NULL OR owner = :owner))"
                f"  ORDER BY created_at LIMIT :limit{tx.dialect.skip_locked}) RETURNING *",
                params,
            ).fetchall()
            claimed = [codec.statement(r) for r in rows]
            sessions = sorted({r.session_id for r in claimed if r.session_id})
            if sessions:
                tx.execute(
                    "UPDATE sessions SET owner = :owner WHERE id IN (:ids) AND owner IS NULL",
                    {"owner": owner, "ids": sessions},
                )
            return claimed

        claimed = self._tx("claim_statements", run)
        claimed.sort(key=lambda r: r.created_at)
        return claimed

    def start_statement(self, statement_id: str, owner: str, now: float) -> bool:
        def run(tx: Tx) -> bool:
            cur = tx.execute(
                "UPDATE statements SET status = 'STARTED', started_at = :now, "
                "updated_at = :now WHERE id = :id AND status = 'PICKED' "
                "AND lease_owner = :owner AND NOT cancel_requested",
                {"now": now, "id": statement_id, "owner": owner},
            )
            if cur.rowcount > 0:
                return True
            if tx.retried:  # started by our own first attempt?
                return (
                    tx.one(
                        "SELECT 1 FROM statements WHERE id = ? AND status = 'STARTED' "
                        "AND lease_owner = ? AND started_at = ?",
                        (statement_id, owner, now),
                    )
                    is not None
                )
            return False

        return self._tx("start_statement", run)

    def update_statement(self, statement_id: str, fields: dict[str, object]) -> None:
        row = encode_fields(fields)
        if not row:
            return
        self._tx(
            "update_statement",
            lambda tx: tx.execute(
                f"UPDATE statements SET {', '.join(f'{k} = :{k}' for k in row)} WHERE id = :_id",
                {**row, "_id": statement_id},
            ),
        )

    def finish_statement(
        self, statement_id: str, owner: str, fields: dict[str, object], now: float
    ) -> bool:
        row = encode_fields({**fields, "lease_owner": None, "lease_expires_at": None})

        def run(tx: Tx) -> bool:
            cur = tx.execute(
                f"UPDATE statements SET {', '.join(f'{k} = :{k}' for k in row)} "
                "WHERE id = :_id AND lease_owner = :_owner AND status IN ('PICKED', 'STARTED')",
                {**row, "_id": statement_id, "_owner": owner},
            )
            if cur.rowcount > 0:
                self._extend_session(tx, statement_id, now)
                self._emit_statement_event(tx, statement_id, now)
                return True
            if tx.retried:  # finished by our own first attempt: the row holds exactly our fields
                got = tx.one("SELECT * FROM statements WHERE id = ?", (statement_id,))
                return got is not None and all(got[k] == v for k, v in row.items())
            return False

        return self._tx("finish_statement", run)

    def request_cancel(self, statement_id: str, now: float) -> StatementRecord:
        def run(tx: Tx) -> StatementRecord:
            row = tx.one(
                f"SELECT * FROM statements WHERE id = ?{tx.dialect.for_update}", (statement_id,)
            )
            if row is None:
                raise errors.StatementNotFound(details={"id": statement_id})
            rec = codec.statement(row)
            if rec.status.is_terminal:
                if (
                    tx.retried
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
                tx.execute(
                    "UPDATE statements SET status = 'ABORTED', cancel_requested = TRUE, "
                    "updated_at = :now, ended_at = :now, error = :error "
                    "WHERE id = :id OR parent_id = :id",
                    {"now": now, "id": statement_id, "error": json.dumps(CANCELLED)},
                )
                self._extend_session(tx, statement_id, now)
                self._emit_statement_event(tx, statement_id, now)
            else:
                tx.execute(
                    "UPDATE statements SET cancel_requested = TRUE, updated_at = ? WHERE id = ?",
                    (now, statement_id),
                )
            got = tx.one("SELECT * FROM statements WHERE id = ?", (statement_id,))
            assert got is not None
            return codec.statement(got)

        return self._tx("request_cancel", run)

    def heartbeat(
        self, owner: str, statement_ids: Sequence[str], lease_until: float, now: float
    ) -> list[str]:
        if not statement_ids:
            return []
        params = {"until": lease_until, "owner": owner, "ids": list(statement_ids)}

        def run(tx: Tx) -> list[str]:
            tx.execute(
                "UPDATE statements SET lease_expires_at = :until WHERE lease_owner = :owner "
                "AND id IN (:ids)",
                params,
            )
            rows = tx.execute(
                "SELECT id FROM statements WHERE cancel_requested AND id IN (:ids)", params
            ).fetchall()
            return [str(r["id"]) for r in rows]

        return self._tx("heartbeat", run)

    def recover_statements(
        self, now: float, *, orphaned_warehouses: Sequence[str] = (), owner: str = ""
    ) -> list[StatementRecord]:
        # A retry after a commit whose answer was lost returns only what is still left to
        # settle: the changes themselves are durable, their wake-ups fall back to polling.
        orphaned = list(orphaned_warehouses)

        def run(tx: Tx) -> list[StatementRecord]:
            cond = "lease_expires_at < :now"
            if orphaned:
                cond = (
                    f"({cond} OR (warehouse IN (:orphaned) "
                    f"AND lease_owner {tx.dialect.is_distinct} :owner))"
                )
            changed: list[StatementRecord] = []
            # SKIP LOCKED (PostgreSQL): a row locked now is being finished, heartbeated or
            # recovered by someone else, so it is not ours to settle.
            rows = tx.execute(
                "SELECT * FROM statements WHERE parent_id IS NULL "
                f"AND status IN ('PICKED', 'STARTED') AND {cond} "
                f"ORDER BY created_at, id{tx.dialect.skip_locked}",
                {"now": now, "orphaned": orphaned, "owner": owner},
            ).fetchall()
            for row in rows:
                changed.append(self._settle_lost(tx, codec.statement(row), now))
            session_ids = sorted({r.session_id for r in changed if r.session_id})
            self._close_lost_sessions(tx, now, session_ids, orphaned, owner)
            return changed

        return self._tx("recover_statements", run)

    def _settle_lost(self, tx: Tx, rec: StatementRecord, now: float) -> StatementRecord:
        """A lost worker's statement: PICKED goes back to SUBMITTED, unless a cancel was asked
        for (ABORTED); STARTED ends FAILED as "worker lost". Returns ``rec`` as changed."""
        if rec.status is StatementStatus.PICKED and not rec.cancel_requested:
            tx.execute(
                "UPDATE statements SET status = 'SUBMITTED', lease_owner = NULL, "
                "lease_expires_at = NULL, updated_at = ? WHERE id = ?",
                (now, rec.id),
            )
            rec.status = StatementStatus.SUBMITTED
            return rec
        aborted = rec.status is StatementStatus.PICKED
        error: dict[str, Any] = dict(WORKER_LOST)
        if aborted:
            error.update(code="cancelled", message="cancelled before it started")
        status = "ABORTED" if aborted else "FAILED"
        args = {"status": status, "now": now, "error": json.dumps(error), "id": rec.id}
        tx.execute(
            "UPDATE statements SET status = :status, lease_owner = NULL, "
            "lease_expires_at = NULL, updated_at = :now, ended_at = :now, "
            "error = :error WHERE id = :id",
            args,
        )
        # sub-statements that had not ended end with their batch
        tx.execute(
            "UPDATE statements SET status = :status, updated_at = :now, "
            "ended_at = :now, error = :error WHERE parent_id = :id "
            f"AND status IN ({ACTIVE_SQL})",
            args,
        )
        self._extend_session(tx, rec.id, now)
        self._emit_statement_event(tx, rec.id, now)
        rec.status = StatementStatus(status)
        rec.error = error
        return rec

    def _emit_statement_event(self, tx: Tx, statement_id: str, now: float) -> None:
        """The status change event of a statement that just ended, if it asked for one."""
        row = tx.one("SELECT * FROM statements WHERE id = ?", (statement_id,))
        if row is None or not row["with_event"] or row["parent_id"] is not None:
            return
        rec = codec.statement(row)
        if rec.status.is_terminal:
            insert_events(tx, [statement_event(rec, now, self.result_retention_seconds)])

    # -- retention -------------------------------------------------------------------------------
    def statements_with_expired_results(
        self, ended_before: float, limit: int
    ) -> list[StatementRecord]:
        rows = self._rows(
            "statements_with_expired_results",
            "SELECT * FROM statements WHERE parent_id IS NULL AND NOT result_expired "
            "AND ended_at < ? ORDER BY ended_at LIMIT ?",
            (ended_before, limit),
        )
        return [codec.statement(r) for r in rows]

    def mark_results_expired(self, statement_ids: Sequence[str]) -> None:
        if not statement_ids:
            return
        ids = list(statement_ids)
        self._tx(
            "mark_results_expired",
            lambda tx: tx.execute(
                "UPDATE statements SET result_expired = TRUE, result_meta = NULL "
                "WHERE id IN (:ids) OR parent_id IN (:ids)",
                {"ids": ids},
            ),
        )

    def delete_statements_ended_before(
        self, before: float, limit: int = 1000
    ) -> list[tuple[str, bool]]:
        def run(tx: Tx) -> list[tuple[str, bool]]:
            # A retry after a lost commit finds the next slice; the ids of the first one are
            # lost with its reply, and their results were expired before in the usual case.
            rows = tx.execute(
                "SELECT id, result_expired FROM statements WHERE parent_id IS NULL "
                "AND ended_at < ? AND status IN ('FINISHED', 'FAILED', 'ABORTED') "
                f"ORDER BY ended_at LIMIT ?{tx.dialect.skip_locked}",
                (before, limit),
            ).fetchall()
            ids = [str(r["id"]) for r in rows]
            if ids:
                tx.execute(
                    "DELETE FROM statements WHERE parent_id IN (:ids) OR id IN (:ids)",
                    {"ids": ids},
                )
            return [(str(r["id"]), bool(r["result_expired"])) for r in rows]

        return self._tx("delete_statements_ended_before", run)


def _by_client_token(tx: Tx, statement: StatementRecord) -> StatementRecord | None:
    row = tx.one(
        "SELECT * FROM statements WHERE principal = ? AND client_token = ? AND parent_id IS NULL",
        (statement.principal, statement.client_token),
    )
    return codec.statement(row) if row else None
