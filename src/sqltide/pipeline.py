"""Pipeline files: topics and rules in one declarative file, applied idempotently.

A pipeline file (YAML or JSON; format in ``docs/pipelines.md``) says which topics and rules
should exist. Applying it works like ``kubectl apply`` or ``terraform apply``:

    pipeline = load_pipeline("elt.yaml")          # every problem at once, with its place
    with Remote(url, api_key) as remote:
        the_plan = plan(pipeline, remote)         # compare with what the server has
        print(render_plan(the_plan))              # + create / ~ update / = unchanged / - delete
        result = apply(the_plan, remote)          # topics, then rules, deletes last

:func:`load_pipeline` checks everything it can locally (with the server's own validators for
event patterns, schedules, target inputs and filter policies) and raises one
:class:`PipelineError` listing every problem with its place (``file:line:column`` and the
path, e.g. ``rules.nightly-elt.targets[0].kind``). :func:`plan` adds the checks that need the
server (topics and warehouses a target names). Nothing is applied when there is any problem.
:func:`apply` stops at the first error the server answers and reports what it applied before.

The server never shows secrets (webhook target and subscription ``secret`` come back as
``***``), so a change of a secret alone is not seen as a change.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import sys
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import httpx
import yaml

from . import errors
from .events.inputs import InvalidTargetInput, validate_input
from .events.patterns import compile_pattern
from .events.schedules import parse_schedule
from .events.service import MAX_TARGETS, MISSED_POLICIES, PROTOCOLS
from .notify.filters import compile_filter_policy
from .statements.requests import BATCH_MODES

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Change",
    "Pipeline",
    "PipelineError",
    "Plan",
    "Problem",
    "Remote",
    "Result",
    "apply",
    "cli_apply",
    "load_pipeline",
    "plan",
    "render_plan",
]

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
}
RETRY_KEYS = ("maximum_event_age_seconds", "maximum_retry_attempts")
#: The server's defaults, which a comparison must fill in as the server does.
DEFAULT_RETRY = {"maximum_event_age_seconds": 86_400, "maximum_retry_attempts": 185}

_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-'"
_URL = re.compile(r"^https?://[^\s/]+")
_PLAIN_KEY = re.compile(r"[^.\[\]\"\s]+")
_LAST_SEGMENT = re.compile(r"(\.[^.\[\]]+|\[[^\]]*\])$")
_VAR = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VAR_BODY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
SECRET_MASK = "***"


# -- errors ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pipeline file, and where."""

    path: str  # "rules.nightly-elt.targets[0].kind"; "" for the file as a whole
    message: str
    file: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    @property
    def where(self) -> str:
        """``file:line:column`` (as much of it as is known)."""
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.path}: {self.message}"
            if self.path
            else (f"{self.where}: {self.message}")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
        }


class PipelineError(errors.UnprocessableEntity):
    """The pipeline file is not valid; nothing was applied."""

    code = "invalid_pipeline"

    def __init__(
        self,
        problems: list[Problem] | str | None = None,
        *,
        details: dict[str, Any] | None = None,
    ):
        if not isinstance(problems, list):  # (message, details=...): rebuilt from an answer
            found = (details or {}).get("errors") or []
            problems = [Problem(**p) for p in found if isinstance(p, dict)]
        #: in the file's order (those without a place last)
        self.problems = sorted(problems, key=_problem_order)
        problems = self.problems
        files = sorted({p.file for p in problems})
        head = (
            f"{files[0] if len(files) == 1 else 'the pipeline'} has {len(problems)} "
            f"problem{'s' if len(problems) != 1 else ''}"
        )
        super().__init__(
            head + ":\n" + "\n".join(f"  {p}" for p in problems),
            details={"errors": [p.to_dict() for p in problems]},
        )


def _problem_order(p: Problem) -> tuple[int, int]:
    return (p.line if p.line is not None else sys.maxsize, p.column or 0)


# -- paths and places ------------------------------------------------------------------------
def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    segment = key if _PLAIN_KEY.fullmatch(key) else f"[{json.dumps(key, ensure_ascii=False)}]"
    if not path or segment.startswith("["):
        return f"{path}{segment}"
    return f"{path}.{segment}"


