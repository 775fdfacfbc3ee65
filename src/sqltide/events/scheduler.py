"""Firing schedule rules: ``cron(…)``, ``rate(…)`` and ``at(…)``, each firing exactly once.

Every scheduler process (``serve --role scheduler``, or ``all``) runs one, as a periodic kind
of the work loop (:mod:`sqltide.worker.loop`): one thread ticks it. It keeps the enabled schedule rules in memory, each with
its parsed schedule and the next moment it is due, so a tick looks only at the rules that are
due. It re-reads them (keeping what did not change) at once when a rule changes in this
process (the ``rules`` wake-up), when a write finds a rule changed by another process, and
otherwise every ``max_sleep_seconds``, since rules changed elsewhere send no wake-up.

Firing on time: the scheduler knows the next firing moment, so ahead of it (right after the
previous tick) it works out the firings due then and builds their events, serialised. At the
moment only the store write is left: one :meth:`~sqltide.store.Store.record_firings`
transaction. It advances each rule's ``last_fired_at`` and writes its ``Scheduled Event`` only
if no other scheduler recorded that firing first (two processes firing the same moment produce
one event), and only if the rule is still enabled with the ``updated_at`` it had when the
firing was prepared: a rule disabled, changed or deleted in between does not fire its old
definition; it is re-read and looked at again. The event's id is derived from the rule and the
firing time, and the bus delivers it to the rule's own targets.

A prepared moment more than a minute (the grace) in the past is dropped, not fired: after
downtime or a stall, each rule's missed-firing policy decides what runs (see
:func:`~sqltide.events.schedules.due_firings`).
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..store import Store
from ..store.event_records import EventRecord, RuleRecord, RuleState, envelope
from ..store.wakeups import Notifier
from ..worker.loop import PeriodicKind
from .schedules import DEFAULT_GRACE, Schedule, due_firings, firing_id, parse_schedule

logger = logging.getLogger(__name__)

SCHEDULE_SOURCE = "aws.events"
SCHEDULE_DETAIL_TYPE = "Scheduled Event"
RULE_ARN_PREFIX = "arn:aws:events:local:000000000000:rule/"

#: How long before a prepared moment the periodic re-read of the rules waits for it.
_QUIET_SECONDS = 5.0

#: One firing as the store records it: (principal, rule name, fired at, its events); no
#: events for a watermark move.
Firing = tuple[str, str, float, list[EventRecord]]


def rule_arn(name: str) -> str:
    return RULE_ARN_PREFIX + name


@dataclass(frozen=True, slots=True)
class _SerializedEvent(EventRecord):
    """An event whose row is serialised when it is built, ahead of the firing moment, so the
    write at the moment only binds it."""

    _row: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_row", EventRecord.to_row(self))  # frozen: set once

    def to_row(self) -> dict[str, Any]:
        return self._row


def scheduled_event(rule: RuleRecord, fire: datetime) -> EventRecord:
    """The EventBridge ``Scheduled Event`` of one firing (same rule and time: same id)."""
    event_id = str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"sqltide:{rule.principal}:{firing_id(rule.name, fire)}")
    )
    ts = fire.timestamp()
    return _SerializedEvent(
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


def _definition(rule: RuleRecord) -> tuple[Any, ...]:
    """What decides a rule's firings (its targets do not: the bus reads them when routing)."""
    return (
        rule.updated_at,
        rule.created_at,
        rule.schedule,
        rule.timezone,
        rule.missed_policy,
        rule.missed_window_seconds,
    )


@dataclass(slots=True)
class _Entry:
    """An enabled schedule rule as the scheduler keeps it between ticks."""

    rule: RuleRecord
    schedule: Schedule
    #: As stored: the rule's, moved forward by this scheduler's own writes.
    last_fired_at: float | None
    #: When the rule is next due (-inf: look at it at once; inf: never again).
    next_at: float = -math.inf


@dataclass(slots=True)
class _Prepared:
    """The firings due at one moment, worked out before it: per rule, its entry, its firings
    and the moment it is due next once they are recorded."""

    at: float
    rules: dict[tuple[str, str], tuple[_Entry, list[Firing], float]] = field(default_factory=dict)


