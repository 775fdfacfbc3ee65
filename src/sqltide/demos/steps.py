"""What every demo prints: numbered steps, and a check per outcome (``ok`` or ``UNEXPECTED``)
that decides the exit code."""

from __future__ import annotations

from rich.console import Console


class Steps:
    def __init__(self, console: Console):
        self.console = console
        self.ok = True

    def step(self, title: str) -> None:
        self.console.rule(f"[bold cyan]{title}")

    def check(self, cond: bool, what: str) -> None:
        mark = "[green]ok[/]" if cond else "[bold red]UNEXPECTED[/]"
        self.console.print(f"  {mark} {what}")
        self.ok = self.ok and cond
