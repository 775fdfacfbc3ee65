"""Deliveries: an event on its way to one target, with leases and retries, written once.

A delivery is PENDING until an attempt settles it: DELIVERED, or DEAD after its last attempt
(the dead-letter list, from which a redrive puts it back). A deliverer claims due PENDING
deliveries under a lease; only the holder of the lease may record the attempt, and only while
the delivery is still PENDING. A redrive takes the lease away from any earlier attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..event_records import DeliveryRecord, DeliveryStatus
from ..interfaces.deliveries import DeliveryStore
from . import base as codec
from .base import SqlHooks, Tx, insert_deliveries


class DeliveriesMixin(SqlHooks, DeliveryStore):
    """Deliveries (:class:`~sqltide.store.interfaces.deliveries.DeliveryStore`)."""

    def add_deliveries(self, deliveries: Sequence[DeliveryRecord]) -> None:
        if deliveries:
            # ON CONFLICT DO NOTHING makes a retry after a lost commit harmless
            self._tx("add_deliveries", lambda tx: insert_deliveries(tx, deliveries))

    def claim_deliveries(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[DeliveryRecord]:
        if limit <= 0:
            return []

        # Not checked on retry (like claim_statements): what a lost first attempt leased comes
        # back when its lease runs out.
        def run(tx: Tx) -> list[Any]:
            return tx.execute(
                "UPDATE deliveries SET lease_owner = :owner, lease_expires_at = :until "
                "WHERE id IN (SELECT id FROM deliveries WHERE status = 'PENDING' "
                "AND next_attempt_at <= :now "
                "AND (lease_expires_at IS NULL OR lease_expires_at < :now) "
                f"ORDER BY next_attempt_at, id LIMIT :limit{tx.dialect.skip_locked}) "
                "RETURNING *",
                {"owner": owner, "until": now + lease_seconds, "now": now, "limit": limit},
            ).fetchall()

        claimed = [codec.delivery(r) for r in self._tx("claim_deliveries", run)]
        claimed.sort(key=lambda d: (d.next_attempt_at, d.id))
        return claimed

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
        row: dict[str, Any] = {
            "status": status,
            "last_error": codec.dumps_or_none(error),
            "delivered_at": now if status == DeliveryStatus.DELIVERED else None,
            "updated_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if next_attempt_at is not None:
            row["next_attempt_at"] = next_attempt_at

        def run(tx: Tx) -> bool:
            cur = tx.execute(
                "UPDATE deliveries SET attempts = attempts + 1, "
                f"{', '.join(f'{k} = :{k}' for k in row)} "
                "WHERE id = :_id AND lease_owner = :_owner AND status = 'PENDING'",
                {**row, "_id": delivery_id, "_owner": owner},
            )
            if cur.rowcount > 0:
                return True
            if tx.retried:  # finished by our own first attempt: the row holds exactly our fields
                got = tx.one("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
                return got is not None and all(got[k] == v for k, v in row.items())
            return False

        return self._tx("finish_delivery", run)

    def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        rows = self._rows("get_delivery", "SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return codec.delivery(rows[0]) if rows else None

    def list_deliveries(
        self, principal: str, *, status: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        where = ["principal = :principal"]
        params: dict[str, Any] = {"principal": principal, "limit": limit}
        if status is not None:
            where.append("status = :status")
            params["status"] = status
        rows = self._rows(
            "list_deliveries",
            f"SELECT * FROM deliveries WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT :limit",
            params,
        )
        return [codec.delivery(r) for r in rows]

    def redrive_delivery(self, principal: str, delivery_id: str, now: float) -> bool:
        def run(tx: Tx) -> bool:
            cur = tx.execute(
                "UPDATE deliveries SET status = 'PENDING', attempts = 0, "
                "next_attempt_at = :now, last_error = NULL, updated_at = :now, "
                "lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = :id AND principal = :principal AND status = 'DEAD'",
                {"now": now, "id": delivery_id, "principal": principal},
            )
            if cur.rowcount > 0:
                return True
            if tx.retried:  # redriven by our own first attempt (and not attempted since)?
                return (
                    tx.one(
                        "SELECT 1 FROM deliveries WHERE id = ? AND principal = ? "
                        "AND status = 'PENDING' AND attempts = 0 AND updated_at = ?",
                        (delivery_id, principal, now),
                    )
                    is not None
                )
            return False

        return self._tx("redrive_delivery", run)

    def delete_deliveries_before(self, status: str, before: float, limit: int = 10_000) -> int:
        def run(tx: Tx) -> int:
            return tx.execute(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE status = ? "
                "AND status <> 'PENDING' AND updated_at < ? LIMIT ?)",
                (status, before, limit),
            ).rowcount

        return self._tx("delete_deliveries_before", run)
