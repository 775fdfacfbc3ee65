"""Deliveries: one event to one target, attempted under a lease, retried, dead-lettered."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from ..event_records import DeliveryRecord


class DeliveryStore(abc.ABC):
    """PENDING → DELIVERED, or PENDING again (a retry), or DEAD (redriven back to PENDING)."""

    @abc.abstractmethod
    def add_deliveries(self, deliveries: Sequence[DeliveryRecord]) -> None:
        """Insert deliveries made by a delivery (a topic's fan-out to its subscriptions)."""

    @abc.abstractmethod
    def claim_deliveries(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[DeliveryRecord]:
        """PENDING deliveries that are due and not leased by a live deliverer, oldest first."""

    @abc.abstractmethod
    def finish_delivery(
        self,
        delivery_id: str,
        owner: str,
        *,
        status: str,
        now: float,
        next_attempt_at: float | None = None,
        error: dict[str, Any] | None = None,
    ) -> bool:
        """Record an attempt: DELIVERED, PENDING again (retry at ``next_attempt_at``) or DEAD.
        Counts the attempt and releases the lease; False if ``owner`` lost it."""

    @abc.abstractmethod
    def get_delivery(self, delivery_id: str) -> DeliveryRecord | None: ...

    @abc.abstractmethod
    def list_deliveries(
        self, principal: str, *, status: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        """Newest first; ``status="DEAD"`` is the dead-letter list."""

    @abc.abstractmethod
    def redrive_delivery(self, principal: str, delivery_id: str, now: float) -> bool:
        """A DEAD delivery back to PENDING, due now, its attempts reset."""

    @abc.abstractmethod
    def delete_deliveries_before(self, status: str, before: float, limit: int = 10_000) -> int:
        """Drop up to ``limit`` deliveries in ``status`` (``DELIVERED`` or ``DEAD``) last
        updated before ``before``; returns how many."""
