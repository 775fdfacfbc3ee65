"""Accept only what can be served: checks on user input, applied before anything is recorded.

A value that is stored must come back out of every endpoint that shows it. Python's ``json``
takes more than the rest of the path does, so a value it let through could be recorded and
then break every answer holding it (until its retention ran out). The limits here are those of
the strictest encoder or engine a value meets on its way:

- **Unicode**: every string (and every object key) is valid Unicode, without lone surrogates
  (``"\\ud800"``): they cannot be written as UTF-8, so orjson, the HTTP answer, e-mail and
  webhooks all refuse them.
- **Integers** are signed 64-bit (``-2**63 .. 2**63 - 1``): orjson refuses wider ones, and
  DuckDB's and PostgreSQL's ``BIGINT`` are 64-bit.
- **Floats** are finite: NaN and infinities are not JSON (orjson writes them as ``null``).
- **Nesting** is at most ``max_json_depth`` containers deep (64 by default,
  ``SQLTIDE_MAX_JSON_DEPTH``). orjson stops at 255, and the bus wraps a value a few times
  (an event's envelope, a target's input template, a topic's message), so 64 leaves room.
- **Text stored as text** (names, ids, SQL) holds no NUL, which PostgreSQL text cannot hold;
  names and identifiers hold no control characters at all.

Every check raises the caller's error class (an :class:`~sqltide.errors.UnprocessableEntity`
by default) with ``details`` naming where the problem is (``path``) and what it is
(``reason``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from . import errors

#: Default deepest nesting of JSON containers a user value may have (``SQLTIDE_MAX_JSON_DEPTH``).
MAX_JSON_DEPTH = 64
#: The most nesting any setting may allow: below orjson's 255 with room for the bus's wrappers.
MAX_JSON_DEPTH_CEILING = 100
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Largest rule or topic definition, as compact JSON (EventBridge's entry size, 256 KiB).
MAX_DEFINITION_BYTES = 256 * 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NUL = "\x00"


def _fail(
    cls: type[errors.SqltideError], where: str, reason: str, details: dict[str, Any] | None
) -> errors.SqltideError:
    return cls(f"{where}: {reason}", details={**(details or {}), "path": where, "reason": reason})


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` cannot be written as UTF-8 (it holds a lone surrogate)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shown(text: str) -> str:
    """``text`` as it can be shown in a message: a lone surrogate as its escape (``\\ud800``)."""
    if not has_lone_surrogate(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def check_text(
    value: Any,
    *,
    where: str,
    max_chars: int | None = None,
    identifier: bool = False,
    allow_empty: bool = True,
    cls: type[errors.SqltideError] = errors.UnprocessableEntity,
    details: dict[str, Any] | None = None,
) -> str:
    """``value`` if it is a string the whole path can carry and store as text.

    Args:
        where: where the value is in the request, for the message (``statement_name``).
        max_chars: the most characters it may have.
        identifier: a name or id: no control characters at all (tabs and newlines too).
        allow_empty: whether ``""`` is acceptable.
        cls: the error class to raise.
        details: more ``details`` for the error (``{"parameter": "x"}``).
    """
    if not isinstance(value, str):
        raise _fail(cls, where, "must be a string", details)
    if not allow_empty and not value:
        raise _fail(cls, where, "must not be empty", details)
    if max_chars is not None and len(value) > max_chars:
        raise _fail(cls, where, f"must be at most {max_chars} characters", details)
    if has_lone_surrogate(value):
        raise _fail(cls, where, "holds a lone surrogate (not valid Unicode)", details)
    if identifier:
        if _CONTROL.search(value):
            raise _fail(cls, where, "must not hold control characters", details)
    elif _NUL in value:
        raise _fail(cls, where, "must not hold NUL characters (\\u0000)", details)
    return value


def check_json_value(
    value: Any,
    *,
    where: str,
    max_depth: int = MAX_JSON_DEPTH,
    max_bytes: int | None = None,
    cls: type[errors.SqltideError] = errors.UnprocessableEntity,
    details: dict[str, Any] | None = None,
) -> int:
    """Check a JSON value a user gave; returns its size as compact UTF-8 JSON.

    Objects need string keys; strings and keys valid Unicode; integers signed 64-bit; floats
    finite; containers nested at most ``max_depth`` deep; the whole at most ``max_bytes``.
    Strings inside JSON may hold any other character (they are stored escaped).
    """
    path: list[str] = []

    def here() -> str:
        return where + "".join(path)

    def walk(node: Any, depth: int) -> int:
        if node is None or isinstance(node, bool):
            return 4  # sizes here are lower bounds (checked early); the exact one comes last
        if isinstance(node, str):
            if has_lone_surrogate(node):
                raise _fail(cls, here(), "holds a lone surrogate (not valid Unicode)", details)
            return len(node) + 2
        if isinstance(node, int):
            if not INT64_MIN <= node <= INT64_MAX:
                raise _fail(cls, here(), "is an integer outside the signed 64-bit range", details)
            return 1
        if isinstance(node, float):
            if not math.isfinite(node):
                raise _fail(cls, here(), "must be a finite number (not NaN or infinity)", details)
            return 1
        if isinstance(node, dict | list):
            if depth >= max_depth:
                raise _fail(cls, here(), f"nests deeper than {max_depth} levels", details)
            size = 2
            if isinstance(node, dict):
                for key, item in node.items():
                    path.append(f".{_shown(key)}" if isinstance(key, str) else f"[{key!r}]")
                    if not isinstance(key, str):
                        raise _fail(cls, here(), "object keys must be strings", details)
                    if has_lone_surrogate(key):
                        raise _fail(
                            cls,
                            here(),
                            "has a key with a lone surrogate (not valid Unicode)",
                            details,
                        )
                    size += len(key) + 3 + walk(item, depth + 1)
                    path.pop()
            else:
                for n, item in enumerate(node):
                    path.append(f"[{n}]")
                    size += walk(item, depth + 1)
                    path.pop()
            if max_bytes is not None and size > max_bytes:
                # Already too large by a lower bound: stop before walking any more of it.
                raise _fail(cls, here(), f"is larger than {max_bytes} bytes as JSON", details)
            return size
        raise _fail(cls, here(), f"is not a JSON value ({type(node).__name__})", details)

    walk(value, 0)
    import orjson  # exact size; cannot fail now that the value is checked

    size = len(orjson.dumps(value))
    if max_bytes is not None and size > max_bytes:
        raise _fail(
            cls,
            where,
            f"is {size} bytes as JSON; the limit is {max_bytes}",
            {**(details or {}), "size": size, "limit": max_bytes},
        )
    return size
