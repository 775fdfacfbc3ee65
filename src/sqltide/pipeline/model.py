"""What a pipeline file holds: the keys it may use (version 1), the server's defaults a
comparison fills in, and the checked :class:`Pipeline` with the names its targets use that
must exist on the server (:class:`Reference`: topics, warehouses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .problems import Problem, _Places

VERSION = 1
TOP_LEVEL_KEYS = ("version", "topics", "rules")
TOPIC_KEYS = ("display_name", "subscriptions")
SUBSCRIPTION_KEYS = ("id", "protocol", "endpoint", "filter_policy", "secret", "timeout_seconds")
RULE_KEYS = (
    "description",
    "state",
    "event_pattern",
    "schedule",
    "timezone",
    "missed_policy",
    "missed_window_seconds",
    "targets",
)
#: The rule fields a plan compares (what ``GET /v1/rules`` shows that a file can set).
RULE_FIELDS = RULE_KEYS
TOPIC_FIELDS = TOPIC_KEYS
_INPUT_KEYS = ("input", "input_path", "input_transformer")
_COMMON_TARGET_KEYS = ("id", "kind", "retry_policy", *_INPUT_KEYS)
TARGET_KEYS: dict[str, tuple[str, ...]] = {
    "sql": (
        "sql",
        "sqls",
        "file",
        "warehouse",
        "parameters",
        "with_event",
        "mode",
        "statement_name",
    ),
    "topic": ("topic",),
    "webhook": ("url", "secret", "timeout_seconds", "headers"),
    "event": ("source", "detail_type"),
    "workflow": ("workflow", "timeout_seconds"),
}
RETRY_KEYS = ("maximum_event_age_seconds", "maximum_retry_attempts")
#: The server's defaults, which a comparison must fill in as the server does.
DEFAULT_RETRY = {"maximum_event_age_seconds": 86_400, "maximum_retry_attempts": 185}
SECRET_MASK = "***"


@dataclass(frozen=True)
class Reference:
    """A name a target uses that must exist on the server (a topic, a warehouse)."""

    path: str
    name: str


@dataclass(frozen=True)
class Pipeline:
    """A checked pipeline file: the bodies to ``PUT`` for each topic and rule, in file order."""

    source: str
    topics: dict[str, dict[str, Any]]
    rules: dict[str, dict[str, Any]]
    topic_refs: tuple[Reference, ...] = ()
    warehouse_refs: tuple[Reference, ...] = ()
    places: _Places = field(default_factory=_Places, repr=False, compare=False)

    def problem(self, path: str, message: str) -> Problem:
        at = self.places.find(path)
        line, column = at if at else (None, None)
        return Problem(path, message, self.source, line, column)
