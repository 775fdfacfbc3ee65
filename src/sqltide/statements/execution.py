"""Running one claimed statement or batch on a warehouse connection (the statement job
kind runs each claimed statement through an :class:`Execution`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..engines import EngineConnection
from ..engines.params import find_parameters
from ..errors import EngineError
from ..storage import Storage
from ..store import StatementRecord, StatementStatus, Store
from .results import write_result
from .service import result_key

logger = logging.getLogger(__name__)

CANCELLED: dict[str, Any] = {
    "code": "cancelled",
    "message": "cancelled on request while running",
    "sqlstate": "57014",
    "position": None,
    "details": {},
}


def _params_for(sql: str, params: dict[str, Any] | None) -> dict[str, Any] | None:
    """The batch-wide parameters this one statement references (drivers reject extras)."""
    if not params:
        return None
    names = {ref.name for ref in find_parameters(sql)}
    return {k: v for k, v in params.items() if k in names} or None


SHUTDOWN: dict[str, Any] = {
    "code": "worker_shutdown",
    "message": "the worker was stopped while this statement ran (it was interrupted and "
    "rolled back); submit it again",
    "sqlstate": "57P01",
    "position": None,
    "details": {},
}


#: After a cancel, the run is interrupted again after these delays (then every last one)
#: until it ends: the first interrupt may land between two statements and stop nothing.
INSIST_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)
INSIST_LOCK = threading.Lock()


class Cancelled(Exception):
    """Raised inside a run when its cancel flag is set between batches."""


def error_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, EngineError):
        return exc.to_dict()
    return {
        "code": "internal_error",
        "message": f"{type(exc).__name__}: {exc}",
        "sqlstate": None,
        "position": None,
        "details": {},
    }


class Execution:
    """One statement (or batch) running on one connection."""

    def __init__(
        self,
        record: StatementRecord,
        conn: EngineConnection,
        store: Store,
        storage: Storage,
        clock: Callable[[], float],
        chunk_bytes: int,
        inline_bytes: int = 0,
    ):
        self.record = record
        self.conn = conn
        self.store = store
        self.storage = storage
        self.clock = clock
        self.chunk_bytes = chunk_bytes
        self.inline_bytes = inline_bytes
        self.cancel_event = threading.Event()
        self.finished = threading.Event()
        self.shutdown = False
        self._insisting = False

    def cancel(self, *, shutdown: bool = False) -> None:
        """Interrupt the run: on request (ends ABORTED) or because the worker stops (FAILED).

        An interrupt that lands just before the engine starts a statement finds nothing to
        stop, so the run is interrupted again, with backoff, until it ends.
        """
        self.shutdown = shutdown
        self.cancel_event.set()
        self._interrupt()
        with INSIST_LOCK:
            if self._insisting or self.finished.is_set():
                return
            self._insisting = True
        threading.Thread(
            target=self._insist, name=f"sqltide-cancel-{self.record.id[:8]}", daemon=True
        ).start()

    def _interrupt(self) -> None:
        try:
            self.conn.interrupt()
        except Exception:  # the connection may be between statements; the flag still stops it
            logger.debug("interrupt failed for %s", self.record.id, exc_info=True)

    def _insist(self) -> None:
        for delay in INSIST_DELAYS:
            if self.finished.wait(delay):
                return
            self._interrupt()
        while not self.finished.wait(INSIST_DELAYS[-1]):
            self._interrupt()

    def _check_cancel(self, _rows: int = 0) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def _run_one(self, statement_id: str, sql: str) -> dict[str, Any]:
        """Run one SQL text; returns the result fields to record."""
        self._check_cancel()
        res = self.conn.execute(sql, _params_for(sql, self.record.parameters))
        if not res.has_result_set:
            return {"has_result_set": False, "result_rows": res.rows_affected, "result_size": None}
        assert res.schema is not None and res.batches is not None
        manifest = write_result(
            self.storage,
            result_key(statement_id),
            res.schema,
            res.batches,
            res.columns,
            self.chunk_bytes,
            on_batch=self._check_cancel,
            inline_bytes=self.inline_bytes,
        )
        return {
            "has_result_set": True,
            "result_rows": manifest.rows,
            "result_size": manifest.bytes,
            "result_meta": manifest.to_json(),
        }

    def _failure(self, exc: BaseException) -> tuple[StatementStatus, dict[str, Any]]:
        cancelled = isinstance(exc, Cancelled) or (
            isinstance(exc, EngineError) and exc.code == "cancelled"
        )
        if cancelled and self.cancel_event.is_set():
            if self.shutdown:
                return StatementStatus.FAILED, dict(SHUTDOWN)
            return StatementStatus.ABORTED, dict(CANCELLED)
        return StatementStatus.FAILED, error_dict(exc)

    def run(self) -> tuple[StatementStatus, dict[str, Any]]:
        """Run and return the terminal status with the fields to record on the statement."""
        try:
            return self._run()
        finally:
            self.finished.set()

    def _run(self) -> tuple[StatementStatus, dict[str, Any]]:
        if self.record.is_batch:
            return self._run_batch()
        try:
            fields = self._run_one(self.record.id, self.record.query_string)
        except Exception as exc:
            status, error = self._failure(exc)
            return status, {"error": error}
        return StatementStatus.FINISHED, fields

    def _run_batch(self) -> tuple[StatementStatus, dict[str, Any]]:
        subs = self.store.get_sub_statements(self.record.id)
        transactional = self.record.batch_mode != "auto_commit"
        total_rows = 0
        any_result = False
        try:
            if transactional:
                self.conn.begin()
        except Exception as exc:
            status, error = self._failure(exc)
            return status, {"error": error}
        for n, sub in enumerate(subs):
            now = self.clock()
            self.store.update_statement(
                sub.id, {"status": StatementStatus.STARTED, "started_at": now, "updated_at": now}
            )
            try:
                fields = self._run_one(sub.id, sub.query_string)
            except Exception as exc:
                status, error = self._failure(exc)
                return self._batch_failed(subs, n, status, error, transactional)
            now = self.clock()
            self.store.update_statement(
                sub.id,
                {**fields, "status": StatementStatus.FINISHED, "ended_at": now, "updated_at": now},
            )
            total_rows += fields.get("result_rows") or 0
            any_result = any_result or bool(fields.get("has_result_set"))
        if transactional:
            try:
                self.conn.commit()
            except Exception as exc:
                status, error = self._failure(exc)
                error["message"] = f"commit failed, the batch was rolled back: {error['message']}"
                self.conn.rollback()
                return status, {"error": error}
        return StatementStatus.FINISHED, {"result_rows": total_rows, "has_result_set": any_result}

    def _batch_failed(
        self,
        subs: list[StatementRecord],
        failed: int,
        status: StatementStatus,
        error: dict[str, Any],
        transactional: bool,
    ) -> tuple[StatementStatus, dict[str, Any]]:
        if transactional:
            self.conn.rollback()
        now = self.clock()
        sub = subs[failed]
        self.store.update_statement(
            sub.id, {"status": status, "error": error, "ended_at": now, "updated_at": now}
        )
        not_run: dict[str, Any] = {
            "code": "not_run",
            "message": f"not run: sub-statement {sub.id} before it "
            + ("was cancelled" if status is StatementStatus.ABORTED else "failed"),
            "sqlstate": None,
            "position": None,
            "details": {},
        }
        for later in subs[failed + 1 :]:
            self.store.update_statement(
                later.id,
                {
                    "status": StatementStatus.ABORTED,
                    "error": not_run,
                    "ended_at": now,
                    "updated_at": now,
                },
            )
        rolled = (
            "; the batch was rolled back"
            if transactional
            else ("; earlier sub-statements were committed (auto_commit mode)")
        )
        verb = "was cancelled" if status is StatementStatus.ABORTED else "failed"
        batch_error = {
            **error,
            "message": f"sub-statement {sub.id} {verb}: {error['message']}{rolled}",
            "details": {
                **error.get("details", {}),
                "sub_statement_id": sub.id,
                "rolled_back": transactional,
            },
        }
        return status, {"error": batch_error}
