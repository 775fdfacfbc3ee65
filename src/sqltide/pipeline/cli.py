"""``sqltide apply``: :func:`cli_apply` loads, plans, prints and applies a pipeline file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .. import errors
from .loading import load_pipeline
from .plans import Result, apply, plan, render_plan
from .problems import PipelineError
from .remote import Remote

if TYPE_CHECKING:
    from rich.console import Console

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