def _join_inner(path: str, inner: str) -> str:
    """``path`` followed by a validator's own path (``detail.state``, ``[0]``, ``$.a``)."""
    inner = inner.lstrip("$")
    if not inner:
        return path
    if inner.startswith(("[", ".")):
        return path + inner
    return f"{path}.{inner}"


Place = tuple[int, int]  # 1-based (line, column)


class _Places:
    """Where each path's value (and each mapping key) starts in the file."""

    def __init__(self) -> None:
        self.values: dict[str, Place] = {}
        self.keys: dict[str, Place] = {}

    def find(self, path: str, *, key: bool = False) -> Place | None:
        if key and path in self.keys:
            return self.keys[path]
        while True:
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            cut = _LAST_SEGMENT.search(path)
            path = path[: cut.start()] if cut else ""


class _Problems:
    def __init__(self, file: str, places: _Places):
        self.file = file
        self.places = places
        self.items: list[Problem] = []

    def add(
        self, path: str, message: str, *, key: bool = False, place: Place | None = None
    ) -> None:
        at = place or self.places.find(path, key=key)
        line, column = at if at else (None, None)
        problem = Problem(path, message, self.file, line, column)
        if problem not in self.items:
            self.items.append(problem)


# -- reading YAML and JSON -------------------------------------------------------------------
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """YAML with JSON's scalars (as YAML 1.2's core schema): only true/false are booleans,
    dates and times stay strings, numbers are decimal (``0755`` is 755, ``1:30`` a string)."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in (_BOOL, _INT, _FLOAT, "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    return int(text, 0) if text.lstrip("-+")[:2].lower() in ("0x", "0o", "0b") else int(text)


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    return float(str(loader.construct_scalar(node)))  # type: ignore[arg-type]


_Loader.add_constructor(_INT, _construct_int)
_Loader.add_constructor(_FLOAT, _construct_float)


def _plain_value(text: str) -> Any:
    """What a plain (unquoted) YAML scalar reading ``text`` is: null, bool, number or str."""
    tag = _Loader("").resolve(yaml.ScalarNode, text, (True, False))
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return text.lower() == "true"
    if tag == _INT:
        return int(text)
    if tag == _FLOAT:
        return float(text)
    return text


def _mark_place(mark: Any) -> Place:
    return (mark.line + 1, mark.column + 1)


class _Reader:
    """Turns a YAML node tree into plain JSON values, noting where each one is."""

    MAX_DEPTH = 64

    def __init__(self, loader: _Loader, problems: _Problems, places: _Places):
        self.loader = loader
        self.problems = problems
        self.places = places
        #: paths of plain (unquoted) scalars holding "$": their type is resolved again after
        #: substitution, so ``retries: ${N:-3}`` is a number
        self.plain: set[str] = set()

    def read(self, node: yaml.Node, path: str, depth: int = 0, *, merged: bool = False) -> Any:
        place = _mark_place(node.start_mark)
        if merged:
            self.places.values.setdefault(path, place)
        else:
            self.places.values[path] = place
        if depth > self.MAX_DEPTH:
            self.problems.add(path, "nested too deeply (a recursive alias?)", place=place)
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth, merged)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self.problems.add(path, f"the tag {node.tag} is not supported", place=place)
            return [
                self.read(item, _child(path, n), depth + 1, merged=merged)
                for n, item in enumerate(node.value)
            ]
        try:
            value = self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError) as exc:
            self.problems.add(path, f"cannot read this value ({exc})", place=place)
            return None
        if value is not None and not isinstance(value, str | bool | int | float):
            self.problems.add(
                path, f"a {type(value).__name__} is not a JSON value (quote it)", place=place
            )
            return None
        if isinstance(value, str) and getattr(node, "style", None) is None and "$" in value:
            self.plain.add(path)
        return value

    def _mapping(
        self, node: yaml.MappingNode, path: str, depth: int, merged: bool
    ) -> dict[str, Any]:
        if node.tag != _MAP:
            self.problems.add(
                path, f"the tag {node.tag} is not supported", place=_mark_place(node.start_mark)
            )
        from_merges: dict[str, Any] = {}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_place = _mark_place(key_node.start_mark)
            if key_node.tag == _MERGE:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        self.problems.add(path, "<< merges mappings only", place=key_place)
                        continue
                    for k, v in self._mapping(source, path, depth + 1, True).items():
                        from_merges.setdefault(k, v)
                continue
            key = (
                self.loader.construct_object(key_node)
                if isinstance(key_node, yaml.ScalarNode)
                else None
            )
            if not isinstance(key, str):
                self.problems.add(path, "keys must be strings (quote this one)", place=key_place)
                continue
            child = _child(path, key)
            if key in out:
                self.problems.add(child, f"duplicate key {key!r}", place=key_place)
                continue
            if merged:
                self.places.keys.setdefault(child, key_place)
            else:
                self.places.keys[child] = key_place
            out[key] = self.read(value_node, child, depth + 1, merged=merged)
        return {**from_merges, **out}


def _read_yaml(text: str, name: str, problems: _Problems, places: _Places) -> tuple[Any, set[str]]:
    loader = _Loader(text)
    loader.name = name
    try:
        node = loader.get_single_node()
        if node is None:
            return None, set()
        reader = _Reader(loader, problems, places)
        return reader.read(node, ""), reader.plain
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        lines = text.splitlines()
        if mark and mark.line < len(lines) and "${" in lines[mark.line]:
            what += " (inside {...} or [...], quote values holding ${...}: '${VAR}')"
        problems.add("", f"not valid YAML: {what}", place=_mark_place(mark) if mark else None)
        return None, set()
    except yaml.YAMLError as exc:
        problems.add("", f"not valid YAML: {exc}")
        return None, set()
    finally:
        loader.dispose()


def _read_json(text: str, name: str, problems: _Problems, places: _Places) -> Any:
    """JSON read by ``json`` (exact numbers and escapes); places come from reading it as YAML
    too, which every JSON document is (as far as the places go)."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                duplicates.append(k)
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        problems.add("", f"not valid JSON: {exc.msg}", place=(exc.lineno, exc.colno))
        return None
    except ValueError as exc:
        problems.add("", f"not valid JSON: {exc}")
        return None
    yaml_problems = _Problems(problems.file, places)
    _read_yaml(text, name, yaml_problems, places)
    if duplicates:
        found = [p for p in yaml_problems.items if p.message.startswith("duplicate key")]
        problems.items.extend(found or [Problem("", f"duplicate key {duplicates[0]!r}", name)])
    return value


