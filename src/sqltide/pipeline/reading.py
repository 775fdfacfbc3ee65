"""Reading a pipeline file's YAML or JSON into plain JSON values, noting where each one is.

YAML is read with JSON's scalars (only ``true``/``false`` are booleans, dates stay strings,
numbers are decimal); duplicate keys, non-string keys, unsupported tags and values that are
not JSON are problems with their place. JSON is read by :mod:`json` and placed by reading it
as YAML too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from .problems import Place, Problem, _child, _Places, _Problems

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
