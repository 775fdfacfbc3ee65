"""Rules: event patterns and schedules with their targets, and schedule firings."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from ..event_records import EventRecord, RuleRecord


class RuleStore(abc.ABC):
    """A principal's rules, by name, and the once-only record of a schedule's firings."""

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
