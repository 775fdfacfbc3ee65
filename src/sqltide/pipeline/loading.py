"""Loading a pipeline file: :func:`load_pipeline` reads it (a path, text or standard input),
substitutes ``${VAR}`` and checks it, raising one :class:`PipelineError` with every problem.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Mapping
from pathlib import Path

from .checks import _Checker, _missing_topics
from .model import Pipeline
from .problems import PipelineError, Problem, _Places, _Problems
from .reading import _read_json, _read_yaml
from .substitute import _substitute


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
