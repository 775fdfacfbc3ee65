"""The store's logic, written once: one mixin per concept over a small hook interface.

Each mixin implements the interface of the same name in ``store/interfaces/``.
:class:`SqlStore` composes them; :class:`~sqltide.store.sqlite.SQLiteStore` and
:class:`~sqltide.store.postgres.PostgresStore` add connections, transactions, migrations and
the hooks of :class:`~sqltide.store.sql.base.SqlHooks`. A new kind of state (workflow
executions, bulk jobs) is a new interface module there, a new mixin module here added to
:class:`SqlStore`, and a migration per dialect.
"""

from __future__ import annotations

from ..base import Store
from .deliveries import DeliveriesMixin
from .events import EventsMixin
from .executions import ExecutionsMixin
from .keys import KeysMixin
from .meta import MetaMixin
from .rules import RulesMixin
from .statements import StatementsMixin
from .topics import TopicsMixin


class SqlStore(
    MetaMixin,
    KeysMixin,
    StatementsMixin,
    EventsMixin,
    RulesMixin,
    TopicsMixin,
    DeliveriesMixin,
    ExecutionsMixin,
    Store,
):
    """Every :class:`~sqltide.store.base.Store` method but connections and migrations."""


__all__ = ["SqlStore"]
