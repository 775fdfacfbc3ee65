"""Running one delivery: what each kind of target does with its input.

| kind | what a delivery does | succeeds when |
|---|---|---|
| ``sql`` | submits the target's SQL (statement or batch) as the rule's principal, with the delivery id as client token, so a redelivery gives back the same statement | the statement is recorded |
| ``webhook`` | POSTs the input as JSON, signed (``Sqltide-Signature``) when the target has a secret | the endpoint answers 2xx |
| ``topic`` | fans out to each subscription whose filter policy matches, one delivery each | the fan-out is recorded |
| ``subscription`` | (made by a topic) e-mail over SMTP, webhook, or Amazon SNS | the other side accepts it |
| ``event`` | puts the input as a new event, one hop deeper | the event is recorded |
| ``workflow`` | starts an execution of a loaded workflow as the rule's principal, the input as its input, named after the rule, the target and the event, so a redelivery gives back the same execution | the execution is recorded (or was already) |

Each kind is one :class:`TargetKind` class registered by name in :data:`KINDS` (a new kind is
one class); :class:`TargetRunner` holds what they share (the store, the statement and
workflow services, one pooled HTTP client) and looks the kind up for each delivery.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..statements.requests import StatementRequest
from ..statements.service import StatementService
from ..store import Store
from ..store.event_records import DeliveryRecord, DeliveryStatus, EventRecord, envelope
from ..store.wakeups import Notifier

if TYPE_CHECKING:
    from ..notify.netguard import NetworkGuard
    from ..workflows.service import WorkflowService


class TargetFailure(Exception):
    """A delivery attempt failed; ``retryable`` says whether trying again may help."""

    def __init__(self, code: str, message: str, retryable: bool):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


def _from_delivery_error(exc: Exception) -> TargetFailure:
    return TargetFailure(
        getattr(exc, "code", "delivery_error"),
        getattr(exc, "message", str(exc)),
        bool(getattr(exc, "retryable", True)),
    )


def message_parts(payload: Any, default_subject: str) -> tuple[str, str, dict[str, Any]]:
    """(subject, body, attributes) of a notification built from a target's input."""
    if isinstance(payload, dict) and ("body" in payload or "message" in payload):
        body = payload.get("body", payload.get("message"))
        subject = str(payload.get("subject") or default_subject)
        attributes = payload.get("attributes") or {}
    else:
        body, subject, attributes = payload, default_subject, {}
    if not isinstance(body, str):
        body = json.dumps(body, indent=2, sort_keys=True)
    return subject, body, attributes if isinstance(attributes, dict) else {}


class TargetRunner:
    """What every target kind needs to deliver (store, statements, SMTP, HTTP), and the
    dispatch of one delivery to its kind."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        statements: StatementService,
        *,
        smtp_url: str = "",
        clock: Callable[[], float],
        guard: NetworkGuard | None = None,
        workflows: WorkflowService | None = None,
    ):
        self.store = store
        self.notifier = notifier
        self.statements = statements
        #: Starts the executions of workflow targets (None: this process starts none).
        self.workflows = workflows
        self.smtp_url = smtp_url
        self.clock = clock
        if guard is None:
            from ..notify.netguard import NetworkGuard

            guard = NetworkGuard.from_env()
        #: Where webhooks may go (judged again at every connection: DNS answers change).
        self.guard = guard
        self._http: Any = None  # one pooled HTTP client for every webhook (keep-alive)

    @property
    def http(self) -> Any:
        if self._http is None:
            from ..notify.netguard import guarded_client

            self._http = guarded_client(self.guard)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def run(self, d: DeliveryRecord) -> None:
        """Deliver ``d`` once with its target kind's class; :class:`TargetFailure` if it fails."""
        kind = d.target.get("kind")
        target_kind = KINDS.get(kind) if isinstance(kind, str) else None
        if target_kind is None:
            raise TargetFailure("unknown_target", f"no target kind {kind!r}", retryable=False)
        target_kind.run(self, d)

    # -- failures ------------------------------------------------------------------------------
    def announce_failure(self, d: DeliveryRecord, error: dict[str, Any], now: float) -> None:
        """A ``Delivery Failed`` event for a dead-lettered delivery (rules can route it)."""
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sqltide:dead:{d.id}:{d.attempts}"))
        detail = {
            "deliveryId": d.id,
            "eventId": d.event_id,
            "rule": d.rule_name,
            "target": d.target_id,
            "attempts": d.attempts + 1,
            "error": error,
        }
        self.store.put_events(
            [
                EventRecord(
                    id=event_id,
                    principal=d.principal,
                    source="sqltide.events",
                    detail_type="Delivery Failed",
                    time=now,
                    body=envelope(
                        source="sqltide.events",
                        detail_type="Delivery Failed",
                        detail=detail,
                        time=now,
                        event_id=event_id,
                    ),
                    created_at=now,
                    depth=int(d.target.get("_depth", 0)) + 1,
                )
            ]
        )
        self.notifier.publish("events", d.principal)


