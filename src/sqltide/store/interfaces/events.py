"""Events: the archive and outbox the bus routes from."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from ..event_records import DeliveryRecord, EventRecord


class EventStore(abc.ABC):
    """Events put, listed, claimed by a router and routed into deliveries."""

    @abc.abstractmethod
    def put_events(self, events: Sequence[EventRecord]) -> None:
        """Record events (archive and outbox at once); an id already stored is left alone."""

    @abc.abstractmethod
    def list_events(
        self,
        principal: str,
        *,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> list[EventRecord]:
        """A principal's events by time (oldest first), ``after`` a (time, id) cursor."""

    @abc.abstractmethod
    def claim_events(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[EventRecord]:
        """Events not routed yet and not leased by a live router, oldest first."""

    @abc.abstractmethod
    def mark_events_routed(self, event_ids: Sequence[str], now: float) -> None: ...

    @abc.abstractmethod
    def route_event(
        self, event_id: str, owner: str, deliveries: Sequence[DeliveryRecord], now: float
    ) -> bool:
        """Insert an event's deliveries (ids already stored are left alone) and mark it routed,
        in one transaction, if ``owner`` still leases it."""

    @abc.abstractmethod
    def delete_events_before(self, before: float, limit: int = 10_000) -> int:
        """Drop routed events whose time is before ``before`` (archive retention)."""
