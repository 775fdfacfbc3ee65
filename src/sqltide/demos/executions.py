"""What ``sqltide demo durable`` prints while an execution runs: each event of its history,
read again and again through the API, as one line (when, what kind, what happened)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from ..client.models import ExecutionHistory, HistoryEvent, Operation

STYLES = {
    "execution": "bold",
    "step": "green",
    "wait": "magenta",
    "replay": "cyan",
    "worker": "bold red",
    "statement": "yellow",
}


@dataclass
class Follower:
    """Turns the execution's history, read again and again, into one line per new event."""

    console: Console
    origin: datetime
    seen: int = 0
    owners: list[str] = field(default_factory=list)
    polls: list[tuple[datetime, str]] = field(default_factory=list)

    def show(self, history: ExecutionHistory) -> None:
        """Print the events after the last one shown."""
        ops = {op.id: op for op in history.operations}
        for ev in history.events:
            if ev.seq <= self.seen:
                continue
            self.seen = ev.seq
            op = ops.get(ev.operation_id or "")
            if ev.event == "succeeded" and op is not None and isinstance(op.result, dict):
                self.polls.append((ev.at, str(op.result.get("status"))))
            self.say(ev.at, *self.describe(ev, op))

    def say(self, at: datetime, kind: str, text: str) -> None:
        offset = (at - self.origin).total_seconds()
        style = STYLES.get(kind, "white")
        self.console.print(
            f"  [dim]{at:%H:%M:%S}.{at.microsecond // 1000:03d} ({offset:+7.3f}s)[/] "
            f"[{style}]{kind:<9}[/] {text}",
            highlight=False,
        )

    def describe(self, ev: HistoryEvent, op: Operation | None) -> tuple[str, str]:
        details = ev.details or {}
        name = f"{op.name} #{op.id}" if op is not None and op.name else f"#{ev.operation_id}"
        if ev.event == "execution_started":
            return "execution", "started (status RUNNING)"
        if ev.event == "resumed":
            owner = str(details.get("owner", "?"))
            if owner not in self.owners:
                self.owners.append(owner)
            n = details.get("replay")
            return "replay", f"replay {n} by worker {owner}: runs the handler from the top"
        if ev.event == "suspended":
            wake = _parse(details.get("next_run_at"))
            when = f"until {wake:%H:%M:%S}" if wake is not None else "until an outside event"
            return "replay", f"suspended {when}: no thread, no lease, no process held"
        if ev.event == "succeeded" and op is not None:
            return (
                "step",
                f"{name} SUCCEEDED (attempt {ev.attempt or op.attempt}): {self.result(op)}",
            )
        if ev.event == "wait_started":
            wake = op.wake_at if op is not None else None
            at = f", wakes at {wake:%H:%M:%S}" if wake is not None else ""
            return "wait", f"wait #{ev.operation_id} started: {details.get('seconds')} s{at}"
        if ev.event == "wait_succeeded":
            return "wait", f"wait #{ev.operation_id} ended"
        if ev.event.startswith("execution_"):
            error = (ev.details or {}).get("error") or {}
            text = ev.event.removeprefix("execution_").upper()
            return "execution", f"{text}: {error.get('message')}" if error else text
        # anything else (a failed poll's retry, ...), as the store names it
        kind = "wait" if op is not None and op.type == "WAIT" else "step"
        return kind, f"{name} {ev.event.replace('_', ' ')}"

    def result(self, op: Operation) -> str:
        value = op.result
        if op.name == "execute_batch_query":
            return f"batch submitted, statement {value}"
        if op.name == "check_query_status" and isinstance(value, dict):
            return f"DescribeStatement says {value['status']}"
        return repr(value)


def _parse(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None
