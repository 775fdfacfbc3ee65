"""Sessions: statements that run in order on one warehouse connection, written once.

A session is "busy" while one of its statements has not ended; a submit to a busy, closed,
expired or foreign session is refused here, in the submit's own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ... import errors
from ..interfaces.sessions import SessionStore
from ..records import SESSION_STATES, SessionFilter, SessionRecord, StatementRecord
from . import base as codec
from .base import ACTIVE_SQL, SqlHooks, Tx


class SessionsMixin(SqlHooks, SessionStore):
    """Sessions (:class:`~sqltide.store.interfaces.sessions.SessionStore`), and the checks
    statements make on them."""

    def get_session(self, session_id: str) -> SessionRecord | None:
        rows = self._rows("get_session", "SELECT * FROM sessions WHERE id = ?", (session_id,))
        return codec.session(rows[0]) if rows else None

    def expired_sessions(self, now: float) -> list[SessionRecord]:
        rows = self._rows(
            "expired_sessions",
            "SELECT * FROM sessions s WHERE closed_at IS NULL AND expires_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM statements t WHERE t.session_id = s.id "
            f"AND t.parent_id IS NULL AND t.status IN ({ACTIVE_SQL}))",
            (now,),
        )
        return [codec.session(r) for r in rows]

    def close_session(self, session_id: str, now: float) -> None:
        self._tx(
            "close_session",
            lambda tx: tx.execute(
                "UPDATE sessions SET closed_at = ? WHERE id = ? AND closed_at IS NULL",
                (now, session_id),
            ),
        )

    def list_sessions(self, flt: SessionFilter) -> list[tuple[SessionRecord, str | None]]:
        busy = (
            "EXISTS (SELECT 1 FROM statements t WHERE t.session_id = s.id "
            f"AND t.parent_id IS NULL AND t.status IN ({ACTIVE_SQL}))"
        )
        state_sql = {
            "BUSY": f"(s.closed_at IS NULL AND {busy})",
            "AVAILABLE": f"(s.closed_at IS NULL AND s.expires_at > :now AND NOT {busy})",
            "CLOSED": f"(s.closed_at IS NOT NULL OR (s.expires_at <= :now AND NOT {busy}))",
        }
        where = ["s.principal = :principal"]
        params: dict[str, Any] = {"principal": flt.principal, "now": flt.now, "limit": flt.limit}
        states = [st for st in SESSION_STATES if st in flt.states]
        if not states:
            return []
        if len(states) < len(SESSION_STATES):
            where.append("(" + " OR ".join(state_sql[st] for st in states) + ")")
        if flt.session_id is not None:
            where.append("s.id = :id")
            params["id"] = flt.session_id
        if flt.warehouse is not None:
            where.append("s.warehouse = :warehouse")
            params["warehouse"] = flt.warehouse
        if flt.created_after is not None:
            where.append("s.created_at >= :since")
            params["since"] = flt.created_after
        if flt.after is not None:
            where.append("(s.created_at < :cur_t OR (s.created_at = :cur_t AND s.id < :cur_id))")
            params.update(cur_t=flt.after[0], cur_id=flt.after[1])
        rows = self._rows(
            "list_sessions",
            "SELECT s.*, (SELECT t.id FROM statements t WHERE t.session_id = s.id "
            f"AND t.parent_id IS NULL AND t.status IN ({ACTIVE_SQL}) "
            "ORDER BY t.created_at LIMIT 1) AS current_statement "
            f"FROM sessions s WHERE {' AND '.join(where)} "
            "ORDER BY s.created_at DESC, s.id DESC LIMIT :limit",
            params,
        )
        out = []
        for row in rows:
            data = dict(row)
            current = data.pop("current_statement")
            out.append((codec.session(data), None if current is None else str(current)))
        return out

    # -- used by statements ---------------------------------------------------------------------
    def _check_session_idle(self, tx: Tx, statement: StatementRecord, now: float) -> None:
        """Refuse ``statement`` unless its session is the principal's, open and idle."""
        # The row lock (where the dialect has one) makes concurrent submits to one session,
        # and closing it, take turns.
        row = tx.one(
            f"SELECT * FROM sessions WHERE id = ?{tx.dialect.for_update}", (statement.session_id,)
        )
        details = {"session_id": statement.session_id}
        if (
            row is None
            or row["principal"] != statement.principal
            or row["closed_at"] is not None
            or (row["expires_at"] <= now and not _session_active(tx, row["id"]))
        ):
            raise errors.SessionNotFound(details=details)
        if row["warehouse"] != statement.warehouse:
            raise errors.InvalidRequest(
                f"session {row['id']} is on warehouse {row['warehouse']!r}, "
                f"not {statement.warehouse!r}",
                details=details,
            )
        busy = _session_active(tx, row["id"])
        if busy:
            raise errors.SessionBusy(details={**details, "statement_id": busy})

    @staticmethod
    def _extend_session(tx: Tx, statement_id: str, now: float) -> None:
        """Keep a statement's session alive for its keep-alive from ``now`` (it just ended)."""
        tx.execute(
            "UPDATE sessions SET expires_at = :now + keep_alive_seconds WHERE id = "
            "(SELECT session_id FROM statements WHERE id = :id) AND closed_at IS NULL",
            {"now": now, "id": statement_id},
        )

    @staticmethod
    def _close_lost_sessions(
        tx: Tx,
        now: float,
        session_ids: Sequence[str],
        orphaned_warehouses: Sequence[str],
        owner: str,
    ) -> None:
        """Close and release the sessions of a lost worker.

        A session's connection lives in its worker: when that worker is gone the session is
        too. Closing and releasing it lets what waits in it be claimed (and ended as "session
        closed") instead of waiting for the dead owner forever.
        """
        lost: list[str] = []
        if session_ids:
            lost.append("id IN (:sessions)")
        if orphaned_warehouses:
            lost.append(
                "(warehouse IN (:orphaned) AND owner IS NOT NULL "
                f"AND owner {tx.dialect.is_distinct} :owner)"
            )
        if lost:
            tx.execute(
                "UPDATE sessions SET closed_at = :now, owner = NULL "
                f"WHERE closed_at IS NULL AND ({' OR '.join(lost)})",
                {
                    "now": now,
                    "sessions": list(session_ids),
                    "orphaned": list(orphaned_warehouses),
                    "owner": owner,
                },
            )


def _session_active(tx: Tx, session_id: str) -> str | None:
    """The id of the session's unfinished statement, if it has one."""
    row = tx.one(
        "SELECT id FROM statements WHERE session_id = ? AND parent_id IS NULL "
        f"AND status IN ({ACTIVE_SQL}) LIMIT 1",
        (session_id,),
    )
    return str(row["id"]) if row else None
