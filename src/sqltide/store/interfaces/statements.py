"""Statements: submitted SQL, its sub-statements, leases, cancels, recovery and retention."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from ..records import SessionRecord, StatementFilter, StatementRecord


class StatementStore(abc.ABC):
    """A statement's life: SUBMITTED → PICKED (leased) → STARTED → FINISHED/FAILED/ABORTED."""

    #: How long results are kept (a statement status event says when they expire).
    result_retention_seconds: float = 86_400.0

    @abc.abstractmethod
    def create_statement(
        self,
        statement: StatementRecord,
        sub_statements: Sequence[StatementRecord] = (),
        *,
        new_session: SessionRecord | None = None,
        max_active: int | None = None,
        now: float,
    ) -> tuple[StatementRecord, bool]:
        """Record a statement (and its sub-statements, and a new session) at once.

        Returns ``(record, True)``, or ``(existing, False)`` when the principal already has a
        statement with this ``client_token``. Raises ``SessionNotFound`` / ``SessionBusy`` when
        ``statement.session_id`` names a session that is not open or is running a statement,
        and ``TooManyRequests`` when the principal has ``max_active`` unfinished statements.
        """

    @abc.abstractmethod
    def get_statement(self, statement_id: str) -> StatementRecord | None: ...

    @abc.abstractmethod
    def get_sub_statements(self, parent_id: str) -> list[StatementRecord]: ...

    @abc.abstractmethod
    def list_statements(self, flt: StatementFilter) -> list[StatementRecord]: ...

    @abc.abstractmethod
    def claim_statements(
        self, warehouses: Sequence[str], owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[StatementRecord]:
        """Move up to ``limit`` SUBMITTED statements to PICKED under ``owner``'s lease."""

    @abc.abstractmethod
    def start_statement(self, statement_id: str, owner: str, now: float) -> bool:
        """PICKED → STARTED if ``owner`` still holds it and no cancel was asked for."""

    @abc.abstractmethod
    def update_statement(self, statement_id: str, fields: dict[str, object]) -> None:
        """Write progress of a sub-statement (status, times, rows, result, error)."""

    @abc.abstractmethod
    def finish_statement(
        self, statement_id: str, owner: str, fields: dict[str, object], now: float
    ) -> bool:
        """Write a terminal state if ``owner`` still holds the lease; releases it.

        A statement submitted ``with_event`` gets its status change event written in the same
        transaction (so do the terminal changes :meth:`request_cancel` and
        :meth:`recover_statements` make).
        """

    @abc.abstractmethod
    def request_cancel(self, statement_id: str, now: float) -> StatementRecord:
        """SUBMITTED → ABORTED at once; PICKED/STARTED get ``cancel_requested``.

        Raises ``InvalidState`` for an ended statement.
        """

    @abc.abstractmethod
    def heartbeat(
        self, owner: str, statement_ids: Sequence[str], lease_until: float, now: float
    ) -> list[str]:
        """Extend ``owner``'s leases; returns the ids whose cancel was requested."""

    @abc.abstractmethod
    def recover_statements(
        self, now: float, *, orphaned_warehouses: Sequence[str] = (), owner: str = ""
    ) -> list[StatementRecord]:
        """Settle statements whose worker is gone.

        A statement is orphaned when its lease expired, or when it is in one of
        ``orphaned_warehouses`` (warehouses only ``owner`` can host) and held by someone else.
        PICKED ones go back to SUBMITTED; STARTED ones end FAILED with a "worker lost" error;
        PICKED ones that were asked to cancel end ABORTED. The sessions of the lost worker
        (those of the settled statements, and those it owns on ``orphaned_warehouses``) are
        closed and released, since their connections are gone. Returns the records as changed.
        """

    # -- retention -------------------------------------------------------------------------
    @abc.abstractmethod
    def statements_with_expired_results(
        self, ended_before: float, limit: int
    ) -> list[StatementRecord]: ...

    @abc.abstractmethod
    def mark_results_expired(self, statement_ids: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def delete_statements_ended_before(
        self, before: float, limit: int = 1000
    ) -> list[tuple[str, bool]]:
        """Drop up to ``limit`` finished statements (FINISHED, FAILED, ABORTED) that ended
        before ``before``, oldest first, with their sub-statements (record retention).

        Returns ``(id, result_expired)`` of each: the result files of those whose results
        were not expired yet are to be deleted too.
        """
