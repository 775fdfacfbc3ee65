"""Plans and applying them: :func:`plan` compares a pipeline with what the server has (filling
in the server's defaults, ignoring masked secrets), :func:`render_plan` shows it, and
:func:`apply` performs it step by step into a :class:`Result`.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import errors
from .checks import _missing_topics
from .model import DEFAULT_RETRY, RULE_FIELDS, SECRET_MASK, Pipeline
from .problems import PipelineError, _child
from .remote import Remote

Action = Literal["create", "update", "unchanged", "delete"]


@dataclass(frozen=True)
class FieldChange:
    path: str  # "targets[0].sql"
    before: Any
    after: Any


_ABSENT: Any = type("_Absent", (), {"__repr__": lambda self: "(none)"})()


@dataclass(frozen=True)
class Change:
    """One step of a plan."""

    action: Action
    kind: Literal["topic", "rule"]
    name: str
    body: dict[str, Any] | None = None  # what to PUT (create, update)
    fields: tuple[str, ...] = ()  # the top-level fields an update changes
    diff: tuple[FieldChange, ...] = ()

    def __str__(self) -> str:
        text = f"{self.action} {self.kind} {self.name}"
        return f"{text}: {', '.join(self.fields)}" if self.fields else text


@dataclass(frozen=True)
class Plan:
    pipeline: Pipeline
    changes: tuple[Change, ...]
    prune: bool = False

    @property
    def has_changes(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def summary(self) -> str:
        return (
            f"{self.count('create')} to create, {self.count('update')} to update, "
            f"{self.count('delete')} to delete, {self.count('unchanged')} unchanged"
        )


def plan(pipeline: Pipeline, remote: Remote, *, prune: bool = False) -> Plan:
    """Compare the pipeline with what the server has: topics first, then rules, then (with
    ``prune``) deletes of the rules and topics the file does not mention, rules first.

    Raises:
        PipelineError: for what only the server can tell (a topic target naming a topic
            neither in the file nor on the server, an unknown warehouse).
    """
    server_topics = {t["name"]: t for t in remote.list_topics()}
    server_rules = {r["name"]: r for r in remote.list_rules()}
    problems = _missing_topics(pipeline, () if prune else set(server_topics), prune=prune)
    if pipeline.warehouse_refs:
        try:
            warehouses = set(remote.list_warehouses())
        except errors.SqltideError:
            warehouses = None  # the server checks again when the rule is put
        if warehouses is not None:
            problems += [
                pipeline.problem(
                    ref.path,
                    f"no warehouse named {ref.name!r} "
                    f"(configured: {', '.join(sorted(warehouses))})",
                )
                for ref in pipeline.warehouse_refs
                if ref.name not in warehouses
            ]
    if problems:
        raise PipelineError(problems)
    changes: list[Change] = []
    for name, body in pipeline.topics.items():
        changes.append(_compare("topic", name, body, _topic_fields(body), server_topics.get(name)))
    for name, body in pipeline.rules.items():
        changes.append(_compare("rule", name, body, _rule_fields(body), server_rules.get(name)))
    if prune:
        changes += [
            Change("delete", "rule", name)
            for name in sorted(server_rules)
            if name not in pipeline.rules
        ]
        changes += [
            Change("delete", "topic", name)
            for name in sorted(server_topics)
            if name not in pipeline.topics
        ]
    return Plan(pipeline, tuple(changes), prune)


def _compare(
    kind: Literal["topic", "rule"],
    name: str,
    body: dict[str, Any],
    wanted: dict[str, Any],
    current: dict[str, Any] | None,
) -> Change:
    if current is None:
        return Change("create", kind, name, body)
    have = (_server_topic_fields if kind == "topic" else _server_rule_fields)(current)
    diff: list[FieldChange] = []
    fields = []
    for key in wanted:
        before, after = have.get(key, _ABSENT), wanted[key]
        if before != after:
            fields.append(key)
            diff += _diff(before, after, key)
    if not fields:
        return Change("unchanged", kind, name)
    return Change("update", kind, name, body, tuple(fields), tuple(diff))


def _diff(before: Any, after: Any, path: str) -> list[FieldChange]:
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[FieldChange] = []
        for key in [*before, *(k for k in after if k not in before)]:
            out += _diff(before.get(key, _ABSENT), after.get(key, _ABSENT), _child(path, key))
        return out
    if isinstance(before, list) and isinstance(after, list):
        out = []
        for n in range(max(len(before), len(after))):
            out += _diff(
                before[n] if n < len(before) else _ABSENT,
                after[n] if n < len(after) else _ABSENT,
                _child(path, n),
            )
        return out
    return [FieldChange(path, before, after)]


def _mask(spec: dict[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    if out.get("secret"):
        out["secret"] = SECRET_MASK
    return out


def _topic_fields(body: dict[str, Any]) -> dict[str, Any]:
    subs = body.get("subscriptions") or []
    return {
        "display_name": body.get("display_name"),
        "subscriptions": [_mask({"id": str(n), **s}) for n, s in enumerate(subs)],
    }


def _server_topic_fields(topic: dict[str, Any]) -> dict[str, Any]:
    return {
        "display_name": topic.get("display_name"),
        "subscriptions": [dict(s) for s in topic.get("subscriptions") or []],
    }


def _rule_fields(body: dict[str, Any]) -> dict[str, Any]:
    targets = []
    for n, target in enumerate(body.get("targets") or []):
        t = _mask({"id": str(n), **target})
        t["retry_policy"] = {**DEFAULT_RETRY, **(target.get("retry_policy") or {})}
        targets.append(t)
    return {
        "description": body.get("description"),
        "state": body.get("state", "ENABLED"),
        "event_pattern": body.get("event_pattern"),
        "schedule": body.get("schedule"),
        "timezone": body.get("timezone", "UTC"),
        "missed_policy": body.get("missed_policy", "skip"),
        "missed_window_seconds": body.get("missed_window_seconds"),
        "targets": targets,
    }


def _server_rule_fields(rule: dict[str, Any]) -> dict[str, Any]:
    out = {key: rule.get(key) for key in RULE_FIELDS}
    if isinstance(out["event_pattern"], str):
        with contextlib.suppress(ValueError):
            out["event_pattern"] = json.loads(out["event_pattern"])
    return out


def render_plan(the_plan: Plan, *, details: bool = True) -> str:
    """The plan as text: one line per topic and rule, and each changed value of an update.

    ``+ create rule nightly-elt``, ``~ update rule elt-done: targets``, ``= unchanged topic
    elt-status``, ``- delete rule old``; then a summary line.
    """
    signs = {"create": "+", "update": "~", "unchanged": "=", "delete": "-"}
    lines = []
    for change in the_plan.changes:
        lines.append(f"{signs[change.action]} {change}")
        if details:
            for fc in change.diff:
                lines.append(f"    {fc.path}: {_short(fc.before)} -> {_short(fc.after)}")
    lines.append(f"Plan: {the_plan.summary()}.")
    return "\n".join(lines)


def _short(value: Any, limit: int = 60) -> str:
    if value is _ABSENT:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- applying --------------------------------------------------------------------------------
@dataclass
class Result:
    """What :func:`apply` did: the steps applied, in order, and the first error if any."""

    applied: list[Change] = field(default_factory=list)
    unchanged: list[Change] = field(default_factory=list)
    failed: Change | None = None
    error: errors.SqltideError | None = None
    not_applied: list[Change] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def apply(the_plan: Plan, remote: Remote) -> Result:
    """Perform the plan's steps in order (topics, rules, deletes); stop at the first error."""
    result = Result()
    steps = iter(the_plan.changes)
    for change in steps:
        if change.action == "unchanged":
            result.unchanged.append(change)
            continue
        try:
            if change.action == "delete":
                with contextlib.suppress(errors.NotFound):  # already gone, as planned
                    remote.delete(change.kind, change.name)
            else:
                assert change.body is not None
                remote.put(change.kind, change.name, change.body)
        except errors.SqltideError as exc:
            result.failed, result.error = change, exc
            result.not_applied = [c for c in steps if c.action != "unchanged"]
            break
        result.applied.append(change)
    return result
