"""Rules and their targets: a target kind is one model class (``kind`` is the tag), and
:func:`rule_problems` tells every problem of a rule at once."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field

from ... import errors
from ...statements.requests import BATCH_MODES
from .base import (
    _URL,
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    MAX_TARGETS,
    MISSED_POLICIES,
    NAME_PATTERN,
    SQL_NEEDED,
    MissedPolicy,
    Problem,
    RuleState,
    _check,
    _Checked,
    _input_problems,
    _is_number,
    _mapping,
    _name,
    _positive_timeout,
    _problem,
    _string,
    _text,
    _wrap_inner,
    not_,
    problems_of,
)


# -- targets ---------------------------------------------------------------------------------
def _age(value: Any) -> str | None:
    ok = type(value) is int and 60 <= value <= 86_400
    return None if ok else "a whole number from 60 to 86400"


def _attempts(value: Any) -> str | None:
    ok = type(value) is int and 0 <= value <= 185
    return None if ok else "a whole number from 0 to 185"


class RetryPolicy(BaseModel):
    """How long and how often a delivery is tried (EventBridge's defaults: a day, 185 times)."""

    model_config = ConfigDict(extra="allow")

    maximum_event_age_seconds: Annotated[int, _check(_age), Field(ge=60, le=86_400)] = (
        DEFAULT_MAX_AGE_SECONDS
    )
    maximum_retry_attempts: Annotated[int, _check(_attempts), Field(ge=0, le=185)] = (
        DEFAULT_MAX_ATTEMPTS
    )


def _retry(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise _problem("a mapping (maximum_event_age_seconds, maximum_retry_attempts)")
    return value


class _Target(_Checked):
    """What every target has: an id, its kind, how its input is shaped, its retries."""

    id: Annotated[str | None, _check(lambda v: None if v is None else _name(v))] = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Unique within the rule (default: the target's index).",
    )
    input: Any = Field(default=None, description="A constant input instead of the event.")
    input_path: str | None = Field(
        default=None, description="One part of the event: `$.detail`, `$.resources[0]`."
    )
    input_transformer: dict[str, Any] | None = Field(
        default=None,
        description="`{input_paths_map: {name: path}, input_template: '... <name> ...'}`.",
    )
    retry_policy: Annotated[RetryPolicy | None, BeforeValidator(_retry)] = None

    @classmethod
    def own_problems(cls, data: dict[str, Any]) -> list[Problem]:
        return _input_problems(data) + cls.kind_problems(data)

    @classmethod
    def kind_problems(cls, data: dict[str, Any]) -> list[Problem]:
        """Checks across this kind's fields."""
        return []


class SqlTarget(_Target):
    """Submit SQL (one statement, or a batch run as one transaction) as the rule's owner."""

    kind: Literal["sql"]
    sql: Annotated[
        str | None,
        _check(lambda v: _sql_text(v, SQL_NEEDED)),
    ] = None
    sqls: Annotated[list[str] | None, BeforeValidator(lambda v: None)] = Field(
        default=None, description="A batch, run in order (checked with sql)."
    )
    warehouse: Annotated[
        str | None, _check(lambda v: None if isinstance(v, str) and v else "a warehouse name")
    ] = None
    parameters: Annotated[dict[str, Any] | None, _check(lambda v: v and _mapping(v))] = None
    with_event: Annotated[
        bool, _check(lambda v: None if isinstance(v, bool) else f"true or false{not_(v)}")
    ] = False
    mode: Annotated[
        Literal["transaction", "auto_commit"],
        _check(lambda v: None if v in BATCH_MODES else f"{' or '.join(BATCH_MODES)}{not_(v)}"),
    ] = "transaction"
    statement_name: Annotated[str | None, _check(_string)] = None

    @classmethod
    def kind_problems(cls, data: dict[str, Any]) -> list[Problem]:
        if "sql" in data and "sqls" in data:
            return [Problem((), "give sql or sqls, not both")]
        if "sqls" in data:
            sqls = data["sqls"]
            if not isinstance(sqls, list) or not sqls:
                return [Problem(("sqls",), "a non-empty list of SQL texts")]
            return [
                Problem(("sqls", n), "a non-empty SQL text")
                for n, sql in enumerate(sqls)
                if not isinstance(sql, str) or not sql.strip()
            ]
        if "sql" not in data:
            return [Problem((), SQL_NEEDED)]
        return []


def _sql_text(value: Any, reason: str) -> str | None:
    return None if isinstance(value, str) and value.strip() else reason


class TopicTarget(_Target):
    """Tell a topic's subscriptions (e-mail, webhook, SNS)."""

    model_config = ConfigDict(json_schema_extra={"required": ["kind", "topic"]})

    kind: Literal["topic"]
    topic: Annotated[
        str | None,
        _check(
            lambda v: (
                None if isinstance(v, str) and v else "a topic target needs topic: a topic name"
            )
        ),
    ] = Field(default=None, description="The topic's name (it must exist).")

    @classmethod
    def kind_problems(cls, data: dict[str, Any]) -> list[Problem]:
        if "topic" not in data:
            return [Problem((), "a topic target needs topic: a topic name")]
        return []


class WebhookTarget(_Target):
    """POST the input as JSON to a URL, signed (``Sqltide-Signature``) with the secret."""

    model_config = ConfigDict(json_schema_extra={"required": ["kind", "url"]})

    kind: Literal["webhook"]
    url: Annotated[
        str | None,
        _check(
            lambda v: (
                None
                if isinstance(v, str) and _URL.match(v)
                else "a webhook target needs url: an http:// or https:// URL"
            )
        ),
    ] = None  # a missing url is told by kind_problems, at the target
    secret: Annotated[str | None, _check(lambda v: v and _string(v))] = None
    timeout_seconds: Annotated[float, _check(_positive_timeout), Field(gt=0, le=60)] = 10
    headers: Annotated[dict[str, str] | None, BeforeValidator(lambda v: None)] = Field(
        default=None, description="Extra HTTP headers (checked as a whole, with the URL)."
    )

    @classmethod
    def kind_problems(cls, data: dict[str, Any]) -> list[Problem]:
        from ...notify.headers import headers_problem

        out = []
        if "url" not in data:
            out.append(Problem((), "a webhook target needs url: an http:// or https:// URL"))
        bad_header = headers_problem(data.get("headers"))
        if bad_header:  # whether the URL's address is allowed is the server's call
            name, reason = bad_header
            out.append(Problem(("headers", *((name,) if name else ())), reason))
        return out


def _event_text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value and len(value) <= 256):
        return None
    return "a non-empty string of at most 256 characters"


class EventTarget(_Target):
    """Put the input on the bus as a new event (one hop deeper)."""

    kind: Literal["event"]
    source: Annotated[str | None, _check(_event_text)] = None
    detail_type: Annotated[str | None, _check(_event_text)] = None


#: What names a workflow (``sqltide.workflows.registry.NAME``, kept equal by a test: the
#: models do not import the workflow SDK).
WORKFLOW_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
_WORKFLOW_NAME = re.compile(WORKFLOW_NAME_PATTERN)
#: What a workflow target without a workflow is told.
WORKFLOW_NEEDED = "a workflow target needs workflow: the name of a loaded workflow"
#: The longest execution timeout (``sqltide.workflows.service.MAX_TIMEOUT_SECONDS``: 366 days).
WORKFLOW_MAX_TIMEOUT_SECONDS = 366 * 86_400


def _workflow_name(value: Any) -> str | None:
    if isinstance(value, str) and _WORKFLOW_NAME.match(value):
        return None
    return (
        "a workflow name: a letter or digit, then up to 127 letters, digits, '_', '.' or '-'"
        f"{not_(value)}"
    )


def _execution_timeout(value: Any) -> str | None:
    if value is None or (_is_number(value) and 1 <= value <= WORKFLOW_MAX_TIMEOUT_SECONDS):
        return None
    given = f", not {value}" if _is_number(value) else not_(value)
    return f"a number of seconds from 1 to {WORKFLOW_MAX_TIMEOUT_SECONDS} (366 days){given}"


class WorkflowTarget(_Target):
    """Start an execution of a workflow as the rule's owner, with the input as its input.

    The execution's name is derived from the rule, the target and the event
    (``rule:<rule>:<target id>:<event id>``), so a redelivered event gives back the execution
    it started instead of starting another.
    """

    model_config = ConfigDict(json_schema_extra={"required": ["kind", "workflow"]})

    kind: Literal["workflow"]
    workflow: Annotated[str | None, _check(_workflow_name)] = Field(
        default=None,
        description="The workflow's name, as the workers load it (`SQLTIDE_WORKFLOWS`).",
        pattern=WORKFLOW_NAME_PATTERN,
    )
    timeout_seconds: Annotated[float | None, _check(_execution_timeout)] = Field(
        default=None,
        ge=1,
        le=WORKFLOW_MAX_TIMEOUT_SECONDS,
        description="The execution's timeout (default `SQLTIDE_WORKFLOW_TIMEOUT_SECONDS`).",
    )

    @classmethod
    def kind_problems(cls, data: dict[str, Any]) -> list[Problem]:
        if "workflow" not in data:
            return [Problem((), WORKFLOW_NEEDED)]
        return []


Target = Annotated[
    SqlTarget | TopicTarget | WebhookTarget | EventTarget | WorkflowTarget, Discriminator("kind")
]


# -- rules -----------------------------------------------------------------------------------
def _targets(value: Any) -> Any:
    if value is None:
        raise _problem(f"targets are missing (1 to {MAX_TARGETS})")
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TARGETS:
        raise _problem(f"a list of 1 to {MAX_TARGETS} targets")
    return value


def _pattern(value: Any) -> Any:
    if value is not None:
        from ..patterns import compile_pattern

        _wrap_inner(lambda: compile_pattern(value))
    return value


def _schedule_text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return "a cron(...), rate(...) or at(...) expression"
    return _text(256, identifier=True)(value)


class RuleBody(_Checked):
    """A rule, as ``PUT /v1/rules/{name}`` takes it: an event pattern or a schedule, and up
    to five targets."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _targets_required(schema))

    description: Annotated[str | None, _check(lambda v: v and _text(512)(v))] = None
    event_pattern: Annotated[dict[str, Any] | str | None, BeforeValidator(_pattern)] = Field(
        default=None, description="EventBridge's pattern language (an object, or its JSON text)."
    )
    schedule: Annotated[str | None, _check(_schedule_text)] = Field(
        default=None, description="`cron(...)`, `rate(...)` or `at(...)`."
    )
    timezone: Annotated[str, _check(lambda v: _timezone(v))] = "UTC"
    state: Annotated[
        RuleState,
        _check(lambda v: None if v in tuple(RuleState) else f"ENABLED or DISABLED{not_(v)}"),
    ] = RuleState.ENABLED
    missed_policy: Annotated[
        MissedPolicy,
        _check(
            lambda v: None if v in MISSED_POLICIES else f"{', '.join(MISSED_POLICIES)}{not_(v)}"
        ),
    ] = MissedPolicy.SKIP
    missed_window_seconds: Annotated[
        float | None,
        _check(
            lambda v: (
                None
                if v is None or (_is_number(v) and v > 0)
                else f"a positive number of seconds{not_(v)}"
            )
        ),
    ] = Field(default=None, gt=0)
    targets: Annotated[list[Target], BeforeValidator(_targets)] = Field(
        default=None, min_length=1, max_length=MAX_TARGETS, validate_default=True
    )

    @classmethod
    def own_problems(cls, data: dict[str, Any]) -> list[Problem]:
        return rule_cross_problems(data)


def _targets_required(schema: dict[str, Any]) -> None:
    """``targets`` has no default: its absence is a problem told in sqltide's words."""
    schema["properties"]["targets"].pop("default", None)
    schema.setdefault("required", []).append("targets")


def _timezone(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "an IANA time zone name such as UTC or Europe/Paris"
    return _text(64, identifier=True)(value)


class RuleSpec(RuleBody):
    """A rule with its name (the path's ``{name}`` over HTTP, the key in a pipeline file)."""

    name: Annotated[str, _check(_name)] = Field(pattern=NAME_PATTERN)


def rule_cross_problems(spec: dict[str, Any]) -> list[Problem]:
    """What only the rule as a whole can get wrong: a pattern or a schedule (one of them),
    the schedule in its time zone, unique target ids. Robust to a spec with other problems."""
    out: list[Problem] = []
    pattern, schedule = spec.get("event_pattern"), spec.get("schedule")
    if pattern is not None and schedule is not None:
        out.append(Problem((), "give an event_pattern or a schedule, not both"))
    elif pattern is None and schedule is None:
        out.append(Problem((), "give an event_pattern or a schedule (it has neither)"))
    timezone = spec.get("timezone", "UTC")
    if _timezone(timezone) is None:
        from ..schedules import parse_schedule

        try:
            if isinstance(schedule, str):
                parse_schedule(schedule, timezone)
            elif schedule is None:
                parse_schedule("rate(1 day)", timezone)  # the zone alone
        except errors.SqltideError as exc:
            reason = str(exc.details.get("reason", exc.message))
            if exc.details.get("field") == "timezone":
                out.append(Problem(("timezone",), reason))
            else:
                out.append(Problem(("schedule",), f"{schedule!r}: {reason}"))
    targets = spec.get("targets")
    if isinstance(targets, list):
        seen: dict[str, int] = {}
        for n, target in enumerate(targets):
            if not isinstance(target, dict):
                continue
            target_id = target.get("id", str(n))
            if not isinstance(target_id, str):
                continue
            if target_id in seen:
                at: tuple[str | int, ...] = (
                    ("targets", n, "id") if "id" in target else ("targets", n)
                )
                out.append(
                    Problem(
                        at,
                        f"target id {target_id!r} is already used by targets[{seen[target_id]}]; "
                        "ids must be unique",
                        also=("targets", seen[target_id]),
                    )
                )
            else:
                seen[target_id] = n
    return out


def rule_problems(spec: Any) -> list[Problem]:
    """Every problem of a rule's spec (a :class:`RuleBody`; ``name`` is checked if given)."""
    model = RuleSpec if isinstance(spec, dict) and "name" in spec else RuleBody
    return problems_of(model, spec)
