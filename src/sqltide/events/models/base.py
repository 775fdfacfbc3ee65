"""What every event model shares: names, the str enums, and problems in sqltide's words.

Every check answers with its own sentence, never pydantic's: each field's validator raises
:func:`_problem` (a ``PydanticCustomError`` of type ``sqltide``), and :func:`problems_of`
turns pydantic's errors into :class:`Problem` s (a location tuple and a reason).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple, TypeGuard, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ... import errors
from ...store.event_records import DeliveryStatus as DeliveryStatus  # re-exported
from ...store.event_records import RuleState as RuleState  # re-exported
from ...validation import check_text

M = TypeVar("M", bound=BaseModel)
NAME_PATTERN = r"^[A-Za-z0-9._\-]{1,64}$"
_NAME = re.compile(NAME_PATTERN)
#: How a name (rule, topic, target id, subscription id, replay) is described in a problem.
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-'"
_URL = re.compile(r"^https?://[^\s/]+")
MAX_TARGETS = 5
#: What a SQL target without SQL is told.
SQL_NEEDED = "a SQL target needs sql (a SQL text) or sqls (a list)"
#: EventBridge's defaults: retry for a day, up to 185 times.
DEFAULT_MAX_AGE_SECONDS = 86_400
DEFAULT_MAX_ATTEMPTS = 185


class MissedPolicy(StrEnum):
    """What a schedule does with firings missed while no scheduler ran."""

    #: Forget them; fire at the next time on the schedule.
    SKIP = "skip"
    #: Fire once for the latest missed time.
    LATEST = "latest"
    #: Fire once for every missed time (within ``missed_window_seconds``).
    ALL = "all"


class Protocol(StrEnum):
    """How a topic's subscription is told."""

    #: An e-mail over the configured SMTP server (``SQLTIDE_SMTP_URL``).
    EMAIL = "email"
    #: An HTTP POST of the message as JSON, signed when the subscription has a secret.
    WEBHOOK = "webhook"
    #: The same as ``webhook`` (SNS's name for it).
    HTTPS = "https"
    #: A publish to an Amazon SNS topic (its ARN).
    SNS = "sns"


TARGET_KINDS = ("sql", "topic", "webhook", "event", "workflow")
PROTOCOLS = tuple(p.value for p in Protocol)
MISSED_POLICIES = tuple(p.value for p in MissedPolicy)


# -- problems --------------------------------------------------------------------------------
class Problem(NamedTuple):
    """One thing wrong: where (keys and list indexes from the checked value) and why."""

    loc: tuple[str | int, ...]
    reason: str
    #: The code of the checker's own error, when one was wrapped (``invalid_filter_policy``).
    code: str | None = None
    #: Where the other value the reason names is (``targets[0]`` for an id used twice), so
    #: a reader with a longer path (a pipeline file's ``rules.r``) can name it in full.
    also: tuple[str | int, ...] | None = None


def _problem(reason: str, *at: str | int) -> PydanticCustomError:
    """A problem with the value being checked (or at ``at`` inside it)."""
    return PydanticCustomError("sqltide", "{reason}", {"reason": reason, "at": at})


def kind_of(value: Any) -> str:
    """What ``value`` is, for a message: ``a mapping``, ``a number``, ``nothing``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)


def not_(value: Any) -> str:
    """``, not 'OFF'`` / ``, not a list``: what was given instead, for a message."""
    return f", not {value!r}" if isinstance(value, str) else f", not {kind_of(value)}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check(test: Callable[[Any], str | None]) -> BeforeValidator:
    """A field check: ``test`` gives the reason a value is refused, or None."""

    def run(value: Any) -> Any:
        reason = test(value)
        if reason is not None:
            raise _problem(reason)
        return value

    return BeforeValidator(run)


def _text(max_chars: int, *, identifier: bool = False) -> Callable[[Any], str | None]:
    def test(value: Any) -> str | None:
        try:
            check_text(value, where="", max_chars=max_chars, identifier=identifier)
        except errors.SqltideError as exc:
            return str(exc.details.get("reason", exc.message))
        return None

    return test


def is_name(value: Any) -> TypeGuard[str]:
    """Whether ``value`` is a valid name (:data:`NAME_RULE`)."""
    return isinstance(value, str) and bool(_NAME.match(value))


def _name(value: Any) -> str | None:
    return None if is_name(value) else NAME_RULE


def _wrap_inner(call: Callable[[], Any]) -> None:
    """Run a checker of ``sqltide.events``/``notify`` that raises with ``details.path`` inside
    the value; re-raise as a problem at that inner path."""
    try:
        call()
    except errors.SqltideError as exc:
        inner = str(exc.details.get("path", ""))
        reason = str(exc.details.get("reason", exc.message))
        raise PydanticCustomError(
            "sqltide", "{reason}", {"reason": reason, "at": (), "inner": inner, "code": exc.code}
        ) from exc


def problems_of(model: type[BaseModel], data: Any) -> list[Problem]:
    """Every problem pydantic finds in ``data`` as ``model``, in sqltide's words."""
    return validated(model, data)[1]


