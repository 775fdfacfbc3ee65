"""Workflow executions: their checkpoints, leases, callbacks, history and retention.

An execution is RUNNING from its start until it ends SUCCEEDED, FAILED, TIMED_OUT or STOPPED.
While RUNNING it is either *due* (``next_run_at <= now`` and no live lease: a worker may claim
it), *leased* (a worker is replaying it) or *suspended* (``next_run_at`` in the future, or None
until an outside event: a callback's completion, a child execution's end).

Every method is one transaction. The worker-side transitions (:meth:`checkpoint`,
:meth:`suspend_execution`, :meth:`finish_execution`, :meth:`renew_execution_leases`) are
guarded by "``owner`` holds the lease of this RUNNING execution and its ``timeout_at`` has
not come": when the guard fails (the lease expired and was recovered or claimed by another
worker, the execution was stopped, or it timed out) they change nothing and say so, and the
replay must be abandoned. The outside events (:meth:`complete_callback`, a child's end,
:meth:`stop_execution`, :meth:`time_out_executions`) do not need the lease; they serialize
with the worker on the execution's row.

A wake-up is never lost: a claim clears ``next_run_at`` (a leased execution is not due); an
outside event during a replay sets it to ``now``; the replay's :meth:`suspend_execution` keeps
the earlier of that and its own time.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, Literal

from ..execution_records import (
    ExecutionFilter,
    ExecutionRecord,
    ExecutionStatus,
    HistoryRecord,
    OperationRecord,
    OperationUpdate,
)


class ExecutionStore(abc.ABC):
    """Durable executions of workflows (docs/adr/0008-durable-workflows.md)."""

    #: How long an execution that timed out or was stopped is kept after it ended (the AWS
    #: default retention, 14 days); :meth:`finish_execution` is told its retention instead.
    execution_retention_seconds: float = 14 * 86_400.0

    # -- start and read ------------------------------------------------------------------------
    @abc.abstractmethod
    def start_execution(self, rec: ExecutionRecord) -> tuple[ExecutionRecord, bool]:
        """Record a new RUNNING execution, due at once (``next_run_at = created_at``), with the
        history line ``execution_started``.

        Idempotent on ``(workflow, name)``: when an execution of that name exists (whatever its
        status), returns ``(existing, False)`` and changes nothing; of two concurrent starts of
        one name exactly one is recorded, the other gets it. Returns ``(stored, True)`` for a
        new one.
        """

    @abc.abstractmethod
    def get_execution(self, execution_id: str) -> ExecutionRecord | None: ...

    @abc.abstractmethod
    def find_execution(self, workflow: str, name: str) -> ExecutionRecord | None:
        """The execution started under this name, if any."""

    @abc.abstractmethod
    def list_executions(
        self, f: ExecutionFilter, limit: int, after: tuple[float, str] | None = None
    ) -> list[ExecutionRecord]:
        """Up to ``limit`` executions matching ``f``, newest first by ``(created_at, id)``;
        ``after`` is the ``(created_at, id)`` of the last one of the previous page."""

    @abc.abstractmethod
    def get_operations(self, execution_id: str) -> list[OperationRecord]:
        """Every checkpointed operation of the execution, in creation order (``seq``)."""

    @abc.abstractmethod
    def get_operations_of(self, execution_ids: Sequence[str]) -> dict[str, list[OperationRecord]]:
        """:meth:`get_operations` of several executions in one read (a worker's claim batch):
        every id given is a key, with ``[]`` for one without operations."""

    @abc.abstractmethod
    def find_callback(self, callback_id: str) -> tuple[ExecutionRecord, OperationRecord] | None:
        """The CALLBACK operation with this ``callback_id`` and its execution, if any (a read:
        who may complete it is checked before :meth:`complete_callback`)."""

    @abc.abstractmethod
    def get_history(
        self, execution_id: str, after_seq: int = 0, limit: int = 1000
    ) -> list[HistoryRecord]:
        """Up to ``limit`` history lines with ``seq > after_seq``, in order."""

    # -- the worker's side -----------------------------------------------------------------------
    @abc.abstractmethod
    def claim_executions(
        self,
        workflows: Sequence[str],
        owner: str,
        limit: int,
        lease_seconds: float,
        now: float,
    ) -> list[ExecutionRecord]:
        """Lease up to ``limit`` due executions of ``workflows`` (the ones loaded here) to
        ``owner`` until ``now + lease_seconds``, oldest ``next_run_at`` first.

        Due: RUNNING, ``next_run_at <= now``, no lease or an expired one. Each claimed one
        counts a replay (``replays + 1``), gets ``next_run_at = None`` and the history line
        ``resumed``. Two claimers racing never get the same execution (PostgreSQL skips rows
        another claim has locked; SQLite has one writer). Returns the records as claimed.
        """

    @abc.abstractmethod
    def checkpoint(
        self, execution_id: str, owner: str, updates: Sequence[OperationUpdate], now: float
    ) -> bool:
        """Write operations (insert or replace each whole row, keyed by ``(execution_id,
        id)``) and one history line per update, in order, in one transaction.

        A new operation gets the next ``seq`` of its execution (a stored one keeps its own),
        and ``updated_at = now`` when it has none. An operation that has ended (see
        :data:`~sqltide.store.execution_records.OPERATION_ENDED`) is final: an update of it is
        skipped with its history line (an outside event, a callback's completion, won the
        race). False, and nothing written, when the lease guard fails.
        """

    @abc.abstractmethod
    def suspend_execution(
        self, execution_id: str, owner: str, next_run_at: float | None, now: float
    ) -> bool:
        """End a replay that is waiting: release the lease, set ``next_run_at`` (None: only an
        outside event wakes it) or keep the earlier time an outside event set meanwhile,
        history ``suspended``. False when the lease guard fails."""

    @abc.abstractmethod
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
        """End the execution (``status`` is a terminal one) with its result or error:
        ``ended_at = now``, ``expires_at = now + retention_seconds``, lease released, history
        ``execution_<status>``. A child wakes its parent (``next_run_at = now`` if not due
        sooner); the parent's CHAINED_INVOKE operation is left for its replay to settle.
        False when the lease guard fails."""

    @abc.abstractmethod
    def renew_execution_leases(
        self, owner: str, ids: Sequence[str], lease_until: float, now: float
    ) -> list[str]:
        """Extend ``owner``'s leases of ``ids`` to ``lease_until``; returns the ids it no
        longer holds (ended, stopped, timed out or past ``timeout_at``, lease lost): their
        replays must stop."""

    @abc.abstractmethod
    def recover_executions(self, now: float) -> int:
        """RUNNING executions whose lease expired (their worker is gone): lease cleared, due
        now (history ``lease_expired``). Returns how many. A concurrent claim of the same row
        is not waited for."""

    @abc.abstractmethod
    def time_out_executions(self, now: float) -> list[ExecutionRecord]:
        """RUNNING executions with ``timeout_at <= now`` end TIMED_OUT (error ``{"type":
        "TimeoutError", ...}``, lease cleared, kept :attr:`execution_retention_seconds`,
        parents woken, history ``execution_timed_out``). Returns them as changed."""

    @abc.abstractmethod
    def next_execution_due(self, workflows: Sequence[str]) -> float | None:
        """The earliest time something of ``workflows`` falls due: a ``next_run_at`` of an
        unleased RUNNING execution, or the ``timeout_at`` of any RUNNING one; None if none.
        Leased executions are left out (their replay says when they are due next)."""

    # -- outside events --------------------------------------------------------------------------
    @abc.abstractmethod
    def complete_callback(
        self,
        callback_id: str,
        outcome: Literal["succeed", "fail", "heartbeat"],
        *,
        result: str | None,
        error: dict[str, Any] | None,
        now: float,
    ) -> tuple[ExecutionRecord, OperationRecord]:
        """Complete or heartbeat the CALLBACK operation with this ``callback_id``.

        ``succeed`` / ``fail`` end the operation SUCCEEDED (``result``) or FAILED (``error``)
        and wake the execution (``next_run_at = now`` if not due sooner); ``heartbeat`` moves
        ``heartbeat_timeout_at`` by the callback's heartbeat timeout and, when the execution was
        due at the old one, makes it due at the earliest pending time of its operations. One
        history line each (``callback_succeeded``, ``callback_failed``, ``heartbeat``).
        Returns the execution and the operation as changed.

        Raises ``CallbackNotFound`` for an unknown id, and ``CallbackConflict`` (``details``:
        ``state`` and the ids) when the operation has ended (``state`` its status), its
        timeout or heartbeat timeout has come (``TIMED_OUT``), or its execution is no longer
        RUNNING (``EXECUTION_<status>``).
        """

    @abc.abstractmethod
    def stop_execution(
        self, execution_id: str, error: dict[str, Any] | None, now: float
    ) -> ExecutionRecord:
        """RUNNING → STOPPED now (lease cleared, kept :attr:`execution_retention_seconds`,
        parent woken, history ``execution_stopped``); a replay running it finds out at its
        next checkpoint or heartbeat. Raises ``ExecutionNotFound``, or ``ExecutionConflict``
        when it is not RUNNING."""

    # -- retention -------------------------------------------------------------------------------
    @abc.abstractmethod
    def delete_executions_ended_before(self, before: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` ended executions with ``expires_at < before``, with their
        operations and history; returns how many executions."""
