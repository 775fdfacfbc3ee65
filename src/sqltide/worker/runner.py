"""The worker: claims statements under leases, runs them, heartbeats, recovers, sweeps.

Threads: ``worker_concurrency`` runner threads, each claiming one statement at a time and
running it, and one heartbeat thread (leases, cancel requests, other workers' expired leases,
sweeping). A submission wakes exactly one idle runner (no thundering herd on the store), and
the heartbeat wakes one on every beat as a safety net, so an idle worker asks the store about
twice per heartbeat (a claim and a recovery check), not once per runner per second.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping

from ..engines import Access, Engine, EngineConnection
from ..errors import EngineError
from ..settings import Settings
from ..statements.service import result_key
from ..storage import Storage
from ..store import StatementRecord, StatementStatus, Store
from ..store.notify import Notifier
from .execute import CANCELLED, Execution, error_dict

logger = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        notifier: Notifier,
        engines: Mapping[str, Engine],
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.storage = storage
        self.notifier = notifier
        self.engines = dict(engines)
        self.settings = settings
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Submissions not yet picked up by a runner; guarded by _work.
        self._work = threading.Condition()
        self._pending = 0
        self._idle = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, Execution] = {}
        self._claimed: set[str] = set()
        self._sessions: dict[str, EngineConnection] = {}
        self._session_access: dict[str, Access] = {}  # what each session's connection may do
        self._sessions_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._last_sweep = 0.0
        notifier.subscribe("work", self._on_work)
        notifier.subscribe("cancel", self._on_cancel)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        exclusive = [name for name, e in self.engines.items() if e.exclusive]
        # This process alone hosts its exclusive (DuckDB) warehouses, so anything in flight on
        # them belongs to a process that is gone: settle it now instead of waiting for leases.
        self._recover(orphaned=exclusive)
        targets = [(self._heartbeat_loop, "sqltide-heartbeat")] + [
            (self._runner_loop, f"sqltide-run-{n}") for n in range(self.settings.worker_concurrency)
        ]
        for target, name in targets:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, grace: float | None = None, timeout: float = 10.0) -> None:
        """Stop claiming, give running statements ``grace`` seconds to end, interrupt the rest.

        Interrupted statements end FAILED (``worker_shutdown``).
        """
        self._stop.set()
        with self._work:
            self._work.notify_all()
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        deadline = time.monotonic() + grace
        while self.busy and time.monotonic() < deadline:
            self._idle.wait(0.05)  # woken as each run ends
            self._idle.clear()
        with self._lock:
            running = list(self._running.values())
        for execution in running:
            execution.cancel(shutdown=True)
        for t in self._threads:
            t.join(timeout)
        with self._sessions_lock:
            for conn in self._sessions.values():
                conn.close()
            self._sessions.clear()
            self._session_access.clear()

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._claimed)

    def _on_work(self, warehouse: str) -> None:
        if warehouse in self.engines:
            self._wake_one()

    def _wake_one(self) -> None:
        with self._work:
            self._pending += 1
            self._work.notify()

    def _on_cancel(self, statement_id: str) -> None:
        with self._lock:
            execution = self._running.get(statement_id)
        if execution is not None:
            execution.cancel()

    # -- claiming ------------------------------------------------------------------------------
    def _runner_loop(self) -> None:
        warehouses = list(self.engines)
        while not self._stop.is_set():
            claimed: list[StatementRecord] = []
            try:
                claimed = self.store.claim_statements(
                    warehouses, self.owner, 1, self.settings.lease_seconds, self.clock()
                )
            except Exception:
                logger.exception("claiming statements failed; retrying")
            if claimed:
                rec = claimed[0]
                with self._lock:
                    self._claimed.add(rec.id)
                self._run(rec)
                continue
            with self._work:
                while self._pending == 0 and not self._stop.is_set():
                    self._work.wait()
                self._pending = max(0, self._pending - 1)

    # -- running -------------------------------------------------------------------------------
    def _run(self, rec: StatementRecord) -> None:
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
            self._idle.set()

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

    # -- heartbeats, recovery, sweeping --------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        interval = self.settings.heartbeat_seconds
        while not self._stop.wait(interval):
            # A safety net for a wake-up that never came (work from a process whose
            # notification was lost): one runner looks for work on every heartbeat.
            self._wake_one()
            try:
                self._heartbeat()
                self._recover(orphaned=[])
                if self.clock() - self._last_sweep >= self.settings.sweep_interval_seconds:
                    self.sweep()
            except Exception:
                logger.exception("heartbeat failed; retrying")

    def _heartbeat(self) -> None:
        with self._lock:
            ids = list(self._claimed)
        now = self.clock()
        for sid in self.store.heartbeat(self.owner, ids, now + self.settings.lease_seconds, now):
            self._on_cancel(sid)

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
        """Delete results and records past their retention and close idle sessions; returns
        result files deleted."""
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
            ("DELIVERED", s.delivery_retention_seconds),
            ("DEAD", s.dead_letter_retention_seconds),
        ):
            while self.store.delete_deliveries_before(status, now - keep) > 0:
                pass
        for session in self.store.expired_sessions(now):
            with self._sessions_lock:
                conn = self._sessions.pop(session.id, None)
                self._session_access.pop(session.id, None)
            if conn is not None:
                conn.close()
            self.store.close_session(session.id, now)
        return deleted
