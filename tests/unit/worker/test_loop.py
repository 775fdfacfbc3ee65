"""The generic work loop (:mod:`sqltide.worker.loop`) with small in-memory kinds.

No fixed sleeps: every test waits on a condition with a deadline. The only bounded waits that
are expected to time out are the few checks that something does *not* happen (``QUIET``).
Every kind polls every ``POLL`` seconds (long), so anything sooner came from a wake-up, a slot
freeing up, ``next_wait`` or a backoff.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import pytest

from sqltide.store.wakeups import Notifier
from sqltide.worker.loop import JobKind, PeriodicKind, WorkLoop

#: The safety-net poll: long, so a test passing in time proves the loop did not rely on it.
POLL = 30.0
#: The longest any awaited thing may take.
DEADLINE = 5.0
#: How long a check that something does *not* happen watches.
QUIET = 0.25


def _unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:6]}"


class Job:
    """One in-memory work item; ``gate`` (when set) holds its run until released."""

    def __init__(self, name: str, *, gate: threading.Event | None = None, not_before: float = 0.0):
        self.name = name
        self.gate = gate
        self.not_before = not_before
        self.fail = False
        self.interrupted = False
        #: Put in the queue when this one ends, with no wake-up (work a run made due).
        self.then: Job | None = None

    def __repr__(self) -> str:
        return f"Job({self.name})"


class FakeKind(JobKind[Job]):
    """Leased work from an in-memory queue, recording every hook the loop calls."""

    def __init__(
        self,
        *,
        concurrency: int = 1,
        channels: tuple[str, ...] = (),
        use_next_wait: bool = False,
        accept: Callable[[str], bool] | None = None,
        wake_after_run: bool = True,
    ):
        self.name = _unique("fake")
        self.concurrency = concurrency
        self.wake_channels = channels
        self.poll_seconds = POLL
        self.use_next_wait = use_next_wait
        self.wake_after_run = wake_after_run
        self.accept = accept
        self.cond = threading.Condition()
        self.queue: list[Job] = []
        #: (monotonic time, limit) of every claim call.
        self.claims: list[tuple[float, int]] = []
        #: What the next claims do: "fail" raises, "ok" claims; then always "ok".
        self.claim_script: list[str] = []
        self.claims_at_prepare: int | None = None
        self.started: list[Job] = []
        self.done: list[Job] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.run_threads: set[str] = set()
        #: (thread name, items) of every renew call.
        self.renewals: list[tuple[str, list[Job]]] = []
        self.fail_renewals = 0
        self.recoveries = 0
        self.next_waits = 0
        self.wake_keys: list[str] = []
        #: "interrupt", "close" and "end:<job>", in the order they happened.
        self.events: list[str] = []

    # -- the test's side ----------------------------------------------------------------------
    def add(self, *jobs: Job) -> None:
        with self.cond:
            self.queue.extend(jobs)
            self.cond.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    # -- the loop's side ----------------------------------------------------------------------
    def wakes(self, key: str) -> bool:
        with self.cond:
            self.wake_keys.append(key)
        return True if self.accept is None else self.accept(key)

    def prepare(self) -> None:
        with self.cond:
            self.claims_at_prepare = len(self.claims)

    def claim(self, limit: int) -> Sequence[Job]:
        with self.cond:
            now = time.monotonic()
            self.claims.append((now, limit))
            self.cond.notify_all()
            if self.claim_script and self.claim_script.pop(0) == "fail":
                raise RuntimeError("the store is down")
            ready = [j for j in self.queue if j.not_before <= now][:limit]
            for job in ready:
                self.queue.remove(job)
            return ready

    def run(self, item: Job) -> None:
        with self.cond:
            self.started.append(item)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.run_threads.add(threading.current_thread().name)
            self.cond.notify_all()
        try:
            if item.gate is not None:
                assert item.gate.wait(DEADLINE), f"{item} was never released"
            if item.fail:
                raise RuntimeError(f"{item} failed")
        finally:
            with self.cond:
                self.in_flight -= 1
                self.done.append(item)
                self.events.append(f"end:{item.name}")
                if item.then is not None:
                    self.queue.append(item.then)
                self.cond.notify_all()

    def renew(self, items: list[Job]) -> None:
        with self.cond:
            self.renewals.append((threading.current_thread().name, list(items)))
            self.cond.notify_all()
            if self.fail_renewals:
                self.fail_renewals -= 1
                raise RuntimeError("renewing failed")

    def recover(self) -> None:
        with self.cond:
            self.recoveries += 1
            self.cond.notify_all()

    def next_wait(self) -> float | None:
        if not self.use_next_wait:
            return None
        with self.cond:
            self.next_waits += 1
            self.cond.notify_all()
            if not self.queue:
                return None
            return max(0.0, min(j.not_before for j in self.queue) - time.monotonic())

    def interrupt(self) -> None:
        with self.cond:
            self.events.append("interrupt")
            running = [j for j in self.started if j not in self.done]
            for job in running:
                job.interrupted = True
                if job.gate is not None:
                    job.gate.set()
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.events.append("close")
            self.cond.notify_all()


class FakePeriodic(PeriodicKind):
    """A clock-driven kind: each tick returns (or raises) the next entry of its script."""

    def __init__(self, script: list[float | Exception], channels: tuple[str, ...] = ()):
        self.name = _unique("periodic")
        self.wake_channels = channels
        self.max_backoff_seconds = 0.05
        self.script = script
        self.cond = threading.Condition()
        self.ticks: list[float] = []
        self.closed = 0

    def tick(self) -> float:
        with self.cond:
            self.ticks.append(time.monotonic())
            self.cond.notify_all()
            step = self.script.pop(0) if self.script else POLL
        if isinstance(step, Exception):
            raise step
        return step

    def close(self) -> None:
        with self.cond:
            self.closed += 1

    def wait_until(self, predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


@pytest.fixture
def notifier() -> Notifier:
    return Notifier()


@pytest.fixture
def make_loop(notifier: Notifier) -> Iterator[Callable[..., WorkLoop]]:
    """Started loops over the given kinds, stopped at the end of the test whatever happened."""
    loops: list[WorkLoop] = []

    def make(
        *kinds: JobKind[Job] | PeriodicKind, heartbeat: float = POLL, start: bool = True
    ) -> WorkLoop:
        loop = WorkLoop(notifier, owner="test", heartbeat_seconds=heartbeat)
        for kind in kinds:
            loop.register(kind)
        loops.append(loop)
        if start:
            loop.start()
        return loop

    yield make
    for loop in loops:
        loop.stop(grace=0, timeout=DEADLINE)


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# -- claiming and running ---------------------------------------------------------------------
@pytest.mark.parametrize("concurrency", [1, 3])
def test_claimed_items_are_run(make_loop: Callable[..., WorkLoop], concurrency: int) -> None:
    kind = FakeKind(concurrency=concurrency)
    jobs = [Job(f"j{i}") for i in range(5)]
    kind.add(*jobs)
    loop = make_loop(kind)
    assert kind.wait_until(lambda: len(kind.done) == 5)
    assert sorted(j.name for j in kind.done) == sorted(j.name for j in jobs)
    assert kind.claims_at_prepare == 0  # prepared before the first claim
    assert all(0 < limit <= concurrency for _, limit in kind.claims)
    assert loop.busy(kind) == 0
    if concurrency == 1:  # run in the claim thread itself, no pool
        assert kind.run_threads == {f"sqltide-claim-{kind.name}"}
    else:
        assert all(t.startswith(f"sqltide-{kind.name}_") for t in kind.run_threads)


def test_at_most_concurrency_items_run_at_once(make_loop: Callable[..., WorkLoop]) -> None:
    kind = FakeKind(concurrency=3)
    gate = threading.Event()
    kind.add(*[Job(f"j{i}", gate=gate) for i in range(10)])
    loop = make_loop(kind)
    assert kind.wait_until(lambda: len(kind.started) == 3)
    # Every slot is taken: the claim thread claims nothing more until one frees up.
    with kind.cond:
        assert len(kind.queue) == 7
        assert kind.claims[0][1] == 3
    assert loop.busy(kind) == 3
    gate.set()
    assert kind.wait_until(lambda: len(kind.done) == 10)
    assert kind.max_in_flight == 3
    assert all(0 < limit <= 3 for _, limit in kind.claims)
    assert loop.busy(kind) == 0


def test_without_wake_after_run_an_ending_item_wakes_only_a_claim_thread_that_was_full(
    make_loop: Callable[..., WorkLoop], notifier: Notifier
) -> None:
    # Full: two gated items on two slots, a third waiting. Releasing them must claim the
    # third at once (the poll is 30 s): woken by a slot that freed up.
    full = FakeKind(concurrency=2, wake_after_run=False)
    gate = threading.Event()
    full.add(Job("a", gate=gate), Job("b", gate=gate), Job("c"))
    make_loop(full)
    assert full.wait_until(lambda: len(full.started) == 2)
    gate.set()
    assert full.wait_until(lambda: len(full.done) == 3)

    # Not full: one item on two slots, claimed after a wake-up. Its end wakes nobody, so no
    # empty claim follows it (that claim cost a store transaction and a thread switch per
    # statement).
    idle = FakeKind(concurrency=2, channels=("work",), wake_after_run=False)
    make_loop(idle)
    assert idle.wait_until(lambda: len(idle.claims) == 1)
    idle.add(Job("d"))
    notifier.publish("work", "any")
    assert idle.wait_until(lambda: len(idle.done) == 1)
    assert not idle.wait_until(lambda: len(idle.claims) > 2, timeout=QUIET)
    assert len(idle.claims) == 2


@pytest.mark.parametrize("wake_after_run", [True, False])
def test_an_ending_item_wakes_the_claim_thread_to_see_work_it_made_due(
    make_loop: Callable[..., WorkLoop], notifier: Notifier, wake_after_run: bool
) -> None:
    # The run makes a retry due in 0.3 s and tells nobody (a failed delivery, an execution
    # suspended for a short wait). With wake_after_run the claim thread asks next_wait again
    # when the item ends; without it, it sleeps out its 30 s poll.
    kind = FakeKind(
        concurrency=2, channels=("work",), use_next_wait=True, wake_after_run=wake_after_run
    )
    gate = threading.Event()
    first = Job("first", gate=gate)
    first.then = Job("retry", not_before=time.monotonic() + 0.3)
    make_loop(kind)
    assert kind.wait_until(lambda: len(kind.claims) == 1)
    looked = kind.next_waits
    kind.add(first)
    notifier.publish("work", "any")
    # Claimed, and the claim thread has planned its sleep (nothing else was due then) ...
    assert kind.wait_until(lambda: bool(kind.started) and kind.next_waits > looked)
    gate.set()  # ... before the run ends and makes the retry due
    assert kind.wait_until(lambda: len(kind.done) == 2, timeout=1.0) is wake_after_run


def test_a_full_kind_with_work_due_waits_for_a_slot_instead_of_spinning(
    make_loop: Callable[..., WorkLoop],
) -> None:
    kind = FakeKind(concurrency=2, use_next_wait=True)
    gate = threading.Event()
    # "due" is due now, but both slots are taken.
    kind.add(Job("a", gate=gate), Job("b", gate=gate), Job("due"))
    make_loop(kind)
    assert kind.wait_until(lambda: len(kind.started) == 2)
    with kind.cond:
        looks = len(kind.claims) + kind.next_waits
    # A spinning claim thread would look hundreds of times in QUIET seconds.
    assert not kind.wait_until(lambda: len(kind.claims) + kind.next_waits > looks + 2, QUIET)
    gate.set()  # the slots free up: the due job is claimed at once
    assert kind.wait_until(lambda: len(kind.done) == 3)


def test_a_failing_item_is_logged_and_frees_its_slot(
    make_loop: Callable[..., WorkLoop], caplog: pytest.LogCaptureFixture
) -> None:
    kind = FakeKind()
    bad, good = Job("bad"), Job("good")
    bad.fail = True
    kind.add(bad, good)
    loop = make_loop(kind)
    assert kind.wait_until(lambda: len(kind.done) == 2)
    assert loop.busy(kind) == 0
    assert any("running an item failed" in r.getMessage() for r in caplog.records)


def test_register_after_start_is_refused(make_loop: Callable[..., WorkLoop]) -> None:
    loop = make_loop(FakeKind())
    threads = list(loop._threads)
    with pytest.raises(RuntimeError, match="before the loop starts"):
        loop.register(FakeKind())
    loop.start()  # a second start does nothing
    assert loop._threads == threads


# -- waking up --------------------------------------------------------------------------------
def test_a_wakeup_on_the_kinds_channel_claims_at_once(
    make_loop: Callable[..., WorkLoop], notifier: Notifier
) -> None:
    kind = FakeKind(channels=("work",))
    make_loop(kind)
    assert kind.wait_until(lambda: len(kind.claims) == 1)  # found nothing; sleeps for POLL
    kind.add(Job("new"))
    notifier.publish("work", "any")
    assert kind.wait_until(lambda: len(kind.done) == 1)
    assert len(kind.claims) >= 2


def test_wakes_filters_the_wakeup_keys(
    make_loop: Callable[..., WorkLoop], notifier: Notifier
) -> None:
    kind = FakeKind(channels=("work",), accept=lambda key: key == "mine")
    make_loop(kind)
    assert kind.wait_until(lambda: len(kind.claims) == 1)
    kind.add(Job("new"))
    notifier.publish("work", "theirs")  # filtered out by wakes()
    notifier.publish("other", "mine")  # not a channel of the kind
    assert not kind.wait_until(lambda: len(kind.claims) > 1, timeout=QUIET)
    assert kind.wake_keys == ["theirs"]
    notifier.publish("work", "mine")
    assert kind.wait_until(lambda: len(kind.done) == 1)
    assert kind.wake_keys == ["theirs", "mine"]


def test_the_kinds_wake_hook_wakes_the_claim_thread(make_loop: Callable[..., WorkLoop]) -> None:
    kind = FakeKind()
    make_loop(kind)
    assert kind.wait_until(lambda: len(kind.claims) == 1)
    kind.add(Job("new"))
    kind.wake()  # set by register: a kind can wake its own claim thread
    assert kind.wait_until(lambda: len(kind.done) == 1)


def test_next_wait_brings_the_loop_back_when_due(make_loop: Callable[..., WorkLoop]) -> None:
    kind = FakeKind(use_next_wait=True)
    due = time.monotonic() + 0.3
    kind.add(Job("later", not_before=due))
    make_loop(kind)
    assert kind.wait_until(lambda: len(kind.done) == 1)
    first_claim = kind.claims[0][0]
    assert first_claim < due  # claimed too early at first: nothing was due yet
    assert kind.claims[-1][0] >= due - 0.01


# -- failures ---------------------------------------------------------------------------------
def test_a_failing_claim_is_logged_backed_off_and_recovered(
    make_loop: Callable[..., WorkLoop], caplog: pytest.LogCaptureFixture
) -> None:
    kind = FakeKind()
    kind.claim_script = ["fail", "fail", "fail", "ok", "fail"]
    make_loop(kind)
    # 3 failures (waits 0.1, 0.2, 0.4), then a claim that works (finding nothing)
    assert kind.wait_until(lambda: len(kind.claims) == 4)
    gaps = _gaps([t for t, _ in kind.claims])
    assert gaps[0] >= 0.09
    assert gaps[1] >= 0.19
    assert gaps[2] >= 0.39
    # Woken for new work: 1 failure, whose backoff restarted from 0.1 (0.8 without the reset
    # after the claim that worked), then the job is claimed.
    kind.add(Job("j"))
    kind.wake()
    assert kind.wait_until(lambda: len(kind.done) == 1)
    gaps = _gaps([t for t, _ in kind.claims])
    assert 0.09 <= gaps[4] < 0.5
    failures = [r for r in caplog.records if "claiming failed" in r.getMessage()]
    assert len(failures) == 4
    assert all(r.exc_info is not None for r in failures)


def test_a_failing_heartbeat_is_logged_and_retried(
    make_loop: Callable[..., WorkLoop], caplog: pytest.LogCaptureFixture
) -> None:
    kind = FakeKind()
    kind.fail_renewals = 1
    make_loop(kind, heartbeat=0.02)
    assert kind.wait_until(lambda: len(kind.renewals) >= 2 and kind.recoveries >= 1)
    assert any("heartbeat failed" in r.getMessage() for r in caplog.records)


# -- heartbeats -------------------------------------------------------------------------------
def test_the_heartbeat_renews_the_items_in_flight_and_recovers(
    make_loop: Callable[..., WorkLoop],
) -> None:
    kind = FakeKind(concurrency=2)
    gate = threading.Event()
    a, b = Job("a", gate=gate), Job("b", gate=gate)
    kind.add(a, b)
    make_loop(kind, heartbeat=0.02)
    assert kind.wait_until(lambda: len(kind.started) == 2)
    n = len(kind.renewals)
    assert kind.wait_until(
        lambda: any({id(i) for i in items} == {id(a), id(b)} for _, items in kind.renewals[n:])
    )
    assert kind.wait_until(lambda: kind.recoveries >= 1)
    assert {thread for thread, _ in kind.renewals} == {"sqltide-heartbeat"}
    gate.set()
    assert kind.wait_until(lambda: len(kind.done) == 2)
    n = len(kind.renewals)
    assert kind.wait_until(lambda: len(kind.renewals) > n)
    assert kind.renewals[-1][1] == []  # nothing in flight any more


# -- periodic kinds ---------------------------------------------------------------------------
def test_a_periodic_kind_is_ticked_and_its_sleep_honoured(
    make_loop: Callable[..., WorkLoop], notifier: Notifier, caplog: pytest.LogCaptureFixture
) -> None:
    periodic = FakePeriodic([0.15, 0.15, RuntimeError("tick failed"), POLL], channels=("sched",))
    loop = make_loop(periodic)
    assert periodic.wait_until(lambda: len(periodic.ticks) == 4)
    gaps = _gaps(periodic.ticks)
    assert gaps[0] >= 0.14 and gaps[1] >= 0.14  # the sleeps the ticks returned
    assert gaps[2] >= 0.04  # after a failure: backoff, capped by max_backoff_seconds
    assert any("tick failed; retrying" in r.getMessage() for r in caplog.records)
    # The last tick asked for POLL seconds: no tick until then, or until woken.
    assert not periodic.wait_until(lambda: len(periodic.ticks) > 4, timeout=QUIET)
    notifier.publish("sched", "any")
    assert periodic.wait_until(lambda: len(periodic.ticks) == 5)
    loop.stop(grace=0)
    assert periodic.closed == 1
    assert not any(t.is_alive() for t in loop._threads)


# -- stopping ---------------------------------------------------------------------------------
def test_stop_waits_for_items_in_flight_within_the_grace(
    make_loop: Callable[..., WorkLoop],
) -> None:
    kind = FakeKind(concurrency=2)
    gate = threading.Event()
    kind.add(Job("a", gate=gate), Job("b", gate=gate))
    loop = make_loop(kind)
    assert kind.wait_until(lambda: len(kind.started) == 2)
    stopper = threading.Thread(target=loop.stop, kwargs={"grace": DEADLINE})
    stopper.start()
    stopper.join(QUIET)
    assert stopper.is_alive()  # waiting for the two items
    assert kind.events == []
    gate.set()
    stopper.join(DEADLINE)
    assert not stopper.is_alive()
    assert sorted(kind.events[:2]) == ["end:a", "end:b"]
    assert kind.events[2:] == ["interrupt", "close"]
    assert not any(j.interrupted for j in kind.started)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_stop_interrupts_what_outlasts_the_grace_then_closes(
    make_loop: Callable[..., WorkLoop], concurrency: int
) -> None:
    kind = FakeKind(concurrency=concurrency)
    stuck = Job("stuck", gate=threading.Event())  # released only by interrupt()
    kind.add(stuck)
    loop = make_loop(kind)
    assert kind.wait_until(lambda: len(kind.started) == 1)
    began = time.monotonic()
    loop.stop(grace=0.2)
    took = time.monotonic() - began
    assert 0.19 <= took < DEADLINE
    assert stuck.interrupted
    assert kind.events == ["interrupt", "end:stuck", "close"]  # closed once nothing runs
    assert loop.busy(kind) == 0


class ClaimRacingStop(FakeKind):
    """A kind whose first claim is still running when stop() begins, and returns an item
    only once stop has interrupted the kind."""

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.in_claim = threading.Event()
        self.interrupted = threading.Event()

    def claim(self, limit: int) -> Sequence[Job]:
        if not self.in_claim.is_set():
            self.in_claim.set()
            assert self.interrupted.wait(DEADLINE)
        return super().claim(limit)

    def interrupt(self) -> None:
        super().interrupt()
        self.interrupted.set()


@pytest.mark.parametrize("concurrency", [1, 2])
def test_an_item_claimed_while_stopping_is_not_run_after_interrupt(
    make_loop: Callable[..., WorkLoop], concurrency: int
) -> None:
    kind = ClaimRacingStop(concurrency=concurrency)
    late = Job("late", gate=threading.Event())  # would run until interrupted, i.e. forever
    kind.add(late)
    loop = make_loop(kind)
    assert kind.in_claim.wait(DEADLINE)
    loop.stop(grace=0, timeout=DEADLINE)
    # Nothing runs past interrupt() and close(): the claimed item is left to lease recovery.
    assert kind.started == []
    assert kind.events == ["interrupt", "close"]
    assert loop.busy(kind) == 0
    assert not any(t.is_alive() for t in loop._threads)


def test_no_thread_of_the_loop_outlives_stop(make_loop: Callable[..., WorkLoop]) -> None:
    pooled, inline = FakeKind(concurrency=3), FakeKind()
    periodic = FakePeriodic([])
    pooled.add(*[Job(f"p{i}") for i in range(6)])
    inline.add(Job("i"))
    loop = make_loop(pooled, inline, periodic, heartbeat=0.02)
    assert pooled.wait_until(lambda: len(pooled.done) == 6)
    assert inline.wait_until(lambda: len(inline.done) == 1)
    assert periodic.wait_until(lambda: len(periodic.ticks) == 1)
    names = {pooled.name, inline.name, periodic.name}

    def ours() -> list[threading.Thread]:
        return [
            t
            for t in threading.enumerate()
            if t in loop._threads or any(name in t.name for name in names)
        ]

    assert {t.name for t in loop._threads} == {
        f"sqltide-claim-{pooled.name}",
        f"sqltide-claim-{inline.name}",
        f"sqltide-{periodic.name}",
        "sqltide-heartbeat",
    }
    assert any(t.name.startswith(f"sqltide-{pooled.name}_") for t in ours())  # the pool
    loop.stop(grace=1.0)
    assert not any(t.is_alive() for t in loop._threads)
    # The pool is shut down without waiting: its idle workers end right after.
    for t in ours():
        t.join(DEADLINE)
    assert ours() == []
    assert pooled.events[-1] == inline.events[-1] == "close"
    assert periodic.closed == 1
