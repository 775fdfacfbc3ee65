"""Workflow executions as a job kind of the work loop: claimed under leases, replayed,
heartbeated, recovered, timed out.

The loop (:mod:`sqltide.worker.loop`) gives this kind a claim thread and a pool of
``SQLTIDE_WORKFLOW_CONCURRENCY`` threads; this kind says how:

- **claim** due executions of the workflows this process loaded (a start, a timer, a retry, a
  callback's completion, a child's end made them due), each under a lease held by this
  process, and run one :class:`~sqltide.workflows.replay.Replay` of each on a pool thread;
- **claim in batches**: a store claim takes up to ``SQLTIDE_WORKFLOW_CONCURRENCY`` due
  executions at once, even when fewer slots are free, with their checkpoints (one read for
  the batch); the ones no slot takes yet wait here, leased (the heartbeat renews their
  leases), and go to the next free slots without a store call. So 10,000 executions due at
  one moment cost a claim and a read per batch, not per execution;
- **wait** without polling: between claims the claim thread sleeps until the earliest
  ``next_run_at`` or ``timeout_at`` the store knows (:meth:`ExecutionJobs.next_wait`), until a
  ``workflows`` wake-up names a workflow loaded here, or for ``SQLTIDE_WORKFLOW_POLL_SECONDS``
  (the safety net for a wake-up lost between processes). When it wakes with no wake-up
  since that read and nothing due by it, it reads the earliest due time again instead of
  claiming: so any number of suspended executions cost one read per poll interval, and
  nothing per execution;
- **renew** the leases of the replays running here on every heartbeat; an id the store says
  this process no longer holds (stopped, timed out, its lease lost) is *abandoned*: its replay
  writes nothing more (its next checkpoint, suspension or end is refused here, before the store
  is asked) and ends at that point;
- **recover** executions whose worker died (their lease expired: due again at once) and **time
  out** those past their ``timeout_at``, at most every half lease (the time-outs only when
  the last read of the earliest due time does not say none is due yet; and as soon as a
  timeout falls due, through :meth:`ExecutionJobs.next_wait`).

A process owns its leases under one owner name (the loop's), so a replay whose lease was lost
and then claimed again *by this same process* would pass the store's guard: a claim therefore
abandons any replay of the same execution still running here, and only the new one writes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ..settings import Settings
from ..store import ExecutionRecord, ExecutionStatus, OperationRecord, Store
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
    """One execution leased here (its replay running, or waiting for a slot): its execution
    as claimed, its checkpoints read with the claim, and whether it must stop."""

    execution: ExecutionRecord
    operations: list[OperationRecord] | None = None
    abandoned: threading.Event = field(default_factory=threading.Event)
    started: bool = False


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
    #: How to run a workflow of another kind than sqltide's (``Workflow.kind``), called as
    #: ``Replay`` is; the runtime sets ``{"aws": ...}`` (unchanged AWS SDK handlers,
    #: ``sqltide.lambda_durable``).
    runners: dict[str, Callable[..., Any]] = {}

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
        #: How many executions one store claim takes at most (the batch).
        self.claim_batch = self.concurrency
        self._lock = threading.Lock()
        #: Leased here: replays running, and claimed executions waiting for a slot.
        self._running: dict[str, _Running] = {}
        #: The claimed executions no slot has taken yet, oldest due first.
        self._ready: deque[_Running] = deque()
        self._next_upkeep = 0.0
        self._due_misses = 0
        #: Wake-ups seen (anything that may have made an execution due here).
        self._wakeups = 0
        #: Nothing is due before this, as of the read of the earliest due time made when
        #: ``_wakeups`` was ``_quiet_as_of``; a wake-up since voids it.
        self._quiet_until = 0.0
        self._quiet_as_of = -1

    @property
    def busy(self) -> int:
        """How many executions are leased here now (replays running or waiting for a slot)."""
        with self._lock:
            return len(self._running)

    def wakes(self, key: str) -> bool:
        if not key or key in self.registry:  # the key is the workflow made runnable
            self._woken()
            return True
        return False

    def _woken(self) -> None:
        with self._lock:
            self._wakeups += 1

    def _quiet(self, now: float) -> bool:
        """Whether the last read of the earliest due time, with no wake-up since, says that
        nothing is due now (so a claim would find nothing)."""
        with self._lock:
            return self._quiet_as_of == self._wakeups and now < self._quiet_until

    # -- the job kind --------------------------------------------------------------------------
    def prepare(self) -> None:
        self._upkeep(self.clock())

    def claim(self, limit: int) -> Sequence[ExecutionRecord]:
        handed = self._take_ready(limit)
        names = self.registry.names()
        if len(handed) >= limit or not names:
            return handed
        now = self.clock()
        if not handed and self._quiet(now):
            return []  # a safety-net wake-up with nothing due: next_wait reads again
        claimed = self.store.claim_executions(
            names, self.owner, max(limit - len(handed), self.claim_batch), self.lease_seconds, now
        )
        if not claimed:
            return handed
        self._due_misses = 0
        # An execution claimed for the first time has no checkpoint yet (only a lease holder
        # writes one, and this is its first lease): nothing to read for it.
        operations: dict[str, list[OperationRecord]] = {r.id: [] for r in claimed if r.replays <= 1}
        again = [r.id for r in claimed if r.replays > 1]
        if again:
            try:
                operations.update(self.store.get_operations_of(again))
            except Exception:
                logger.exception("reading the checkpoints of claimed executions failed")
                # each of those replays reads its own
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
                running = _Running(rec, operations.get(rec.id))
                self._running[rec.id] = running
                self._ready.append(running)
        return handed + self._take_ready(limit - len(handed))

    def _take_ready(self, limit: int) -> list[ExecutionRecord]:
        """Up to ``limit`` claimed executions for free slots (an abandoned one is dropped: a
        newer claim of it is queued, or its lease was lost)."""
        taken: list[ExecutionRecord] = []
        with self._lock:
            while self._ready and len(taken) < limit:
                r = self._ready.popleft()
                if not r.abandoned.is_set():
                    taken.append(r.execution)
                elif self._running.get(r.execution.id) is r:
                    del self._running[r.execution.id]
        return taken

    def run(self, item: ExecutionRecord) -> None:
        with self._lock:
            running = self._running.get(item.id)
        if running is None or running.execution is not item:
            return  # abandoned before it started (claimed again meanwhile)
        running.started = True
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
            self._woken()
            self.wake()

    def _replay(self, item: ExecutionRecord, running: _Running) -> ExecutionStatus | None:
        wf = self.registry.get(item.workflow)
        if wf is None:  # claims take only loaded workflows
            logger.error("execution %s: workflow %r is not loaded here", item.id, item.workflow)
            self._release(item, running)
            return None
        replay = self.runners.get(wf.kind, Replay)(
            cast(Store, _GuardedStore(self.store, running)),
            item,
            wf.fn,
            owner=self.owner,
            clock=self.clock,
            retention_seconds=self.retention_seconds,
            start_child=self.service.start_child,
            operations=running.operations,
        )
        running.operations = None
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
            if len(self._running) - len(self._ready) >= self.concurrency:
                return None  # the next replay to end wakes the claim thread
            if self._ready:
                return 0.0  # claimed, waiting for a slot
            seen = self._wakeups
        names = self.registry.names()
        due = self.store.next_execution_due(names) if names else None
        now = self.clock()
        with self._lock:  # nothing due before then, unless a wake-up came meanwhile
            self._quiet_until = math.inf if due is None else due
            self._quiet_as_of = seen
        if due is None or due > now:
            self._due_misses = 0
            return None if due is None else due - now
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

    def close(self) -> None:
        """Hand back what was claimed and never started (due at once, for any worker)."""
        with self._lock:
            unstarted = [r for r in self._running.values() if not r.started]
            self._ready.clear()
        now = self.clock()
        for r in unstarted:
            try:
                self.store.suspend_execution(r.execution.id, self.owner, now, now)
            except Exception:
                logger.exception(
                    "execution %s: handing it back failed; its lease will expire",
                    r.execution.id,
                )

    # -- upkeep --------------------------------------------------------------------------------
    def _upkeep(self, now: float) -> None:
        self._next_upkeep = now + self.upkeep_seconds
        recovered = self.store.recover_executions(now)
        if recovered:
            logger.warning(
                "%d workflow execution(s) recovered after their worker was lost", recovered
            )
            self.notifier.publish("workflows", "")
        if not self._quiet(now):  # else no timeout_at has come either
            self._time_out(now)

    def _time_out(self, now: float) -> bool:
        ended = self.store.time_out_executions(now)
        for rec in ended:
            logger.info("execution %s (%s) timed out", rec.id, rec.workflow)
            self.notifier.publish("execution", rec.id)
            self.service.wake_parent(rec)
        return bool(ended)
