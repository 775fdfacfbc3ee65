"""What rules, targets, topics, subscriptions and events are: pydantic models, checked once.

The same models serve three readers: the HTTP edge (request bodies and answers in
``/openapi.json``), the event service (which checks a rule or topic with
:func:`rule_problems` / :func:`topic_problems` before recording it) and pipeline files
(``pipeline/checks.py`` maps each problem back to the file's ``line:column``).

Every check answers with its own sentence, never pydantic's: each field's validator raises
:func:`_problem` (a ``PydanticCustomError`` of type ``sqltide``), and :func:`problems_of`
turns pydantic's errors into :class:`Problem` s (a location tuple and a reason). Checks
that need the server (a warehouse's grant, a topic's existence, a webhook's address, the
configured JSON depth) stay in ``EventService``: a model only judges what it is given.

Extra keys are allowed (and kept) in targets and subscriptions, as they always were over
HTTP; pipeline files refuse them with a suggestion.
"""

from .answers import (
    DeliveryListOut,
    DeliveryOut,
    EventListOut,
    EventOut,
    PutEventsOut,
    PutEventsResult,
    ReplayOut,
    RuleListOut,
    RuleOut,
    TopicListOut,
    TopicOut,
)
from .base import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    MAX_TARGETS,
    MISSED_POLICIES,
    NAME_PATTERN,
    NAME_RULE,
    PROTOCOLS,
    SQL_NEEDED,
    TARGET_KINDS,
    DeliveryStatus,
    InnerPath,
    MissedPolicy,
    Problem,
    Protocol,
    RuleState,
    dotted,
    is_name,
    kind_of,
    not_,
    problems_of,
    validated,
)
from .events import MAX_ENTRIES, EventEntry, PutEventsBody, ReplayBody, epoch
from .rules import (
    EventTarget,
    RetryPolicy,
    RuleBody,
    RuleSpec,
    SqlTarget,
    Target,
    TopicTarget,
    WebhookTarget,
    WorkflowTarget,
    rule_problems,
)
from .topics import Subscription, TopicBody, TopicSpec, topic_problems

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "MAX_ENTRIES",
    "MAX_TARGETS",
    "MISSED_POLICIES",
    "NAME_PATTERN",
    "NAME_RULE",
    "PROTOCOLS",
    "SQL_NEEDED",
    "TARGET_KINDS",
    "DeliveryListOut",
    "DeliveryOut",
    "DeliveryStatus",
    "EventEntry",
    "EventListOut",
    "EventOut",
    "EventTarget",
    "InnerPath",
    "MissedPolicy",
    "Problem",
    "Protocol",
    "PutEventsBody",
    "PutEventsOut",
    "PutEventsResult",
    "ReplayBody",
    "ReplayOut",
    "RetryPolicy",
    "RuleBody",
    "RuleListOut",
    "RuleOut",
    "RuleSpec",
    "RuleState",
    "SqlTarget",
    "Subscription",
    "Target",
    "TopicBody",
    "TopicListOut",
    "TopicOut",
    "TopicSpec",
    "TopicTarget",
    "WebhookTarget",
    "WorkflowTarget",
    "dotted",
    "epoch",
    "is_name",
    "kind_of",
    "not_",
    "problems_of",
    "rule_problems",
    "topic_problems",
    "validated",
]
