"""Statements as a job kind of the work loop: claimed under leases, run, heartbeated,
recovered, swept.

The loop (:mod:`sqltide.worker.loop`) claims up to ``worker_concurrency`` statements at once
and runs each in its pool; this kind says how: claim ``SUBMITTED`` statements of the hosted
warehouses, run one on a fresh connection (or its session's), renew the leases of those
running and pass on the cancel requests the renewal reports, settle other workers' expired
leases, and sweep what is past its retention. A submission (the ``work`` wake-up of a hosted
warehouse) wakes the claim thread; otherwise it looks once per heartbeat, the safety net for
a wake-up that never came.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from ..engines import Access, Engine, EngineConnection
from ..errors import EngineError
from ..settings import Settings
from ..storage import Storage
from ..store import StatementRecord, StatementStatus, Store
from ..store.event_records import DeliveryStatus
from ..store.wakeups import Notifier
from ..worker.loop import JobKind, new_owner
from .execution import CANCELLED, Execution, error_dict
from .service import result_key

logger = logging.getLogger(__name__)


class StatementJobs(JobKind[StatementRecord]):
    """The statement job kind of one process (``runtime.worker``)."""

    name = "statements"
    wake_channels = ("work",)
    #: A statement's end makes nothing else due: new statements arrive with a wake-up.
    wake_after_run = False

    def __init__(
        self,
        store: Store,
        storage: Storage,
        notifier: Notifier,
        engines: Mapping[str, Engine],
        settings: Settings,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ):
        self.store = store
        self.storage = storage
        self.notifier = notifier
        self.engines = dict(engines)
        self.settings = settings
        self.clock = clock
        self.owner = owner or new_owner()
        self.concurrency = settings.worker_concurrency
        self.poll_seconds = settings.heartbeat_seconds
        self._lock = threading.Lock()
        self._running: dict[str, Execution] = {}
        self._claimed: set[str] = set()
        self._sessions: dict[str, EngineConnection] = {}
        self._session_access: dict[str, Access] = {}  # what each session's connection may do
        self._sessions_lock = threading.Lock()
        self._last_sweep = 0.0
        notifier.subscribe("cancel", self._on_cancel)

    @property
    def busy(self) -> int:
        """How many statements this process has claimed and not yet ended."""
        with self._lock:
            return len(self._claimed)

    def wakes(self, key: str) -> bool:
        return key in self.engines  # the ``work`` wake-up's key is the warehouse

    def _on_cancel(self, statement_id: str) -> None:
        with self._lock:
            execution = self._running.get(statement_id)
        if execution is not None:
            execution.cancel()

    # -- the job kind --------------------------------------------------------------------------
    def prepare(self) -> None:
        exclusive = [name for name, e in self.engines.items() if e.exclusive]
        # This process alone hosts its exclusive (DuckDB) warehouses, so anything in flight on
        # them belongs to a process that is gone: settle it now instead of waiting for leases.
        self._recover(orphaned=exclusive)

    def claim(self, limit: int) -> Sequence[StatementRecord]:
        claimed = self.store.claim_statements(
            list(self.engines), self.owner, limit, self.settings.lease_seconds, self.clock()
        )
        with self._lock:
            self._claimed.update(rec.id for rec in claimed)
        return claimed

    def run(self, item: StatementRecord) -> None:
        rec = item
        try:
            self._run_claimed(rec)
        except Exception:
            logger.exception("statement %s: unexpected failure", rec.id)
            self._finish(
                rec, StatementStatus.FAILED, {"error": error_dict(RuntimeError("worker error"))}
            )
        finally:
            with self._lock:
                self._claimed.discard(rec.id)
                self._running.pop(rec.id, None)

    def renew(self, items: list[StatementRecord]) -> None:
        """Renew the leases of the statements running here; pass on cancels asked meanwhile."""
        with self._lock:
            ids = list(self._claimed)
        now = self.clock()
        for sid in self.store.heartbeat(self.owner, ids, now + self.settings.lease_seconds, now):
            self._on_cancel(sid)

    def recover(self) -> None:
        """Settle other workers' expired leases; sweep when the interval has passed."""
        self._recover(orphaned=[])
        if self.clock() - self._last_sweep >= self.settings.sweep_interval_seconds:
            self.sweep()

    def interrupt(self) -> None:
        """The stop's grace ran out: interrupt what still runs (it ends ``worker_shutdown``)."""
        with self._lock:
            running = list(self._running.values())
        for execution in running:
            execution.cancel(shutdown=True)

    def close(self) -> None:
        with self._sessions_lock:
            for conn in self._sessions.values():
                conn.close()
            self._sessions.clear()
            self._session_access.clear()

    # -- running -------------------------------------------------------------------------------
    def _run_claimed(self, rec: StatementRecord) -> None:
        if not self.store.start_statement(rec.id, self.owner, self.clock()):
            current = self.store.get_statement(rec.id)
            if current and current.cancel_requested and current.lease_owner == self.owner:
                self._finish(rec, StatementStatus.ABORTED, {"error": dict(CANCELLED)})
            return
        try:
            conn, one_shot = self._connection(rec)
        except Exception as exc:
            self._finish(rec, StatementStatus.FAILED, {"error": error_dict(exc)})
            return
        execution = Execution(
            rec,
            conn,
            self.store,
            self.storage,
            self.clock,
            self.settings.result_chunk_bytes,
            self.settings.result_inline_bytes,
        )
        with self._lock:
            self._running[rec.id] = execution
        try:
            status, fields = execution.run()
        finally:
            if one_shot:
                conn.close()
        if status is not StatementStatus.FINISHED and not rec.is_batch:
            self.storage.delete_prefix(result_key(rec.id))
        self._finish(rec, status, fields)

    def _connection(self, rec: StatementRecord) -> tuple[EngineConnection, bool]:
        engine = self.engines[rec.warehouse]
        # What the principal's grant allowed when the statement was recorded (record first,
        # act second: the worker acts on the record, not on grants as they are now).
        access = Access.of(rec.access, rec.db_role)
        if rec.session_id is None:
            return engine.connect(access), True
        with self._sessions_lock:
            conn = self._sessions.get(rec.session_id)
            if conn is not None and self._session_access.get(rec.session_id) != access:
                # The grant changed between two statements of the session; its connection
                # holds the old access (or role), so the session cannot go on.
                raise EngineError(
                    f"the principal's grant on warehouse {rec.warehouse!r} changed since "
                    f"session {rec.session_id} started; open a new session",
                    code="permission_denied",
                    sqlstate="42501",
                )
            if conn is None:
                session = self.store.get_session(rec.session_id)
                if session is None or session.closed_at is not None:
                    raise EngineError(
                        f"session {rec.session_id} was closed (it expired, or the worker that "
                        "held its connection stopped); open a new session",
                        code="session_lost",
                        sqlstate="08003",
                    )
                conn = self._sessions[rec.session_id] = engine.connect(access)
                conn.hold_session(session.keep_alive_seconds)  # Redshift: a Data API session
                self._session_access[rec.session_id] = access
        return conn, False

    def _finish(
        self, rec: StatementRecord, status: StatementStatus, fields: dict[str, object]
    ) -> None:
        now = self.clock()
        ok = self.store.finish_statement(
            rec.id,
            self.owner,
            {**fields, "status": status, "ended_at": now, "updated_at": now},
            now,
        )
        if not ok:
            logger.warning("statement %s: lease lost before it ended; result discarded", rec.id)
        self.notifier.publish("statement", rec.id)
        if ok and rec.with_event:  # the store wrote its status event: wake the router
            self.notifier.publish("events", rec.principal)

    # -- recovery, sweeping ---------------------------------------------------------------------
    def _recover(self, orphaned: list[str]) -> None:
        changed = self.store.recover_statements(
            self.clock(), orphaned_warehouses=orphaned, owner=self.owner
        )
        for rec in changed:
            logger.warning(
                "statement %s recovered after its worker was lost: now %s", rec.id, rec.status.value
            )
            self.notifier.publish("statement", rec.id)
            if rec.status is StatementStatus.SUBMITTED:
                self.notifier.publish("work", rec.warehouse)
        if orphaned:
            for session in self.store.expired_sessions(float("inf")):
                if session.warehouse in orphaned:
                    self.store.close_session(session.id, self.clock())

    def sweep(self) -> int:
        """Delete results and records past their retention (statements, events, deliveries,
        workflow executions) and close idle sessions; returns result files deleted."""
        now = self.clock()
        self._last_sweep = now
        deleted = 0
        while True:
            batch = self.store.statements_with_expired_results(
                now - self.settings.result_retention_seconds, 500
            )
            if not batch:
                break
            for rec in batch:
                deleted += self.storage.delete_prefix(f"results/{rec.id}")
            self.store.mark_results_expired([r.id for r in batch])
        s = self.settings
        while self.store.delete_events_before(now - s.event_retention_seconds) > 0:
            pass  # in slices of 10,000, each its own transaction
        while gone := self.store.delete_statements_ended_before(
            now - s.statement_retention_seconds
        ):
            for statement_id, result_expired in gone:
                if not result_expired:  # only if results are kept as long as records
                    deleted += self.storage.delete_prefix(f"results/{statement_id}")
        for status, keep in (
            (DeliveryStatus.DELIVERED, s.delivery_retention_seconds),
            (DeliveryStatus.DEAD, s.dead_letter_retention_seconds),
        ):
            while self.store.delete_deliveries_before(status, now - keep) > 0:
                pass
        # Workflow executions carry their own expiry (expires_at, set when they end).
        while self.store.delete_executions_ended_before(now) > 0:
            pass
        for session in self.store.expired_sessions(now):
            with self._sessions_lock:
                conn = self._sessions.pop(session.id, None)
                self._session_access.pop(session.id, None)
            if conn is not None:
                conn.close()
            self.store.close_session(session.id, now)
        return deleted
