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
from ..store import Store
from ..store.events import (
    MAX_EVENT_BYTES,
    DeliveryRecord,
    EventRecord,
    RuleRecord,
    TopicRecord,
    envelope,
)
from ..store.notify import Notifier
from ..validation import MAX_DEFINITION_BYTES, MAX_JSON_DEPTH, check_json_value, check_text
from .inputs import InvalidTargetInput, validate_input

if TYPE_CHECKING:
    from ..grants import Grants
    from ..notify.netguard import NetworkGuard

_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
MAX_TARGETS = 5
TARGET_KINDS = ("sql", "topic", "webhook", "event", "workflow")
PROTOCOLS = ("email", "webhook", "https", "sns")
#: EventBridge's defaults: retry for a day, up to 185 times.
DEFAULT_MAX_AGE_SECONDS = 86_400
DEFAULT_MAX_ATTEMPTS = 185
MISSED_POLICIES = ("skip", "latest", "all")
#: How secrets are shown; sent back unchanged, it means "keep the stored secret".
MASK = "***"


class InvalidRule(errors.UnprocessableEntity):
    """The rule is not valid."""

    code = "invalid_rule"


class RuleNotFound(errors.NotFound):
    """No rule with this name."""

    code = "rule_not_found"


class TopicNotFound(errors.NotFound):
    """No topic with this name."""

    code = "topic_not_found"


class DeliveryNotFound(errors.NotFound):
    """No dead-lettered delivery with this id."""

    code = "delivery_not_found"


