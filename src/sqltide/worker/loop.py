"""The one work loop: claims leased work of every kind, runs it, renews leases, recovers.

Services plug their work in as kinds, so this module knows no service (a test reads the
imports of ``worker/`` to keep it so):

- A :class:`JobKind` is leased work claimed from the store: statements, event routing,
  deliveries (and next, workflow executions and bulk jobs). The loop gives each kind one claim
  thread, which claims up to the kind's free slots and hands each item to the kind's pool (a
  kind of concurrency 1 runs its item in the claim thread itself, one thread fewer). The claim
  thread sleeps until a wake-up on one of the kind's channels (the in-process notifier, fed by
  ``LISTEN/NOTIFY`` across processes), until a slot frees up, until the moment the kind asks
  for (:meth:`JobKind.next_wait`), or for ``poll_seconds``: the safety net for a wake-up that
  never came (work from a process whose notification was lost, a lease that expired).
- A :class:`PeriodicKind` is work the clock brings: schedule firings. It gets one thread that
  calls :meth:`PeriodicKind.tick` and sleeps for as long as the tick says, or until woken.

One heartbeat thread renews the leases of everything in flight and lets each kind settle
other owners' expired leases. A store error while claiming or ticking is logged and retried
with exponential backoff (capped by the poll interval), so a store outage neither spins nor
stalls the loop for longer than a poll. :meth:`WorkLoop.stop` stops claiming, gives work in
flight a grace period, then asks each kind to interrupt what still runs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

logger = logging.getLogger(__name__)

Item = TypeVar("Item")

#: The first wait after a failed claim or tick; it doubles on each failure in a row.
BACKOFF_FIRST_SECONDS = 0.1


class Wakeups(Protocol):
    """Where wake-ups come from (the in-process notifier)."""

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> None: ...


def new_owner() -> str:
    """The lease owner of one process: host, pid and a random tag (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _no_wake() -> None:
    """A kind's ``wake`` until a loop registers it."""


def _any_key(_key: str) -> bool:
    return True


class JobKind(ABC, Generic[Item]):
    """Leased work of one kind, claimed from the store by every process that registers it.

    A subclass says what to claim and how to run one item; the loop does the threads, the
    wake-ups, the slots and the stopping. Every hook is called from loop threads: ``claim`` from
    the kind's claim thread, ``run`` from its pool, ``renew`` and ``recover`` from the heartbeat.
    """

    #: The kind's name, used for thread names and logs.
    name: str = "work"
    #: How many items run at once in this process.
    concurrency: int = 1
    #: Notifier channels that mean "there may be work": each wakes the claim thread.
    wake_channels: tuple[str, ...] = ()
    #: The longest the claim thread sleeps without a wake-up (the safety net).
    poll_seconds: float = 1.0
    #: Whether an item that ends may have made other work due sooner than the claim thread
    #: knows (a delivery that failed and is retried in a second, an execution suspended for
    #: a short wait): then every ending item wakes the claim thread to ask :meth:`next_wait`
    #: again. A kind whose runs never do (statements) sets False and saves that wake-up and
    #: an empty claim per item; its claim thread is still woken when it was waiting for a slot.
    wake_after_run: bool = True

    #: Wakes the claim thread; set by :meth:`WorkLoop.register` (a no-op before).
    wake: Callable[[], None] = staticmethod(_no_wake)

    def wakes(self, key: str) -> bool:
        """Whether a wake-up with this key concerns this process (e.g. a hosted warehouse)."""
        return True

    def prepare(self) -> None:
        """Called once before the first claim (e.g. settle what a dead predecessor left)."""

    @abstractmethod
    def claim(self, limit: int) -> Sequence[Item]:
        """Claim up to ``limit`` items under a lease held by this process; [] when none."""

    @abstractmethod
    def run(self, item: Item) -> None:
        """Run one claimed item to its end (record its outcome, release its lease).

        An exception is logged and the slot freed; the item's lease then expires and
        :meth:`recover` (here or in another process) settles it.
        """

    def renew(self, items: list[Item]) -> None:
        """Extend the leases of the items running here (called on every heartbeat)."""

    def recover(self) -> None:
        """Settle items whose owner's lease expired, and other upkeep (every heartbeat)."""

    def next_wait(self) -> float | None:
        """Seconds until this kind wants to claim again without a wake-up (e.g. a retry it
        scheduled falls due), or None."""
        return None

    def interrupt(self) -> None:
        """The grace period of a stop ran out: interrupt what still runs."""

    def close(self) -> None:
        """Release what the kind holds (connections), once nothing of it runs."""


class PeriodicKind(ABC):
    """Work the clock brings (schedule firings): one thread ticks it."""

    name: str = "periodic"
    wake_channels: tuple[str, ...] = ()
    #: The longest wait after a failed tick.
    max_backoff_seconds: float = 30.0
    wake: Callable[[], None] = staticmethod(_no_wake)

    @abstractmethod
    def tick(self) -> float:
        """Do what is due; returns the seconds until the next tick is needed."""

    def close(self) -> None:  # noqa: B027 (an optional hook, as JobKind's)
        """Release what the kind holds, once its thread has stopped."""


class _Slots(Generic[Item]):
    """The items of one kind in flight in this process."""

    def __init__(self, kind: JobKind[Item]):
        self.kind = kind
        self.wake = threading.Event()
        self.items: dict[int, Item] = {}
        self.pool: ThreadPoolExecutor | None = None
        self.failures = 0
        #: The claim thread found no free slot and waits for one: the next item to end wakes
        #: it. Otherwise an ending item wakes nobody (an idle claim thread has nothing to do
        #: with a free slot; new work wakes it through its channels).
        self.full = False


class WorkLoop:
    """The claim threads, pools and heartbeat of one process, over the kinds registered."""

    def __init__(
        self,
        wakeups: Wakeups,
        *,
        owner: str | None = None,
        heartbeat_seconds: float = 2.0,
        shutdown_grace_seconds: float = 10.0,
    ):
        self.wakeups = wakeups
        self.owner = owner or new_owner()
        self.heartbeat_seconds = heartbeat_seconds
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self._kinds: list[_Slots[Any]] = []
        self._periodic: list[tuple[PeriodicKind, threading.Event]] = []
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False

    # -- registering ---------------------------------------------------------------------------
    def register(self, kind: JobKind[Any] | PeriodicKind) -> None:
        """Add a kind (before :meth:`start`); its wake-up channels are subscribed at once."""
        if self._started:
            raise RuntimeError("register every kind before the loop starts")
        wake = threading.Event()
        filtered: Callable[[str], bool] = _any_key
        if isinstance(kind, JobKind):
            slots: _Slots[Any] = _Slots(kind)
            wake = slots.wake
            self._kinds.append(slots)
            filtered = kind.wakes
        else:
            self._periodic.append((kind, wake))
        kind.wake = wake.set

        def on_wake(key: str) -> None:
            if filtered(key):
                wake.set()

        for channel in kind.wake_channels:
            self.wakeups.subscribe(channel, on_wake)

    @property
    def kinds(self) -> list[JobKind[Any] | PeriodicKind]:
        return [s.kind for s in self._kinds] + [k for k, _ in self._periodic]

    def busy(self, kind: JobKind[Any]) -> int:
        """How many items of ``kind`` are in flight here."""
        with self._lock:
            return sum(len(s.items) for s in self._kinds if s.kind is kind)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Prepare every kind, then start the claim, periodic and heartbeat threads."""
        if self._started:
            return
        self._started = True
        for slots in self._kinds:
            slots.kind.prepare()
        targets: list[tuple[Callable[[], None], str]] = []
        for slots in self._kinds:
            if slots.kind.concurrency > 1:
                slots.pool = ThreadPoolExecutor(
                    slots.kind.concurrency, thread_name_prefix=f"sqltide-{slots.kind.name}"
                )
            targets.append((partial(self._claim_loop, slots), f"sqltide-claim-{slots.kind.name}"))
        for kind, wake in self._periodic:
            targets.append((partial(self._tick_loop, kind, wake), f"sqltide-{kind.name}"))
        if self._kinds:
            targets.append((self._heartbeat_loop, "sqltide-heartbeat"))
        for target, name in targets:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, grace: float | None = None, timeout: float = 10.0) -> None:
        """Stop claiming, give work in flight ``grace`` seconds, interrupt the rest, close."""
        self._stop.set()
        for slots in self._kinds:
            slots.wake.set()
        for _, wake in self._periodic:
            wake.set()
        grace = self.shutdown_grace_seconds if grace is None else grace
        self._wait_drained(grace)
        for slots in self._kinds:
            try:
                slots.kind.interrupt()
            except Exception:
                logger.exception("%s: interrupting failed", slots.kind.name)
        self._wait_drained(timeout)
        for t in self._threads:
            t.join(timeout)
        for slots in self._kinds:
            if slots.pool is not None:
                slots.pool.shutdown(wait=False, cancel_futures=True)
        for kind in self.kinds:
            try:
                kind.close()
            except Exception:
                logger.exception("%s: closing failed", kind.name)

    def _wait_drained(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self._drained:
            while any(s.items for s in self._kinds):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._drained.wait(left)  # notified as each item ends

    # -- claiming ------------------------------------------------------------------------------
    def _claim_loop(self, slots: _Slots[Any]) -> None:
        kind = slots.kind
        while not self._stop.is_set():
            with self._lock:
                free = kind.concurrency - len(slots.items)
                slots.full = free <= 0
            claimed: Sequence[Any] = []
            wait: float | None = None
            if free > 0:
                try:
                    claimed = kind.claim(free)
                    slots.failures = 0
                except Exception:
                    logger.exception("%s: claiming failed; retrying", kind.name)
                    slots.failures += 1
                    wait = _backoff(slots.failures, kind.poll_seconds)
            with self._lock:  # stop() waits for the items registered before it looks
                stopping = bool(claimed) and self._stop.is_set()
                if not stopping:
                    slots.items.update((id(item), item) for item in claimed)
            if stopping:
                # The claim raced stop(), which may have interrupted and closed the kind by now:
                # run nothing new; the leases expire and recover() settles the items.
                logger.warning("%s: stopping; left %d claimed to recovery", kind.name, len(claimed))
                break
            for item in claimed:
                if slots.pool is None:
                    self._run(slots, item)
                else:
                    slots.pool.submit(self._run, slots, item)
            if claimed and len(claimed) >= free:
                continue  # every slot taken (or run inline): there may be more
            if wait is None:
                wait = kind.poll_seconds
                # Full, nothing can be claimed before a slot frees up, and the item that
                # frees it wakes this thread (``slots.full``): work already due must not make
                # the loop spin meanwhile.
                due = self._next_wait(kind) if free > 0 else None
                if due is not None:
                    wait = max(0.0, min(wait, due))
            slots.wake.wait(wait)
            slots.wake.clear()

    @staticmethod
    def _next_wait(kind: JobKind[Any]) -> float | None:
        try:
            return kind.next_wait()
        except Exception:
            logger.exception("%s: next_wait failed", kind.name)
            return None

    def _run(self, slots: _Slots[Any], item: Any) -> None:
        try:
            slots.kind.run(item)
        except Exception:
            logger.exception("%s: running an item failed", slots.kind.name)
        finally:
            with self._drained:
                slots.items.pop(id(item), None)
                self._drained.notify_all()
                full, slots.full = slots.full, False
            if full or slots.kind.wake_after_run:
                slots.wake.set()

    # -- periodic work -------------------------------------------------------------------------
    def _tick_loop(self, kind: PeriodicKind, wake: threading.Event) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                sleep = kind.tick()
                failures = 0
            except Exception:
                logger.exception("%s: tick failed; retrying", kind.name)
                failures += 1
                sleep = _backoff(failures, kind.max_backoff_seconds, first=1.0)
            wake.wait(sleep)
            wake.clear()

    # -- heartbeats ----------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            for slots in self._kinds:
                with self._lock:
                    items = list(slots.items.values())
                try:
                    slots.kind.renew(items)
                    slots.kind.recover()
                except Exception:
                    logger.exception("%s: heartbeat failed; retrying", slots.kind.name)


def _backoff(failures: int, cap: float, first: float = BACKOFF_FIRST_SECONDS) -> float:
    """Exponential backoff after ``failures`` failures in a row, at most ``cap`` seconds."""
    return min(cap, first * 2 ** min(failures - 1, 30))
