"""Topics and their subscriptions (e-mail, webhook, SNS): :func:`topic_problems`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field

from .base import (
    _URL,
    NAME_PATTERN,
    PROTOCOLS,
    Problem,
    Protocol,
    _check,
    _Checked,
    _name,
    _positive_timeout,
    _problem,
    _string,
    _text,
    _wrap_inner,
    kind_of,
    not_,
    problems_of,
)


# -- topics ----------------------------------------------------------------------------------
def _endpoint(data: dict[str, Any]) -> list[Problem]:
    protocol, endpoint = data.get("protocol"), data.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        return [Problem(("endpoint",), "an e-mail address, URL or ARN")]
    if protocol == "email":
        from ...notify.headers import email_address_problem

        if problem := email_address_problem(endpoint):
            return [Problem(("endpoint",), f"{endpoint!r}: {problem}")]
    elif protocol in ("webhook", "https") and not _URL.match(endpoint):
        return [Problem(("endpoint",), f"{endpoint!r} is not an http:// or https:// URL")]
    return []


def _filter_policy(value: Any) -> Any:
    if value is not None:
        from ...notify.filters import compile_filter_policy

        _wrap_inner(lambda: compile_filter_policy(value))
    return value


class Subscription(_Checked):
    """Who a topic tells, and how: an e-mail address, a webhook URL or an SNS topic ARN."""

    # protocol and endpoint are required (the schema says so) but given defaults: missing,
    # they are told in sqltide's words (by the protocol's check, by _endpoint).
    model_config = ConfigDict(json_schema_extra={"required": ["protocol", "endpoint"]})

    id: Annotated[str | None, _check(lambda v: None if v is None else _name(v))] = Field(
        default=None, pattern=NAME_PATTERN, description="Default: the subscription's index."
    )
    protocol: Annotated[
        Protocol,
        _check(lambda v: None if v in PROTOCOLS else f"one of {', '.join(PROTOCOLS)}{not_(v)}"),
    ] = Field(default=None, validate_default=True, description="How it is told.")
    endpoint: Annotated[str, BeforeValidator(lambda v: "")] = Field(
        default=None,
        validate_default=True,
        description="An e-mail address, an http(s) URL or an SNS topic ARN.",
    )
    filter_policy: Annotated[dict[str, Any] | None, BeforeValidator(_filter_policy)] = Field(
        default=None, description="SNS's filter policy language, over the message attributes."
    )
    secret: Annotated[str | None, _check(lambda v: v and _string(v))] = None
    timeout_seconds: Annotated[float, _check(_positive_timeout), Field(gt=0, le=60)] = 10

    @classmethod
    def own_problems(cls, data: dict[str, Any]) -> list[Problem]:
        return _endpoint(data)


def _subscriptions(value: Any) -> Any:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _problem(f"a list of subscriptions, not {kind_of(value)}")
    return value


class TopicBody(_Checked):
    """A topic, as ``PUT /v1/topics/{name}`` takes it: who is told of what reaches it."""

    display_name: Annotated[str | None, _check(lambda v: v and _text(256)(v))] = None
    subscriptions: Annotated[list[Subscription], BeforeValidator(_subscriptions)] = Field(
        default_factory=list
    )

    @classmethod
    def own_problems(cls, data: dict[str, Any]) -> list[Problem]:
        return topic_cross_problems(data)


class TopicSpec(TopicBody):
    """A topic with its name."""

    name: Annotated[str, _check(_name)] = Field(pattern=NAME_PATTERN)


def topic_cross_problems(spec: dict[str, Any]) -> list[Problem]:
    """Subscription ids used twice (a subscription's default id is its index)."""
    subs = spec.get("subscriptions")
    out: list[Problem] = []
    if isinstance(subs, list):
        seen: dict[str, int] = {}
        for n, sub in enumerate(subs):
            sub_id = sub.get("id") if isinstance(sub, dict) else None
            sub_id = str(n) if sub_id is None else sub_id
            if not isinstance(sub_id, str):
                continue
            if sub_id in seen:
                out.append(
                    Problem(
                        ("subscriptions", n, "id"),
                        f"subscription id {sub_id!r} is already used by "
                        f"subscriptions[{seen[sub_id]}]",
                        also=("subscriptions", seen[sub_id]),
                    )
                )
            else:
                seen[sub_id] = n
    return out


def topic_problems(spec: Any) -> list[Problem]:
    """Every problem of a topic's spec."""
    model = TopicSpec if isinstance(spec, dict) and "name" in spec else TopicBody
    return problems_of(model, spec)