def _bad(cls: type[errors.SqltideError], where: str, reason: str) -> errors.SqltideError:
    return cls(f"{where}: {reason}", details={"path": where, "reason": reason})


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
    ):
        self.store = store
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
        if not 1 <= len(entries) <= 10:
            raise errors.InvalidRequest("put 1 to 10 events at a time")
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
        self, principal: str, entry: dict[str, Any], now: float, where: str, depth: int
    ) -> EventRecord:
        if not isinstance(entry, dict):
            raise _bad(errors.UnprocessableEntity, where, "an event entry is an object")
        source, detail_type = entry.get("source"), entry.get("detail_type")
        for key, value in (("source", source), ("detail_type", detail_type)):
            if not isinstance(value, str) or not value or len(value) > 256:
                raise _bad(
                    errors.UnprocessableEntity,
                    f"{where}.{key}",
                    "a non-empty string of at most 256 characters",
                )
            check_text(value, where=f"{where}.{key}", identifier=True)
        if source.startswith("aws."):  # type: ignore[union-attr]
            raise _bad(
                errors.UnprocessableEntity,
                f"{where}.source",
                "sources starting with 'aws.' are sqltide's own (statement and schedule events)",
            )
        detail = entry.get("detail", {})
        if isinstance(detail, str):
            try:
                detail = json.loads(detail)
            except (ValueError, RecursionError) as exc:
                raise _bad(errors.UnprocessableEntity, f"{where}.detail", "not valid JSON") from exc
        if not isinstance(detail, dict):
            raise _bad(errors.UnprocessableEntity, f"{where}.detail", "must be a JSON object")
        check_json_value(detail, where=f"{where}.detail", max_depth=self.max_json_depth)
        resources = entry.get("resources", [])
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise _bad(errors.UnprocessableEntity, f"{where}.resources", "a list of strings")
        for n, resource in enumerate(resources):
            check_text(resource, where=f"{where}.resources[{n}]", max_chars=2048, identifier=True)
        at = entry.get("time")
        when = now if at is None else _epoch(at, f"{where}.time")
        event_id = str(uuid.uuid4())
        body = envelope(
            source=source,  # type: ignore[arg-type]
            detail_type=detail_type,  # type: ignore[arg-type]
            detail=detail,
            time=when,
            resources=resources,
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
            source=source,  # type: ignore[arg-type]
            detail_type=detail_type,  # type: ignore[arg-type]
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
        if not isinstance(replay_name, str) or not _NAME.match(replay_name):
            raise _bad(
                errors.UnprocessableEntity, "name", "1 to 64 letters, digits, '.', '_' or '-'"
            )
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
        """The rule ``spec`` describes, or :class:`InvalidRule` naming the first problem."""
        if not isinstance(spec, dict):
            raise _bad(InvalidRule, "rule", "a rule is an object")
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _bad(InvalidRule, "name", "1 to 64 letters, digits, '.', '_' or '-'")
        self._check_definition(spec, name, InvalidRule)
        pattern, schedule = spec.get("event_pattern"), spec.get("schedule")
        if (pattern is None) == (schedule is None):
            raise _bad(InvalidRule, name, "give an event_pattern or a schedule (one of them)")
        timezone = spec.get("timezone", "UTC")
        if schedule is not None:
            check_text(
                schedule, where=f"{name}.schedule", max_chars=256, identifier=True, cls=InvalidRule
            )
            check_text(
                timezone, where=f"{name}.timezone", max_chars=64, identifier=True, cls=InvalidRule
            )
        description = spec.get("description")
        if description is not None:
            check_text(description, where=f"{name}.description", max_chars=512, cls=InvalidRule)
        if pattern is not None:
            from .patterns import compile_pattern

            try:
                compile_pattern(pattern)
            except errors.SqltideError as exc:
                inner = exc.details.get("path", "")
                raise InvalidRule(
                    f"{name}.event_pattern: {exc.message}",
                    details={
                        **exc.details,
                        "path": f"{name}.event_pattern" + (f".{inner}" if inner else ""),
                    },
                ) from exc
        else:
            from .schedules import parse_schedule

            try:
                parse_schedule(str(schedule), timezone)
            except errors.SqltideError as exc:
                raise InvalidRule(
                    f"{name}.schedule: {exc.message}",
                    details={**exc.details, "path": f"{name}.schedule"},
                ) from exc
        state = spec.get("state", "ENABLED")
        if state not in ("ENABLED", "DISABLED"):
            raise _bad(InvalidRule, f"{name}.state", "ENABLED or DISABLED")
        policy = spec.get("missed_policy", "skip")
        if policy not in MISSED_POLICIES:
            raise _bad(InvalidRule, f"{name}.missed_policy", "skip, latest or all")
        window = spec.get("missed_window_seconds")
        if window is not None and (not isinstance(window, int | float) or window <= 0):
            raise _bad(InvalidRule, f"{name}.missed_window_seconds", "a positive number")
        targets = spec.get("targets", [])
        if not isinstance(targets, list) or not 1 <= len(targets) <= MAX_TARGETS:
            raise _bad(InvalidRule, f"{name}.targets", f"1 to {MAX_TARGETS} targets")
        checked = [
            self._check_target(principal, t, f"{name}.targets[{n}]") for n, t in enumerate(targets)
        ]
        ids = [t["id"] for t in checked]
        if len(set(ids)) != len(ids):
            raise _bad(InvalidRule, f"{name}.targets", "target ids must be unique")
        now = self.clock()
        return RuleRecord(
            principal=principal,
            name=name,
            description=spec.get("description"),
            event_pattern=pattern,
            schedule=schedule,
            timezone=timezone,
            state=state,
            targets=checked,
            missed_policy=policy,
            missed_window_seconds=window,
            created_at=now,
            updated_at=now,
        )

    def _check_target(self, principal: str, target: Any, where: str) -> dict[str, Any]:
        if not isinstance(target, dict):
            raise _bad(InvalidRule, where, "a target is an object")
        out = dict(target)
        out.setdefault("id", where.rsplit("[", 1)[-1].rstrip("]"))
        if not isinstance(out["id"], str) or not _NAME.match(out["id"]):
            raise _bad(InvalidRule, f"{where}.id", "1 to 64 letters, digits, '.', '_' or '-'")
        kind = out.get("kind")
        if kind not in TARGET_KINDS:
            raise _bad(InvalidRule, f"{where}.kind", f"one of {', '.join(TARGET_KINDS)}")
        if kind == "sql":
            sqls = out.get("sqls") or ([out["sql"]] if isinstance(out.get("sql"), str) else None)
            if not sqls or not all(isinstance(s, str) and s.strip() for s in sqls):
                raise _bad(InvalidRule, f"{where}.sql", "a SQL text (sql) or a list (sqls)")
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
            topic = out.get("topic")
            if not isinstance(topic, str) or self.store.get_topic(principal, topic) is None:
                raise _bad(InvalidRule, f"{where}.topic", f"no topic named {topic!r}")
        elif kind == "webhook":
            url = out.get("url")
            if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
                raise _bad(InvalidRule, f"{where}.url", "an http:// or https:// URL")
            self._check_webhook(url, out.get("headers"), where, "url", InvalidRule)
            timeout = out.get("timeout_seconds", 10)
            if not isinstance(timeout, int | float) or not 0 < timeout <= 60:
                raise _bad(InvalidRule, f"{where}.timeout_seconds", "between 0 and 60")
        elif kind == "workflow":
            raise _bad(InvalidRule, f"{where}.kind", "workflow targets come with durable workflows")
        try:
            validate_input(out, where)
        except InvalidTargetInput as exc:
            raise InvalidRule(exc.message, details=exc.details) from exc
        if isinstance(out.get("input_transformer"), dict):
            self._check_template(out["input_transformer"], f"{where}.input_transformer")
        retry = out.setdefault("retry_policy", {})
        age = retry.setdefault("maximum_event_age_seconds", DEFAULT_MAX_AGE_SECONDS)
        attempts = retry.setdefault("maximum_retry_attempts", DEFAULT_MAX_ATTEMPTS)
        if not isinstance(age, int) or not 60 <= age <= 86_400:
            raise _bad(
                InvalidRule, f"{where}.retry_policy.maximum_event_age_seconds", "60 to 86400"
            )
        if not isinstance(attempts, int) or not 0 <= attempts <= 185:
            raise _bad(InvalidRule, f"{where}.retry_policy.maximum_retry_attempts", "0 to 185")
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
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not _NAME.match(name):
            raise _bad(
                errors.UnprocessableEntity, "name", "1 to 64 letters, digits, '.', '_' or '-'"
            )
        self._check_definition(spec, name, errors.UnprocessableEntity)
        if spec.get("display_name") is not None:
            check_text(spec["display_name"], where=f"{name}.display_name", max_chars=256)
        subs = spec.get("subscriptions", [])
        if not isinstance(subs, list):
            raise _bad(errors.UnprocessableEntity, f"{name}.subscriptions", "a list")
        checked = [
            self._check_subscription(s, f"{name}.subscriptions[{n}]") for n, s in enumerate(subs)
        ]
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

    def _check_subscription(self, sub: Any, where: str) -> dict[str, Any]:
        if not isinstance(sub, dict):
            raise _bad(errors.UnprocessableEntity, where, "a subscription is an object")
        out = dict(sub)
        protocol, endpoint = out.get("protocol"), out.get("endpoint")
        if protocol not in PROTOCOLS:
            raise _bad(
                errors.UnprocessableEntity, f"{where}.protocol", f"one of {', '.join(PROTOCOLS)}"
            )
        if not isinstance(endpoint, str) or not endpoint:
            raise _bad(errors.UnprocessableEntity, f"{where}.endpoint", "an address, URL or ARN")
        if protocol == "email":
            from ..notify.headers import email_address_problem

            if problem := email_address_problem(endpoint):
                raise _bad(errors.UnprocessableEntity, f"{where}.endpoint", problem)
        if protocol in ("webhook", "https"):
            self._check_webhook(endpoint, None, where, "endpoint", errors.UnprocessableEntity)
        policy = out.get("filter_policy")
        if policy is not None:
            from ..notify.filters import compile_filter_policy

            compile_filter_policy(policy)
        out.setdefault("id", where.rsplit("[", 1)[-1].rstrip("]"))
        return out

    def _check_webhook(
        self,
        url: str,
        headers: Any,
        where: str,
        key: str,
        cls: type[errors.SqltideError],
    ) -> None:
        """Where a webhook points and what it sends: refused addresses (loopback, private,
        metadata) and header values that would inject headers."""
        from ..notify.headers import headers_problem

        problem = self.guard.url_problem(url)
        if problem:
            raise _bad(cls, f"{where}.{key}", problem)
        bad_header = headers_problem(headers)
        if bad_header:
            name, reason = bad_header
            raise _bad(cls, f"{where}.headers" + (f".{name}" if name else ""), reason)

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
        self.notifier.publish("deliveries", principal)
        rec = self.store.get_delivery(delivery_id)
        assert rec is not None
        return rec


def _epoch(value: Any, where: str) -> float:
    from datetime import UTC, datetime

    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if abs(value) < _LATEST_TIME * 2 else None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            seconds = parsed.timestamp()
        except (ValueError, OverflowError) as exc:
            raise _bad(errors.UnprocessableEntity, where, "an ISO 8601 time") from exc
    else:
        raise _bad(errors.UnprocessableEntity, where, "an ISO 8601 time")
    # An event's time is shown as an ISO 8601 time, so it must be one that can be written.
    if seconds is None or not 0 <= seconds <= _LATEST_TIME:
        raise _bad(
            errors.UnprocessableEntity, where, "a time between 1970-01-01 and 9999-12-31 (UTC)"
        )
    return seconds


#: 9999-12-31T23:59:59Z, the latest time ISO 8601 (and Python's datetime) can write.
_LATEST_TIME = 253_402_300_799.0
