"""Every local check of a pipeline file, collecting problems instead of stopping at the first.

:class:`_Checker` checks topics, subscriptions, rules and targets (with the server's own
validators for event patterns, schedules, target inputs and filter policies) and reads SQL
targets' ``file:``; :func:`_missing_topics` checks the topics targets name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from .. import errors
from ..events.inputs import InvalidTargetInput, validate_input
from ..events.patterns import compile_pattern
from ..events.schedules import parse_schedule
from ..events.service import MAX_TARGETS, MISSED_POLICIES, PROTOCOLS
from ..notify.filters import compile_filter_policy
from ..notify.headers import email_address_problem, headers_problem
from ..statements.requests import BATCH_MODES
from .model import (
    _COMMON_TARGET_KEYS,
    RETRY_KEYS,
    RULE_KEYS,
    SUBSCRIPTION_KEYS,
    TARGET_KEYS,
    TOP_LEVEL_KEYS,
    TOPIC_KEYS,
    VERSION,
    Pipeline,
    Reference,
)
from .problems import Problem, _child, _join_inner, _Places, _Problems

_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-'"
_URL = re.compile(r"^https?://[^\s/]+")


def _suggest(key: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else f" (expected: {', '.join(known)})"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Checker:
    """Every local check, collecting problems instead of stopping at the first."""

    def __init__(self, problems: _Problems, base_dir: Path | None = None):
        self.problems = problems
        self.base_dir = base_dir or Path.cwd()
        self.topic_refs: list[Reference] = []
        self.warehouse_refs: list[Reference] = []

    def add(self, path: str, message: str, *, key: bool = False) -> None:
        self.problems.add(path, message, key=key)

    def mapping(self, value: Any, path: str, what: str) -> dict[str, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, f"{what} must be a mapping, not {_kind(value)}")
            return None
        return value

    def unknown_keys(self, body: dict[str, Any], path: str, known: Collection[str]) -> None:
        for key in body:
            if key not in known:
                self.add(_child(path, key), f"unknown key {key!r}{_suggest(key, known)}", key=True)

    # -- the file --------------------------------------------------------------------------
    def pipeline(self, document: Any, source: str, places: _Places) -> Pipeline:
        topics: dict[str, dict[str, Any]] = {}
        rules: dict[str, dict[str, Any]] = {}
        if document is None:
            self.add("", "the file is empty; it needs version: 1 and topics and/or rules")
        elif not isinstance(document, dict):
            self.add(
                "", f"the file must be a mapping (version, topics, rules), not {_kind(document)}"
            )
        else:
            for key in document:
                if key not in TOP_LEVEL_KEYS and not key.startswith("x-"):
                    close = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1)
                    hint = (
                        f"did you mean {close[0]!r}?"
                        if close
                        else "expected version, topics and rules "
                        "(keys starting with x- are ignored: use them for YAML anchors)"
                    )
                    self.add(key, f"unknown top-level key {key!r}; {hint}", key=True)
            version = document.get("version")
            if "version" not in document:
                self.add("", f"version is missing (write version: {VERSION})")
            elif type(version) is not int or version != VERSION:
                self.add(
                    "version", f"unsupported version {version!r}; this sqltide reads {VERSION}"
                )
            for name, body in (
                self.mapping(document.get("topics"), "topics", "topics") or {}
            ).items():
                checked = self.topic(name, body, _child("topics", name))
                if checked is not None:
                    topics[name] = checked
            for name, body in (self.mapping(document.get("rules"), "rules", "rules") or {}).items():
                checked = self.rule(name, body, _child("rules", name))
                if checked is not None:
                    rules[name] = checked
            if not topics and not rules and not self.problems.items:
                self.add("", "the file defines no topics and no rules")
        pipeline = Pipeline(
            source=source,
            topics=topics,
            rules=rules,
            topic_refs=tuple(self.topic_refs),
            warehouse_refs=tuple(self.warehouse_refs),
            places=places,
        )
        return pipeline

    # -- topics ----------------------------------------------------------------------------
    def topic(self, name: str, body: Any, path: str) -> dict[str, Any] | None:
        if not _NAME.match(name):
            self.add(path, f"a topic name is {_NAME_RULE}", key=True)
        spec = self.mapping(body, path, "a topic")
        if spec is None:
            return None
        self.unknown_keys(spec, path, TOPIC_KEYS)
        display = spec.get("display_name")
        if display is not None and not isinstance(display, str):
            self.add(_child(path, "display_name"), "a string")
        subs = spec.get("subscriptions", [])
        subs_path = _child(path, "subscriptions")
        if subs is None:
            subs = []
        if not isinstance(subs, list):
            self.add(subs_path, f"a list of subscriptions, not {_kind(subs)}")
            subs = []
        ids: dict[str, str] = {}
        for n, sub in enumerate(subs):
            where = _child(subs_path, n)
            sub_id = self.subscription(sub, where, n)
            if sub_id is None:
                continue
            if sub_id in ids:
                self.add(
                    _child(where, "id"),
                    f"subscription id {sub_id!r} is already used by {ids[sub_id]}",
                )
            else:
                ids[sub_id] = where
        return {k: v for k, v in spec.items() if k in TOPIC_KEYS}

    def subscription(self, sub: Any, where: str, n: int) -> str | None:
        if not isinstance(sub, dict):
            self.add(where, f"a subscription is a mapping (protocol, endpoint), not {_kind(sub)}")
            return None
        self.unknown_keys(sub, where, SUBSCRIPTION_KEYS)
        protocol, endpoint = sub.get("protocol"), sub.get("endpoint")
        if protocol not in PROTOCOLS:
            self.add(_child(where, "protocol"), f"one of {', '.join(PROTOCOLS)}{_not(protocol)}")
        if not isinstance(endpoint, str) or not endpoint:
            self.add(_child(where, "endpoint"), "an e-mail address, URL or ARN")
        elif protocol == "email" and (problem := email_address_problem(endpoint)):
            self.add(_child(where, "endpoint"), f"{endpoint!r}: {problem}")
        elif protocol in ("webhook", "https") and not _URL.match(endpoint):
            self.add(_child(where, "endpoint"), f"{endpoint!r} is not an http:// or https:// URL")
        policy = sub.get("filter_policy")
        if policy is not None:
            try:
                compile_filter_policy(policy)
            except errors.SqltideError as exc:
                inner = str(exc.details.get("path", ""))
                reason = exc.details.get("reason", exc.message)
                self.add(_join_inner(_child(where, "filter_policy"), inner), str(reason))
        secret = sub.get("secret")
        if secret is not None and not isinstance(secret, str):
            self.add(_child(where, "secret"), "a string")
        self.timeout(sub, where)
        sub_id = sub.get("id", str(n))
        if not isinstance(sub_id, str) or not _NAME.match(sub_id):
            self.add(_child(where, "id"), _NAME_RULE)
            return None
        return sub_id

    def timeout(self, spec: dict[str, Any], where: str) -> None:
        if "timeout_seconds" in spec:
            timeout = spec["timeout_seconds"]
            if not _is_number(timeout) or not 0 < timeout <= 60:
                self.add(
                    _child(where, "timeout_seconds"), "a number of seconds, above 0 and at most 60"
                )

    # -- rules -----------------------------------------------------------------------------
    def rule(self, name: str, body: Any, path: str) -> dict[str, Any] | None:
        if not _NAME.match(name):
            self.add(path, f"a rule name is {_NAME_RULE}", key=True)
        spec = self.mapping(body, path, "a rule")
        if spec is None:
            return None
        if not spec:
            self.add(path, "a rule needs an event_pattern or a schedule, and targets")
            return None
        self.unknown_keys(spec, path, RULE_KEYS)
        out = {k: v for k, v in spec.items() if k in RULE_KEYS}
        description = spec.get("description")
        if description is not None and not isinstance(description, str):
            self.add(_child(path, "description"), "a string")
        timezone = spec.get("timezone", "UTC")
        timezone_ok = isinstance(timezone, str) and timezone.strip() != ""
        if not timezone_ok:
            self.add(_child(path, "timezone"), "an IANA time zone name such as UTC or Europe/Paris")
        pattern, schedule = spec.get("event_pattern"), spec.get("schedule")
        if (pattern is None) == (schedule is None):
            both = pattern is not None
            self.add(
                path,
                "give an event_pattern or a schedule, not both"
                if both
                else "give an event_pattern or a schedule (it has neither)",
            )
        if pattern is not None:
            pattern_path = _child(path, "event_pattern")
            try:
                out["event_pattern"] = compile_pattern(pattern).source
            except errors.SqltideError as exc:
                inner = str(exc.details.get("path", ""))
                reason = exc.details.get("reason", exc.message)
                self.add(_join_inner(pattern_path, inner), str(reason))
            if timezone_ok and schedule is None:
                self.zone(timezone, _child(path, "timezone"))
        if schedule is not None:
            schedule_path = _child(path, "schedule")
            if not isinstance(schedule, str):
                self.add(schedule_path, "a cron(...), rate(...) or at(...) expression")
            elif timezone_ok:
                try:
                    parse_schedule(schedule, timezone)
                except errors.SqltideError as exc:
                    reason = str(exc.details.get("reason", exc.message))
                    if exc.details.get("field") == "timezone":
                        self.add(_child(path, "timezone"), reason)
                    else:
                        self.add(schedule_path, f"{schedule!r}: {reason}")
        state = spec.get("state", "ENABLED")
        if state not in ("ENABLED", "DISABLED"):
            self.add(_child(path, "state"), f"ENABLED or DISABLED{_not(state)}")
        policy = spec.get("missed_policy", "skip")
        if policy not in MISSED_POLICIES:
            self.add(_child(path, "missed_policy"), f"{', '.join(MISSED_POLICIES)}{_not(policy)}")
        window = spec.get("missed_window_seconds")
        if window is not None and (not _is_number(window) or window <= 0):
            self.add(
                _child(path, "missed_window_seconds"), f"a positive number of seconds{_not(window)}"
            )
        targets = spec.get("targets")
        targets_path = _child(path, "targets")
        if targets is None:
            self.add(path, f"targets are missing (1 to {MAX_TARGETS})")
        elif not isinstance(targets, list) or not 1 <= len(targets) <= MAX_TARGETS:
            self.add(targets_path, f"a list of 1 to {MAX_TARGETS} targets")
        else:
            ids: dict[str, str] = {}
            for n, target in enumerate(targets):
                where = _child(targets_path, n)
                target_id = self.target(target, where, n)
                if target_id is None:
                    continue
                if target_id in ids:
                    self.add(
                        _child(where, "id") if "id" in target else where,
                        f"target id {target_id!r} is already used by {ids[target_id]}; "
                        "ids must be unique",
                    )
                else:
                    ids[target_id] = where
        return out

    def zone(self, timezone: str, where: str) -> None:
        try:
            parse_schedule("rate(1 day)", timezone)
        except errors.SqltideError as exc:
            self.add(where, str(exc.details.get("reason", exc.message)))

    def target(self, target: Any, where: str, n: int) -> str | None:
        if not isinstance(target, dict):
            self.add(where, f"a target is a mapping (id, kind, ...), not {_kind(target)}")
            return None
        target_id = target.get("id", str(n))
        id_ok = isinstance(target_id, str) and bool(_NAME.match(target_id))
        if not id_ok:
            self.add(_child(where, "id"), _NAME_RULE)
        kind = target.get("kind")
        kind_path = _child(where, "kind")
        if kind == "workflow":
            self.add(kind_path, "workflow targets come with durable workflows")
            return target_id if id_ok else None
        if kind not in TARGET_KEYS:
            self.add(
                kind_path if "kind" in target else where,
                f"kind must be one of {', '.join(TARGET_KEYS)}"
                + (_not(kind) if "kind" in target else " (it is missing)"),
            )
            return target_id if id_ok else None
        self.unknown_keys(target, where, (*_COMMON_TARGET_KEYS, *TARGET_KEYS[kind]))
        getattr(self, f"_target_{kind}")(target, where)
        try:
            validate_input(target, where)
        except InvalidTargetInput as exc:
            inner = str(exc.details.get("path", where))
            message = re.sub(rf"^{re.escape(where)}(?:[^\s:]*: |\.)?", "", exc.message)
            self.add(inner, message)
        self.retry_policy(target.get("retry_policy"), _child(where, "retry_policy"))
        return target_id if id_ok else None

    def _target_sql(self, t: dict[str, Any], where: str) -> None:
        if "file" in t:
            self._sql_file(t, where)
        else:
            self._sql_text(t, where)
        warehouse = t.get("warehouse")
        if warehouse is not None:
            if not isinstance(warehouse, str) or not warehouse:
                self.add(_child(where, "warehouse"), "a warehouse name")
            else:
                self.warehouse_refs.append(Reference(_child(where, "warehouse"), warehouse))
        if "parameters" in t and not isinstance(t["parameters"], dict | type(None)):
            self.add(_child(where, "parameters"), "a mapping of parameter names to values")
        if "with_event" in t and not isinstance(t["with_event"], bool):
            self.add(_child(where, "with_event"), f"true or false{_not(t['with_event'])}")
        if "mode" in t and t["mode"] not in BATCH_MODES:
            self.add(_child(where, "mode"), f"{' or '.join(BATCH_MODES)}{_not(t['mode'])}")
        if "statement_name" in t and not isinstance(t["statement_name"], str):
            self.add(_child(where, "statement_name"), "a string")

    def _sql_file(self, t: dict[str, Any], where: str) -> None:
        """Read a target's ``file``: one statement becomes ``sql``, several ``sqls`` (a batch,
        one transaction), as ``sqltide sql -f`` splits them. The server never sees the file."""
        from ..statements.script import split_script

        where_file = _child(where, "file")
        name = t["file"]
        if "sql" in t or "sqls" in t:
            self.add(where, "give one of sql, sqls or file")
            return
        if not isinstance(name, str) or not name.strip():
            self.add(where_file, "the path of a .sql file (relative to the pipeline file)")
            return
        path = (self.base_dir / Path(name).expanduser()).resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.add(where_file, f"no such file: {path}")
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.add(where_file, f"cannot read {path}: {exc}")
            return
        statements = split_script(text)
        if not statements:
            self.add(where_file, f"{path} holds no SQL statement")
            return
        del t["file"]
        if len(statements) == 1:
            t["sql"] = statements[0]
        else:
            t["sqls"] = statements

    def _sql_text(self, t: dict[str, Any], where: str) -> None:
        if "sql" in t and "sqls" in t:
            self.add(where, "give sql or sqls, not both")
        elif "sqls" in t:
            sqls = t["sqls"]
            if not isinstance(sqls, list) or not sqls:
                self.add(_child(where, "sqls"), "a non-empty list of SQL texts")
            else:
                for n, sql in enumerate(sqls):
                    if not isinstance(sql, str) or not sql.strip():
                        self.add(_child(_child(where, "sqls"), n), "a non-empty SQL text")
        elif not isinstance(t.get("sql"), str) or not t["sql"].strip():
            self.add(
                _child(where, "sql") if "sql" in t else where,
                "a SQL target needs sql (a SQL text), sqls (a list) or file (a .sql file)",
            )

    def _target_topic(self, t: dict[str, Any], where: str) -> None:
        topic = t.get("topic")
        if not isinstance(topic, str) or not topic:
            self.add(
                _child(where, "topic") if "topic" in t else where,
                "a topic target needs topic: a topic name",
            )
        else:
            self.topic_refs.append(Reference(_child(where, "topic"), topic))

    def _target_webhook(self, t: dict[str, Any], where: str) -> None:
        url = t.get("url")
        if not isinstance(url, str) or not _URL.match(url):
            self.add(
                _child(where, "url") if "url" in t else where,
                "a webhook target needs url: an http:// or https:// URL",
            )
        if "secret" in t and not isinstance(t["secret"], str):
            self.add(_child(where, "secret"), "a string")
        bad_header = headers_problem(t.get("headers"))
        if bad_header:  # whether the URL's address is allowed is the server's call
            name, reason = bad_header
            self.add(
                _child(_child(where, "headers"), name) if name else _child(where, "headers"), reason
            )
        self.timeout(t, where)

    def _target_event(self, t: dict[str, Any], where: str) -> None:
        for key in ("source", "detail_type"):
            value = t.get(key)
            if value is not None and (not isinstance(value, str) or not value or len(value) > 256):
                self.add(_child(where, key), "a non-empty string of at most 256 characters")

    def retry_policy(self, retry: Any, where: str) -> None:
        if retry is None:
            return
        if not isinstance(retry, dict):
            self.add(where, f"a mapping ({', '.join(RETRY_KEYS)})")
            return
        self.unknown_keys(retry, where, RETRY_KEYS)
        age = retry.get("maximum_event_age_seconds", 86_400)
        if type(age) is not int or not 60 <= age <= 86_400:
            self.add(_child(where, "maximum_event_age_seconds"), "a whole number from 60 to 86400")
        attempts = retry.get("maximum_retry_attempts", 185)
        if type(attempts) is not int or not 0 <= attempts <= 185:
            self.add(_child(where, "maximum_retry_attempts"), "a whole number from 0 to 185")


def _not(value: Any) -> str:
    return f", not {value!r}" if isinstance(value, str) else f", not {_kind(value)}"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if _is_number(value) else type(value).__name__
    )


def _missing_topics(
    pipeline: Pipeline, on_server: Collection[str], *, prune: bool = False
) -> list[Problem]:
    where = (
        "in the file (with prune, the server's other topics are deleted)"
        if prune
        else "in the file or on the server"
    )
    return [
        pipeline.problem(ref.path, f"no topic named {ref.name!r} {where}")
        for ref in pipeline.topic_refs
        if ref.name not in pipeline.topics and ref.name not in on_server
    ]
