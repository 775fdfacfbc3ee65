"""The one interface for durable state, composed of one interface per kind of state.

Everything sqltide must not lose lives behind :class:`Store`: statements and their leases,
sessions, API keys and grants, events, rules, topics, deliveries, and workflow executions
with their checkpoints and history. Each kind's methods are declared in its own module of
``store/interfaces/``; implementations:
:class:`~sqltide.store.sqlite.SQLiteStore` (embedded default) and
:class:`~sqltide.store.postgres.PostgresStore`. Each method is one transaction; a method that
changes state and a method that reads it may be called from any thread.
"""

from __future__ import annotations

from .interfaces import (
    DeliveryStore,
    EventStore,
    ExecutionStore,
    KeyStore,
    MetaStore,
    RuleStore,
    SessionStore,
    StatementStore,
    TopicStore,
)


class Store(
    MetaStore,
    KeyStore,
    SessionStore,
    StatementStore,
    EventStore,
    RuleStore,
    TopicStore,
    DeliveryStore,
    ExecutionStore,
):
    """Every kind of state at once: what the services are given.

    A new kind of state adds its interface here (one base), its mixin to
    :class:`~sqltide.store.sql.SqlStore`, and a migration per dialect.
    """
