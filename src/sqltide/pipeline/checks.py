"""Every local check of a pipeline file, collecting problems instead of stopping at the first.

A topic's or rule's shape is judged by the models the server judges it with
(:func:`~sqltide.events.models.topic_problems`, :func:`~sqltide.events.models.rule_problems`),
each problem placed at its ``line:column``. What only a file can get wrong is checked here:
the top-level keys, names (mapping keys), keys the server would keep but no file should hold
(with a suggestion), and SQL targets' ``file:``, read beside the pipeline file.
:func:`_missing_topics` checks the topics targets name.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ..events import models
from ..events.models import NAME_RULE, InnerPath, dotted, rule_problems, topic_problems
from ..events.patterns import compile_pattern
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

#: What a SQL target is missing, in a file's words (a file may also name a ``.sql`` file).
_NEEDS_SQL = "a SQL target needs sql (a SQL text), sqls (a list) or file (a .sql file)"


def _suggest(key: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else f" (expected: {', '.join(known)})"


def _path(path: str, loc: tuple[str | int, ...]) -> str:
    """The file path of a model problem's ``loc`` under ``path`` (``rules.r``)."""
    for part in loc:
        path = _join_inner(path, part) if isinstance(part, InnerPath) else _child(path, part)
    return path


class _Checker:
    """Every local check, collecting problems instead of stopping at the first."""

    def __init__(self, problems: _Problems, base_dir: Path | None = None):
        self.problems = problems
        self.base_dir = base_dir or Path.cwd()
        self.topic_refs: list[Reference] = []
        self.warehouse_refs: list[Reference] = []

    def add(self, path: str, message: str, *, key: bool = False) -> None:
        self.problems.add(path, message, key=key)

    def add_model_problems(self, found: list[models.Problem], path: str) -> None:
        """A model's problems with the topic or rule at ``path``, at their places."""
        for problem in found:
            reason = problem.reason
            if problem.also is not None:  # "already used by targets[0]": name it in full
                reason = reason.replace(dotted(problem.also), _path(path, problem.also))
            elif reason == models.SQL_NEEDED:
                reason = _NEEDS_SQL
            self.add(_path(path, problem.loc), reason)

    def mapping(self, value: Any, path: str, what: str) -> dict[str, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, f"{what} must be a mapping, not {models.kind_of(value)}")
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
                "",
                f"the file must be a mapping (version, topics, rules), not {models.kind_of(document)}",
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
        if not models.is_name(name):
            self.add(path, f"a topic name is {NAME_RULE}", key=True)
        spec = self.mapping(body, path, "a topic")
        if spec is None:
            return None
        self.unknown_keys(spec, path, TOPIC_KEYS)
        out = {k: v for k, v in spec.items() if k in TOPIC_KEYS}
        subs = out.get("subscriptions")
        for n, sub in enumerate(subs if isinstance(subs, list) else []):
            if isinstance(sub, dict):
                where = _child(_child(path, "subscriptions"), n)
                self.unknown_keys(sub, where, SUBSCRIPTION_KEYS)
        self.add_model_problems(topic_problems(out), path)
        return out

    # -- rules -----------------------------------------------------------------------------
    def rule(self, name: str, body: Any, path: str) -> dict[str, Any] | None:
        if not models.is_name(name):
            self.add(path, f"a rule name is {NAME_RULE}", key=True)
        spec = self.mapping(body, path, "a rule")
        if spec is None:
            return None
        if not spec:
            self.add(path, "a rule needs an event_pattern or a schedule, and targets")
            return None
        self.unknown_keys(spec, path, RULE_KEYS)
        out = {k: v for k, v in spec.items() if k in RULE_KEYS}
        judged = dict(out)
        targets = out.get("targets")
        if isinstance(targets, list):
            targets_path = _child(path, "targets")
            judged["targets"] = [
                self.target(target, _child(targets_path, n)) for n, target in enumerate(targets)
            ]
        found = rule_problems(judged)
        self.add_model_problems(found, path)
        pattern = out.get("event_pattern")
        if pattern is not None and not any(p.loc[:1] == ("event_pattern",) for p in found):
            out["event_pattern"] = compile_pattern(pattern).source  # a JSON text, parsed
        return out

    def target(self, target: Any, where: str) -> Any:
        """What the file alone can get wrong in a target, and the names it uses; returns the
        target for its model to judge (which names a wrong kind, or a target not a mapping)."""
        if not isinstance(target, dict) or target.get("kind") not in TARGET_KEYS:
            return target
        kind = target["kind"]
        self.unknown_keys(target, where, (*_COMMON_TARGET_KEYS, *TARGET_KEYS[kind]))
        retry = target.get("retry_policy")
        if isinstance(retry, dict):
            self.unknown_keys(retry, _child(where, "retry_policy"), RETRY_KEYS)
        if kind == "sql":
            if "file" in target and not self._sql_file(target, where):
                # Its problem is told: the model judges the rest as if the SQL had been read.
                stand_in = {k: v for k, v in target.items() if k != "file"}
                if "sql" not in stand_in and "sqls" not in stand_in:
                    stand_in["sql"] = "SELECT 1"
                return stand_in
            warehouse = target.get("warehouse")
            if isinstance(warehouse, str) and warehouse:
                self.warehouse_refs.append(Reference(_child(where, "warehouse"), warehouse))
        elif kind == "topic":
            topic = target.get("topic")
            if isinstance(topic, str) and topic:
                self.topic_refs.append(Reference(_child(where, "topic"), topic))
        return target

    def _sql_file(self, t: dict[str, Any], where: str) -> bool:
        """Read a target's ``file``: one statement becomes ``sql``, several ``sqls`` (a batch,
        one transaction), as ``sqltide sql -f`` splits them. The server never sees the file.
        False (and a problem told) when it cannot be read."""
        from ..statements.script import split_script

        where_file = _child(where, "file")
        name = t["file"]
        if "sql" in t or "sqls" in t:
            self.add(where, "give one of sql, sqls or file")
            return False
        if not isinstance(name, str) or not name.strip():
            self.add(where_file, "the path of a .sql file (relative to the pipeline file)")
            return False
        path = (self.base_dir / Path(name).expanduser()).resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.add(where_file, f"no such file: {path}")
            return False
        except (OSError, UnicodeDecodeError) as exc:
            self.add(where_file, f"cannot read {path}: {exc}")
            return False
        statements = split_script(text)
        if not statements:
            self.add(where_file, f"{path} holds no SQL statement")
            return False
        del t["file"]
        if len(statements) == 1:
            t["sql"] = statements[0]
        else:
            t["sqls"] = statements
        return True


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
