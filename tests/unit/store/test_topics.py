"""Notification topics and their subscriptions."""

from __future__ import annotations

from dataclasses import replace

from sqltide.store import Store

from .conftest import OTHER, T0, P, topic


def test_topics_crud_per_principal(store: Store) -> None:
    first = topic()
    assert store.upsert_topic(first) is True
    assert store.get_topic(P, "alerts") == first
    assert store.upsert_topic(topic("audit", subscriptions=[], display_name=None)) is True
    assert store.upsert_topic(topic("alerts", principal=OTHER)) is True

    changed = topic(created_at=T0 + 50, updated_at=T0 + 50, subscriptions=[], display_name=None)
    assert store.upsert_topic(changed) is False
    assert store.get_topic(P, "alerts") == replace(changed, created_at=T0)

    assert [t.name for t in store.list_topics(P)] == ["alerts", "audit"]
    assert [t.name for t in store.list_topics(OTHER)] == ["alerts"]
    assert store.list_topics("nobody") == []
    assert store.get_topic(OTHER, "audit") is None
    assert store.delete_topic(OTHER, "audit") is False

    assert store.delete_topic(P, "alerts") is True
    assert store.delete_topic(P, "alerts") is False
    assert store.get_topic(P, "alerts") is None
    assert store.get_topic(OTHER, "alerts") == topic(principal=OTHER)
    assert [t.name for t in store.list_topics(P)] == ["audit"]
