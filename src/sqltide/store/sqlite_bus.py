"""The SQLite store's event bus tables: events, rules and their firings, topics, deliveries.

:class:`_SQLiteBusMixin` holds the half of :class:`~sqltide.store.sqlite.SQLiteStore` that
stores the event bus: the events archive and outbox, rules and schedule firings, topics, and
deliveries with their leases. ``sqlite.py`` has the rest: connections and the one-writer
``_write`` transaction every write here runs in, migrations, statements, sessions and API keys.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

from .events import DeliveryRecord, EventRecord, RuleRecord, TopicRecord

_EVENT_COLUMNS = (
    "id",
    "principal",
    "source",
    "detail_type",
    "time",
    "body",
    "depth",
    "created_at",
    "routed_at",
)
_event_values = itemgetter(*_EVENT_COLUMNS)
_event_id = attrgetter("id")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _rule_row(rule: RuleRecord) -> dict[str, Any]:
    return {
        "principal": rule.principal,
        "name": rule.name,
        "description": rule.description,
        "event_pattern": None if rule.event_pattern is None else _dumps(rule.event_pattern),
        "schedule": rule.schedule,
        "timezone": rule.timezone,
        "state": rule.state,
        "targets": _dumps(rule.targets),
        "missed_policy": rule.missed_policy,
        "missed_window_seconds": rule.missed_window_seconds,
        "last_fired_at": rule.last_fired_at,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


def _rule(row: sqlite3.Row) -> RuleRecord:
    data = {k: row[k] for k in row.keys()}  # noqa: SIM118 (Row iterates values)
    data["targets"] = json.loads(data["targets"])
    if data["event_pattern"] is not None:
        data["event_pattern"] = json.loads(data["event_pattern"])
    return RuleRecord(**data)


def _topic(row: sqlite3.Row) -> TopicRecord:
    data = {k: row[k] for k in row.keys()}  # noqa: SIM118 (Row iterates values)
    data["subscriptions"] = json.loads(data["subscriptions"])
    return TopicRecord(**data)


def _delivery_row(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": d.id,
        "principal": d.principal,
        "event_id": d.event_id,
        "rule_name": d.rule_name,
        "target_id": d.target_id,
        "target": _dumps(d.target),
        "payload": _dumps(d.payload),
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "last_error": None if d.last_error is None else _dumps(d.last_error),
        "delivered_at": d.delivered_at,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    }


def _delivery(row: sqlite3.Row) -> DeliveryRecord:
    data = {k: row[k] for k in row.keys()}  # noqa: SIM118 (Row iterates values)
    for key in ("lease_owner", "lease_expires_at"):
        data.pop(key, None)
    data["target"] = json.loads(data["target"])
    data["payload"] = json.loads(data["payload"])
    if data["last_error"] is not None:
        data["last_error"] = json.loads(data["last_error"])
    return DeliveryRecord(**data)


class _SQLiteBusMixin:
    """Event bus storage for :class:`~sqltide.store.sqlite.SQLiteStore`."""

    if TYPE_CHECKING:
        # Provided by SQLiteStore (sqlite.py).
        @contextmanager
        def _write(self) -> Iterator[sqlite3.Connection]: ...

        def _read(
            self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
        ) -> list[sqlite3.Row]: ...

    # -- events --------------------------------------------------------------------------------
    @staticmethod
    def _insert_events(con: sqlite3.Connection, events: Sequence[EventRecord]) -> None:
        # Bound by position: a third faster than by name for a large batch (a minute's firings).
        con.executemany(
            f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_EVENT_COLUMNS))}) ON CONFLICT (id) DO NOTHING",
            [_event_values(e.to_row()) for e in events],
        )

    def put_events(self, events: Sequence[EventRecord]) -> None:
        if events:
            with self._write() as con:
                self._insert_events(con, events)

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
        rows = self._read(
            f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY time, id LIMIT :limit",
            params,
        )
        return [EventRecord.from_row(r) for r in rows]

    def claim_events(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[EventRecord]:
        with self._write() as con:
            rows = con.execute(
                "UPDATE events SET lease_owner = ?, lease_expires_at = ? WHERE id IN ("
                "  SELECT id FROM events WHERE routed_at IS NULL"
                "  AND (lease_expires_at IS NULL OR lease_expires_at < ?)"
                "  ORDER BY created_at LIMIT ?) RETURNING *",
                (owner, now + lease_seconds, now, limit),
            ).fetchall()
        return sorted((EventRecord.from_row(r) for r in rows), key=lambda e: e.created_at)

    def mark_events_routed(self, event_ids: Sequence[str], now: float) -> None:
        if not event_ids:
            return
        marks = ", ".join("?" * len(event_ids))
        with self._write() as con:
            con.execute(
                f"UPDATE events SET routed_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                f"WHERE id IN ({marks})",
                (now, *event_ids),
            )

    def delete_events_before(self, before: float, limit: int = 10_000) -> int:
        with self._write() as con:
            cur = con.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ? "
                "AND routed_at IS NOT NULL LIMIT ?)",
                (before, limit),
            )
            return cur.rowcount

    def delete_deliveries_before(self, status: str, before: float, limit: int = 10_000) -> int:
        with self._write() as con:
            cur = con.execute(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE status = ? "
                "AND status <> 'PENDING' AND updated_at < ? LIMIT ?)",
                (status, before, limit),
            )
            return cur.rowcount

    # -- rules, topics, deliveries -------------------------------------------------------------
    def upsert_rule(self, rule: RuleRecord) -> bool:
        row = _rule_row(rule)
        with self._write() as con:
            old = con.execute(
                "SELECT created_at, last_fired_at FROM rules WHERE principal = ? AND name = ?",
                (rule.principal, rule.name),
            ).fetchone()
            if old is not None:
                row.update(created_at=old["created_at"], last_fired_at=old["last_fired_at"])
            con.execute(
                f"INSERT OR REPLACE INTO rules ({', '.join(row)}) "
                f"VALUES ({', '.join(':' + k for k in row)})",
                row,
            )
            return old is None

    def get_rule(self, principal: str, name: str) -> RuleRecord | None:
        rows = self._read("SELECT * FROM rules WHERE principal = ? AND name = ?", (principal, name))
        return _rule(rows[0]) if rows else None

    def list_rules(self, principal: str | None = None) -> list[RuleRecord]:
        if principal is None:
            rows = self._read("SELECT * FROM rules ORDER BY principal, name")
        else:
            rows = self._read("SELECT * FROM rules WHERE principal = ? ORDER BY name", (principal,))
        return [_rule(r) for r in rows]

    def delete_rule(self, principal: str, name: str) -> bool:
        with self._write() as con:
            cur = con.execute(
                "DELETE FROM rules WHERE principal = ? AND name = ?", (principal, name)
            )
            return cur.rowcount > 0

    def record_firing(
        self, principal: str, name: str, fired_at: float, events: Sequence[EventRecord]
    ) -> bool:
        with self._write() as con:
            cur = con.execute(
                "UPDATE rules SET last_fired_at = ? WHERE principal = ? AND name = ? "
                "AND (last_fired_at IS NULL OR last_fired_at < ?)",
                (fired_at, principal, name, fired_at),
            )
            if cur.rowcount == 0:
                return False
            self._insert_events(con, events)
            return True

    def record_firings(
        self,
        firings: Sequence[tuple[str, str, float, Sequence[EventRecord]]],
        *,
        rule_versions: Sequence[float] | None = None,
    ) -> list[bool]:
        sql = (
            "UPDATE rules SET last_fired_at = ? WHERE principal = ? AND name = ? "
            "AND (last_fired_at IS NULL OR last_fired_at < ?)"
        )
        params: list[tuple[Any, ...]]
        if rule_versions is None:
            params = [(at, principal, name, at) for principal, name, at, _ in firings]
        else:
            sql += " AND updated_at = ? AND state = 'ENABLED'"
            params = [
                (at, principal, name, at, version)
                for (principal, name, at, _), version in zip(firings, rule_versions, strict=True)
            ]
        results = []
        won_events: list[EventRecord] = []
        with self._write() as con:
            cur = con.cursor()
            for firing, values in zip(firings, params, strict=True):
                won = cur.execute(sql, values).rowcount > 0
                if won:
                    won_events.extend(firing[3])
                results.append(won)
            # One executemany for the batch, in id order: the ids are random (uuid5), and
            # inserting them sorted walks the id indexes once instead of jumping around.
            won_events.sort(key=_event_id)
            self._insert_events(con, won_events)
        return results

    def upsert_topic(self, topic: TopicRecord) -> bool:
        row = {
            "principal": topic.principal,
            "name": topic.name,
            "display_name": topic.display_name,
            "subscriptions": _dumps(topic.subscriptions),
            "created_at": topic.created_at,
            "updated_at": topic.updated_at,
        }
        with self._write() as con:
            old = con.execute(
                "SELECT created_at FROM topics WHERE principal = ? AND name = ?",
                (topic.principal, topic.name),
            ).fetchone()
            if old is not None:
                row["created_at"] = old["created_at"]
            con.execute(
                f"INSERT OR REPLACE INTO topics ({', '.join(row)}) "
                f"VALUES ({', '.join(':' + k for k in row)})",
                row,
            )
            return old is None

    def get_topic(self, principal: str, name: str) -> TopicRecord | None:
        rows = self._read(
            "SELECT * FROM topics WHERE principal = ? AND name = ?", (principal, name)
        )
        return _topic(rows[0]) if rows else None

    def list_topics(self, principal: str) -> list[TopicRecord]:
        rows = self._read("SELECT * FROM topics WHERE principal = ? ORDER BY name", (principal,))
        return [_topic(r) for r in rows]

    def delete_topic(self, principal: str, name: str) -> bool:
        with self._write() as con:
            cur = con.execute(
                "DELETE FROM topics WHERE principal = ? AND name = ?", (principal, name)
            )
            return cur.rowcount > 0

    @staticmethod
    def _insert_deliveries(con: sqlite3.Connection, deliveries: Sequence[DeliveryRecord]) -> None:
        con.executemany(
            "INSERT INTO deliveries (id, principal, event_id, rule_name, target_id, target, "
            "payload, status, attempts, next_attempt_at, last_error, delivered_at, created_at, "
            "updated_at) VALUES (:id, :principal, :event_id, :rule_name, :target_id, :target, "
            ":payload, :status, :attempts, :next_attempt_at, :last_error, :delivered_at, "
            ":created_at, :updated_at) ON CONFLICT (id) DO NOTHING",
            [_delivery_row(d) for d in deliveries],
        )

    def route_event(
        self, event_id: str, owner: str, deliveries: Sequence[DeliveryRecord], now: float
    ) -> bool:
        with self._write() as con:
            cur = con.execute(
                "UPDATE events SET routed_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = ? AND lease_owner = ? AND routed_at IS NULL",
                (now, event_id, owner),
            )
            if cur.rowcount == 0:
                return False
            self._insert_deliveries(con, deliveries)
            return True

    def add_deliveries(self, deliveries: Sequence[DeliveryRecord]) -> None:
        if deliveries:
            with self._write() as con:
                self._insert_deliveries(con, deliveries)

    def claim_deliveries(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[DeliveryRecord]:
        with self._write() as con:
            rows = con.execute(
                "UPDATE deliveries SET lease_owner = ?, lease_expires_at = ? WHERE id IN ("
                "  SELECT id FROM deliveries WHERE status = 'PENDING' AND next_attempt_at <= ?"
                "  AND (lease_expires_at IS NULL OR lease_expires_at < ?)"
                "  ORDER BY next_attempt_at LIMIT ?) RETURNING *",
                (owner, now + lease_seconds, now, now, limit),
            ).fetchall()
        return sorted((_delivery(r) for r in rows), key=lambda d: d.next_attempt_at)

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
        with self._write() as con:
            cur = con.execute(
                "UPDATE deliveries SET status = :status, attempts = attempts + 1, "
                "next_attempt_at = COALESCE(:next, next_attempt_at), last_error = :error, "
                "delivered_at = CASE WHEN :status = 'DELIVERED' THEN :now ELSE delivered_at END, "
                "updated_at = :now, lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = :id AND lease_owner = :owner",
                {
                    "status": status,
                    "next": next_attempt_at,
                    "error": None if error is None else _dumps(error),
                    "now": now,
                    "id": delivery_id,
                    "owner": owner,
                },
            )
            return cur.rowcount > 0

    def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        rows = self._read("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return _delivery(rows[0]) if rows else None

    def list_deliveries(
        self, principal: str, *, status: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        where, args = "principal = ?", [principal]
        if status is not None:
            where += " AND status = ?"
            args.append(status)
        rows = self._read(
            f"SELECT * FROM deliveries WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*args, limit),
        )
        return [_delivery(r) for r in rows]

    def redrive_delivery(self, principal: str, delivery_id: str, now: float) -> bool:
        with self._write() as con:
            cur = con.execute(
                "UPDATE deliveries SET status = 'PENDING', attempts = 0, next_attempt_at = ?, "
                "last_error = NULL, updated_at = ? "
                "WHERE id = ? AND principal = ? AND status = 'DEAD'",
                (now, now, delivery_id, principal),
            )
            return cur.rowcount > 0
