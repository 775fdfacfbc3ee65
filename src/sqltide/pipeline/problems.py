"""What is wrong with a pipeline file, and where: :class:`Problem` and :class:`PipelineError`,
paths into the file (``rules.nightly-elt.targets[0].kind``) and the places (``line:column``)
each path's value and key start at.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from .. import errors

_PLAIN_KEY = re.compile(r"[^.\[\]\"\s]+")
_LAST_SEGMENT = re.compile(r"(\.[^.\[\]]+|\[[^\]]*\])$")


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
        if not isinstance(problems, list):
            # (message, details=...), the convention of every error: rebuilt from an answer,
            # whose message and details are whole already.
            found = (details or {}).get("errors") or []
            self.problems = sorted(
                (Problem(**p) for p in found if isinstance(p, dict)), key=_problem_order
            )
            super().__init__(problems, details=details)
            return
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
