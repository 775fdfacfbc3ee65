"""An execution's operations drawn as a timeline (``sqltide workflows history``).

One line per operation, depth first in creation order, indented by nesting (a child context's,
a map item's or a parallel branch's operations under it), with when it started (relative to
the execution's start), how long it took, its attempt and its status; under a line, what a
pending operation waits for (a wake time, a retry's time, a callback id, a child execution),
the attempts that failed before, and an ended one's error (and, asked for, its result)::

         at    took  try  status     operation
    +0.004s    1 ms    1  SUCCEEDED  step submit #1
    +0.006s     ...       STARTED    wait poll #2
                                       ↳ wakes at +10.0s (in 6.0s)

Pure: it draws a :class:`~sqltide.client.ExecutionHistory` as of ``now``, so it is tested
without a server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the client (httpx, pyarrow) is imported when a command runs, not before
    from .client.models import Execution, ExecutionHistory, HistoryEvent, Operation

#: How each status is coloured.
STATUS_STYLES = {
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "TIMED_OUT": "red",
    "STOPPED": "yellow",
    "CANCELLED": "yellow",
    "RUNNING": "cyan",
    "STARTED": "cyan",
    "PENDING": "magenta",
    "READY": "cyan",
}

#: The word an operation's sub-type is shown with.
_WORDS = {
    "Step": "step",
    "Wait": "wait",
    "Callback": "callback",
    "RunInChildContext": "child context",
    "Map": "map",
    "Parallel": "parallel",
    "WaitForCallback": "wait for callback",
    "WaitForCondition": "wait for condition",
    "ChainedInvoke": "invoke",
}
#: Sub-types whose generated names say it all (``map-item-0``, ``parallel-branch-1``).
_NAMED_BY_POSITION = {"MapIteration", "ParallelBranch"}
#: Longest result shown under an operation (``--results``).
RESULT_CHARS = 200


def compact_table() -> Table:
    """A table with a rule under its header, no frame and one space between columns (so
    that it stays readable at 80 columns)."""
    return Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        header_style="bold",
    )


def styled_status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def offset(seconds: float) -> str:
    """``+0.004s``, ``+12.5s``, ``+2m03s``, ``+1h02m``, ``+3d04h``."""
    return "+" + span(seconds)


def span(seconds: float) -> str:
    """A length of time, short: ``0.004s``, ``12.5s``, ``2m03s``, ``1h02m``, ``3d04h``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds:.3f}s"
    if seconds < 60:  # no trailing zeros: 1s, 1.5s, 12.5s
        digits = 3 if seconds < 10 else 1
        return f"{seconds:.{digits}f}".rstrip("0").rstrip(".") + "s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86_400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86_400}d{whole % 86_400 // 3600:02d}h"


def took(seconds: float) -> str:
    """How long something took: ``3 ms`` below a second, else as :func:`span`."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return span(seconds)


def label(op: Operation) -> str:
    """What the operation is, for a person: ``step submit``, ``map-item-0``, ``wait #2``."""
    if op.sub_type in _NAMED_BY_POSITION and op.name:
        return op.name
    word = _WORDS.get(op.sub_type) or op.sub_type.lower() or op.type.lower()
    return f"{word} {op.name}" if op.name else word


def in_order(operations: tuple[Operation, ...]) -> Iterator[tuple[int, Operation]]:
    """``(depth, operation)``, depth first, each context's operations in creation order."""
    ids = {op.id for op in operations}
    children: dict[str | None, list[Operation]] = {}
    for op in operations:
        parent = op.parent_id if op.parent_id in ids else None
        children.setdefault(parent, []).append(op)
    for siblings in children.values():
        siblings.sort(key=lambda o: o.seq)

    def walk(parent: str | None, depth: int) -> Iterator[tuple[int, Operation]]:
        for op in children.get(parent, ()):
            yield depth, op
            yield from walk(op.id, depth + 1)

    yield from walk(None, 0)


def _error_text(error: dict[str, object] | None) -> str:
    if not error:
        return ""
    kind, message = error.get("type"), error.get("message")
    if kind and message:
        return f"{kind}: {message}"
    return str(kind or message or "")


def _compact(value: object) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= RESULT_CHARS else text[: RESULT_CHARS - 1] + "…"


