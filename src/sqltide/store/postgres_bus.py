"""The PostgreSQL store's event bus tables: events, rules and their firings, topics, deliveries.

:class:`_PostgresBusMixin` holds the half of :class:`~sqltide.store.postgres.PostgresStore`
that stores the event bus: the events archive and outbox, rules and schedule firings, topics,
and deliveries with their leases. ``postgres.py`` has the rest: the connection pool and the
retrying ``_call`` every method here runs in, migrations, statements, sessions and API keys. Its
module docstring says how each write here behaves when a lost connection makes it run again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from psycopg.rows import DictRow

from .events import DeliveryRecord, EventRecord, RuleRecord, TopicRecord

if TYPE_CHECKING:
    from .postgres import Cursor, T


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json_or_none(value: Any) -> str | None:
    return None if value is None else _json(value)


def _loads_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


#: Columns a replaced rule keeps from the stored one.
_RULE_KEPT = ("principal", "name", "created_at", "last_fired_at")


def _rule_row(rule: RuleRecord) -> dict[str, Any]:
    row = asdict(rule)
    row["event_pattern"] = _json_or_none(rule.event_pattern)
    row["targets"] = _json(rule.targets)
    return row


def _rule(row: DictRow) -> RuleRecord:
    return RuleRecord(
        **{
            **row,
            "event_pattern": _loads_or_none(row["event_pattern"]),
            "targets": json.loads(row["targets"]),
        }
    )


def _topic_row(topic: TopicRecord) -> dict[str, Any]:
    row = asdict(topic)
    row["subscriptions"] = _json(topic.subscriptions)
    return row


def _topic(row: DictRow) -> TopicRecord:
    return TopicRecord(**{**row, "subscriptions": json.loads(row["subscriptions"])})


def _delivery_row(delivery: DeliveryRecord) -> dict[str, Any]:
    row = asdict(delivery)
    row["target"] = _json(delivery.target)
    row["payload"] = _json(delivery.payload)
    row["last_error"] = _json_or_none(delivery.last_error)
    return row


def _delivery(row: DictRow) -> DeliveryRecord:
    return DeliveryRecord(
        id=row["id"],
        principal=row["principal"],
        event_id=row["event_id"],
        rule_name=row["rule_name"],
        target_id=row["target_id"],
        target=json.loads(row["target"]),
        payload=json.loads(row["payload"]),
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_error=_loads_or_none(row["last_error"]),
        delivered_at=row["delivered_at"],
    )


class _PostgresBusMixin:
    """Event bus storage for :class:`~sqltide.store.postgres.PostgresStore`."""

    if TYPE_CHECKING:
        # Provided by PostgresStore (postgres.py).
        def _call(self, name: str, fn: Callable[[Cursor, bool], T]) -> T: ...

        def _read(
            self, name: str, sql: str, params: Sequence[Any] | dict[str, Any] = ()
        ) -> list[DictRow]: ...

    # -- events --------------------------------------------------------------------------------
    @staticmethod
    def _insert_events(cur: Cursor, events: Sequence[EventRecord]) -> None:
        cur.executemany(
            "INSERT INTO events (id, principal, source, detail_type, time, body, depth, "
            "created_at, routed_at) VALUES (%(id)s, %(principal)s, %(source)s, "
            "%(detail_type)s, %(time)s, %(body)s, %(depth)s, %(created_at)s, %(routed_at)s) "
            "ON CONFLICT (id) DO NOTHING",
            [e.to_row() for e in events],
        )

    def put_events(self, events: Sequence[EventRecord]) -> None:
        if events:
            # ON CONFLICT DO NOTHING makes a retry after a lost commit harmless
            self._call("put_events", lambda cur, _: self._insert_events(cur, events))

    def list_events(
        self,
        principal: str,
        *,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> list[EventRecord]:
        where = ["principal = %(principal)s"]
        params: dict[str, Any] = {"principal": principal, "limit": limit}
        if start is not None:
            where.append("time >= %(start)s")
            params["start"] = start
        if end is not None:
            where.append("time < %(end)s")
            params["end"] = end
        if after is not None:
            where.append("(time, id) > (%(cur_t)s, %(cur_id)s)")
            params.update(cur_t=after[0], cur_id=after[1])
        rows = self._read(
            "list_events",
            f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY time, id LIMIT %(limit)s",
            params,
        )
        return [EventRecord.from_row(r) for r in rows]

    def claim_events(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[EventRecord]:
        def run(cur: Cursor, _retried: bool) -> list[EventRecord]:
            rows = cur.execute(
                "UPDATE events SET lease_owner = %(owner)s, lease_expires_at = %(until)s "
                "WHERE id IN (SELECT id FROM events WHERE routed_at IS NULL "
                "AND (lease_expires_at IS NULL OR lease_expires_at < %(now)s) "
                "ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT %(limit)s) RETURNING *",
                {"owner": owner, "until": now + lease_seconds, "now": now, "limit": limit},
            ).fetchall()
            return sorted((EventRecord.from_row(r) for r in rows), key=lambda e: e.created_at)

        return self._call("claim_events", run)

    def delete_events_before(self, before: float, limit: int = 10_000) -> int:
        def run(cur: Cursor, _retried: bool) -> int:
            cur.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < %s "
                "AND routed_at IS NOT NULL LIMIT %s)",
                (before, limit),
            )
            return cur.rowcount

        return self._call("delete_events_before", run)

    def delete_deliveries_before(self, status: str, before: float, limit: int = 10_000) -> int:
        def run(cur: Cursor, _retried: bool) -> int:
            cur.execute(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE status = %s "
                "AND status <> 'PENDING' AND updated_at < %s LIMIT %s)",
                (status, before, limit),
            )
            return cur.rowcount

        return self._call("delete_deliveries_before", run)

    def mark_events_routed(self, event_ids: Sequence[str], now: float) -> None:
        if not event_ids:
            return
        self._call(
            "mark_events_routed",
            lambda cur, _: cur.execute(
                "UPDATE events SET routed_at = %s, lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = ANY(%s)",
                (now, list(event_ids)),
            ),
        )

    # -- rules, topics, deliveries -------------------------------------------------------------
    def upsert_rule(self, rule: RuleRecord) -> bool:
        row = _rule_row(rule)
        updates = ", ".join(f"{k} = EXCLUDED.{k}" for k in row if k not in _RULE_KEPT)

        def run(cur: Cursor, retried: bool) -> bool:
            got = cur.execute(
                f"INSERT INTO rules ({', '.join(row)}) "
                f"VALUES ({', '.join(f'%({k})s' for k in row)}) "
                f"ON CONFLICT (principal, name) DO UPDATE SET {updates} "
                "RETURNING (xmax = 0) AS inserted, created_at",
                row,
            ).fetchone()
            assert got is not None
            if got["inserted"]:
                return True
            # Created by our own first attempt? Then the stored row carries our created_at (a
            # replace keeps the older one; callers stamp a new record's created_at with now).
            return retried and got["created_at"] == rule.created_at

        return self._call("upsert_rule", run)

    def get_rule(self, principal: str, name: str) -> RuleRecord | None:
        rows = self._read(
            "get_rule",
            "SELECT * FROM rules WHERE principal = %s AND name = %s",
            (principal, name),
        )
        return _rule(rows[0]) if rows else None

    def list_rules(self, principal: str | None = None) -> list[RuleRecord]:
        if principal is None:
            rows = self._read("list_rules", "SELECT * FROM rules ORDER BY principal, name")
        else:
            rows = self._read(
                "list_rules",
                "SELECT * FROM rules WHERE principal = %s ORDER BY name",
                (principal,),
            )
        return [_rule(r) for r in rows]

    def delete_rule(self, principal: str, name: str) -> bool:
        return self._delete("delete_rule", "rules", principal, name)

    def _delete(self, call: str, table: str, principal: str, name: str) -> bool:
        def run(cur: Cursor, retried: bool) -> bool:
            cur.execute(
                f"DELETE FROM {table} WHERE principal = %s AND name = %s", (principal, name)
            )
            # Gone on a retry: most likely deleted by our own first attempt, and either way
            # what the caller asked for holds.
            return cur.rowcount > 0 or retried

        return self._call(call, run)

    def record_firing(
        self, principal: str, name: str, fired_at: float, events: Sequence[EventRecord]
    ) -> bool:
        def run(cur: Cursor, retried: bool) -> bool:
            # The row lock the UPDATE takes makes two schedulers firing at once take turns; the
            # second then sees the first one's last_fired_at and changes nothing.
            cur.execute(
                "UPDATE rules SET last_fired_at = %(at)s WHERE principal = %(principal)s "
                "AND name = %(name)s AND (last_fired_at IS NULL OR last_fired_at < %(at)s)",
                {"at": fired_at, "principal": principal, "name": name},
            )
            if cur.rowcount > 0:
                if events:
                    self._insert_events(cur, events)
                return True
            if retried and events:  # fired by our own first attempt: its events are stored
                return (
                    cur.execute("SELECT 1 FROM events WHERE id = %s", (events[0].id,)).fetchone()
                    is not None
                )
            return False

        return self._call("record_firing", run)

    def record_firings(
        self,
        firings: Sequence[tuple[str, str, float, Sequence[EventRecord]]],
        *,
        rule_versions: Sequence[float] | None = None,
    ) -> list[bool]:
        sql = (
            "UPDATE rules SET last_fired_at = %s WHERE principal = %s AND name = %s "
            "AND (last_fired_at IS NULL OR last_fired_at < %s)"
        )
        params: list[tuple[Any, ...]]
        if rule_versions is None:
            params = [(at, principal, name, at) for principal, name, at, _ in firings]
        else:
            sql += " AND updated_at = %s AND state = 'ENABLED'"
            params = [
                (at, principal, name, at, version)
                for (principal, name, at, _), version in zip(firings, rule_versions, strict=True)
            ]

        def run(cur: Cursor, retried: bool) -> list[bool]:
            # Pipelined: the updates run one by one, in order, as the loop of record_firing
            # would, without a round trip each (10,000 firings on loopback: 0.5 s, not 3.4 s).
            cur.executemany(sql + " RETURNING 1", params, returning=True)
            won = []
            while True:
                won.append(cur.fetchone() is not None)
                if not cur.nextset():
                    break
            if retried:
                # Our first attempt may have committed and lost only its answer: a firing whose
                # event is stored was recorded by it.
                first = {
                    i: events[0].id
                    for i, (_, _, _, events) in enumerate(firings)
                    if events and not won[i]
                }
                if first:
                    rows = cur.execute(
                        "SELECT id FROM events WHERE id = ANY(%s)", (list(first.values()),)
                    ).fetchall()
                    stored = {row["id"] for row in rows}
                    for i, event_id in first.items():
                        won[i] = event_id in stored
            events = [e for (_, _, _, evs), ok in zip(firings, won, strict=True) if ok for e in evs]
            if events:
                self._insert_events(cur, events)
            return won

        if not firings:
            return []
        return self._call("record_firings", run)

    def upsert_topic(self, topic: TopicRecord) -> bool:
        row = _topic_row(topic)
        updates = ", ".join(
            f"{k} = EXCLUDED.{k}" for k in row if k not in ("principal", "name", "created_at")
        )

        def run(cur: Cursor, retried: bool) -> bool:
            got = cur.execute(
                f"INSERT INTO topics ({', '.join(row)}) "
                f"VALUES ({', '.join(f'%({k})s' for k in row)}) "
                f"ON CONFLICT (principal, name) DO UPDATE SET {updates} "
                "RETURNING (xmax = 0) AS inserted, created_at",
                row,
            ).fetchone()
            assert got is not None
            if got["inserted"]:
                return True
            return retried and got["created_at"] == topic.created_at  # see upsert_rule

        return self._call("upsert_topic", run)

    def get_topic(self, principal: str, name: str) -> TopicRecord | None:
        rows = self._read(
            "get_topic",
            "SELECT * FROM topics WHERE principal = %s AND name = %s",
            (principal, name),
        )
        return _topic(rows[0]) if rows else None

    def list_topics(self, principal: str) -> list[TopicRecord]:
        rows = self._read(
            "list_topics", "SELECT * FROM topics WHERE principal = %s ORDER BY name", (principal,)
        )
        return [_topic(r) for r in rows]

    def delete_topic(self, principal: str, name: str) -> bool:
        return self._delete("delete_topic", "topics", principal, name)

    def route_event(
        self, event_id: str, owner: str, deliveries: Sequence[DeliveryRecord], now: float
    ) -> bool:
        def run(cur: Cursor, retried: bool) -> bool:
            cur.execute(
                "UPDATE events SET routed_at = %s, lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = %s AND lease_owner = %s",
                (now, event_id, owner),
            )
            if cur.rowcount > 0:
                self._insert_deliveries(cur, deliveries)
                return True
            if retried:  # routed by our own first attempt?
                row = cur.execute(
                    "SELECT routed_at FROM events WHERE id = %s", (event_id,)
                ).fetchone()
                return row is not None and row["routed_at"] == now
            return False

        return self._call("route_event", run)

    @staticmethod
    def _insert_deliveries(cur: Cursor, deliveries: Sequence[DeliveryRecord]) -> None:
        if not deliveries:
            return
        rows = [_delivery_row(d) for d in deliveries]
        cols = list(rows[0])
        cur.executemany(
            f"INSERT INTO deliveries ({', '.join(cols)}) "
            f"VALUES ({', '.join(f'%({k})s' for k in cols)}) ON CONFLICT (id) DO NOTHING",
            rows,
        )

    def add_deliveries(self, deliveries: Sequence[DeliveryRecord]) -> None:
        if deliveries:
            # ON CONFLICT DO NOTHING makes a retry after a lost commit harmless
            self._call("add_deliveries", lambda cur, _: self._insert_deliveries(cur, deliveries))

    def claim_deliveries(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[DeliveryRecord]:
        if limit <= 0:
            return []

        # Not checked on retry (like claim_statements): what a lost first attempt leased comes
        # back when its lease runs out.
        def run(cur: Cursor, _retried: bool) -> list[DeliveryRecord]:
            rows = cur.execute(
                "UPDATE deliveries SET lease_owner = %(owner)s, lease_expires_at = %(until)s "
                "WHERE id IN (SELECT id FROM deliveries WHERE status = 'PENDING' "
                "AND next_attempt_at <= %(now)s "
                "AND (lease_expires_at IS NULL OR lease_expires_at < %(now)s) "
                "ORDER BY next_attempt_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
                "RETURNING *",
                {"owner": owner, "until": now + lease_seconds, "now": now, "limit": limit},
            ).fetchall()
            return [_delivery(r) for r in rows]

        claimed = self._call("claim_deliveries", run)
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
            "last_error": _json_or_none(error),
            "delivered_at": now if status == "DELIVERED" else None,
            "updated_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if next_attempt_at is not None:
            row["next_attempt_at"] = next_attempt_at

        def run(cur: Cursor, retried: bool) -> bool:
            cur.execute(
                f"UPDATE deliveries SET attempts = attempts + 1, "
                f"{', '.join(f'{k} = %({k})s' for k in row)} "
                "WHERE id = %(_id)s AND lease_owner = %(_owner)s AND status = 'PENDING'",
                {**row, "_id": delivery_id, "_owner": owner},
            )
            if cur.rowcount > 0:
                return True
            if retried:  # finished by our own first attempt: the row holds exactly our fields
                got = cur.execute(
                    "SELECT * FROM deliveries WHERE id = %s", (delivery_id,)
                ).fetchone()
                return got is not None and all(got[k] == v for k, v in row.items())
            return False

        return self._call("finish_delivery", run)

    def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        rows = self._read("get_delivery", "SELECT * FROM deliveries WHERE id = %s", (delivery_id,))
        return _delivery(rows[0]) if rows else None

    def list_deliveries(
        self, principal: str, *, status: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        where = ["principal = %(principal)s"]
        params: dict[str, Any] = {"principal": principal, "limit": limit}
        if status is not None:
            where.append("status = %(status)s")
            params["status"] = status
        rows = self._read(
            "list_deliveries",
            f"SELECT * FROM deliveries WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            params,
        )
        return [_delivery(r) for r in rows]

    def redrive_delivery(self, principal: str, delivery_id: str, now: float) -> bool:
        def run(cur: Cursor, retried: bool) -> bool:
            cur.execute(
                "UPDATE deliveries SET status = 'PENDING', attempts = 0, "
                "next_attempt_at = %(now)s, last_error = NULL, updated_at = %(now)s, "
                "lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = %(id)s AND principal = %(principal)s AND status = 'DEAD'",
                {"now": now, "id": delivery_id, "principal": principal},
            )
            if cur.rowcount > 0:
                return True
            if retried:  # redriven by our own first attempt (and not attempted since)?
                return (
                    cur.execute(
                        "SELECT 1 FROM deliveries WHERE id = %s AND principal = %s "
                        "AND status = 'PENDING' AND attempts = 0 AND updated_at = %s",
                        (delivery_id, principal, now),
                    ).fetchone()
                    is not None
                )
            return False

        return self._call("redrive_delivery", run)
