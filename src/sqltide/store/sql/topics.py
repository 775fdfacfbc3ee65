"""Notification topics and their subscriptions, written once for both dialects."""

from __future__ import annotations

from ..event_records import TopicRecord
from ..interfaces.topics import TopicStore
from . import base as codec
from .base import SqlHooks
from .rules import delete_named


class TopicsMixin(SqlHooks, TopicStore):
    """Topics (:class:`~sqltide.store.interfaces.topics.TopicStore`)."""

    def upsert_topic(self, topic: TopicRecord) -> bool:
        row = {
            "principal": topic.principal,
            "name": topic.name,
            "display_name": topic.display_name,
            "subscriptions": codec.dumps(topic.subscriptions),
            "created_at": topic.created_at,
            "updated_at": topic.updated_at,
        }
        sql = (
            f"INSERT INTO topics ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)}) "
            "ON CONFLICT (principal, name) DO UPDATE SET display_name = excluded.display_name, "
            "subscriptions = excluded.subscriptions, updated_at = excluded.updated_at"
        )
        exists = "SELECT 1 FROM topics WHERE principal = :principal AND name = :name"
        return self._tx("upsert_topic", lambda tx: self._upsert(tx, sql, row, exists))

    def get_topic(self, principal: str, name: str) -> TopicRecord | None:
        rows = self._rows(
            "get_topic", "SELECT * FROM topics WHERE principal = ? AND name = ?", (principal, name)
        )
        return codec.topic(rows[0]) if rows else None

    def list_topics(self, principal: str) -> list[TopicRecord]:
        rows = self._rows(
            "list_topics", "SELECT * FROM topics WHERE principal = ? ORDER BY name", (principal,)
        )
        return [codec.topic(r) for r in rows]

    def delete_topic(self, principal: str, name: str) -> bool:
        return self._tx("delete_topic", lambda tx: delete_named(tx, "topics", principal, name))