class Scheduler(PeriodicKind):
    """The schedule rules of every principal, fired by one thread of a scheduler process."""

    name = "scheduler"

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
        self._rules: dict[tuple[str, str], _Entry] = {}
        self._loaded_at: float | None = None
        self._prepared: _Prepared | None = None
        self._changed = threading.Event()
        #: Whose rules changed since the last re-read (the wake-up's key is the principal).
        self._changed_principals: set[str] = set()
        self._changed_lock = threading.Lock()
        notifier.subscribe("rules", self._rules_changed)

    @property
    def prepared_at(self) -> float | None:
        """The firing moment whose firings are prepared (epoch seconds), or None."""
        return None if self._prepared is None else self._prepared.at

    def _rules_changed(self, principal: str) -> None:
        with self._changed_lock:
            self._changed_principals.add(principal)
        self._changed.set()
        self.wake()  # the loop's tick thread (a no-op until a loop registers this kind)

    def tick(self) -> float:
        """Fire what is due; returns the seconds until the next firing (capped)."""
        try:
            return self._tick()
        except BaseException:
            # A failed write may have left rules marked as handled: start again from the store.
            self._rules, self._loaded_at, self._prepared = {}, None, None
            raise

    def _tick(self) -> float:
        now = self.clock()
        if self._changed.is_set() or self._loaded_at is None:
            # A rule changed: re-read first, never fire its old definition. Only the rules of
            # the principals who changed some, unless nothing is loaded yet.
            self._changed.clear()
            with self._changed_lock:
                principals, self._changed_principals = self._changed_principals, set()
            if self._loaded_at is None or "" in principals:
                self._reload(now)
            else:
                self._reload(now, principals)
        fired: set[str] = set()
        # 1. The moment came: its firings are worked out already, only the write is left.
        lost = False
        prepared = self._prepared
        if prepared is not None and prepared.at <= now:
            self._prepared = None
            # Past the grace they are no longer on time: the catch-up below applies each
            # rule's missed-firing policy instead.
            if now - prepared.at <= DEFAULT_GRACE.total_seconds():
                lost = self._fire_prepared(prepared, fired)
        # 2. Then re-read the rules if needed, and fire whatever else is due (after downtime,
        # a rule just created or changed, one that lost a firing to a change elsewhere).
        assert self._loaded_at is not None
        stale = now - self._loaded_at >= self.max_sleep_seconds
        # ... but not just before a prepared moment (a wake-up a hair early): that is re-read
        # right after its write, so the write is not kept waiting.
        soon = self._prepared is not None and self._prepared.at - now < _QUIET_SECONDS
        if lost or (stale and not soon):
            self._reload(now)
        if self._record(self._catch_up(now), fired):
            self._reload(now)  # a rule changed elsewhere: look at it again, once
            self._record(self._catch_up(now), fired)
        for principal in fired:
            self.notifier.publish("events", principal)
        # 3. Prepare the next moment while waiting for it.
        self._prepare()
        next_due = now + self.max_sleep_seconds
        if self._prepared is not None:
            next_due = min(next_due, self._prepared.at)
        return max(0.0, next_due - self.clock())

    # -- the rules in memory -------------------------------------------------------------------
    def _reload(self, now: float, principals: set[str] | None = None) -> None:
        """Re-read the rules (of ``principals`` only, when given), keeping the entries (and
        prepared firings) of unchanged ones."""
        if principals is None:
            rules = self.store.list_rules(None)
            fresh: dict[tuple[str, str], _Entry] = {}
        else:
            rules = [rule for p in sorted(principals) for rule in self.store.list_rules(p)]
            fresh = {key: e for key, e in self._rules.items() if key[0] not in principals}
        for rule in rules:
            if rule.schedule is None or rule.state != RuleState.ENABLED:
                continue
            key = (rule.principal, rule.name)
            old = self._rules.get(key)
            same = old is not None and _definition(old.rule) == _definition(rule)
            if old is not None and same and old.last_fired_at == rule.last_fired_at:
                fresh[key] = old
                continue
            try:
                schedule = old.schedule if old is not None and same else _parse(rule)
            except Exception:  # validated when stored; a rule that no longer parses is skipped
                logger.exception(
                    "rule %s/%s: its schedule does not parse", rule.principal, rule.name
                )
                continue
            fresh[key] = _Entry(rule, schedule, rule.last_fired_at)
        self._rules = fresh
        if principals is None:
            self._loaded_at = now
            _freeze_once()
        if self._prepared is not None:
            self._prepared.rules = {
                key: item for key, item in self._prepared.rules.items() if fresh.get(key) is item[0]
            }

    def _catch_up(self, now_ts: float) -> list[tuple[_Entry, Firing]]:
        """The firings of every rule due by now (a watermark move has no events)."""
        now = datetime.fromtimestamp(now_ts, UTC)
        out: list[tuple[_Entry, Firing]] = []
        for entry in self._rules.values():
            if entry.next_at <= now_ts:
                out.extend((entry, firing) for firing in _due(entry, now))
                entry.next_at = _next(entry.schedule, now)
        return out

    # -- firing ahead of time ------------------------------------------------------------------
    def _prepare(self) -> None:
        """Work out the firings of the next moment (keeping those already worked out)."""
        upcoming = min((entry.next_at for entry in self._rules.values()), default=math.inf)
        if upcoming == math.inf:
            self._prepared = None
            return
        if self._prepared is None or self._prepared.at != upcoming:
            self._prepared = _Prepared(upcoming)
        moment = datetime.fromtimestamp(upcoming, UTC)
        prepared = self._prepared.rules
        for key, entry in self._rules.items():
            if entry.next_at == upcoming and key not in prepared:
                prepared[key] = (entry, _due(entry, moment), _next(entry.schedule, moment))

    def _fire_prepared(self, prepared: _Prepared, fired: set[str]) -> bool:
        """Record a prepared moment: the store write alone. True when a firing was not recorded."""
        batch = [(entry, f) for entry, firings, _ in prepared.rules.values() for f in firings]
        lost = self._record(batch, fired)
        for entry, _, following in prepared.rules.values():
            entry.next_at = following  # a rule that lost is re-read, and this entry dropped
        return lost

    def _record(self, batch: list[tuple[_Entry, Firing]], fired: set[str]) -> bool:
        """Record firings in one transaction; True when one was not (fired by another
        scheduler first, or its rule changed since it was read)."""
        if not batch:
            return False
        # One transaction for every firing of this tick: 10,000 schedules due at the same
        # minute are recorded in one commit, not ten thousand.
        won = self.store.record_firings(
            [firing for _, firing in batch],
            rule_versions=[entry.rule.updated_at for entry, _ in batch],
        )
        lost = False
        for (entry, (principal, name, fired_at, events)), ok in zip(batch, won, strict=True):
            if not ok:
                lost = True
                continue
            entry.last_fired_at = fired_at
            if events:
                logger.info("rule %s/%s fired", principal, name)
                fired.add(principal)
        return lost


