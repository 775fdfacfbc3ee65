"""The one interface for durable state.

Everything sqltide must not lose lives behind :class:`Store`: statements and their leases,
sessions, API keys. Implementations: :class:`~sqltide.store.sqlite.SQLiteStore` (embedded
default). Each method is one transaction; a method that changes state and a method that reads
it may be called from any thread.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from .events import DeliveryRecord, EventRecord, RuleRecord, TopicRecord
from .notify import Notifier, Transport
from .records import (
    ApiKeyRecord,
    GrantRecord,
    SessionRecord,
    StatementFilter,
    StatementRecord,
)


class Store(abc.ABC):
    url: str
    #: True when every call is quick local I/O, so async code may call it on its event loop.
    fast_calls: bool = False
    #: How long results are kept (a statement status event says when they expire).
    result_retention_seconds: float = 86_400.0

    @abc.abstractmethod
    def __init__(self, url: str) -> None: ...

    def make_transport(self, notifier: Notifier) -> Transport | None:
        """What carries ``notifier``'s wake-ups to other processes (None: this one only)."""
        return None

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending numbered migrations; returns the names applied."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # -- meta ------------------------------------------------------------------------------
    @abc.abstractmethod
    def get_or_set_meta(self, key: str, value: str) -> str:
        """The stored value for ``key``, storing ``value`` first if there is none."""

    # -- API keys --------------------------------------------------------------------------
    @abc.abstractmethod
    def insert_api_key(self, key: ApiKeyRecord) -> None: ...

    @abc.abstractmethod
    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None: ...

    @abc.abstractmethod
    def list_api_keys(self) -> list[ApiKeyRecord]: ...

    @abc.abstractmethod
    def revoke_api_key(self, key_id: str, now: float) -> bool: ...

    # -- warehouse grants ------------------------------------------------------------------
    @abc.abstractmethod
    def upsert_grant(self, grant: GrantRecord) -> bool:
        """Grant a principal a warehouse, or change an existing grant's access and role (its
        ``created_at`` is kept); True when the grant is new."""

    @abc.abstractmethod
    def get_grant(self, principal: str, warehouse: str) -> GrantRecord | None: ...

    @abc.abstractmethod
    def list_grants(self, principal: str | None = None) -> list[GrantRecord]:
        """Grants by principal, then warehouse (every principal's when None)."""

    @abc.abstractmethod
    def delete_grant(self, principal: str, warehouse: str) -> bool:
        """Revoke a grant; False when there was none."""

    # -- statements ------------------------------------------------------------------------
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

    # -- events ----------------------------------------------------------------------------
    @abc.abstractmethod
    def put_events(self, events: Sequence[EventRecord]) -> None:
        """Record events (archive and outbox at once); an id already stored is left alone."""

    @abc.abstractmethod
    def list_events(
        self,
        principal: str,
        *,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> list[EventRecord]:
        """A principal's events by time (oldest first), ``after`` a (time, id) cursor."""

    @abc.abstractmethod
    def claim_events(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[EventRecord]:
        """Events not routed yet and not leased by a live router, oldest first."""

    @abc.abstractmethod
    def mark_events_routed(self, event_ids: Sequence[str], now: float) -> None: ...

    @abc.abstractmethod
    def delete_events_before(self, before: float, limit: int = 10_000) -> int:
        """Drop routed events whose time is before ``before`` (archive retention)."""

    @abc.abstractmethod
    def delete_deliveries_before(self, status: str, before: float, limit: int = 10_000) -> int:
        """Drop up to ``limit`` deliveries in ``status`` (``DELIVERED`` or ``DEAD``) last
        updated before ``before``; returns how many."""

    # -- rules, topics, deliveries -------------------------------------------------------------
    @abc.abstractmethod
    def upsert_rule(self, rule: RuleRecord) -> bool:
        """Create or replace the principal's rule of that name; True when it was new.

        Replacing keeps ``created_at`` and ``last_fired_at`` of the stored rule.
        """

    @abc.abstractmethod
    def get_rule(self, principal: str, name: str) -> RuleRecord | None: ...

    @abc.abstractmethod
    def list_rules(self, principal: str | None = None) -> list[RuleRecord]:
        """The principal's rules by name (every principal's when None: the bus and scheduler)."""

    @abc.abstractmethod
    def delete_rule(self, principal: str, name: str) -> bool: ...

    @abc.abstractmethod
    def record_firing(
        self, principal: str, name: str, fired_at: float, events: Sequence[EventRecord]
    ) -> bool:
        """Advance a schedule's ``last_fired_at`` to ``fired_at`` and write its events, in one
        transaction, only if ``last_fired_at`` was still before it (two schedulers firing the
        same moment: one wins). True for the winner."""

    @abc.abstractmethod
    def record_firings(
        self,
        firings: Sequence[tuple[str, str, float, Sequence[EventRecord]]],
        *,
        rule_versions: Sequence[float] | None = None,
    ) -> list[bool]:
        """:meth:`record_firing` for many ``(principal, name, fired_at, events)`` at once
        (a store may do them in one transaction); one result each, in order.

        ``rule_versions``, one per firing, is the rule's ``updated_at`` when the firing was
        worked out: a firing is then recorded only if its rule is still enabled with that
        ``updated_at``, so a scheduler that prepared it ahead of time never fires a rule
        disabled, changed or deleted since. A store must check it in the same transaction.
        """

    @abc.abstractmethod
    def upsert_topic(self, topic: TopicRecord) -> bool: ...

    @abc.abstractmethod
    def get_topic(self, principal: str, name: str) -> TopicRecord | None: ...

    @abc.abstractmethod
    def list_topics(self, principal: str) -> list[TopicRecord]: ...

    @abc.abstractmethod
    def delete_topic(self, principal: str, name: str) -> bool: ...

    @abc.abstractmethod
    def route_event(
        self, event_id: str, owner: str, deliveries: Sequence[DeliveryRecord], now: float
    ) -> bool:
        """Insert an event's deliveries (ids already stored are left alone) and mark it routed,
        in one transaction, if ``owner`` still leases it."""

    @abc.abstractmethod
    def add_deliveries(self, deliveries: Sequence[DeliveryRecord]) -> None:
        """Insert deliveries made by a delivery (a topic's fan-out to its subscriptions)."""

    @abc.abstractmethod
    def claim_deliveries(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[DeliveryRecord]:
        """PENDING deliveries that are due and not leased by a live deliverer, oldest first."""

    @abc.abstractmethod
    def finish_delivery(
        self,
        delivery_id: str,
        owner: str,
        *,
        status: str,
        now: float,
        next_attempt_at: float | None = None,
        error: dict[str, Any] | None = None,
    ) -> bool:
        """Record an attempt: DELIVERED, PENDING again (retry at ``next_attempt_at``) or DEAD.
        Counts the attempt and releases the lease; False if ``owner`` lost it."""

    @abc.abstractmethod
    def get_delivery(self, delivery_id: str) -> DeliveryRecord | None: ...

    @abc.abstractmethod
    def list_deliveries(
        self, principal: str, *, status: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        """Newest first; ``status="DEAD"`` is the dead-letter list."""

    @abc.abstractmethod
    def redrive_delivery(self, principal: str, delivery_id: str, now: float) -> bool:
        """A DEAD delivery back to PENDING, due now, its attempts reset."""

    # -- sessions --------------------------------------------------------------------------
    @abc.abstractmethod
    def get_session(self, session_id: str) -> SessionRecord | None: ...

    @abc.abstractmethod
    def expired_sessions(self, now: float) -> list[SessionRecord]:
        """Open sessions past their keep-alive with no unfinished statement."""

    @abc.abstractmethod
    def close_session(self, session_id: str, now: float) -> None: ...
