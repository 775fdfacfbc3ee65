"""Events: the archive and the outbox the bus routes from, written once for both dialects.

An event is written once (its id is its idempotency key), claimed by a router under a lease,
and routed: its deliveries are written and it is marked routed in one transaction, only if the
router still holds the lease and nobody routed it meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..event_records import DeliveryRecord, EventRecord
from ..interfaces.events import EventStore
from .base import SqlHooks, Tx, insert_deliveries, insert_events


class EventsMixin(SqlHooks, EventStore):
    """Events (:class:`~sqltide.store.interfaces.events.EventStore`)."""

    def put_events(self, events: Sequence[EventRecord]) -> None:
        if events:
            # ON CONFLICT DO NOTHING makes a retry after a lost commit harmless
            self._tx("put_events", lambda tx: insert_events(tx, events))

    def list_events(
        self,
        principal: str,
        *,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> list[EventRecord]:
        where = ["principal = :principal"]
        params: dict[str, Any] = {"principal": principal, "limit": limit}
        if start is not None:
            where.append("time >= :start")
            params["start"] = start
        if end is not None:
            where.append("time < :end")
            params["end"] = end
        if after is not None:
            where.append("(time > :cur_t OR (time = :cur_t AND id > :cur_id))")
            params.update(cur_t=after[0], cur_id=after[1])
        rows = self._rows(
            "list_events",
            f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY time, id LIMIT :limit",
            params,
        )
        return [EventRecord.from_row(r) for r in rows]

    def claim_events(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[EventRecord]:
        def run(tx: Tx) -> list[EventRecord]:
            return tx.execute(
                "UPDATE events SET lease_owner = :owner, lease_expires_at = :until "
                "WHERE id IN (SELECT id FROM events WHERE routed_at IS NULL "
                "AND (lease_expires_at IS NULL OR lease_expires_at < :now) "
                f"ORDER BY created_at LIMIT :limit{tx.dialect.skip_locked}) RETURNING *",
                {"owner": owner, "until": now + lease_seconds, "now": now, "limit": limit},
            ).fetchall()

        rows = self._tx("claim_events", run)
        return sorted((EventRecord.from_row(r) for r in rows), key=lambda e: e.created_at)

    def mark_events_routed(self, event_ids: Sequence[str], now: float) -> None:
        if not event_ids:
            return
        self._tx(
            "mark_events_routed",
            lambda tx: tx.execute(
                "UPDATE events SET routed_at = :now, lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id IN (:ids)",
                {"now": now, "ids": list(event_ids)},
            ),
        )

    def route_event(
        self, event_id: str, owner: str, deliveries: Sequence[DeliveryRecord], now: float
    ) -> bool:
        def run(tx: Tx) -> bool:
            cur = tx.execute(
                "UPDATE events SET routed_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = ? AND lease_owner = ? AND routed_at IS NULL",
                (now, event_id, owner),
            )
            if cur.rowcount > 0:
                insert_deliveries(tx, deliveries)
                return True
            if tx.retried:  # routed by our own first attempt?
                row = tx.one("SELECT routed_at FROM events WHERE id = ?", (event_id,))
                return row is not None and row["routed_at"] == now
            return False

        return self._tx("route_event", run)

    def delete_events_before(self, before: float, limit: int = 10_000) -> int:
        def run(tx: Tx) -> int:
            return tx.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ? "
                "AND routed_at IS NOT NULL LIMIT ?)",
                (before, limit),
            ).rowcount

        return self._tx("delete_events_before", run)