def _substitute(
    value: Any, path: str, environ: Mapping[str, str], plain: set[str], problems: _Problems
) -> Any:
    """``${VAR}`` and ``${VAR:-default}`` in every string value (not in keys); ``$${`` is a
    literal ``${``."""
    if isinstance(value, dict):
        return {
            k: _substitute(v, _child(path, k), environ, plain, problems) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _substitute(v, _child(path, n), environ, plain, problems) for n, v in enumerate(value)
        ]
    if not isinstance(value, str) or "${" not in value:
        return value
    ok = True

    def replace(m: re.Match[str]) -> str:
        nonlocal ok
        if m.group(0) == "$${":
            return "${"
        body = m.group(1)
        parsed = _VAR_BODY.match(body)
        if parsed is None or "${" in body:
            ok = False
            problems.add(path, f"${{{body}}}: use ${{NAME}} or ${{NAME:-default}}")
            return m.group(0)
        var, default = parsed.group(1), parsed.group(2)
        found = environ.get(var)
        if default is not None:
            return found if found else default
        if found is None:
            ok = False
            problems.add(
                path,
                f"the environment variable {var} is not set "
                f"(set it, or give a default: ${{{var}:-value}})",
            )
            return m.group(0)
        return found

    out = _VAR.sub(replace, value)
    if ok and "${" in _VAR.sub("", value):
        problems.add(path, "an unterminated ${ (write $${ for a literal ${)")
        return value
    if ok and path in plain:
        return _plain_value(out)
    return out


# -- the pipeline ----------------------------------------------------------------------------
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


