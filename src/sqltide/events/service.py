"""Events, rules and topics: what callers put, define and inspect.

Recording only: routing events to rules and delivering to targets is the bus's job
(``sqltide.events.bus``), run by workers. Every record is scoped to its principal: a rule sees
only its own principal's events, and another principal's rule or topic answers like an unknown
one.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from .. import errors
from ..cursors import ListCursors
from ..errors import DeliveryNotFound, InvalidRule, RuleNotFound, TopicNotFound
from ..store import Store
from ..store.event_records import (
    MAX_EVENT_BYTES,
    DeliveryRecord,
    EventRecord,
    RuleRecord,
    TopicRecord,
    envelope,
)
from ..store.wakeups import Notifier
from ..validation import MAX_DEFINITION_BYTES, MAX_JSON_DEPTH, check_json_value, check_text
from .models import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    MAX_ENTRIES,
    NAME_RULE,
    EventEntry,
    MissedPolicy,
    Problem,
    RuleState,
    dotted,
    is_name,
    rule_problems,
    topic_problems,
    validated,
)

if TYPE_CHECKING:
    from ..grants import Grants
    from ..notify.netguard import NetworkGuard

#: How secrets are shown; sent back unchanged, it means "keep the stored secret".
MASK = "***"


def _bad(cls: type[errors.SqltideError], where: str, reason: str) -> errors.SqltideError:
    return cls(f"{where}: {reason}", details={"path": where, "reason": reason})


def _first(cls: type[errors.SqltideError], where: str, problem: Problem) -> errors.SqltideError:
    """The error for a model's first problem with the rule, topic or entry at ``where``."""
    return _bad(cls, dotted(problem.loc, where), problem.reason)


