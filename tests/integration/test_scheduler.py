"""Schedule rules fire once per firing, on time, by an injected clock; missed-firing policies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import pgtools
from sqltide.events.bus import Bus
from sqltide.events.scheduler import SCHEDULE_DETAIL_TYPE, Scheduler
from sqltide.events.service import EventService
from sqltide.store import Store, store_from_url
from sqltide.store.postgres import PostgresStore
from sqltide.store.wakeups import Notifier

P = "etl"


class Clock:
    def __init__(self, t: datetime):
        self.now = t.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, t: datetime) -> None:
        self.now = t.timestamp()


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = store_from_url(store_url)
    st.migrate()
    yield st
    st.close()


def make_rule(store: Store, clock: Clock, name: str, schedule: str, **kw: object) -> None:
    """Create or replace a rule, as an API call of another process would (no wake-up)."""
    service = EventService(store, Notifier(), ["default"], clock=clock)
    service.put_rule(P, {"name": name, "schedule": schedule, "targets": [{"kind": "event"}], **kw})


def fired(store: Store, name: str) -> list[str]:
    return [
        e.body["time"]
        for e in store.list_events(P, limit=1000)
        if e.detail_type == SCHEDULE_DETAIL_TYPE and e.body["resources"][0].endswith("/" + name)
    ]


def test_the_seed_cron_fires_on_weekdays_only(store: Store) -> None:
    clock = Clock(at(2026, 11, 27, 10, 0))  # a Friday
    make_rule(store, clock, "nightly", "cron(0 11 ? * MON-FRI *)")
    sched = Scheduler(store, Notifier(), clock=clock)
    assert sched.tick() == 30.0  # the next firing is an hour away: sleeps the cap, 30 s
    for moment in (
        at(2026, 11, 27, 11, 0, 5),
        at(2026, 11, 28, 11, 0, 5),
        at(2026, 11, 29, 11, 0, 5),
        at(2026, 11, 30, 11, 0, 5),
    ):
        clock.set(moment)
        sched.tick()
    assert fired(store, "nightly") == ["2026-11-27T11:00:00Z", "2026-11-30T11:00:00Z"]


def test_two_schedulers_fire_each_moment_once(store_url: str, store: Store) -> None:
    clock = Clock(at(2026, 1, 1, 0, 0))
    make_rule(store, clock, "every-minute", "rate(1 minute)")
    other = store_from_url(store_url)
    try:
        a, b = Scheduler(store, Notifier(), clock=clock), Scheduler(other, Notifier(), clock=clock)
        for minute in range(4):
            clock.set(at(2026, 1, 1, 0, minute, 1))
            a.tick()
            b.tick()
    finally:
        other.close()
    assert fired(store, "every-minute") == [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:01:00Z",
        "2026-01-01T00:02:00Z",
        "2026-01-01T00:03:00Z",
    ]


@pytest.mark.parametrize(
    ("policy", "window", "expected"),
    [
        # down from 01:00 to 05:30: firings at 02:00 .. 05:00 were missed
        ("skip", None, ["00:00", "01:00", "06:00"]),
        ("latest", None, ["00:00", "01:00", "05:00", "06:00"]),
        ("all", 3 * 3600, ["00:00", "01:00", "03:00", "04:00", "05:00", "06:00"]),
    ],
)
def test_missed_firings_follow_the_rule_policy(
    store: Store, policy: str, window: float | None, expected: list[str]
) -> None:
    clock = Clock(at(2026, 1, 1, 0, 0))
    kw: dict[str, object] = {"missed_policy": policy}
    if window is not None:
        kw["missed_window_seconds"] = window
    make_rule(store, clock, "hourly", "rate(1 hour)", **kw)
    sched = Scheduler(store, Notifier(), clock=clock)
    for moment in (
        at(2026, 1, 1, 0, 0, 10),
        at(2026, 1, 1, 1, 0, 10),
        at(2026, 1, 1, 5, 30),
        at(2026, 1, 1, 6, 0, 10),
    ):
        clock.set(moment)
        sched.tick()
    assert [t[11:16] for t in fired(store, "hourly")] == expected


def test_disabled_schedules_do_not_fire(store: Store) -> None:
    clock = Clock(at(2026, 1, 1, 0, 0))
    make_rule(store, clock, "off", "rate(1 minute)", state="DISABLED")
    sched = Scheduler(store, Notifier(), clock=clock)
    clock.set(at(2026, 1, 1, 0, 5))
    sched.tick()
    assert fired(store, "off") == []


def test_a_firing_is_delivered_to_the_rule_own_targets(store: Store) -> None:
    clock = Clock(at(2026, 1, 1, 0, 0))
    notifier = Notifier()
    service = EventService(store, notifier, ["default"], clock=clock)
    # a pattern rule that would match everything must NOT receive the schedule's firing
    service.put_rule(
        P,
        {
            "name": "catch-all",
            "event_pattern": {"source": [{"prefix": "x"}]},
            "targets": [{"kind": "event"}],
        },
    )
    service.put_rule(
        P,
        {
            "name": "tick",
            "schedule": "rate(1 minute)",
            "targets": [{"id": "t", "kind": "event", "input": {"hello": 1}}],
        },
    )
    Scheduler(store, notifier, clock=clock).tick()

    class NoTargets:
        def run(self, d: object) -> None:
            pass

        def announce_failure(self, *a: object) -> None:
            pass

    bus = Bus(store, notifier, NoTargets(), owner="bus-1", clock=clock)  # type: ignore[arg-type]
    assert bus.route_once() == 1
    (d,) = store.list_deliveries(P)
    assert (d.rule_name, d.target_id, d.payload) == ("tick", "t", {"hello": 1})


def test_schedule_rule_fires_in_a_running_server(runtime, client) -> None:  # type: ignore[no-untyped-def]
    """End to end, real clock: an at() schedule a moment ago fires at the first tick."""
    when = datetime.fromtimestamp(time.time() - 1, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    runtime.events.put_rule(
        "alice",
        {
            "name": "once",
            "schedule": f"at({when})",
            "targets": [{"kind": "event", "input": {"ran": True}}],
        },
    )
    runtime.notifier.publish("rules", "alice")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        events = runtime.store.list_events("alice", limit=100)
        if any(e.body.get("detail") == {"ran": True} for e in events):
            break
        time.sleep(0.02)  # polling a condition, with a deadline
    else:
        raise AssertionError("the at() schedule did not fire")


# -- firings prepared ahead of their moment -------------------------------------------------------


class CallLog:
    """A store that logs the name of every method called on it, then passes the call on."""

    def __init__(self, store: Store):
        self._store = store
        self.calls: list[str] = []
        self.args: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: set[str] = set()  # methods to fail once

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kw: Any) -> Any:
            self.calls.append(name)
            self.args.append((name, args))
            if name in self.fail:
                self.fail.discard(name)
                raise ConnectionError("store unreachable")
            return attr(*args, **kw)

        return call


def test_at_the_moment_only_the_prepared_write_is_left(store: Store) -> None:
    clock = Clock(at(2026, 1, 1, 0, 0))
    for n in range(3):
        make_rule(store, clock, f"r{n}", "rate(1 minute)")
    log = CallLog(store)
    sched = Scheduler(log, Notifier(), clock=clock)  # type: ignore[arg-type]
    sched.tick()
    assert sched.prepared_at == at(2026, 1, 1, 0, 1).timestamp()
    log.calls.clear()
    clock.set(at(2026, 1, 1, 0, 0, 58))  # woken early: the due re-read waits for the write
    assert sched.tick() == 2.0
    assert log.calls == []
    clock.set(at(2026, 1, 1, 0, 1))
    sched.tick()
    # the rules are not read again, nor anything worked out: the first call is the write
    assert log.calls[0] == "record_firings"
    assert "list_rules" in log.calls  # then they are, after it
    assert log.calls.count("record_firings") == 1
    for n in range(3):
        assert fired(store, f"r{n}") == ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"]
    assert sched.prepared_at == at(2026, 1, 1, 0, 2).timestamp()


def test_a_rule_change_re_reads_only_its_principals_rules(store: Store) -> None:
    clock = Clock(at(2026, 1, 1, 0, 0))
    make_rule(store, clock, "mine", "rate(1 minute)")
    EventService(store, Notifier(), ["default"], clock=clock).put_rule(
        "other", {"name": "theirs", "schedule": "rate(1 minute)", "targets": [{"kind": "event"}]}
    )
    log = CallLog(store)
    notifier = Notifier()
    sched = Scheduler(log, notifier, clock=clock)  # type: ignore[arg-type]
    sched.tick()
    assert ("list_rules", (None,)) in log.args  # the first read is whole
    log.args.clear()
    make_rule(store, clock, "mine", "rate(2 minutes)")
    notifier.publish("rules", P)  # as the API does after a PUT
    clock.set(at(2026, 1, 1, 0, 0, 20))  # before the periodic whole re-read (30 s)
    sched.tick()
    assert [a for n, a in log.args if n == "list_rules"] == [(P,)]
    clock.set(at(2026, 1, 1, 0, 1))
    sched.tick()
    clock.set(at(2026, 1, 1, 0, 2))
    sched.tick()
    # the changed rule fires on its new schedule, the other principal's on its own
    assert fired(store, "mine") == ["2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z"]
    theirs = [
        e for e in store.list_events("other", limit=100) if e.detail_type == SCHEDULE_DETAIL_TYPE
    ]
    assert len(theirs) == 3  # 00:00, 00:01, 00:02


@pytest.mark.parametrize("where", ["this process", "another process"])
@pytest.mark.parametrize("change", ["disabled", "deleted"])
def test_a_rule_disabled_or_deleted_after_its_firing_was_prepared_does_not_fire(
    store: Store, where: str, change: str
) -> None:
    clock = Clock(at(2026, 1, 1, 0, 0))
    make_rule(store, clock, "tick", "rate(1 minute)")
    notifier = Notifier()
    sched = Scheduler(store, notifier, clock=clock)
    sched.tick()
    assert sched.prepared_at == at(2026, 1, 1, 0, 1).timestamp()
    if where == "another process":
        clock.set(at(2026, 1, 1, 0, 0, 30))  # no wake-up: the write's check must catch it
    if change == "disabled":
        make_rule(store, clock, "tick", "rate(1 minute)", state="DISABLED")
    else:
        assert store.delete_rule(P, "tick")
    if where == "this process":  # the API's wake-up, with the clock not moved at all
        notifier.publish("rules", P)
    for minute in (1, 2):
        clock.set(at(2026, 1, 1, 0, minute))
        sched.tick()
    assert fired(store, "tick") == ["2026-01-01T00:00:00Z"]


@pytest.mark.parametrize("where", ["this process", "another process"])
def test_a_rule_changed_after_its_firing_was_prepared_fires_its_new_schedule(
    store: Store, where: str
) -> None:
    clock = Clock(at(2026, 1, 1, 0, 0))
    make_rule(store, clock, "tick", "rate(1 minute)")
    notifier = Notifier()
    sched = Scheduler(store, notifier, clock=clock)
    sched.tick()
    assert sched.prepared_at == at(2026, 1, 1, 0, 1).timestamp()
    if where == "another process":
        clock.set(at(2026, 1, 1, 0, 0, 30))
    make_rule(store, clock, "tick", "rate(5 minutes)")  # counted from the rule's creation
    if where == "this process":
        notifier.publish("rules", P)
    for minute in range(1, 7):
        clock.set(at(2026, 1, 1, 0, minute))
        sched.tick()
    assert fired(store, "tick") == ["2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"]


def test_two_schedulers_firing_prepared_moments_at_once_fire_each_once(
    store_url: str, store: Store
) -> None:
    clock = Clock(at(2026, 1, 1, 0, 0))
    names = [f"r{n}" for n in range(20)]
    for name in names:
        make_rule(store, clock, name, "rate(1 minute)")
    other = store_from_url(store_url)
    try:
        scheds = [Scheduler(st, Notifier(), clock=clock) for st in (store, other)]
        for s in scheds:
            s.tick()
        for minute in (1, 2, 3):
            clock.set(at(2026, 1, 1, 0, minute))
            assert all(s.prepared_at == clock.now for s in scheds)
            run_together([s.tick for s in scheds])
    finally:
        other.close()
    expected = [f"2026-01-01T00:0{m}:00Z" for m in range(4)]
    for name in names:
        assert fired(store, name) == expected


def test_a_failed_write_loses_no_firing(store: Store) -> None:
    clock = Clock(at(2026, 1, 1, 0, 0))
    make_rule(store, clock, "tick", "rate(1 minute)")
    log = CallLog(store)
    sched = Scheduler(log, Notifier(), clock=clock)  # type: ignore[arg-type]
    log.fail.add("record_firings")
    with pytest.raises(ConnectionError):
        sched.tick()  # the creation-time firing cannot be written
    sched.tick()
    clock.set(at(2026, 1, 1, 0, 1))
    log.fail.add("record_firings")
    with pytest.raises(ConnectionError):
        sched.tick()  # nor the prepared one
    clock.set(at(2026, 1, 1, 0, 1, 5))
    sched.tick()
    assert fired(store, "tick") == ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"]


@pytest.fixture
def pg_store(pg_template: str) -> Iterator[PostgresStore]:
    """Only the PostgreSQL store retries lost connections: a PostgreSQL store alone."""
    with pgtools.fresh_database(pg_template) as url:
        st = PostgresStore(url)
        yield st
        st.close()


def test_a_prepared_write_whose_commit_answer_was_lost_counts_as_fired(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write whose connection dropped after COMMIT is retried; the retry must see that its
    own first attempt recorded the firings."""
    store = pg_store
    store.retry_initial = 0.001
    clock = Clock(at(2026, 1, 1, 0, 0))
    for name in ("a", "b"):
        make_rule(store, clock, name, "rate(1 minute)")
    notifier = Notifier()
    published: list[str] = []
    notifier.subscribe("events", published.append)
    sched = Scheduler(store, notifier, clock=clock)
    sched.tick()
    published.clear()
    clock.set(at(2026, 1, 1, 0, 1))
    with pgtools.answer_lost(monkeypatch, store):
        sched.tick()
    assert published == [P]  # recorded by the first attempt: fired, not lost
    for name in ("a", "b"):
        assert fired(store, name) == ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"]


def run_together(calls: list[Callable[[], object]], timeout: float = 30.0) -> None:
    """Run the calls in threads released at the same moment; re-raise the first error."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout)
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a scheduler tick did not finish"
    if errors:
        raise errors[0]