class Timeline:
    """Draws one execution's history (see the module docstring)."""

    def __init__(self, history: ExecutionHistory, now: datetime, *, results: bool = False):
        self.history = history
        self.execution = history.execution
        self.start = self.execution.created_at
        self.now = now
        self.results = results
        self.retries: dict[str, list[HistoryEvent]] = {}
        for ev in history.events:
            if ev.event == "retry_scheduled" and ev.operation_id is not None:
                self.retries.setdefault(ev.operation_id, []).append(ev)

    # -- times -----------------------------------------------------------------------------
    def at(self, when: datetime | None) -> str:
        """``when`` relative to the execution's start."""
        return "" if when is None else offset((when - self.start).total_seconds())

    def due(self, when: datetime) -> str:
        """A time to come: relative to the start, and how far from now."""
        left = (when - self.now).total_seconds()
        soon = f"in {span(left)}" if left > 0 else "due now"
        return f"{self.at(when)} ({soon})"

    # -- the lines under an operation ------------------------------------------------------
    def notes(self, op: Operation) -> list[str]:
        out: list[str] = []
        for ev in self.retries.get(op.id, ()):
            details = ev.details or {}
            attempt = details.get("attempt", ev.attempt)
            kind = details.get("error_type") or "an error"
            delay = details.get("delay_seconds")
            after = f"; retried after {span(float(delay))}" if delay is not None else ""
            if op.status == "PENDING" and attempt == op.attempt:
                continue  # said below, with the time of the next attempt
            out.append(f"attempt {attempt} failed ({kind}){after}")
        if not op.is_terminal and self.execution.is_terminal:
            out.append(f"left unfinished: the execution ended {self.execution.status}")
        elif not op.is_terminal:
            out.extend(self.waits_for(op))
        elif op.error:
            out.append(_error_text(op.error))
        if op.child_execution_id and op.is_terminal:
            out.append(f"child execution {op.child_execution_id}")
        if self.results and op.status == "SUCCEEDED" and op.result is not None:
            out.append(f"→ {_compact(op.result)}")
        return out

    def waits_for(self, op: Operation) -> list[str]:
        """What a pending operation waits for."""
        out: list[str] = []
        if op.status == "PENDING" and op.next_attempt_at is not None:
            what = "checks again" if op.sub_type == "WaitForCondition" else "retry"
            failed = f" after attempt {op.attempt} failed" if op.attempt else ""
            error = _error_text(op.error)
            out.append(
                f"{what} (attempt {op.attempt + 1}) at {self.due(op.next_attempt_at)}{failed}"
                + (f": {error}" if error else "")
            )
        if op.wake_at is not None:
            out.append(f"wakes at {self.due(op.wake_at)}")
        if op.callback_id is not None:
            line = f"waits for callback {op.callback_id}"
            if op.callback_timeout_at is not None:
                line += f"; times out at {self.due(op.callback_timeout_at)}"
            if op.heartbeat_timeout_at is not None:
                line += f"; heartbeat due by {self.due(op.heartbeat_timeout_at)}"
            out.append(line)
        if op.child_execution_id is not None:
            out.append(f"waits for child execution {op.child_execution_id}")
        return out

    # -- the whole ------------------------------------------------------------------------
    def header(self) -> Text:
        ex = self.execution
        text = Text()
        text.append("execution ", style="bold")
        text.append(ex.id + "  ")
        text.append_text(styled_status(ex.status))
        text.append(f"\nworkflow {ex.workflow} · name {ex.name}", style="dim")
        started = self.start.strftime("%Y-%m-%d %H:%M:%S UTC")
        ran = ex.ended_at if ex.ended_at is not None else self.now
        verb = "took" if ex.ended_at is not None else "running for"
        replays = f"{ex.replays} replay{'' if ex.replays == 1 else 's'}"
        text.append(
            f"\nstarted {started} · {verb} {took((ran - self.start).total_seconds())} · {replays}",
            style="dim",
        )
        return text

    def table(self) -> Table:
        table = compact_table()
        table.add_column("at", justify="right", no_wrap=True)
        table.add_column("took", justify="right", no_wrap=True)
        table.add_column("try", justify="right", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("operation", overflow="fold")
        for depth, op in in_order(self.history.operations):
            indent = "  " * depth
            title = Text(indent + label(op))
            title.append(f" #{op.id}", style="dim")
            cell: RenderableType = title
            notes = self.notes(op)
            if notes:
                # A grid, so that a note folded at a narrow width stays under its arrow.
                grid = Table.grid()
                grid.add_column(width=len(indent) + 2, no_wrap=True)
                grid.add_column(no_wrap=True)
                grid.add_column(overflow="fold")
                for note in notes:
                    grid.add_row("", "↳ ", Text(note, style="italic" if op.is_terminal else ""))
                cell = Group(title, grid)
            if op.started_at is not None and op.ended_at is not None:
                length = took((op.ended_at - op.started_at).total_seconds())
            else:
                length = "…"
            table.add_row(
                self.at(op.started_at),
                length,
                str(op.attempt) if op.attempt else "",
                styled_status(op.status),
                cell,
            )
        return table

    def footer(self) -> Text:
        ex: Execution = self.execution
        if ex.status == "SUCCEEDED":
            return Text("result: ", style="bold").append(_compact(ex.result), style="")
        if ex.is_terminal:
            return Text(f"{ex.status.lower()}: ", style="bold red").append(
                _error_text(ex.error) or "(no error recorded)", style=""
            )
        if ex.next_run_at is not None:
            return Text(f"next replay at {self.due(ex.next_run_at)}", style="dim")
        return Text(
            "replaying now, or waiting for an outside event (a callback, a child execution)",
            style="dim",
        )

    def render(self) -> RenderableType:
        parts: list[RenderableType] = [self.header(), Text("")]
        if self.history.operations:
            parts.append(self.table())
        else:
            parts.append(Text("no operations yet", style="dim"))
        parts.append(self.footer())
        return Group(*parts)
