"""Firing schedule rules: ``cron(…)``, ``rate(…)`` and ``at(…)``, each firing exactly once.

Every worker process runs a scheduler. For each enabled schedule rule it works out the firings
due since the rule's ``last_fired_at`` (see :func:`~sqltide.events.schedules.due_firings` and
the rule's missed-firing policy) and records each with
:meth:`~sqltide.store.Store.record_firing`, which advances ``last_fired_at`` and writes the
``Scheduled Event`` in one transaction, only if no other scheduler recorded that firing
first: two processes firing the same moment produce one event. The event's id is derived from
the rule and the firing time, and the bus delivers it to the rule's own targets.

Between firings the scheduler sleeps until the next one is due (at most
``max_sleep_seconds``), and wakes at once when rules change.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..store import Store
from ..store.events import EventRecord, RuleRecord, envelope
from ..store.notify import Notifier
from .schedules import DEFAULT_GRACE, Schedule, due_firings, firing_id, parse_schedule

logger = logging.getLogger(__name__)

SCHEDULE_SOURCE = "aws.events"
SCHEDULE_DETAIL_TYPE = "Scheduled Event"
RULE_ARN_PREFIX = "arn:aws:events:local:000000000000:rule/"


def rule_arn(name: str) -> str:
    return RULE_ARN_PREFIX + name


def scheduled_event(rule: RuleRecord, fire: datetime) -> EventRecord:
    """The EventBridge ``Scheduled Event`` of one firing (same rule and time: same id)."""
    event_id = str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"sqltide:{rule.principal}:{firing_id(rule.name, fire)}")
    )
    ts = fire.timestamp()
    return EventRecord(
        id=event_id,
        principal=rule.principal,
        source=SCHEDULE_SOURCE,
        detail_type=SCHEDULE_DETAIL_TYPE,
        time=ts,
        body=envelope(
            source=SCHEDULE_SOURCE,
            detail_type=SCHEDULE_DETAIL_TYPE,
            detail={},
            time=ts,
            resources=[rule_arn(rule.name)],
            event_id=event_id,
        ),
        created_at=ts,
    )


class Scheduler:
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        *,
        clock: Callable[[], float] = time.time,
        max_sleep_seconds: float = 30.0,
    ):
        self.store = store
        self.notifier = notifier
        self.clock = clock
        self.max_sleep_seconds = max_sleep_seconds
        self._compiled: dict[tuple[str, str], tuple[float, Schedule]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        notifier.subscribe("rules", lambda _k: self._wake.set())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sqltide-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sleep = self.tick()
            except Exception:
                logger.exception("firing schedules failed; retrying")
                sleep = 1.0
            self._wake.wait(sleep)
            self._wake.clear()

    def _schedule(self, rule: RuleRecord) -> Schedule:
        key = (rule.principal, rule.name)
        hit = self._compiled.get(key)
        if hit is not None and hit[0] == rule.updated_at:
            return hit[1]
        assert rule.schedule is not None
        # A rule's firings count from its creation: rate() starts there, and a cron firing
        # between creation and the first tick is not "missed".
        start = datetime.fromtimestamp(rule.created_at, UTC)
        schedule = parse_schedule(rule.schedule, rule.timezone, start=start)
        self._compiled[key] = (rule.updated_at, schedule)
        return schedule

    def tick(self) -> float:
        """Fire what is due; returns the seconds until the next firing (capped)."""
        now_ts = self.clock()
        now = datetime.fromtimestamp(now_ts, UTC)
        next_due = now_ts + self.max_sleep_seconds
        fired: set[str] = set()
        batch: list[tuple[str, str, float, list[EventRecord]]] = []
        for rule in self.store.list_rules(None):
            if rule.schedule is None or rule.state != "ENABLED":
                continue
            try:
                schedule = self._schedule(rule)
            except Exception:  # validated when stored; a rule that no longer parses is skipped
                logger.exception(
                    "rule %s/%s: its schedule does not parse", rule.principal, rule.name
                )
                continue
            batch.extend(self._due(rule, schedule, now))
            upcoming = schedule.next_after(now)
            if upcoming is not None:
                next_due = min(next_due, upcoming.timestamp())
        # One transaction for every firing of this tick: 10,000 schedules due at the same
        # minute are recorded in one commit, not ten thousand.
        for item, won in zip(batch, self.store.record_firings(batch), strict=True):
            if won and item[3]:
                logger.info("rule %s/%s fired", item[0], item[1])
                fired.add(item[0])
        for principal in fired:
            self.notifier.publish("events", principal)
        return max(0.0, next_due - self.clock())

    def _due(
        self, rule: RuleRecord, schedule: Schedule, now: datetime
    ) -> list[tuple[str, str, float, list[EventRecord]]]:
        """The firings of ``rule`` to record now (a watermark move has no events)."""
        last = (
            datetime.fromtimestamp(rule.last_fired_at, UTC)
            if rule.last_fired_at is not None
            else None
        )
        window = (
            timedelta(seconds=rule.missed_window_seconds)
            if rule.missed_window_seconds is not None
            else None
        )
        policy: Any = rule.missed_policy
        due = due_firings(schedule, last, now, policy, window)
        items = [
            (rule.principal, rule.name, fire.timestamp(), [scheduled_event(rule, fire)])
            for fire in due
        ]
        if not due and (last is None or now - last > 2 * DEFAULT_GRACE):
            # Nothing to fire, but firings were skipped (or there was none yet): move the
            # watermark so they are not looked at again on every tick.
            watermark = now - DEFAULT_GRACE
            if last is None or watermark > last:
                items.append((rule.principal, rule.name, watermark.timestamp(), []))
        return items
