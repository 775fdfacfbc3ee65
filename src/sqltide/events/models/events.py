"""Events as callers put them (a PutEvents entry) and replay them.

An entry is judged alone, so one bad entry of ten gets its own error code and message and
the other nine are recorded, as EventBridge's PutEvents does. What needs the server (the
configured JSON depth, the envelope's size once it has an id) stays in ``EventService``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from .base import NAME_PATTERN, _check, _problem, _text

#: Entries one PutEvents call may hold.
MAX_ENTRIES = 10
#: 9999-12-31T23:59:59Z, the latest time ISO 8601 (and Python's datetime) can write.
LATEST_TIME = 253_402_300_799.0
#: Sources of sqltide's own events (statement status changes, schedule firings).
OWN_SOURCE_PREFIX = "aws."


def _label(value: Any) -> str | None:
    """A source or detail-type: short text without control characters."""
    if not isinstance(value, str) or not value or len(value) > 256:
        return "a non-empty string of at most 256 characters"
    return _text(256, identifier=True)(value)


def _source(value: Any) -> str | None:
    reason = _label(value)
    if reason is None and value.startswith(OWN_SOURCE_PREFIX):
        return "sources starting with 'aws.' are sqltide's own (statement and schedule events)"
    return reason


def _detail(value: Any) -> Any:
    """A JSON object, or its JSON text (EventBridge's ``Detail`` is a string)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise _problem("not valid JSON") from exc
    if not isinstance(value, dict):
        raise _problem("must be a JSON object")
    return value


def _resources(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise _problem("a list of strings")
    for n, resource in enumerate(value):
        reason = _text(2048, identifier=True)(resource)
        if reason is not None:
            raise _problem(reason, n)
    return value


def epoch(value: Any) -> float:
    """Seconds since 1970 for an event's ``time``: an ISO 8601 time (UTC when it names no
    offset) or a number of seconds, one that ISO 8601 can write back."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if abs(value) < LATEST_TIME * 2 else None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            seconds = parsed.timestamp()
        except (ValueError, OverflowError) as exc:
            raise _problem("an ISO 8601 time") from exc
    else:
        raise _problem("an ISO 8601 time")
    # An event's time is shown as an ISO 8601 time, so it must be one that can be written.
    if seconds is None or not 0 <= seconds <= LATEST_TIME:
        raise _problem("a time between 1970-01-01 and 9999-12-31 (UTC)")
    return seconds


_TIME_SCHEMA = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}, {"type": "null"}],
    "description": "When it happened (default: now): an ISO 8601 time or seconds since 1970.",
}
_DETAIL_SCHEMA = {
    "anyOf": [{"type": "object"}, {"type": "string"}],
    "description": "A JSON object, or its JSON text (default: `{}`).",
}


def _required(schema: dict[str, Any]) -> None:
    for name in ("source", "detail_type"):
        schema["properties"][name].pop("default", None)
    schema["required"] = ["source", "detail_type"]


class EventEntry(BaseModel):
    """One event of a ``POST /v1/events`` (EventBridge's PutEvents entry). Other keys are
    ignored."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=lambda s: _required(s))

    # Checked even when missing (validate_default), so that is told in sqltide's words.
    source: Annotated[str, _check(_source)] = Field(
        default=None,
        validate_default=True,
        min_length=1,
        max_length=256,
        description="Who sent it (not starting with `aws.`).",
    )
    detail_type: Annotated[str, _check(_label)] = Field(
        default=None,
        validate_default=True,
        min_length=1,
        max_length=256,
        description="What kind of event it is.",
    )
    detail: Annotated[dict[str, Any], BeforeValidator(_detail), WithJsonSchema(_DETAIL_SCHEMA)] = (
        Field(default_factory=dict)
    )
    resources: Annotated[list[str], BeforeValidator(_resources)] = Field(
        default_factory=list, description="What it is about (ARNs, names)."
    )
    time: Annotated[float | None, BeforeValidator(epoch), WithJsonSchema(_TIME_SCHEMA)] = None

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise _problem("an event entry is an object")
        return data


class PutEventsBody(BaseModel):
    """``POST /v1/events``: 1 to 10 entries, each recorded or refused on its own."""

    entries: list[EventEntry] = Field(min_length=1, max_length=MAX_ENTRIES)


class ReplayBody(BaseModel):
    """``POST /v1/events/replay``: the archive's events of ``[start, end)``, put again as new
    events (the service checks the times and the name)."""

    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"}, description="After start.")
    name: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Default: `replay-` and 12 hex digits. Replaying a name again is harmless.",
    )
