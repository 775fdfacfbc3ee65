"""What a target receives: EventBridge's four ways to shape a target's input.

- the whole event (default);
- ``{"input": <any JSON>}``: a constant;
- ``{"input_path": "$.detail"}``: one part of the event;
- ``{"input_transformer": {"input_paths_map": {"state": "$.detail.state"},
  "input_template": "<state>"}}``: values picked by paths, put into a template.

In a template, ``<name>`` is replaced by the value its path found. When the template is JSON,
strings go in quoted and escaped, everything else as JSON, and a placeholder already inside
quotes gets the raw text (as EventBridge does); otherwise every value goes in as text.
``<aws.events.event>`` and ``<aws.events.event.json>`` give the whole event, as EventBridge's
reserved variables do. A path that finds nothing gives ``null`` (JSON) or an empty string.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import InvalidTargetInput

_PATH = re.compile(r"^\$(\.[A-Za-z0-9_\-]+|\[\d+\])*$")
_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_RESERVED = {"aws.events.event", "aws.events.event.json", "aws.events.rule-name"}


def check_path(path: str, where: str) -> None:
    if not isinstance(path, str) or not _PATH.match(path):
        raise InvalidTargetInput(
            f"{where}: {path!r} is not a JSON path like $.detail.state or $.resources[0]",
            details={"path": where},
        )


def validate_input(spec: dict[str, Any], where: str = "input") -> None:
    """Raise :class:`InvalidTargetInput` for a malformed input spec."""
    kinds = [k for k in ("input", "input_path", "input_transformer") if k in spec]
    if len(kinds) > 1:
        raise InvalidTargetInput(
            f"{where}: give at most one of input, input_path, input_transformer",
            details={"path": where},
        )
    if "input_path" in spec:
        check_path(spec["input_path"], f"{where}.input_path")
    if "input_transformer" in spec:
        tr = spec["input_transformer"]
        if not isinstance(tr, dict) or not isinstance(tr.get("input_template"), str):
            raise InvalidTargetInput(
                f"{where}.input_transformer needs an input_template string",
                details={"path": f"{where}.input_transformer"},
            )
        paths = tr.get("input_paths_map", {})
        if not isinstance(paths, dict) or len(paths) > 100:
            raise InvalidTargetInput(
                f"{where}.input_transformer.input_paths_map must be an object of at most 100 paths",
                details={"path": f"{where}.input_transformer.input_paths_map"},
            )
        for name, path in paths.items():
            check_path(path, f"{where}.input_transformer.input_paths_map.{name}")
        for name in _PLACEHOLDER.findall(tr["input_template"]):
            if name not in paths and name not in _RESERVED:
                raise InvalidTargetInput(
                    f"{where}.input_transformer: <{name}> is not in input_paths_map",
                    details={"path": f"{where}.input_transformer.input_template"},
                )


def pick(event: Any, path: str) -> Any:
    """The value at ``path`` ($, $.a.b, $.a[0]) in ``event``, or None."""
    value = event
    for key, index in _STEP.findall(path[1:]):
        if key:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        else:
            i = int(index)
            if not isinstance(value, list) or i >= len(value):
                return None
            value = value[i]
    return value


def render_input(spec: dict[str, Any], event: dict[str, Any], rule_name: str = "") -> Any:
    """The input a target gets for ``event`` (a JSON value, or a string for text templates)."""
    if "input" in spec:
        return spec["input"]
    if "input_path" in spec:
        return pick(event, spec["input_path"])
    if "input_transformer" not in spec:
        return event
    tr = spec["input_transformer"]
    values = {name: pick(event, path) for name, path in tr.get("input_paths_map", {}).items()}
    values["aws.events.event"] = event
    values["aws.events.event.json"] = event
    values["aws.events.rule-name"] = rule_name
    template: str = tr["input_template"]
    if _looks_like_json(template):
        text = _fill_json(template, values)
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text  # a template that only looked like JSON stays text
    return _PLACEHOLDER.sub(lambda m: _as_text(values.get(m.group(1))), template)


def _looks_like_json(template: str) -> bool:
    t = template.strip()
    return (t.startswith("{") and t.endswith("}")) or (t.startswith("[") and t.endswith("]"))


def _fill_json(template: str, values: dict[str, Any]) -> str:
    out: list[str] = []
    last = 0
    for m in _PLACEHOLDER.finditer(template):
        out.append(template[last : m.start()])
        value = values.get(m.group(1))
        inside_quotes = template[: m.start()].count('"') % 2 == 1
        if inside_quotes:  # "<name>": the raw text, escaped for the surrounding string
            out.append(json.dumps(_as_text(value))[1:-1])
        else:
            out.append(json.dumps(value))
        last = m.end()
    out.append(template[last:])
    return "".join(out)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)
