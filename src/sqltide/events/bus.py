"""The event bus: routes recorded events to rules, and delivers to targets at least once.

Two job kinds of the work loop (:mod:`sqltide.worker.loop`), registered by worker processes:

- The router claims events not yet routed (the outbox), matches each against the enabled rules
  of its principal and writes one delivery per matching target; writing the deliveries and
  marking the event routed is one transaction, and delivery ids are derived from (event, rule,
  target), so routing twice cannot deliver twice.
- The deliverer claims due deliveries under a lease and runs them. A failure worth retrying is
  tried again with exponential backoff and full jitter until the target's retry policy runs out
  (attempts or age); then, or at once for a failure that cannot succeed, the delivery is DEAD:
  listed as a dead letter, redrivable, and announced as a ``Delivery Failed`` event.

An event put by a rule's target is one hop deeper than the event that caused it; past
``MAX_DEPTH`` hops a delivery is dead-lettered with reason ``loop``, so a rule whose target puts
events it matches again cannot loop forever.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ..store import Store
from ..store.event_records import DeliveryRecord, DeliveryStatus, EventRecord, RuleRecord, RuleState
from ..store.wakeups import Notifier
from ..worker.loop import JobKind
from .inputs import render_input
from .targets import TargetFailure, TargetRunner

logger = logging.getLogger(__name__)

MAX_DEPTH = 8
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0
EVENTS_SOURCE = "sqltide.events"


def delivery_id(event_id: str, rule_name: str, target_id: str) -> str:
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"sqltide:delivery:{event_id}:{rule_name}:{target_id}")
    )


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Full jitter: a random wait up to min(cap, base * 2^attempts)."""
    return rng() * min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempts)


def _check_encodable(d: DeliveryRecord) -> None:
    """Fail a delivery at once whose input no encoder on the way can write.

    Input checks keep such values out (:mod:`sqltide.validation`), but an event recorded by an
    older version may hold a lone surrogate, an integer wider than 64 bits or nesting past 255
    levels: retrying it for a day as an ``internal_error`` would never deliver it.
    """
    try:
        orjson.dumps(d.payload)
    except TypeError as exc:  # orjson.JSONEncodeError is one
        raise TargetFailure(
            "unencodable_input",
            f"the delivery's input cannot be written as JSON ({exc}); it was recorded before "
            "sqltide checked inputs, and cannot be delivered",
            retryable=False,
        ) from exc


class _CompiledRules:
    """Each principal's enabled event-pattern rules, compiled once per change."""

    def __init__(self, store: Store):
        self.store = store
        self._cache: dict[str, tuple[float, list[tuple[RuleRecord, Any]]]] = {}
        self._ttl = 1.0

    def for_principal(self, principal: str, now: float) -> list[tuple[RuleRecord, Any]]:
        hit = self._cache.get(principal)
        if hit is not None and hit[0] > now:
            return hit[1]
        from .patterns import compile_pattern

        compiled = [
            (rule, compile_pattern(rule.event_pattern))
            for rule in self.store.list_rules(principal)
            if rule.state == RuleState.ENABLED and rule.event_pattern is not None
        ]
        self._cache[principal] = (now + self._ttl, compiled)
        return compiled

    def invalidate(self, principal: str) -> None:
        self._cache.pop(principal, None)


