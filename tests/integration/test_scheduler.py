"""Schedule rules fire once per firing, on time, by an injected clock; missed-firing policies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from sqltide.events.bus import Bus
from sqltide.events.scheduler import SCHEDULE_DETAIL_TYPE, Scheduler
from sqltide.events.service import EventService
from sqltide.store import Store, store_from_url
from sqltide.store.notify import Notifier

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