def validated(model: type[M], data: Any) -> tuple[M | None, list[Problem]]:
    """``data`` as ``model`` (None when it is not valid), and every problem found."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [_from_pydantic(e) for e in exc.errors()]


def _from_pydantic(error: Any) -> Problem:
    loc = _strip_tags(tuple(error.get("loc", ())))
    ctx = error.get("ctx") or {}
    kind = error.get("type")
    if kind == "sqltide":
        inner = ctx.get("inner")
        at = (*loc, *ctx.get("at", ()))
        loc = (*at, InnerPath(inner)) if inner else at
        return Problem(loc, str(ctx["reason"]), ctx.get("code"), ctx.get("also"))
    given = error.get("input")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        has_kind = isinstance(given, dict) and "kind" in given
        known = ", ".join(TARGET_KINDS)
        tail = not_(given["kind"]) if has_kind else " (it is missing)"
        return Problem((*loc, "kind") if has_kind else loc, f"kind must be one of {known}{tail}")
    if kind == "model_type" or kind == "model_attributes_type":
        return Problem(loc, f"a mapping, not {kind_of(given)}")
    if kind == "missing":
        return Problem(loc, "is missing")
    return Problem(loc, str(error.get("msg", "not valid")))


class InnerPath(str):
    """A path inside a value, as its own checker wrote it (``detail.state[0].prefix``,
    ``$.a``, ``[0]``): one part of a problem's ``loc`` that is already a path."""


def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the tag pydantic puts after a list index of a tagged union (``targets.0.sql``)."""
    out: list[Any] = []
    for n, part in enumerate(loc):
        if n and isinstance(loc[n - 1], int) and part in TARGET_KINDS and out[:1] == ["targets"]:
            continue
        out.append(part)
    return tuple(out)


def dotted(loc: tuple[str | int, ...], where: str = "") -> str:
    """``where.targets[0].url`` for a problem's ``loc``."""
    out = where
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, InnerPath):
            out += f".{part}" if part else ""
        else:
            out += f".{part}" if out else part
    return out


class _Checked(BaseModel):
    """A model with checks across its fields (:meth:`own_problems`, on the raw mapping), which
    are reported together with its fields' problems instead of hiding them."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def own_problems(cls, data: dict[str, Any]) -> list[Problem]:
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _with_own_problems(cls, data: Any, handler: Any) -> Any:
        mine = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "sqltide", "{reason}", {"reason": p.reason, "at": p.loc, "also": p.also}
                ),
                loc=(),
                input=data,
            )
            for p in (cls.own_problems(data) if isinstance(data, dict) else [])
        ]
        try:
            result = handler(data)
        except ValidationError as exc:
            raise ValidationError.from_exception_data(
                cls.__name__, [*map(_again, exc.errors()), *mine]
            ) from None
        if mine:
            raise ValidationError.from_exception_data(cls.__name__, mine)
        return result


def _again(error: Any) -> InitErrorDetails:
    """One of pydantic's errors, to be raised again (a custom one needs its class back)."""
    kind: Any = error["type"]
    ctx = error.get("ctx")
    if kind == "sqltide":
        kind = PydanticCustomError("sqltide", "{reason}", ctx)
    elif ctx is None or kind in ("union_tag_invalid", "union_tag_not_found"):
        kind = PydanticCustomError(kind, error["msg"], ctx)
    out = InitErrorDetails(type=kind, loc=error["loc"], input=error["input"])
    if ctx is not None and isinstance(kind, str):
        out["ctx"] = ctx
    return out


def _input_problems(data: dict[str, Any]) -> list[Problem]:
    from ..inputs import InvalidTargetInput, validate_input

    try:
        validate_input(data, "@")  # a prefix to cut off again
    except InvalidTargetInput as exc:
        inner = str(exc.details.get("path", "@")).removeprefix("@").lstrip(".")
        reason = re.sub(r"^@(?:[^\s:]*: |\.)?", "", exc.message)
        return [Problem((InnerPath(inner),), reason)]
    return []


def _positive_timeout(value: Any) -> str | None:
    if _is_number(value) and 0 < value <= 60:
        return None
    return "a number of seconds, above 0 and at most 60"


def _mapping(value: Any) -> str | None:
    return None if isinstance(value, dict) else "a mapping of parameter names to values"


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "a string"