_frozen = False


def _freeze_once() -> None:
    """After the first full read of the rules, move every object then alive out of the
    collector's reach (``gc.freeze``), once per process.

    Measured (ADR 0006): with 10,000 schedule rules in memory, each full (generation 2)
    collection took 110-150 ms, holding the GIL and so stalling the HTTP event loop of the same
    process; after a freeze, 18-36 ms. Frozen objects are still freed when unreferenced; only
    cycles already alive at this moment are never collected, a one-off.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


def _parse(rule: RuleRecord) -> Schedule:
    assert rule.schedule is not None
    # A rule's firings count from its creation: rate() starts there, and a cron firing
    # between creation and the first tick is not "missed".
    start = datetime.fromtimestamp(rule.created_at, UTC)
    return parse_schedule(rule.schedule, rule.timezone, start=start)


def _next(schedule: Schedule, after: datetime) -> float:
    upcoming = schedule.next_after(after)
    return math.inf if upcoming is None else upcoming.timestamp()


def _due(entry: _Entry, now: datetime) -> list[Firing]:
    """The firings of a rule to record at ``now`` (a watermark move has no events)."""
    rule = entry.rule
    last = (
        datetime.fromtimestamp(entry.last_fired_at, UTC)
        if entry.last_fired_at is not None
        else None
    )
    window = (
        timedelta(seconds=rule.missed_window_seconds)
        if rule.missed_window_seconds is not None
        else None
    )
    policy: Any = rule.missed_policy
    due = due_firings(entry.schedule, last, now, policy, window)
    items: list[Firing] = [
        (rule.principal, rule.name, fire.timestamp(), [scheduled_event(rule, fire)]) for fire in due
    ]
    if not due and (last is None or now - last > 2 * DEFAULT_GRACE):
        # Nothing to fire, but firings were skipped (or there was none yet): move the
        # watermark so they are not looked at again.
        watermark = now - DEFAULT_GRACE
        if last is None or watermark > last:
            items.append((rule.principal, rule.name, watermark.timestamp(), []))
    return items