# -- kinds -------------------------------------------------------------------------------------
class TargetKind(ABC):
    """One kind of target: what a delivery to it does.

    A kind is one subclass registered by :func:`target_kind` under its ``name``; the runner
    looks it up by the delivery's ``kind``. What a rule may say about a target of this kind is
    its model in :mod:`sqltide.events.models` (checked when the rule is put), and what the
    server alone can judge (a warehouse's grant, a topic's existence, a webhook's address) is
    ``EventService``'s service-time check.
    """

    #: The ``kind`` a target (or an internal delivery) names.
    name: ClassVar[str]

    @abstractmethod
    def run(self, runner: TargetRunner, d: DeliveryRecord) -> None:
        """Deliver ``d`` once; raise :class:`TargetFailure` when it fails."""


#: Every target kind by name (the bus's ``subscription`` kind included).
KINDS: dict[str, TargetKind] = {}

_K = TypeVar("_K", bound=type[TargetKind])


def target_kind(cls: _K) -> _K:
    """Register a target kind class (one instance: kinds hold no state of their own)."""
    KINDS[cls.name] = cls()
    return cls


@target_kind
class SqlTarget(TargetKind):
    """Submit the target's SQL as the rule's owner, the delivery id as client token."""

    name = "sql"

    def run(self, runner: TargetRunner, d: DeliveryRecord) -> None:
        from .. import errors

        t = d.target
        sqls = tuple(t.get("sqls") or [t["sql"]])
        batch = len(sqls) > 1 or bool(t.get("sqls"))
        req = StatementRequest(
            sqls=sqls,
            is_batch=batch,
            parameters=t.get("parameters"),
            statement_name=t.get("statement_name") or f"rule:{d.rule_name}",
            client_token=d.id,
            with_event=bool(t.get("with_event", False)),
            warehouse=t.get("warehouse"),
            batch_mode=t.get("mode", "transaction"),
        )
        # The SQL runs as the rule's owner, so the owner's grants apply now, at delivery: a
        # grant revoked since the rule was made fails the delivery instead of running it.
        grants = runner.statements.grants
        is_admin = grants.principal_is_admin(d.principal)
        warehouse = req.warehouse or "default"
        if grants.lookup(d.principal, warehouse, is_admin=is_admin) is None:
            raise TargetFailure(
                "permission_denied",
                f"the rule's owner {d.principal!r} may not use warehouse {warehouse!r} (it has "
                "no grant for it, or the grant was revoked); the SQL was not run",
                retryable=False,
            )
        try:
            runner.statements.submit(d.principal, req, is_admin=is_admin)
        except errors.TooManyRequests as exc:
            raise TargetFailure(exc.code, exc.message, retryable=True) from exc
        except errors.SqltideError as exc:
            raise TargetFailure(exc.code, exc.message, retryable=False) from exc


