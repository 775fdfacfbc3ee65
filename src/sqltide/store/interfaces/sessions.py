"""Sessions: a warehouse connection kept for a principal between statements.

A session is opened with its first statement (:meth:`StatementStore.create_statement
<sqltide.store.interfaces.statements.StatementStore.create_statement>`); its checks (open, idle,
same principal and warehouse) run there.
"""

from __future__ import annotations

import abc

from ..records import SessionRecord


class SessionStore(abc.ABC):
    """Reading, expiring and closing sessions."""

    @abc.abstractmethod
    def get_session(self, session_id: str) -> SessionRecord | None: ...

    @abc.abstractmethod
    def expired_sessions(self, now: float) -> list[SessionRecord]:
        """Open sessions past their keep-alive with no unfinished statement."""

    @abc.abstractmethod
    def close_session(self, session_id: str, now: float) -> None: ...
