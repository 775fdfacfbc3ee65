"""What the events endpoints answer: rules, topics, events, deliveries, pages of them.

These describe the answers in ``/openapi.json`` (``response_model=``); the handlers build
the same shapes as plain dicts and render them once (``api/events.py``), so a field added
there must be added here too (``tests/integration/test_openapi.py`` checks that they agree).
Times are ISO 8601 strings in UTC.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .base import DeliveryStatus, MissedPolicy, RuleState
from .rules import Target
from .topics import Subscription


class RuleOut(BaseModel):
    """A rule as recorded: targets with their ids and retry policies filled in, secrets
    shown as ``***`` (put back unchanged, ``***`` keeps the stored secret)."""

    name: str
    description: str | None
    state: RuleState
    event_pattern: dict[str, Any] | str | None
    schedule: str | None
    timezone: str
    missed_policy: MissedPolicy
    missed_window_seconds: float | None
    targets: list[Target]
    last_fired_at: str | None = Field(description="The schedule's last firing.")
    created_at: str
    updated_at: str


class RuleListOut(BaseModel):
    rules: list[RuleOut]


class TopicOut(BaseModel):
    """A topic as recorded: subscriptions with their ids, secrets shown as ``***``."""

    name: str
    display_name: str | None
    subscriptions: list[Subscription]
    created_at: str
    updated_at: str


class TopicListOut(BaseModel):
    topics: list[TopicOut]


class EventOut(BaseModel):
    """An event in EventBridge's envelope (hyphenated keys, as EventBridge writes them)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str
    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    account: str
    time: str
    region: str
    resources: list[str]
    detail: dict[str, Any]
    replay_name: str | None = Field(
        default=None, alias="replay-name", description="Only on a replay's copies."
    )


class EventListOut(BaseModel):
    events: list[EventOut]
    next_token: str | None = Field(description="Pass back for the next page; null at the end.")


class PutEventsResult(BaseModel):
    """One entry's fate: its event's id, or why it was not recorded."""

    event_id: str | None = Field(default=None, description="Only when it was recorded.")
    error_code: str | None = Field(default=None, description="Only when it was not.")
    error_message: str | None = Field(default=None, description="Only when it was not.")


class PutEventsOut(BaseModel):
    failed_entry_count: int
    entries: list[PutEventsResult] = Field(description="One per entry, in order.")


class ReplayOut(BaseModel):
    name: str
    events: int = Field(description="How many events the replay put.")


class DeliveryOut(BaseModel):
    """One event (or firing) on its way to one target of one rule."""

    id: str
    event_id: str
    rule: str
    target: str = Field(description="The target's id.")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: str | None = Field(description="Only while PENDING.")
    last_error: str | None
    payload: Any = Field(description="What the target is sent (the event, or its input).")
    created_at: str
    updated_at: str
    delivered_at: str | None


class DeliveryListOut(BaseModel):
    deliveries: list[DeliveryOut]
