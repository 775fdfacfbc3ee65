"""The store's interface, one abstract class per kind of state.

Each module here says what a store must do for one concept; its logic, written once for both
dialects, is the module of the same name in ``store/sql/``, and its contract tests are
``tests/unit/store/test_<concept>.py``. :class:`~sqltide.store.base.Store` is all of them.
"""

from __future__ import annotations

from .deliveries import DeliveryStore
from .events import EventStore
from .executions import ExecutionStore
from .keys import KeyStore
from .meta import MetaStore
from .rules import RuleStore
from .sessions import SessionStore
from .statements import StatementStore
from .topics import TopicStore

__all__ = [
    "DeliveryStore",
    "EventStore",
    "ExecutionStore",
    "KeyStore",
    "MetaStore",
    "RuleStore",
    "SessionStore",
    "StatementStore",
    "TopicStore",
]