class Bus:
    """The router and the deliverer of one process."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        targets: TargetRunner,
        *,
        owner: str,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        concurrency: int = 4,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.notifier = notifier
        self.targets = targets
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.concurrency = concurrency
        self.clock = clock
        self.rules = _CompiledRules(store)
        self._lock = threading.Lock()
        #: The earliest retry this process scheduled (it wakes the deliveries' claim thread).
        self._next_local_due: float | None = None
        notifier.subscribe("rules", self.rules.invalidate)

    def kinds(self) -> list[JobKind[Any]]:
        """The router and the deliverer, as job kinds for the work loop."""
        return [EventRouting(self), Deliveries(self)]

    # -- routing -------------------------------------------------------------------------------
    def route_once(self, limit: int = 100) -> int:
        """Route up to ``limit`` events; returns how many were claimed."""
        now = self.clock()
        events = self.store.claim_events(self.owner, limit, self.lease_seconds, now)
        self.route(events, now)
        return len(events)

    def route(self, events: Sequence[EventRecord], now: float) -> None:
        """Write the deliveries of claimed events and mark them routed; wake the deliverer."""
        made = 0
        for event in events:
            deliveries = self.deliveries_for(event, now)
            if self.store.route_event(event.id, self.owner, deliveries, now):
                made += len(deliveries)
        if made:
            self.notifier.publish("deliveries", "")

    def _matching_rules(self, event: EventRecord, now: float) -> list[RuleRecord]:
        from .scheduler import RULE_ARN_PREFIX, SCHEDULE_DETAIL_TYPE, SCHEDULE_SOURCE

        if event.source == SCHEDULE_SOURCE and event.detail_type == SCHEDULE_DETAIL_TYPE:
            # A schedule's firing goes to the targets of the rule that fired, as in EventBridge.
            names = [
                r[len(RULE_ARN_PREFIX) :]
                for r in event.body.get("resources", [])
                if r.startswith(RULE_ARN_PREFIX)
            ]
            rules = [self.store.get_rule(event.principal, name) for name in names]
            return [
                r for r in rules if r is not None and r.state == RuleState.ENABLED and r.schedule
            ]
        return [
            rule
            for rule, pattern in self.rules.for_principal(event.principal, now)
            if pattern.matches(event.body)
        ]

    def deliveries_for(self, event: EventRecord, now: float) -> list[DeliveryRecord]:
        out = []
        for rule in self._matching_rules(event, now):
            for target in rule.targets:
                out.append(
                    DeliveryRecord(
                        id=delivery_id(event.id, rule.name, target["id"]),
                        principal=event.principal,
                        event_id=event.id,
                        rule_name=rule.name,
                        target_id=target["id"],
                        target={**target, "_depth": event.depth},
                        payload=render_input(target, event.body, rule.name),
                        status=DeliveryStatus.PENDING,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        return out

    # -- delivering ----------------------------------------------------------------------------
    def claim_deliveries(self, limit: int) -> list[DeliveryRecord]:
        return self.store.claim_deliveries(self.owner, limit, self.lease_seconds, self.clock())

    def next_retry_wait(self) -> float | None:
        """Seconds until the earliest retry this process scheduled falls due, or None."""
        with self._lock:
            due = self._next_local_due
            if due is None:
                return None
            wait = due - self.clock()
            if wait <= 0:
                self._next_local_due = None  # due now: the claim about to run finds it
            return max(0.0, wait)

    def deliver_once(self, limit: int = 10) -> int:
        """Run up to ``limit`` due deliveries in this thread; returns how many were claimed."""
        claimed = self.claim_deliveries(limit)
        for delivery in claimed:
            self._deliver(delivery)
        return len(claimed)

    def deliver(self, d: DeliveryRecord) -> None:
        """Run one claimed delivery and record its outcome (delivered, retry later, dead)."""
        self._deliver(d)

    def _deliver(self, d: DeliveryRecord) -> None:
        depth = int(d.target.get("_depth", 0))
        try:
            if depth >= MAX_DEPTH:
                raise TargetFailure(
                    "loop",
                    f"this event is {depth} rule hops from the event that started the chain; "
                    f"stopped at {MAX_DEPTH} (does a rule's target put events the rule matches?)",
                    retryable=False,
                )
            _check_encodable(d)
            self.targets.run(d)
        except TargetFailure as exc:
            self._failed(d, exc)
            return
        except Exception as exc:  # a bug in a target runner: retry, it may be transient
            logger.exception("delivery %s: unexpected failure", d.id)
            self._failed(d, TargetFailure("internal_error", f"{type(exc).__name__}: {exc}", True))
            return
        now = self.clock()
        self.store.finish_delivery(d.id, self.owner, status=DeliveryStatus.DELIVERED, now=now)

    def _failed(self, d: DeliveryRecord, exc: TargetFailure) -> None:
        now = self.clock()
        policy = d.target.get("retry_policy", {})
        max_attempts = int(policy.get("maximum_retry_attempts", 185))
        max_age = float(policy.get("maximum_event_age_seconds", 86_400))
        error = {"code": exc.code, "message": exc.message, "attempt": d.attempts + 1}
        retry_at = now + backoff(d.attempts)
        if exc.retryable and d.attempts < max_attempts and retry_at - d.created_at <= max_age:
            self.store.finish_delivery(
                d.id,
                self.owner,
                status=DeliveryStatus.PENDING,
                now=now,
                next_attempt_at=retry_at,
                error=error,
            )
            with self._lock:
                if self._next_local_due is None or retry_at < self._next_local_due:
                    self._next_local_due = retry_at
            return
        error["dead_reason"] = (
            exc.code
            if not exc.retryable
            else "retry_attempts_exhausted"
            if d.attempts >= max_attempts
            else "event_too_old"
        )
        if self.store.finish_delivery(
            d.id, self.owner, status=DeliveryStatus.DEAD, now=now, error=error
        ):
            logger.warning("delivery %s dead-lettered: %s", d.id, error)
            self.targets.announce_failure(d, error, now)


class EventRouting(JobKind[tuple[float, list[EventRecord]]]):
    """Routing as a job kind: one item is a claimed slice of up to 100 events, routed in the
    claim thread (concurrency 1), so the deliverer is woken once per slice."""

    name = "router"
    wake_channels = ("events",)
    concurrency = 1

    def __init__(self, bus: Bus, limit: int = 100):
        self.bus = bus
        self.limit = limit
        self.poll_seconds = bus.poll_seconds

    def claim(self, limit: int) -> Sequence[tuple[float, list[EventRecord]]]:
        now = self.bus.clock()
        events = self.bus.store.claim_events(
            self.bus.owner, self.limit, self.bus.lease_seconds, now
        )
        return [(now, events)] if events else []

    def run(self, item: tuple[float, list[EventRecord]]) -> None:
        now, events = item
        self.bus.route(events, now)


class Deliveries(JobKind[DeliveryRecord]):
    """Deliveries as a job kind: due ones claimed while the pool has room, each run in it.

    Besides a wake-up and the poll (which also finds other processes' retries), the claim
    thread wakes when a retry this process scheduled falls due.
    """

    name = "deliver"
    wake_channels = ("deliveries",)

    def __init__(self, bus: Bus):
        self.bus = bus
        self.concurrency = bus.concurrency
        self.poll_seconds = bus.poll_seconds

    def claim(self, limit: int) -> Sequence[DeliveryRecord]:
        return self.bus.claim_deliveries(limit)

    def run(self, item: DeliveryRecord) -> None:
        self.bus.deliver(item)

    def next_wait(self) -> float | None:
        return self.bus.next_retry_wait()

    def close(self) -> None:
        close = getattr(self.bus.targets, "close", None)
        if close is not None:
            close()
