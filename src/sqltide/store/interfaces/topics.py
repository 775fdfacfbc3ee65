"""Notification topics and their subscriptions (e-mail, webhook, SNS)."""

from __future__ import annotations

import abc

from ..event_records import TopicRecord


class TopicStore(abc.ABC):
    """A principal's topics, by name."""

    @abc.abstractmethod
    def upsert_topic(self, topic: TopicRecord) -> bool: ...

    @abc.abstractmethod
    def get_topic(self, principal: str, name: str) -> TopicRecord | None: ...

    @abc.abstractmethod
    def list_topics(self, principal: str) -> list[TopicRecord]: ...

    @abc.abstractmethod
    def delete_topic(self, principal: str, name: str) -> bool: ...