def load_pipeline(
    source: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    name: str | None = None,
    known_topics: Collection[str] | None = None,
) -> Pipeline:
    """Read and check a pipeline file (YAML or JSON).

    Args:
        source: a :class:`~pathlib.Path`, a file name (a string without a line break), the
            text itself, or ``"-"`` for standard input.
        environ: where ``${VAR}`` finds values (default: ``os.environ``).
        name: the name problems give for the file (default: the path, or ``<string>``).
        known_topics: topics that exist on the server; when given, a topic target naming a
            topic that is neither in the file nor in these is a problem here already (otherwise
            :func:`plan` checks it against the server).

    Raises:
        PipelineError: listing every problem, each with its place.
    """
    text, label, is_json = _source_text(source, name)
    places = _Places()
    problems = _Problems(label, places)
    plain: set[str] = set()
    if is_json is True or (is_json is None and text.lstrip().startswith("{")):
        attempt = _Problems(label, places)
        document = _read_json(text, label, attempt, places)
        if is_json is None and attempt.items and document is None:
            places.values.clear()
            places.keys.clear()
            as_yaml = _Problems(label, places)
            document, plain = _read_yaml(text, label, as_yaml, places)  # YAML's flow style?
            problems.items.extend(attempt.items if as_yaml.items else [])
        else:
            problems.items.extend(attempt.items)
    else:
        document, plain = _read_yaml(text, label, problems, places)
    if problems.items:
        raise PipelineError(problems.items)
    document = _substitute(
        document, "", os.environ if environ is None else environ, plain, problems
    )
    pipeline = _Checker(problems, _base_dir(source)).pipeline(document, label, places)
    if known_topics is not None:
        problems.items.extend(_missing_topics(pipeline, set(known_topics)))
    if problems.items:
        raise PipelineError(problems.items)
    return pipeline


