"""Workflow executions, their checkpoints and history, written once for both dialects.

See :class:`~sqltide.store.interfaces.executions.ExecutionStore` for the life of an execution
and the lease guard. How the SQL keeps its promises:

- every transaction that writes history first updates (or locks) its execution's row, so the
  history lines of one execution are numbered one writer at a time (``max(seq) + 1``), and an
  outside event and a replay's checkpoint never interleave;
- locks are taken child first, then parent (a child's end wakes its parent), and execution
  first, then its operations;
- the claim, recovery, time-outs and retention skip rows another transaction has locked on
  PostgreSQL (``skip_locked``); SQLite's one writer gives the same.

A retried transaction whose first attempt committed but lost its answer (PostgreSQL) finds its
own effect where it matters to the caller (``start_execution``, ``checkpoint``, ``suspend``,
``finish``, ``complete_callback``, ``stop_execution``) by the history line it wrote at ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from ... import errors
from ..execution_records import (
    EXECUTION_COLUMNS,
    OPERATION_COLUMNS,
    OPERATION_ENDED,
    ExecutionFilter,
    ExecutionRecord,
    ExecutionStatus,
    HistoryRecord,
    OperationRecord,
    OperationStatus,
    OperationUpdate,
)
from ..interfaces.executions import ExecutionStore
from .base import SqlHooks, Tx, dumps_or_none

_INSERT_EXECUTION = (
    f"INSERT INTO executions ({', '.join(EXECUTION_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in EXECUTION_COLUMNS)}) "
    "ON CONFLICT (workflow, name) DO NOTHING"
)
_KEY = ("execution_id", "id", "seq")
_ENDED_SQL = ", ".join(f"'{s.value}'" for s in sorted(OPERATION_ENDED))
#: The lease guard inside a checkpoint's own writes (``:lease_*`` so as not to meet the
#: operation's columns): each writes only while the execution is still held.
_LEASED = (
    "EXISTS (SELECT 1 FROM executions WHERE id = :execution_id AND lease_owner = :lease_owner "
    "AND status = 'RUNNING' AND (timeout_at IS NULL OR timeout_at > :lease_now))"
)
#: One checkpoint of one operation, in one statement, written only under the lease: a new
#: operation is numbered after the execution's last (``seq``; the writer holds the
#: execution's row), an existing one gets every column but its key and number, unless it has
#: ended (an outside event, a callback's completion, won the race: an ended operation never
#: changes).
_UPSERT_OPERATION = (
    f"INSERT INTO execution_operations ({', '.join(OPERATION_COLUMNS)}) SELECT "
    + ", ".join(
        "(SELECT coalesce(max(seq), 0) + 1 FROM execution_operations "
        "WHERE execution_id = :execution_id)"
        if c == "seq"
        else f":{c}"
        for c in OPERATION_COLUMNS
    )
    + f" WHERE {_LEASED} ON CONFLICT (execution_id, id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in OPERATION_COLUMNS if c not in _KEY)
    + f" WHERE execution_operations.status NOT IN ({_ENDED_SQL})"
)
#: A checkpoint's line of history, run just before its operation's upsert: written exactly
#: when that upsert will write (under the lease, the operation not ended; nothing can change
#: the operation in between, as an outside event takes the execution's row first, which the
#: checkpoint holds).
_INSERT_HISTORY_OF_CHECKPOINT = (
    "INSERT INTO execution_history "
    "(execution_id, seq, at, event, operation_id, attempt, details) SELECT :execution_id, "
    "(SELECT coalesce(max(seq), 0) + 1 FROM execution_history WHERE execution_id = :execution_id), "
    f":at, :event, :operation_id, :attempt, :details WHERE {_LEASED} AND NOT EXISTS ("
    "SELECT 1 FROM execution_operations WHERE execution_id = :execution_id "
    f"AND id = :operation_id AND status IN ({_ENDED_SQL}))"
)
#: The operation columns in the record's order (:meth:`OperationRecord.from_values`).
_OPERATION_SELECT = ", ".join(OPERATION_COLUMNS)


def _values(row: Any) -> Any:
    """A row's values in its columns' order (a PostgreSQL row is a dict, SQLite's a
    sequence)."""
    return row.values() if isinstance(row, dict) else row


#: One history line, numbered after the execution's last one.
_INSERT_HISTORY = (
    "INSERT INTO execution_history "
    "(execution_id, seq, at, event, operation_id, attempt, details) VALUES (:execution_id, "
    "(SELECT coalesce(max(seq), 0) + 1 FROM execution_history WHERE execution_id = :execution_id), "
    ":at, :event, :operation_id, :attempt, :details)"
)
#: The lease guard of every worker-side transition.
_HELD = (
    "id = :id AND lease_owner = :owner AND status = 'RUNNING' "
    "AND (timeout_at IS NULL OR timeout_at > :now)"
)
#: Due at ``:now`` unless due sooner already.
_WAKE = (
    "UPDATE executions SET next_run_at = CASE WHEN next_run_at IS NOT NULL "
    "AND next_run_at < :now THEN next_run_at ELSE :now END, updated_at = :now "
    "WHERE id IN (:ids) AND status = 'RUNNING'"
)


def _history(
    execution_id: str,
    at: float,
    event: str,
    *,
    operation_id: str | None = None,
    attempt: int | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "at": at,
        "event": event,
        "operation_id": operation_id,
        "attempt": attempt,
        "details": dumps_or_none(details),
    }


def _write_history(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    """Append history lines (the caller holds their executions' rows)."""
    if len(rows) == 1:
        tx.execute(_INSERT_HISTORY, rows[0])
    elif rows:
        tx.executemany(_INSERT_HISTORY, rows)


def _log(tx: Tx, execution_id: str, at: float, event: str, **kw: Any) -> None:
    """Append one history line (the caller holds the execution's row)."""
    tx.execute(_INSERT_HISTORY, _history(execution_id, at, event, **kw))


def _wrote(tx: Tx, execution_id: str, event: str, at: float) -> bool:
    """Whether the execution's last history line is ``event`` at ``at`` (a retried
    transaction looking for its own first attempt)."""
    row = tx.one(
        "SELECT event, at FROM execution_history WHERE execution_id = ? ORDER BY seq DESC LIMIT 1",
        (execution_id,),
    )
    return row is not None and row["event"] == event and row["at"] == at


def _wake(tx: Tx, ids: Sequence[str | None], now: float) -> None:
    wanted = sorted({i for i in ids if i})
    if wanted:
        tx.execute(_WAKE, {"ids": wanted, "now": now})


def _execution(tx: Tx, execution_id: str) -> ExecutionRecord:
    row = tx.one("SELECT * FROM executions WHERE id = ?", (execution_id,))
    assert row is not None
    return ExecutionRecord.from_row(row)


def _ended_event(status: ExecutionStatus) -> str:
    return f"execution_{status.value.lower()}"


#: The error of an execution that was still running at its ``timeout_at``.
TIMEOUT_ERROR: dict[str, Any] = {
    "type": "TimeoutError",
    "message": "the execution did not end before its timeout",
    "data": None,
    "stack": None,
}


class ExecutionsMixin(SqlHooks, ExecutionStore):
    """Executions (:class:`~sqltide.store.interfaces.executions.ExecutionStore`)."""

    # -- start and read ------------------------------------------------------------------------
    def start_execution(self, rec: ExecutionRecord) -> tuple[ExecutionRecord, bool]:
        new = ExecutionRecord.from_row(
            {
                **rec.to_row(),
                "status": ExecutionStatus.RUNNING.value,
                "next_run_at": rec.created_at,
                "lease_owner": None,
                "lease_expires_at": None,
                "replays": 0,
            }
        )

        def run(tx: Tx) -> tuple[ExecutionRecord, bool]:
            # ON CONFLICT DO NOTHING: a concurrent start of the same name waits for the other
            # to commit, then inserts nothing and reads the winner.
            if tx.execute(_INSERT_EXECUTION, new.to_row()).rowcount > 0:
                details = {"workflow": new.workflow, "name": new.name}
                _log(tx, new.id, new.created_at, "execution_started", details=details)
                return new, True
            row = tx.one(
                "SELECT * FROM executions WHERE workflow = ? AND name = ?",
                (new.workflow, new.name),
            )
            if row is None:  # pragma: no cover - the unique index says it exists
                raise errors.InternalError("execution name conflict without an execution")
            existing = ExecutionRecord.from_row(row)
            # our own first attempt, committed with its answer lost
            return existing, tx.retried and existing.id == new.id

        return self._tx("start_execution", run)

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        rows = self._rows("get_execution", "SELECT * FROM executions WHERE id = ?", (execution_id,))
        return ExecutionRecord.from_row(rows[0]) if rows else None

    def find_execution(self, workflow: str, name: str) -> ExecutionRecord | None:
        rows = self._rows(
            "find_execution",
            "SELECT * FROM executions WHERE workflow = ? AND name = ?",
            (workflow, name),
        )
        return ExecutionRecord.from_row(rows[0]) if rows else None

    def list_executions(
        self, f: ExecutionFilter, limit: int, after: tuple[float, str] | None = None
    ) -> list[ExecutionRecord]:
        given = {
            "principal = :principal": ("principal", f.principal),
            "workflow = :workflow": ("workflow", f.workflow),
            "status = :status": ("status", f.status.value if f.status else None),
            "created_at >= :after_t": ("after_t", f.created_after),
            "created_at < :before_t": ("before_t", f.created_before),
        }
        where = ["1 = 1", *(cond for cond, (_, v) in given.items() if v is not None)]
        params: dict[str, Any] = {k: v for k, v in given.values() if v is not None}
        params["limit"] = limit
        if after is not None:
            where.append("(created_at < :cur_t OR (created_at = :cur_t AND id < :cur_id))")
            params.update(cur_t=after[0], cur_id=after[1])
        rows = self._rows(
            "list_executions",
            f"SELECT * FROM executions WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT :limit",
            params,
        )
        return [ExecutionRecord.from_row(r) for r in rows]

    def get_operations(self, execution_id: str) -> list[OperationRecord]:
        rows = self._rows(
            "get_operations",
            f"SELECT {_OPERATION_SELECT} FROM execution_operations WHERE execution_id = ? "
            "ORDER BY seq",
            (execution_id,),
        )
        return [OperationRecord.from_values(_values(r)) for r in rows]

    def get_operations_of(self, execution_ids: Sequence[str]) -> dict[str, list[OperationRecord]]:
        found: dict[str, list[OperationRecord]] = {i: [] for i in execution_ids}
        if not found:
            return found
        rows = self._rows(
            "get_operations_of",
            f"SELECT {_OPERATION_SELECT} FROM execution_operations "
            "WHERE execution_id IN (:ids) ORDER BY execution_id, seq",
            {"ids": list(found)},
        )
        for r in rows:
            op = OperationRecord.from_values(_values(r))
            found[op.execution_id].append(op)
        return found

    def find_callback(self, callback_id: str) -> tuple[ExecutionRecord, OperationRecord] | None:
        ops = self._rows(
            "find_callback",
            "SELECT * FROM execution_operations WHERE callback_id = ?",
            (callback_id,),
        )
        if not ops:
            return None
        op = OperationRecord.from_row(ops[0])
        ex = self.get_execution(op.execution_id)
        return None if ex is None else (ex, op)

    def get_history(
        self, execution_id: str, after_seq: int = 0, limit: int = 1000
    ) -> list[HistoryRecord]:
        rows = self._rows(
            "get_history",
            "SELECT * FROM execution_history WHERE execution_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (execution_id, after_seq, limit),
        )
        return [HistoryRecord.from_row(r) for r in rows]

    # -- the worker's side -----------------------------------------------------------------------
    def claim_executions(
        self,
        workflows: Sequence[str],
        owner: str,
        limit: int,
        lease_seconds: float,
        now: float,
    ) -> list[ExecutionRecord]:
        if not workflows or limit <= 0:
            return []
        params = {"wf": list(workflows), "now": now, "limit": limit}

        # Not checked on retry (like claim_statements): what a lost first attempt leased comes
        # back when its lease runs out and recovery makes it due.
        def run(tx: Tx) -> list[ExecutionRecord]:
            picked = tx.execute(
                "SELECT id FROM executions WHERE status = 'RUNNING' AND next_run_at <= :now "
                "AND (lease_owner IS NULL OR lease_expires_at < :now) AND workflow IN (:wf) "
                f"ORDER BY next_run_at, id LIMIT :limit{tx.dialect.skip_locked}",
                params,
            ).fetchall()
            ids = [str(r["id"]) for r in picked]
            if not ids:
                return []
            rows = tx.execute(
                "UPDATE executions SET lease_owner = :owner, lease_expires_at = :until, "
                "updated_at = :now, replays = replays + 1, next_run_at = NULL "
                "WHERE id IN (:ids) RETURNING *",
                {"owner": owner, "until": now + lease_seconds, "now": now, "ids": ids},
            ).fetchall()
            by_id = {str(r["id"]): ExecutionRecord.from_row(r) for r in rows}
            claimed = [by_id[i] for i in ids]  # in the order picked: oldest due first
            _write_history(
                tx,
                [
                    _history(r.id, now, "resumed", details={"owner": owner, "replay": r.replays})
                    for r in claimed
                ],
            )
            return claimed

        return self._tx("claim_executions", run)

    def checkpoint(
        self, execution_id: str, owner: str, updates: Sequence[OperationUpdate], now: float
    ) -> bool:
        for u in updates:
            if u.operation.execution_id != execution_id:
                raise ValueError(
                    f"operation {u.operation.id!r} belongs to {u.operation.execution_id!r}, "
                    f"not {execution_id!r}"
                )
        held = {"id": execution_id, "owner": owner, "now": now}
        lease = {"lease_owner": owner, "lease_now": now}
        rows: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        for u in updates:  # in order: a new operation's seq is its creation order
            op = u.operation
            row = op.to_row()
            if row["updated_at"] is None:
                row["updated_at"] = now
            rows.append(row | lease)
            line = _history(
                execution_id,
                now,
                u.event,
                operation_id=op.id,
                attempt=op.attempt or None,
                details=u.details,
            )
            lines.append(line | lease)

        def run(tx: Tx) -> bool:
            if tx.retried and updates:  # did the first attempt commit? (its last line)
                last = updates[-1]
                mine = tx.one(
                    "SELECT event, at, operation_id FROM execution_history "
                    "WHERE execution_id = ? ORDER BY seq DESC LIMIT 1",
                    (execution_id,),
                )
                if mine is not None and (mine["event"], mine["at"], mine["operation_id"]) == (
                    last.event,
                    now,
                    last.operation.id,
                ):
                    return True
            # Everything at once, the commit too (on PostgreSQL one round trip): the guard,
            # which locks the execution's row for the numbering, then each update's line of
            # history and its upsert, every one of them under the lease itself, so that a
            # lost lease writes nothing at all.
            guard = f"UPDATE executions SET updated_at = :now WHERE {_HELD}"
            with tx.batch(commit=True):
                held_now = tx.send(guard, held)
                for row, line in zip(rows, lines, strict=True):
                    tx.send(_INSERT_HISTORY_OF_CHECKPOINT, line)
                    tx.send(_UPSERT_OPERATION, row)
            return held_now.rowcount > 0

        return self._tx("checkpoint", run)

    def suspend_execution(
        self, execution_id: str, owner: str, next_run_at: float | None, now: float
    ) -> bool:
        # An outside event during the replay set next_run_at (the claim cleared it): the
        # earlier of the two stands.
        if next_run_at is None:
            due = "next_run_at"
        else:
            due = (
                "CASE WHEN next_run_at IS NOT NULL AND next_run_at < :next "
                "THEN next_run_at ELSE :next END"
            )
        params = {"id": execution_id, "owner": owner, "now": now, "next": next_run_at}

        def run(tx: Tx) -> bool:
            cur = tx.execute(
                f"UPDATE executions SET next_run_at = {due}, lease_owner = NULL, "
                f"lease_expires_at = NULL, updated_at = :now WHERE {_HELD}",
                params,
            )
            if cur.rowcount == 0:
                return tx.retried and _wrote(tx, execution_id, "suspended", now)
            _log(tx, execution_id, now, "suspended", details={"next_run_at": next_run_at})
            return True

        return self._tx("suspend_execution", run)

    def finish_execution(
        self,
        execution_id: str,
        owner: str,
        status: ExecutionStatus,
        *,
        result: str | None,
        error: dict[str, Any] | None,
        now: float,
        retention_seconds: float,
    ) -> bool:
        if not status.is_terminal:
            raise ValueError(f"an execution cannot finish {status.value}")
        params = {
            "id": execution_id,
            "owner": owner,
            "now": now,
            "status": status.value,
            "result": result,
            "error": dumps_or_none(error),
            "expires": now + retention_seconds,
        }
        event = _ended_event(status)

        def run(tx: Tx) -> bool:
            rows = tx.execute(
                "UPDATE executions SET status = :status, result = :result, error = :error, "
                "ended_at = :now, updated_at = :now, expires_at = :expires, "
                "next_run_at = NULL, lease_owner = NULL, lease_expires_at = NULL "
                f"WHERE {_HELD} RETURNING parent_id",
                params,
            ).fetchall()
            if not rows:
                return tx.retried and _wrote(tx, execution_id, event, now)
            _wake(tx, [rows[0]["parent_id"]], now)
            _log(tx, execution_id, now, event, details=None if error is None else {"error": error})
            return True

        return self._tx("finish_execution", run)

    def renew_execution_leases(
        self, owner: str, ids: Sequence[str], lease_until: float, now: float
    ) -> list[str]:
        if not ids:
            return []
        params = {"owner": owner, "ids": list(ids), "until": lease_until, "now": now}

        def run(tx: Tx) -> list[str]:
            rows = tx.execute(
                "UPDATE executions SET lease_expires_at = :until WHERE id IN (:ids) "
                "AND lease_owner = :owner AND status = 'RUNNING' "
                "AND (timeout_at IS NULL OR timeout_at > :now) RETURNING id",
                params,
            ).fetchall()
            held = {str(r["id"]) for r in rows}
            return [i for i in ids if i not in held]

        return self._tx("renew_execution_leases", run)

    def recover_executions(self, now: float) -> int:
        def run(tx: Tx) -> int:
            rows = tx.execute(
                "SELECT id, lease_owner FROM executions WHERE lease_owner IS NOT NULL "
                "AND lease_expires_at < ? AND status = 'RUNNING' "
                f"ORDER BY lease_expires_at, id{tx.dialect.skip_locked}",
                (now,),
            ).fetchall()
            if not rows:
                return 0
            ids = [str(r["id"]) for r in rows]
            tx.execute(
                "UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id IN (:ids)",
                {"ids": ids},
            )
            _wake(tx, ids, now)
            _write_history(
                tx,
                [
                    _history(
                        str(r["id"]), now, "lease_expired", details={"owner": r["lease_owner"]}
                    )
                    for r in rows
                ],
            )
            return len(ids)

        return self._tx("recover_executions", run)

    def time_out_executions(self, now: float) -> list[ExecutionRecord]:
        error = dumps_or_none(TIMEOUT_ERROR)

        def run(tx: Tx) -> list[ExecutionRecord]:
            rows = tx.execute(
                "SELECT * FROM executions WHERE status = 'RUNNING' AND timeout_at <= ? "
                f"ORDER BY timeout_at, id{tx.dialect.skip_locked}",
                (now,),
            ).fetchall()
            ended = [ExecutionRecord.from_row(r) for r in rows]
            if not ended:
                return []
            tx.executemany(
                "UPDATE executions SET status = 'TIMED_OUT', error = :error, ended_at = :now, "
                "updated_at = :now, expires_at = :expires, next_run_at = NULL, "
                "lease_owner = NULL, lease_expires_at = NULL WHERE id = :id",
                [
                    {
                        "id": r.id,
                        "now": now,
                        "expires": now + self.execution_retention_seconds,
                        "error": error,
                    }
                    for r in ended
                ],
            )
            _wake(tx, [r.parent_id for r in ended], now)
            event = _ended_event(ExecutionStatus.TIMED_OUT)
            _write_history(tx, [_history(r.id, now, event) for r in ended])
            return [_execution(tx, r.id) for r in ended]

        return self._tx("time_out_executions", run)

    def next_execution_due(self, workflows: Sequence[str]) -> float | None:
        if not workflows:
            return None
        params = {"wf": list(workflows)}
        rows = self._rows(
            "next_execution_due",
            "SELECT (SELECT min(next_run_at) FROM executions WHERE status = 'RUNNING' "
            "AND lease_owner IS NULL AND workflow IN (:wf)) AS due, "
            "(SELECT min(timeout_at) FROM executions WHERE status = 'RUNNING' "
            "AND workflow IN (:wf)) AS timeout",
            params,
        )
        times = [t for t in (rows[0]["due"], rows[0]["timeout"]) if t is not None]
        return min(times) if times else None

    # -- outside events --------------------------------------------------------------------------
    def complete_callback(
        self,
        callback_id: str,
        outcome: Literal["succeed", "fail", "heartbeat"],
        *,
        result: str | None,
        error: dict[str, Any] | None,
        now: float,
    ) -> tuple[ExecutionRecord, OperationRecord]:
        if outcome not in ("succeed", "fail", "heartbeat"):
            raise ValueError(f"unknown callback outcome {outcome!r}")
        event = {"succeed": "callback_succeeded", "fail": "callback_failed"}.get(
            outcome, "heartbeat"
        )

        def run(tx: Tx) -> tuple[ExecutionRecord, OperationRecord]:
            where = "SELECT * FROM execution_operations WHERE callback_id = ?"
            found = tx.one(where, (callback_id,))
            locked = None
            if found is not None:  # the execution first (the lock order), then the operation
                locked = tx.one(
                    f"SELECT * FROM executions WHERE id = ?{tx.dialect.for_update}",
                    (found["execution_id"],),
                )
                found = tx.one(where, (callback_id,))
            if found is None or locked is None:
                raise errors.CallbackNotFound(
                    f"no callback with id {callback_id!r}", details={"callback_id": callback_id}
                )
            ex, op = ExecutionRecord.from_row(locked), OperationRecord.from_row(found)
            if tx.retried and _wrote(tx, ex.id, event, now):
                return ex, op  # done by our own first attempt
            self._check_callback(ex, op, now)
            if outcome == "heartbeat":
                self._heartbeat(tx, ex, op, now)
            else:
                tx.execute(
                    "UPDATE execution_operations SET status = :status, result = :result, "
                    "error = :error, ended_at = :now, updated_at = :now "
                    "WHERE execution_id = :eid AND id = :id",
                    {
                        "status": "SUCCEEDED" if outcome == "succeed" else "FAILED",
                        "result": result if outcome == "succeed" else None,
                        "error": dumps_or_none(error) if outcome == "fail" else None,
                        "now": now,
                        "eid": ex.id,
                        "id": op.id,
                    },
                )
                _wake(tx, [ex.id], now)
            _log(tx, ex.id, now, event, operation_id=op.id, details={"callback_id": callback_id})
            got = tx.one(where, (callback_id,))
            return _execution(tx, ex.id), OperationRecord.from_row(got)

        return self._tx("complete_callback", run)

    @staticmethod
    def _check_callback(ex: ExecutionRecord, op: OperationRecord, now: float) -> None:
        """Raise ``CallbackConflict`` unless the callback can still be completed now."""
        details = {"callback_id": op.callback_id, "execution_id": ex.id, "operation_id": op.id}
        if ex.status is not ExecutionStatus.RUNNING:
            raise errors.CallbackConflict(
                f"the callback's execution has ended ({ex.status.value})",
                details={**details, "state": f"EXECUTION_{ex.status.value}"},
            )
        if op.status.is_terminal:
            raise errors.CallbackConflict(
                f"the callback was completed already ({op.status.value})",
                details={**details, "state": op.status.value},
            )
        for what, at in (
            ("timeout", op.callback_timeout_at),
            ("heartbeat timeout", op.heartbeat_timeout_at),
        ):
            if at is not None and now >= at:
                raise errors.CallbackConflict(
                    f"the callback's {what} has passed",
                    details={**details, "state": OperationStatus.TIMED_OUT.value},
                )

    @staticmethod
    def _heartbeat(tx: Tx, ex: ExecutionRecord, op: OperationRecord, now: float) -> None:
        """Move the callback's heartbeat deadline, and the execution's wake-up if that was
        the deadline it waited for."""
        old = new = op.heartbeat_timeout_at  # None: no heartbeat timeout, nothing to move
        last = op.updated_at if op.updated_at is not None else op.started_at
        if old is not None:
            new = now + (old - last if last is not None else 0.0)
        tx.execute(
            "UPDATE execution_operations SET heartbeat_timeout_at = ?, updated_at = ? "
            "WHERE execution_id = ? AND id = ?",
            (new, now, ex.id, op.id),
        )
        if new is None or ex.next_run_at is None or ex.next_run_at != old:
            return
        # The earliest time any pending operation falls due (an early replay only suspends
        # again; a late one would miss a deadline).
        row = tx.one(
            "SELECT min(wake_at) AS a, min(next_attempt_at) AS b, min(callback_timeout_at) AS c, "
            "min(heartbeat_timeout_at) AS d FROM execution_operations "
            f"WHERE execution_id = ? AND status NOT IN ({_ENDED_SQL})",
            (ex.id,),
        )
        due = min([t for t in (row["a"], row["b"], row["c"], row["d"]) if t is not None] or [new])
        tx.execute(
            "UPDATE executions SET next_run_at = ?, updated_at = ? WHERE id = ?",
            (due, now, ex.id),
        )

    def stop_execution(
        self, execution_id: str, error: dict[str, Any] | None, now: float
    ) -> ExecutionRecord:
        def run(tx: Tx) -> ExecutionRecord:
            row = tx.one(
                f"SELECT * FROM executions WHERE id = ?{tx.dialect.for_update}", (execution_id,)
            )
            if row is None:
                raise errors.ExecutionNotFound(
                    f"no execution with id {execution_id!r}", details={"id": execution_id}
                )
            rec = ExecutionRecord.from_row(row)
            if rec.status is not ExecutionStatus.RUNNING:
                if tx.retried and rec.status is ExecutionStatus.STOPPED and rec.ended_at == now:
                    return rec  # stopped by our own first attempt
                raise errors.ExecutionConflict(
                    f"the execution has ended ({rec.status.value}); only a running execution "
                    "can be stopped",
                    details={"id": execution_id, "status": rec.status.value},
                )
            tx.execute(
                "UPDATE executions SET status = 'STOPPED', error = :error, ended_at = :now, "
                "updated_at = :now, expires_at = :expires, next_run_at = NULL, "
                "lease_owner = NULL, lease_expires_at = NULL WHERE id = :id",
                {
                    "id": execution_id,
                    "now": now,
                    "error": dumps_or_none(error),
                    "expires": now + self.execution_retention_seconds,
                },
            )
            _wake(tx, [rec.parent_id], now)
            details = None if error is None else {"error": error}
            _log(tx, execution_id, now, "execution_stopped", details=details)
            return _execution(tx, execution_id)

        return self._tx("stop_execution", run)

    # -- retention -------------------------------------------------------------------------------
    def delete_executions_ended_before(self, before: float, limit: int = 1000) -> int:
        def run(tx: Tx) -> int:
            rows = tx.execute(
                "SELECT id FROM executions WHERE expires_at < ? AND status <> 'RUNNING' "
                f"ORDER BY expires_at LIMIT ?{tx.dialect.skip_locked}",
                (before, limit),
            ).fetchall()
            ids = {"ids": [str(r["id"]) for r in rows]}
            if rows:
                tx.execute("DELETE FROM execution_history WHERE execution_id IN (:ids)", ids)
                tx.execute("DELETE FROM execution_operations WHERE execution_id IN (:ids)", ids)
                tx.execute("DELETE FROM executions WHERE id IN (:ids)", ids)
            return len(rows)

        return self._tx("delete_executions_ended_before", run)
