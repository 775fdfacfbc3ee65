"""Sessions: a warehouse connection kept for a principal between statements.

A session is opened with its first statement (:meth:`StatementStore.create_statement
<sqltide.store.interfaces.statements.StatementStore.create_statement>`); its checks (open, idle,
same principal and warehouse) run there.
"""

from __future__ import annotations

import abc

from ..records import SessionFilter, SessionRecord


class SessionStore(abc.ABC):
    """Reading, expiring and closing sessions."""

    @abc.abstractmethod
    def get_session(self, session_id: str) -> SessionRecord | None: ...

    @abc.abstractmethod
    def expired_sessions(self, now: float) -> list[SessionRecord]:
        """Open sessions past their keep-alive with no unfinished statement."""

    @abc.abstractmethod
    def close_session(self, session_id: str, now: float) -> None: ...

    @abc.abstractmethod
    def list_sessions(self, flt: SessionFilter) -> list[tuple[SessionRecord, str | None]]:
        """A principal's sessions in the filter's states, newest first, each with the id of
        the statement running in it (None when it is idle)."""