def _source_text(source: str | Path, name: str | None) -> tuple[str, str, bool | None]:
    """(text, name for messages, whether it is JSON: True, False or None for "look")."""
    if isinstance(source, str) and source == "-":
        return sys.stdin.read(), name or "<stdin>", None
    if isinstance(source, str) and ("\n" in source or not _looks_like_path(source)):
        return source, name or "<string>", None
    path = Path(source)
    label = name or str(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError([Problem("", "no such file", label)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError([Problem("", f"cannot read the file: {exc}", label)]) from None
    suffix = path.suffix.lower()
    return (
        text,
        label,
        True if suffix == ".json" else False if suffix in (".yaml", ".yml") else None,
    )


def _base_dir(source: str | Path) -> Path:
    """Where a SQL target's relative ``file`` is looked for: beside the pipeline file, or in
    the working directory for text and standard input."""
    if isinstance(source, Path) or (
        source != "-" and "\n" not in source and _looks_like_path(source)
    ):
        return Path(source).expanduser().resolve().parent
    return Path.cwd()


def _looks_like_path(text: str) -> bool:
    return bool(text) and (
        os.path.exists(text) or text.lower().endswith((".yaml", ".yml", ".json"))
    )


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
        elif protocol == "email" and "@" not in endpoint:
            self.add(_child(where, "endpoint"), f"{endpoint!r} is not an e-mail address")
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
        from .statements.script import split_script

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
        headers = t.get("headers")
        if headers is not None and (
            not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values())
        ):
            self.add(_child(where, "headers"), "a mapping of header names to strings")
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


# -- the server ------------------------------------------------------------------------------
class Remote:
    """The few calls a plan needs, over plain HTTP (``/v1/rules``, ``/v1/topics``).

    ``url`` and ``api_key`` default as the client's do: ``$SQLTIDE_URL`` / the local server,
    and ``$SQLTIDE_API_KEY`` / the key ``sqltide serve`` saved.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        from .client._base import resolve_api_key, resolve_base_url

        self.url = resolve_base_url(url)
        key = resolve_api_key(api_key)
        headers = {"Accept": "application/json", "User-Agent": "sqltide-apply"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            from .client import ConnectionFailed

            raise ConnectionFailed(
                f"Could not reach the sqltide server at {self.url} ({type(exc).__name__}: {exc}). "
                "Is it running? Start one with `sqltide serve`, or point SQLTIDE_URL at it.",
                details={"url": self.url},
            ) from exc
        if not response.is_success:
            raise _error_from(response)
        return response.json() if response.content else None

    def list_rules(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/rules")["rules"])

    def list_topics(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/topics")["topics"])

    def list_warehouses(self) -> list[str]:
        return [w["name"] for w in self._call("GET", "/v1/warehouses")["warehouses"]]

    def put(self, kind: Literal["rule", "topic"], name: str, body: dict[str, Any]) -> Any:
        return self._call("PUT", f"/v1/{kind}s/{quote(name, safe='')}", body)

    def delete(self, kind: Literal["rule", "topic"], name: str) -> None:
        self._call("DELETE", f"/v1/{kind}s/{quote(name, safe='')}")


def _error_from(response: httpx.Response) -> errors.SqltideError:
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict) and isinstance(envelope.get("code"), str):
        code = envelope["code"]
        details = envelope.get("details")
        details = details if isinstance(details, dict) else None
        try:
            exc = errors.error_class_for(code)(envelope.get("message"), details=details)
        except TypeError:  # a class built differently (InvalidFilterPolicy(reason, path))
            exc = errors.SqltideError(envelope.get("message"), details=details)
            exc.http_status = response.status_code  # type: ignore[misc]
        if exc.code != code:
            exc.code = code  # type: ignore[misc]
        return exc
    exc = errors.SqltideError(
        f"{response.request.method} {response.request.url}: HTTP {response.status_code} "
        f"{response.text[:200]}",
        details={"status": response.status_code},
    )
    exc.code = "http_error"  # type: ignore[misc]
    return exc


# -- plans -----------------------------------------------------------------------------------
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


_PAST = {"create": "created", "update": "updated", "delete": "deleted"}


def _iter_result_lines(result: Result) -> Iterator[tuple[str, str]]:
    for change in result.applied:
        yield f"{_PAST[change.action]} {change.kind} {change.name}", "green"
    if result.error is not None and result.failed is not None:
        yield (
            f"error ({result.error.code}) on {result.failed.action} {result.failed.kind} "
            f"{result.failed.name}: {result.error.message}",
            "bold red",
        )
        applied = ", ".join(str(c) for c in result.applied) or "nothing"
        yield f"applied before the error: {applied}", "red"
        rest = [result.failed, *result.not_applied]
        yield f"not applied: {', '.join(str(c) for c in rest)}", "red"


# -- the command line ------------------------------------------------------------------------
def cli_apply(
    path: str | Path,
    *,
    url: str | None,
    api_key: str | None,
    dry_run: bool = False,
    prune: bool = False,
    console: Console | None = None,
    err: Console | None = None,
) -> int:
    """``sqltide apply -f FILE [--dry-run] [--prune]``: print the plan, apply it unless
    ``dry_run``; returns the exit code (0, or 1 for an invalid file or a failed step).

    ``path`` is a file or ``-`` (standard input). Problems go to ``err`` (default: ``console``).
    """
    from rich.console import Console
    from rich.text import Text

    out = console or Console()
    err = err or out
    signs = {"+": "green", "~": "yellow", "-": "red", "=": "dim"}
    try:
        pipeline = load_pipeline(path if isinstance(path, Path) or path == "-" else Path(path))
        with Remote(url, api_key) as remote:
            the_plan = plan(pipeline, remote, prune=prune)
            for line in render_plan(the_plan).splitlines():
                out.print(
                    Text(line, style=signs.get(line[:1], "bold" if line.startswith("Plan") else ""))
                )
            if dry_run:
                out.print(Text("Dry run: nothing was applied.", style="bold"))
                return 0
            if not the_plan.has_changes:
                out.print(Text("Nothing to do: the server matches the file.", style="bold"))
                return 0
            result = apply(the_plan, remote)
    except PipelineError as exc:
        err.print(Text(f"error ({exc.code}): {exc.message.splitlines()[0]}", style="bold red"))
        for problem in exc.problems:
            err.print(Text(f"  {problem}"))
        err.print(Text("Nothing was applied.", style="red"))
        return 1
    except errors.SqltideError as exc:
        err.print(Text(f"error ({exc.code}): {exc.message}", style="bold red"))
        return 1
    for line, style in _iter_result_lines(result):
        (out if result.ok or style == "green" else err).print(Text(line, style=style))
    if result.ok:
        out.print(Text(f"Applied: {the_plan.summary()}.", style="bold"))
        return 0
    return 1
