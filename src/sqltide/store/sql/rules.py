"""Rules and schedule firings, written once for both dialects.

A schedule firing is recorded by moving the rule's ``last_fired_at`` forward and writing its
events in one transaction, only if ``last_fired_at`` was still before it: two schedulers firing
the same moment both try, one wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from operator import attrgetter
from typing import Any

from ..event_records import EventRecord, RuleRecord
from ..interfaces.rules import RuleStore
from . import base as codec
from .base import SqlHooks, Tx, insert_events

#: Columns a replaced rule keeps from the stored one.
_RULE_KEPT = ("principal", "name", "created_at", "last_fired_at")
_FIRE = (
    "UPDATE rules SET last_fired_at = ? WHERE principal = ? AND name = ? "
    "AND (last_fired_at IS NULL OR last_fired_at < ?)"
)
_event_id = attrgetter("id")


def _rule_row(rule: RuleRecord) -> dict[str, Any]:
    row = asdict(rule)
    row["event_pattern"] = codec.dumps_or_none(rule.event_pattern)
    row["targets"] = codec.dumps(rule.targets)
    return row


class RulesMixin(SqlHooks, RuleStore):
    """Rules and their firings (:class:`~sqltide.store.interfaces.rules.RuleStore`)."""

    def upsert_rule(self, rule: RuleRecord) -> bool:
        row = _rule_row(rule)
        updates = ", ".join(f"{k} = excluded.{k}" for k in row if k not in _RULE_KEPT)
        sql = (
            f"INSERT INTO rules ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)}) "
            f"ON CONFLICT (principal, name) DO UPDATE SET {updates}"
        )
        exists = "SELECT 1 FROM rules WHERE principal = :principal AND name = :name"
        return self._tx("upsert_rule", lambda tx: self._upsert(tx, sql, row, exists))

    def get_rule(self, principal: str, name: str) -> RuleRecord | None:
        rows = self._rows(
            "get_rule", "SELECT * FROM rules WHERE principal = ? AND name = ?", (principal, name)
        )
        return codec.rule(rows[0]) if rows else None

    def list_rules(self, principal: str | None = None) -> list[RuleRecord]:
        if principal is None:
            rows = self._rows("list_rules", "SELECT * FROM rules ORDER BY principal, name")
        else:
            rows = self._rows(
                "list_rules", "SELECT * FROM rules WHERE principal = ? ORDER BY name", (principal,)
            )
        return [codec.rule(r) for r in rows]

    def delete_rule(self, principal: str, name: str) -> bool:
        return self._tx("delete_rule", lambda tx: delete_named(tx, "rules", principal, name))

    def record_firing(
        self, principal: str, name: str, fired_at: float, events: Sequence[EventRecord]
    ) -> bool:
        def run(tx: Tx) -> bool:
            # The row lock the UPDATE takes makes two schedulers firing at once take turns; the
            # second then sees the first one's last_fired_at and changes nothing.
            if tx.execute(_FIRE, (fired_at, principal, name, fired_at)).rowcount > 0:
                insert_events(tx, events)
                return True
            if tx.retried and events:  # fired by our own first attempt: its events are stored
                return tx.one("SELECT 1 FROM events WHERE id = ?", (events[0].id,)) is not None
            return False

        return self._tx("record_firing", run)

    def record_firings(
        self,
        firings: Sequence[tuple[str, str, float, Sequence[EventRecord]]],
        *,
        rule_versions: Sequence[float] | None = None,
    ) -> list[bool]:
        if not firings:
            return []
        sql = _FIRE
        params: list[tuple[Any, ...]]
        if rule_versions is None:
            params = [(at, principal, name, at) for principal, name, at, _ in firings]
        else:
            sql += " AND updated_at = ? AND state = 'ENABLED'"
            params = [
                (at, principal, name, at, version)
                for (principal, name, at, _), version in zip(firings, rule_versions, strict=True)
            ]

        def run(tx: Tx) -> list[bool]:
            won = self._update_each(tx, sql, params)
            if tx.retried:
                # Our first attempt may have committed and lost only its answer: a firing whose
                # event is stored was recorded by it.
                first = {
                    i: events[0].id
                    for i, (_, _, _, events) in enumerate(firings)
                    if events and not won[i]
                }
                if first:
                    rows = tx.execute(
                        "SELECT id FROM events WHERE id IN (:ids)", {"ids": list(first.values())}
                    ).fetchall()
                    stored = {row["id"] for row in rows}
                    for i, event_id in first.items():
                        won[i] = event_id in stored
            events = [e for (_, _, _, evs), ok in zip(firings, won, strict=True) if ok for e in evs]
            # One batch, in id order: the ids are random (uuid5), and inserting them sorted
            # walks the id indexes once instead of jumping around.
            events.sort(key=_event_id)
            insert_events(tx, events)
            return won

        return self._tx("record_firings", run)


def delete_named(tx: Tx, table: str, principal: str, name: str) -> bool:
    """Delete a principal's row of that name (a rule or a topic)."""
    cur = tx.execute(f"DELETE FROM {table} WHERE principal = ? AND name = ?", (principal, name))
    # Gone on a retry: most likely deleted by our own first attempt, and either way what the
    # caller asked for holds.
    return cur.rowcount > 0 or tx.retried