@target_kind
class WebhookTarget(TargetKind):
    """POST the input as JSON, signed when the target has a secret."""

    name = "webhook"

    def run(self, runner: TargetRunner, d: DeliveryRecord) -> None:
        from ..notify.delivery import DeliveryError
        from ..notify.webhook import send_webhook

        t = d.target
        # An input that is not an object (a path picking one string, a text template) is sent
        # as its JSON text.
        body = d.payload if isinstance(d.payload, dict) else json.dumps(d.payload).encode()
        try:
            send_webhook(
                t["url"],
                body,
                secret=t.get("secret"),
                timeout=float(t.get("timeout_seconds", 10)),
                headers={"Sqltide-Delivery-Id": d.id, **(t.get("headers") or {})},
                client=runner.http,
            )
        except DeliveryError as exc:
            raise _from_delivery_error(exc) from exc


@target_kind
class TopicTarget(TargetKind):
    """Fan out to each subscription whose filter policy matches: one delivery each."""

    name = "topic"

    def run(self, runner: TargetRunner, d: DeliveryRecord) -> None:
        from ..notify.filters import compile_filter_policy

        topic = runner.store.get_topic(d.principal, d.target["topic"])
        if topic is None:
            raise TargetFailure(
                "topic_not_found", f"topic {d.target['topic']!r} no longer exists", False
            )
        subject, body, attributes = message_parts(d.payload, f"sqltide: {d.rule_name}")
        now = runner.clock()
        fan_out = []
        for sub in topic.subscriptions:
            policy = sub.get("filter_policy")
            if policy is not None and not compile_filter_policy(policy).matches(attributes):
                continue
            fan_out.append(
                DeliveryRecord(
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{d.id}:{sub['id']}")),
                    principal=d.principal,
                    event_id=d.event_id,
                    rule_name=d.rule_name,
                    target_id=f"{d.target_id}/{topic.name}/{sub['id']}",
                    target={
                        "kind": SubscriptionTarget.name,
                        "topic": topic.name,
                        "subscription": sub,
                        "retry_policy": d.target.get("retry_policy", {}),
                        "_depth": d.target.get("_depth", 0),
                    },
                    payload={"subject": subject, "body": body, "attributes": attributes},
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        runner.store.add_deliveries(fan_out)
        if fan_out:
            runner.notifier.publish("deliveries", d.principal)


@target_kind
class SubscriptionTarget(TargetKind):
    """(Made by a topic, never named by a rule.) E-mail over SMTP, a webhook, or Amazon SNS."""

    name = "subscription"

    def run(self, runner: TargetRunner, d: DeliveryRecord) -> None:
        from ..notify.delivery import DeliveryError

        sub = d.target["subscription"]
        protocol, endpoint = sub["protocol"], sub["endpoint"]
        subject, body = d.payload["subject"], d.payload["body"]
        try:
            if protocol == "email":
                from ..notify.email import SmtpSettings, send_email
                from ..notify.messages import Message

                if not runner.smtp_url:
                    raise TargetFailure(
                        "smtp_not_configured",
                        "no SMTP server configured (SQLTIDE_SMTP_URL)",
                        retryable=True,
                    )
                settings = SmtpSettings.from_url(runner.smtp_url)
                send_email(settings, [endpoint], Message(subject=subject, body=body))
            elif protocol in ("webhook", "https"):
                from ..notify.webhook import send_webhook

                send_webhook(
                    endpoint,
                    {
                        "subject": subject,
                        "message": body,
                        "topic": d.target["topic"],
                        "attributes": d.payload.get("attributes", {}),
                    },
                    secret=sub.get("secret"),
                    timeout=float(sub.get("timeout_seconds", 10)),
                    headers={"Sqltide-Delivery-Id": d.id},
                    client=runner.http,
                )
            elif protocol == "sns":
                from ..notify.messages import Message
                from ..notify.sns import publish_sns

                publish_sns(endpoint, Message(subject=subject, body=body))
            else:
                raise TargetFailure("unknown_protocol", f"no protocol {protocol!r}", False)
        except DeliveryError as exc:
            raise _from_delivery_error(exc) from exc


@target_kind
class EventTarget(TargetKind):
    """Put the input as a new event, one hop deeper (loop protection counts the hops)."""

    name = "event"

    def run(self, runner: TargetRunner, d: DeliveryRecord) -> None:
        payload = d.payload
        depth = int(d.target.get("_depth", 0)) + 1
        # An input shaped like an event (the default: the whole event) keeps its source,
        # detail-type and detail unless the target names its own source / detail_type.
        looks_like_event = (
            isinstance(payload, dict)
            and "source" in payload
            and ("detail-type" in payload or "detail_type" in payload)
        )
        if looks_like_event:
            source = str(d.target.get("source") or payload["source"])
            detail_type = str(
                d.target.get("detail_type")
                or payload.get("detail-type", payload.get("detail_type"))
            )
            detail = payload.get("detail", {})
        else:
            source = str(d.target.get("source", "sqltide.rules"))
            detail_type = str(d.target.get("detail_type", d.rule_name))
            detail = payload if isinstance(payload, dict) else {"value": payload}
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sqltide:put:{d.id}"))
        now = runner.clock()
        runner.store.put_events(
            [
                EventRecord(
                    id=event_id,
                    principal=d.principal,
                    source=source,
                    detail_type=detail_type,
                    time=now,
                    body=envelope(
                        source=source,
                        detail_type=detail_type,
                        detail=detail,
                        time=now,
                        event_id=event_id,
                    ),
                    created_at=now,
                    depth=depth,
                )
            ]
        )
        runner.notifier.publish("events", d.principal)


def execution_name(d: DeliveryRecord) -> str:
    """The name of the execution a delivery to a workflow target starts.

    ``rule:<rule>:<target id>:<event id>``: a rule name and a target id hold no ``:``, so no
    two (rule, target, event) give one name, and a redelivery (a retry, a crash before the
    delivery was marked done, a redrive) starts nothing new. An event id the execution names
    cannot hold (none sqltide makes) is replaced by its digest.
    """
    from ..workflows.service import NAME

    name = f"rule:{d.rule_name}:{d.target_id}:{d.event_id}"
    if NAME.match(name):
        return name
    digest = hashlib.sha256(d.event_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"rule:{d.rule_name}:{d.target_id}:{digest}"


@target_kind
class WorkflowTarget(TargetKind):
    """Start an execution of the workflow as the rule's owner, with the input as its input."""

    name = "workflow"

    def run(self, runner: TargetRunner, d: DeliveryRecord) -> None:
        from .. import errors

        workflow = str(d.target["workflow"])
        service = runner.workflows
        if service is None or workflow not in service.names():
            loaded = service.names() if service is not None else []
            # Another worker may load it (or this one, restarted with the module): retried
            # within the target's retry policy, then a dead letter.
            raise TargetFailure(
                "workflow_not_loaded",
                f"no workflow named {workflow!r} is loaded by this worker (loaded: "
                f"{', '.join(loaded) or 'none'}); a worker must load its module "
                "(SQLTIDE_WORKFLOWS or serve --workflows) to start it",
                retryable=True,
            )
        try:
            # The name makes the start idempotent: a redelivery gets the same execution back.
            service.start(
                d.principal,
                workflow,
                d.payload,
                name=execution_name(d),
                timeout_seconds=d.target.get("timeout_seconds"),
            )
        except errors.WorkflowNotFound as exc:  # unloaded between the look and the start
            raise TargetFailure("workflow_not_loaded", exc.message, retryable=True) from exc
        except errors.SqltideError as exc:
            # An input over the payload limit, an execution of that name started by hand with
            # another input: trying again cannot help.
            raise TargetFailure(exc.code, exc.message, retryable=False) from exc
