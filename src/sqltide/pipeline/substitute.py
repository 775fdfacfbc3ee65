"""``${VAR}`` and ``${VAR:-default}`` substitution in a pipeline file's string values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .problems import _child, _Problems
from .reading import _plain_value

_VAR = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VAR_BODY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


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