class EventService:
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        warehouses: Collection[str],
        clock: Callable[[], float] = time.time,
        *,
        max_json_depth: int = MAX_JSON_DEPTH,
        guard: NetworkGuard | None = None,
        grants: Grants | None = None,
        cursors: ListCursors | None = None,
    ):
        self.store = store
        #: Signs the events list's cursors (the runtime shares the statements' signer).
        self.cursors = cursors or ListCursors()
        self.notifier = notifier
        self.warehouses = list(warehouses)
        self.clock = clock
        if guard is None:
            from ..notify.netguard import NetworkGuard

            guard = NetworkGuard.from_env()
        #: Where webhook targets and subscriptions may point (see notify/netguard.py).
        self.guard = guard
        #: Deepest nesting of any JSON a caller gives (event detail, pattern, input…).
        self.max_json_depth = max_json_depth
        #: Which warehouses a rule's owner may name in a SQL target (None: any configured).
        self.grants = grants

    # -- events --------------------------------------------------------------------------------
    def put_events(
        self, principal: str, entries: list[dict[str, Any]], *, depth: int = 0
    ) -> list[dict[str, Any]]:
        """PutEvents: record each valid entry; answer one result per entry, in order (an
        entry that is not valid gets an error code and message and is not recorded).

        ``depth`` is set by the bus for events put by a rule's target (loop protection).
        """
        if not 1 <= len(entries) <= MAX_ENTRIES:
            raise errors.InvalidRequest(f"put 1 to {MAX_ENTRIES} events at a time")
        now = self.clock()
        results: list[dict[str, Any]] = []
        records: list[EventRecord] = []
        for n, entry in enumerate(entries):
            try:
                rec = self._event_from_entry(principal, entry, now, f"entries[{n}]", depth)
            except errors.SqltideError as exc:
                results.append({"error_code": exc.code, "error_message": exc.message})
                continue
            records.append(rec)
            results.append({"event_id": rec.id})
        self.store.put_events(records)
        if records:
            self.notifier.publish("events", principal)
        return results

    def _event_from_entry(
        self, principal: str, entry: Any, now: float, where: str, depth: int
    ) -> EventRecord:
        """The event ``entry`` describes, judged by its model and this server's limits."""
        checked, problems = validated(EventEntry, entry)
        if checked is None:
            raise _first(errors.UnprocessableEntity, where, problems[0])
        detail = checked.detail
        check_json_value(detail, where=f"{where}.detail", max_depth=self.max_json_depth)
        when = now if checked.time is None else checked.time
        event_id = str(uuid.uuid4())
        body = envelope(
            source=checked.source,
            detail_type=checked.detail_type,
            detail=detail,
            time=when,
            resources=checked.resources,
            event_id=event_id,
        )
        size = len(json.dumps(body, separators=(",", ":")).encode())
        if size > MAX_EVENT_BYTES:
            raise errors.PayloadTooLarge(
                f"{where}: the event is {size} bytes; the limit is {MAX_EVENT_BYTES}",
                details={"path": where, "size": size, "limit": MAX_EVENT_BYTES},
            )
        return EventRecord(
            id=event_id,
            principal=principal,
            source=checked.source,
            detail_type=checked.detail_type,
            time=when,
            body=body,
            created_at=now,
            depth=depth,
        )

    def list_events(
        self,
        principal: str,
        *,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> list[EventRecord]:
        return self.store.list_events(principal, start=start, end=end, limit=limit, after=after)

    def replay(
        self, principal: str, *, start: float, end: float, name: str | None = None
    ) -> tuple[str, int]:
        """Put the archived events of [start, end) on the bus again, as new events.

        Each copy keeps its source, detail-type, time and detail, gets a new id and a
        ``replay-name`` field (as EventBridge's replays do), and is routed to today's rules.
        Replaying the same name twice is harmless: copies' ids derive from (name, original).
        Returns the replay's name and how many events it put.
        """
        if end <= start:
            raise errors.UnprocessableEntity("replay end must be after its start")
        replay_name = name or f"replay-{uuid.uuid4().hex[:12]}"
        if not is_name(replay_name):
            raise _bad(errors.UnprocessableEntity, "name", NAME_RULE)
        now = self.clock()
        count = 0
        after: tuple[float, str] | None = None
        while True:
            page = self.store.list_events(principal, start=start, end=end, limit=500, after=after)
            if not page:
                break
            copies = []
            for original in page:
                if "replay-name" in original.body:
                    continue  # a copy from an earlier replay is not replayed again
                copy_id = str(
                    uuid.uuid5(uuid.NAMESPACE_URL, f"sqltide:replay:{replay_name}:{original.id}")
                )
                body = {**original.body, "id": copy_id, "replay-name": replay_name}
                copies.append(
                    EventRecord(
                        id=copy_id,
                        principal=principal,
                        source=original.source,
                        detail_type=original.detail_type,
                        time=original.time,
                        body=body,
                        created_at=now,
                    )
                )
            self.store.put_events(copies)
            count += len(copies)
            after = (page[-1].time, page[-1].id)
        if count:
            self.notifier.publish("events", principal)
        return replay_name, count

    # -- rules ---------------------------------------------------------------------------------
    def put_rule(self, principal: str, spec: dict[str, Any]) -> tuple[RuleRecord, bool]:
        """Create or replace a rule after checking all of it; returns (rule, created)."""
        rule = self.check_rule(principal, spec)
        masked = [t for t in rule.targets if t.get("secret") == MASK]
        if masked:
            # A rule read back shows secrets as "***": putting it back keeps the stored ones.
            old = self.store.get_rule(principal, rule.name)
            stored = {t["id"]: t.get("secret") for t in (old.targets if old else [])}
            for target in masked:
                if not stored.get(target["id"]):
                    raise _bad(
                        InvalidRule,
                        f"{rule.name}.targets.{target['id']}.secret",
                        "'***' keeps a stored secret, but this target has none: give the secret",
                    )
                target["secret"] = stored[target["id"]]
        return rule, self.store.upsert_rule(rule)

    def check_rule(self, principal: str, spec: dict[str, Any]) -> RuleRecord:
        """The rule ``spec`` describes, or :class:`InvalidRule` naming the first problem.

        The rule's shape is judged by its model (:func:`~sqltide.events.models.rule_problems`);
        what only this server can judge is checked here: sizes and nesting against its
        settings, a SQL target's warehouse against the owner's grants, a topic target's topic,
        a webhook's address.
        """
        if not isinstance(spec, dict):
            raise _bad(InvalidRule, "rule", "a rule is an object")
        name = spec.get("name")
        if not is_name(name):
            raise _bad(InvalidRule, "name", NAME_RULE)
        self._check_definition(spec, name, InvalidRule)
        problems = rule_problems(spec)
        if problems:
            raise _first(InvalidRule, name, problems[0])
        targets: list[dict[str, Any]] = spec["targets"]
        checked = [
            self._check_target(principal, t, f"{name}.targets[{n}]", n)
            for n, t in enumerate(targets)
        ]
        now = self.clock()
        return RuleRecord(
            principal=principal,
            name=name,
            description=spec.get("description"),
            event_pattern=spec.get("event_pattern"),
            schedule=spec.get("schedule"),
            timezone=spec.get("timezone", "UTC"),
            state=str(spec.get("state", RuleState.ENABLED.value)),
            targets=checked,
            missed_policy=str(spec.get("missed_policy", MissedPolicy.SKIP.value)),
            missed_window_seconds=spec.get("missed_window_seconds"),
            created_at=now,
            updated_at=now,
        )

    def _check_target(
        self, principal: str, target: dict[str, Any], where: str, n: int
    ) -> dict[str, Any]:
        """A target its model found valid, judged by this server, with its defaults."""
        out = dict(target)
        out.setdefault("id", str(n))
        kind = out["kind"]
        if kind == "sql":
            warehouse = out.get("warehouse") or "default"
            if self.grants is not None:
                # The owner's grants, as the delivery will check them (an ungranted warehouse
                # reads as an unknown one).
                is_admin = self.grants.principal_is_admin(principal)
                if self.grants.lookup(principal, warehouse, is_admin=is_admin) is None:
                    missing = self.grants.not_found(principal, warehouse, is_admin=is_admin)
                    raise _bad(InvalidRule, f"{where}.warehouse", missing.message)
            elif warehouse not in self.warehouses:
                raise _bad(
                    InvalidRule,
                    f"{where}.warehouse",
                    f"no warehouse named {warehouse!r} (configured: {', '.join(self.warehouses)})",
                )
        elif kind == "topic":
            topic = out["topic"]
            if self.store.get_topic(principal, topic) is None:
                raise _bad(InvalidRule, f"{where}.topic", f"no topic named {topic!r}")
        elif kind == "webhook":
            self._check_webhook(out["url"], where, "url", InvalidRule)
        if isinstance(out.get("input_transformer"), dict):
            self._check_template(out["input_transformer"], f"{where}.input_transformer")
        retry = out.setdefault("retry_policy", {})
        retry.setdefault("maximum_event_age_seconds", DEFAULT_MAX_AGE_SECONDS)
        retry.setdefault("maximum_retry_attempts", DEFAULT_MAX_ATTEMPTS)
        return out

    def _check_definition(
        self, spec: dict[str, Any], name: str, cls: type[errors.SqltideError]
    ) -> None:
        """A rule or topic as a whole: JSON every encoder takes, at most 256 KiB.

        Its own structure (targets, a target, its retry policy) takes a few levels, so the
        user's values in it (pattern, input, filter policy) get about ``max_json_depth``.
        """
        check_json_value(
            spec,
            where=name,
            max_depth=self.max_json_depth + 3,
            max_bytes=MAX_DEFINITION_BYTES,
            cls=cls,
        )

    def _check_template(self, transformer: dict[str, Any], where: str) -> None:
        """A JSON input template nests at most ``max_json_depth`` deep on its own, so what it
        renders (the template plus the values put in it) stays within every encoder's limit."""
        template = transformer.get("input_template")
        if not isinstance(template, str):
            return
        check_text(template, where=f"{where}.input_template", cls=InvalidRule)
        shape = re.sub(r"<[A-Za-z0-9_.\-]+>", "null", template)
        try:
            parsed = json.loads(shape)
        except ValueError:
            return  # a text template: rendered as text
        except RecursionError as exc:
            raise _bad(
                InvalidRule, f"{where}.input_template", "nests too deep to be rendered"
            ) from exc
        check_json_value(
            parsed, where=f"{where}.input_template", max_depth=self.max_json_depth, cls=InvalidRule
        )

    def get_rule(self, principal: str, name: str) -> RuleRecord:
        rule = self.store.get_rule(principal, name)
        if rule is None:
            raise RuleNotFound(details={"name": name})
        return rule

    def list_rules(self, principal: str) -> list[RuleRecord]:
        return self.store.list_rules(principal)

    def delete_rule(self, principal: str, name: str) -> None:
        if not self.store.delete_rule(principal, name):
            raise RuleNotFound(details={"name": name})

    # -- topics --------------------------------------------------------------------------------
    def put_topic(self, principal: str, spec: dict[str, Any]) -> tuple[TopicRecord, bool]:
        """Create or replace a topic after checking all of it; returns (topic, created)."""
        name = spec.get("name") if isinstance(spec, dict) else None
        if not is_name(name):
            raise _bad(errors.UnprocessableEntity, "name", NAME_RULE)
        self._check_definition(spec, name, errors.UnprocessableEntity)
        problems = topic_problems(spec)
        if problems:
            # A checker's own error keeps its code (a filter policy's invalid_filter_policy).
            code = problems[0].code
            cls = errors.error_class_for(code) if code else errors.UnprocessableEntity
            raise _first(cls, name, problems[0])
        checked = []
        for n, sub in enumerate(spec.get("subscriptions") or []):
            out = dict(sub)
            if out["protocol"] in ("webhook", "https"):
                self._check_webhook(
                    out["endpoint"],
                    f"{name}.subscriptions[{n}]",
                    "endpoint",
                    errors.UnprocessableEntity,
                )
            out.setdefault("id", str(n))
            checked.append(out)
        masked = [sub for sub in checked if sub.get("secret") == MASK]
        if masked:  # put back as shown ("***"): keep the stored secrets
            old = self.store.get_topic(principal, name)
            stored = {sub["id"]: sub.get("secret") for sub in (old.subscriptions if old else [])}
            for sub in masked:
                if not stored.get(sub["id"]):
                    raise _bad(
                        errors.UnprocessableEntity,
                        f"{name}.subscriptions.{sub['id']}.secret",
                        "'***' keeps a stored secret, but this subscription has none: give it",
                    )
                sub["secret"] = stored[sub["id"]]
        now = self.clock()
        topic = TopicRecord(
            principal=principal,
            name=name,
            display_name=spec.get("display_name"),
            subscriptions=checked,
            created_at=now,
            updated_at=now,
        )
        return topic, self.store.upsert_topic(topic)

    def _check_webhook(
        self, url: str, where: str, key: str, cls: type[errors.SqltideError]
    ) -> None:
        """Where a webhook points: refused addresses (loopback, private, metadata), judged by
        this server's guard (its header values are the model's to check)."""
        problem = self.guard.url_problem(url)
        if problem:
            raise _bad(cls, f"{where}.{key}", problem)

    def get_topic(self, principal: str, name: str) -> TopicRecord:
        topic = self.store.get_topic(principal, name)
        if topic is None:
            raise TopicNotFound(details={"name": name})
        return topic

    def list_topics(self, principal: str) -> list[TopicRecord]:
        return self.store.list_topics(principal)

    def delete_topic(self, principal: str, name: str) -> None:
        if not self.store.delete_topic(principal, name):
            raise TopicNotFound(details={"name": name})

    # -- dead letters --------------------------------------------------------------------------
    def list_deliveries(
        self, principal: str, status: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        return self.store.list_deliveries(principal, status=status, limit=limit)

    def redrive(self, principal: str, delivery_id: str) -> DeliveryRecord:
        if not self.store.redrive_delivery(principal, delivery_id, self.clock()):
            raise DeliveryNotFound(details={"id": delivery_id})
        # Read it back before the wake-up: woken first, the bus could deliver it before the
        # answer is read, and the caller would see DELIVERED for the redrive it just asked for.
        rec = self.store.get_delivery(delivery_id)
        assert rec is not None
        self.notifier.publish("deliveries", principal)
        return rec
