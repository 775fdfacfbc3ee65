"""Events as the store keeps them, and the statement status event of the Data API.

An event is an EventBridge envelope (``version``, ``id``, ``detail-type``, ``source``,
``account``, ``time``, ``region``, ``resources``, ``detail``). Statement status events have
exactly the shape the Redshift Data API sends to EventBridge, so rules written for it match
unchanged. They live here, below the statements service, because the store writes them in the
same transaction as the state change that causes them (record first, act second), including
changes the store decides itself (recovery of a lost worker's statement).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .records import StatementRecord


class RuleState(StrEnum):
    """Whether a rule routes events and fires its schedule."""

    #: Matching events and schedule firings are delivered to the targets.
    ENABLED = "ENABLED"
    #: Kept, but nothing is routed to it and its schedule does not fire.
    DISABLED = "DISABLED"


class DeliveryStatus(StrEnum):
    """Where a delivery to one target is."""

    #: Waiting for its (next) attempt.
    PENDING = "PENDING"
    #: The target took it.
    DELIVERED = "DELIVERED"
    #: Out of attempts or refused for good: a dead letter, which can be redriven.
    DEAD = "DEAD"


#: EventBridge's account and region fields; sqltide has neither, so fixed, recognisable values.
ACCOUNT = "000000000000"
REGION = "local"
STATEMENT_SOURCE = "aws.redshift-data"
STATEMENT_DETAIL_TYPE = "Redshift Data Statement Status Change"
MAX_EVENT_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event: its envelope (``body``) and where it is on its way through the bus."""

    id: str
    principal: str
    source: str
    detail_type: str
    time: float
    body: dict[str, Any]
    created_at: float
    #: How many rule hops led to this event (0: put by someone or emitted by sqltide).
    depth: int = 0
    routed_at: float | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "principal": self.principal,
            "source": self.source,
            "detail_type": self.detail_type,
            "time": self.time,
            "body": json.dumps(self.body, separators=(",", ":")),
            "depth": self.depth,
            "created_at": self.created_at,
            "routed_at": self.routed_at,
        }

    @classmethod
    def from_row(cls, row: Any) -> EventRecord:
        return cls(
            id=row["id"],
            principal=row["principal"],
            source=row["source"],
            detail_type=row["detail_type"],
            time=row["time"],
            body=json.loads(row["body"]),
            created_at=row["created_at"],
            depth=row["depth"],
            routed_at=row["routed_at"],
        )


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(
    *,
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    time: float,
    resources: list[str] | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An EventBridge-shaped envelope."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": iso(time),
        "region": REGION,
        "resources": list(resources or []),
        "detail": detail,
    }


def statement_event(rec: StatementRecord, now: float, retention_seconds: float) -> EventRecord:
    """The Data API's status change event for a statement that just ended.

    Its id is derived from the statement's id, so writing it twice (a retried transaction)
    cannot make two different events.
    """
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sqltide:statement:{rec.id}:{rec.status.value}"))
    ended = rec.ended_at if rec.ended_at is not None else now
    body = envelope(
        source=STATEMENT_SOURCE,
        detail_type=STATEMENT_DETAIL_TYPE,
        time=now,
        event_id=event_id,
        resources=[f"sqltide:warehouse/{rec.warehouse}"],
        detail={
            # A Data API caller appears as its ARN (recorded at submit), as in AWS's events.
            "principal": (rec.origin or {}).get("arn") or rec.principal,
            "statementName": rec.statement_name or "",
            "statementId": rec.id,
            "redshiftQueryId": -1,
            "state": rec.status.value,
            "rows": rec.result_rows if rec.result_rows is not None else -1,
            "expireAt": int(ended + retention_seconds),
        },
    )
    return EventRecord(
        id=event_id,
        principal=rec.principal,
        source=STATEMENT_SOURCE,
        detail_type=STATEMENT_DETAIL_TYPE,
        time=now,
        body=body,
        created_at=now,
    )


@dataclass(frozen=True, slots=True)
class RuleRecord:
    """A rule: an event pattern or a schedule, a state, and up to five targets.

    ``targets`` is a list of target specs (dicts: ``id``, ``kind`` and the kind's settings,
    ``input``, ``retry_policy``), validated by the events service before they are stored.
    """

    principal: str
    name: str
    state: str  # ENABLED | DISABLED
    targets: list[dict[str, Any]]
    created_at: float
    updated_at: float
    description: str | None = None
    event_pattern: dict[str, Any] | None = None
    schedule: str | None = None
    timezone: str = "UTC"
    #: What a schedule does about firings missed while nothing ran: skip | latest | all.
    missed_policy: str = "skip"
    missed_window_seconds: float | None = None
    #: The last firing recorded for a schedule (epoch seconds).
    last_fired_at: float | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One event on its way to one target: the outbox row the deliverer works through.

    Its id is derived from (event, rule, target), so routing the same event twice cannot make
    two deliveries.
    """

    id: str
    principal: str
    event_id: str
    rule_name: str
    target_id: str
    target: dict[str, Any]
    payload: Any
    status: str  # PENDING | DELIVERED | DEAD
    attempts: int
    next_attempt_at: float
    created_at: float
    updated_at: float
    last_error: dict[str, Any] | None = None
    delivered_at: float | None = None


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """A notification topic and its subscriptions (protocol, endpoint, filter policy)."""

    principal: str
    name: str
    subscriptions: list[dict[str, Any]]
    created_at: float
    updated_at: float
    display_name: str | None = None
