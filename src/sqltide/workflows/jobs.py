"""Workflow executions as a job kind of the work loop: claimed under leases, replayed,
heartbeated, recovered, timed out.

The loop (:mod:`sqltide.worker.loop`) gives this kind a claim thread and a pool of
``SQLTIDE_WORKFLOW_CONCURRENCY`` threads; this kind says how:

- **claim** due executions of the workflows this process loaded (a start, a timer, a retry, a
  callback's completion, a child's end made them due), each under a lease held by this
  process, and run one :class:`~sqltide.workflows.replay.Replay` of each on a pool thread;
- **wait** without polling: between claims the claim thread sleeps until the earliest
  ``next_run_at`` or ``timeout_at`` the store knows (:meth:`ExecutionJobs.next_wait`), until a
  ``workflows`` wake-up names a workflow loaded here, or for ``SQLTIDE_WORKFLOW_POLL_SECONDS``
  (the safety net for a wake-up lost between processes). So any number of suspended
  executions cost one claim and one read per poll interval, and nothing per execution;
- **renew** the leases of the replays running here on every heartbeat; an id the store says
  this process no longer holds (stopped, timed out, its lease lost) is *abandoned*: its replay
  writes nothing more (its next checkpoint, suspension or end is refused here, before the store
  is asked) and ends at that point;
- **recover** executions whose worker died (their lease expired: due again at once) and **time
  out** those past their ``timeout_at``, at most every half lease (and as soon as a timeout
  falls due, through :meth:`ExecutionJobs.next_wait`).

A process owns its leases under one owner name (the loop's), so a replay whose lease was lost
and then claimed again *by this same process* would pass the store's guard: a claim therefore
abandons any replay of the same execution still running here, and only the new one writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ..settings import Settings
from ..store import ExecutionRecord, ExecutionStatus, Store
from ..store.wakeups import Notifier
from ..worker.loop import JobKind, new_owner
from .registry import Registry
from .replay import Replay
from .service import WorkflowService

logger = logging.getLogger(__name__)

#: After a replay failed unexpectedly (a bug, the store unreachable), replay again then.
RETRY_AFTER_SECONDS = 5.0
#: The first pause when the store says something is due that no claim finds; it doubles.
_DUE_BACKOFF_FIRST = 0.05


@dataclass(eq=False)
class _Running:
    """One replay running here: its execution as claimed, and whether it must stop."""

    execution: ExecutionRecord
    abandoned: threading.Event = field(default_factory=threading.Event)


class _GuardedStore:
    """The store as one replay sees it: once its run is abandoned, every lease-guarded write
    is refused here (as the store refuses one whose lease was lost), so the replay stops."""

    def __init__(self, store: Store, running: _Running):
        self._store = store
        self._running = running

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def checkpoint(self, execution_id: str, owner: str, updates: Sequence[Any], now: float) -> bool:
        if self._running.abandoned.is_set():
            return False
        return self._store.checkpoint(execution_id, owner, updates, now)

    def suspend_execution(
        self, execution_id: str, owner: str, next_run_at: float | None, now: float
    ) -> bool:
        if self._running.abandoned.is_set():
            return False
        return self._store.suspend_execution(execution_id, owner, next_run_at, now)

    def finish_execution(self, execution_id: str, owner: str, *args: Any, **kw: Any) -> bool:
        if self._running.abandoned.is_set():
            return False
        return self._store.finish_execution(execution_id, owner, *args, **kw)


class ExecutionJobs(JobKind[ExecutionRecord]):
    """The workflow execution job kind of one process (``runtime.loop``'s)."""

    name = "workflows"
    wake_channels = ("workflows",)

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        registry: Registry,
        service: WorkflowService,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ):
        self.store = store
        self.notifier = notifier
        self.registry = registry
        self.service = service
        self.settings = settings
        self.clock = clock
        self.owner = owner or new_owner()
        self.concurrency = settings.workflow_concurrency
        self.poll_seconds = settings.workflow_poll_seconds
        self.lease_seconds = settings.lease_seconds
        self.retention_seconds = settings.workflow_retention_seconds
        #: Recovery and time-outs run at most this often from the heartbeat.
        self.upkeep_seconds = max(settings.heartbeat_seconds, settings.lease_seconds / 2)
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._next_upkeep = 0.0
        self._due_misses = 0

    @property
    def busy(self) -> int:
        """How many replays run here now."""
        with self._lock:
            return len(self._running)

    def wakes(self, key: str) -> bool:
        return not key or key in self.registry  # the key is the workflow made runnable

    # -- the job kind --------------------------------------------------------------------------
    def prepare(self) -> None:
        self._upkeep(self.clock())

    def claim(self, limit: int) -> Sequence[ExecutionRecord]:
        names = self.registry.names()
        if not names:
            return []
        claimed = self.store.claim_executions(
            names, self.owner, limit, self.lease_seconds, self.clock()
        )
        with self._lock:
            for rec in claimed:
                old = self._running.get(rec.id)
                if old is not None:
                    # Its lease was lost (else no claim could take it): only the new one writes.
                    old.abandoned.set()
                    logger.warning(
                        "execution %s: claimed again while an earlier replay still runs here; "
                        "that replay is abandoned",
                        rec.id,
                    )
                self._running[rec.id] = _Running(rec)
        if claimed:
            self._due_misses = 0
        return claimed

    def run(self, item: ExecutionRecord) -> None:
        with self._lock:
            running = self._running.get(item.id)
        if running is None or running.execution is not item:
            return  # abandoned before it started (claimed again meanwhile)
        status: ExecutionStatus | None = None
        try:
            status = self._replay(item, running)
        finally:
            with self._lock:
                if self._running.get(item.id) is running:
                    del self._running[item.id]
        if status is not None and status.is_terminal:
            self.notifier.publish("execution", item.id)
            self.service.wake_parent(item)
        else:
            # Suspended (or abandoned): the claim thread slept without this execution (a
            # leased one is not due), so it must look again: its time, or an outside event
            # during the replay, may be sooner than what it waits for.
            self.wake()

    def _replay(self, item: ExecutionRecord, running: _Running) -> ExecutionStatus | None:
        wf = self.registry.get(item.workflow)
        if wf is None:  # claims take only loaded workflows
            logger.error("execution %s: workflow %r is not loaded here", item.id, item.workflow)
            self._release(item, running)
            return None
        replay = Replay(
            cast(Store, _GuardedStore(self.store, running)),
            item,
            wf.fn,
            owner=self.owner,
            clock=self.clock,
            retention_seconds=self.retention_seconds,
            start_child=self.service.start_child,
        )
        try:
            return replay.run()
        except Exception:
            logger.exception(
                "execution %s (%s): the replay failed unexpectedly; replaying again in %.0f s",
                item.id,
                item.workflow,
                RETRY_AFTER_SECONDS,
            )
            self._release(item, running)
            return None

    def _release(self, item: ExecutionRecord, running: _Running) -> None:
        """Hand the execution back, due again in a while (its lease expires otherwise)."""
        if running.abandoned.is_set():
            return
        try:
            now = self.clock()
            self.store.suspend_execution(item.id, self.owner, now + RETRY_AFTER_SECONDS, now)
        except Exception:
            logger.exception("execution %s: releasing it failed; its lease will expire", item.id)

    def renew(self, items: list[ExecutionRecord]) -> None:
        """Renew the leases of the replays running here; abandon those no longer held."""
        with self._lock:
            running = list(self._running.values())
        if not running:
            return
        now = self.clock()
        lost = set(
            self.store.renew_execution_leases(
                self.owner, [r.execution.id for r in running], now + self.lease_seconds, now
            )
        )
        for r in running:  # the ones renewed in this call, not a newer claim of the same id
            if r.execution.id in lost and not r.abandoned.is_set():
                r.abandoned.set()
                logger.info(
                    "execution %s: no longer held here (stopped, timed out or lease lost); its "
                    "replay stops at its next checkpoint",
                    r.execution.id,
                )

    def recover(self) -> None:
        now = self.clock()
        if now >= self._next_upkeep:
            self._upkeep(now)

    def next_wait(self) -> float | None:
        with self._lock:
            if len(self._running) >= self.concurrency:
                return None  # the next replay to end wakes the claim thread
        names = self.registry.names()
        due = self.store.next_execution_due(names) if names else None
        if due is None:
            self._due_misses = 0
            return None
        now = self.clock()
        if due > now:
            self._due_misses = 0
            return due - now
        # Due now, yet the claim just now found nothing: a timeout has come (time-outs are not
        # claimed), or something became due since (claim again at once), or a row is locked by
        # another claim (back off, briefly, so as not to spin).
        if self._time_out(now):
            return 0.0
        self._due_misses += 1
        if self._due_misses == 1:
            return 0.0
        return min(self.poll_seconds, _DUE_BACKOFF_FIRST * 2 ** min(self._due_misses - 2, 20))

    def interrupt(self) -> None:
        """The stop's grace ran out: what still runs writes nothing more (its lease expires
        and another worker, or this one restarted, replays it)."""
        with self._lock:
            running = list(self._running.values())
        for r in running:
            r.abandoned.set()

    # -- upkeep --------------------------------------------------------------------------------
    def _upkeep(self, now: float) -> None:
        self._next_upkeep = now + self.upkeep_seconds
        recovered = self.store.recover_executions(now)
        if recovered:
            logger.warning(
                "%d workflow execution(s) recovered after their worker was lost", recovered
            )
            self.notifier.publish("workflows", "")
        self._time_out(now)

    def _time_out(self, now: float) -> bool:
        ended = self.store.time_out_executions(now)
        for rec in ended:
            logger.info("execution %s (%s) timed out", rec.id, rec.workflow)
            self.notifier.publish("execution", rec.id)
            self.service.wake_parent(rec)
        return bool(ended)
