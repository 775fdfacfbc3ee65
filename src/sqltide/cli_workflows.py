"""``sqltide workflows|callbacks``: durable workflow executions from the command line.

``workflows list`` shows the workflows the server loaded and ``workflows executions`` their
executions (a command of its own rather than a flag of ``list``: the two answer different
questions and take different options); ``start``, ``describe``, ``history`` (the timeline of
``cli_timeline.py``) and ``stop`` act on one execution. ``callbacks succeed|fail|heartbeat``
complete a workflow's callback from outside, as the system it waits for would.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from .cli_common import KeyOpt, UrlOpt, _client, _fail, console, err
from .cli_timeline import Timeline, compact_table, offset, styled_status, took
from .errors import SqltideError

if TYPE_CHECKING:
    from .client import CallbackState, Client, Execution

T = TypeVar("T")

workflows_app = typer.Typer(
    help="Start, watch and control durable workflow executions.", no_args_is_help=True
)
callbacks_app = typer.Typer(
    help="Complete or heartbeat a workflow's callback from outside.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the workflow command groups to ``app``."""
    app.add_typer(workflows_app, name="workflows")
    app.add_typer(callbacks_app, name="callbacks")


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the answer as JSON")]
ExecutionArg = Annotated[str, typer.Argument(help="The execution's id")]
CallbackArg = Annotated[str, typer.Argument(help="The callback's id (from `workflows history`)")]


def _call(url: str | None, api_key: str | None, action: Callable[[Client], T]) -> T:
    """``action(client)`` against the server; an error is printed and exits 1."""
    with _client(url, api_key) as client:
        try:
            return action(client)
        except SqltideError as exc:
            raise _fail(exc) from exc


def _print_json(value: Any) -> None:
    if console.is_terminal:
        console.print_json(json.dumps(value, default=str))
    else:  # as it is for jq and friends: one document, no markup
        sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _read_value(value: str, option: str) -> str:
    """``--input``-style text: the value itself, ``@path`` a file's text, ``-`` stdin."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint=option) from exc
    return value


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(ex: Execution) -> str:
    if ex.ended_at is None:
        return ""
    return took((ex.ended_at - ex.created_at).total_seconds())


# -- workflows -----------------------------------------------------------------------------------
@workflows_app.command("list")
def workflows_list(json_out: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """List the workflows the server loaded (those it can start)."""
    found = _call(url, api_key, lambda client: client.list_workflows())
    if json_out:
        _print_json(found)
        return
    if not found:
        err.print("no workflows loaded (start the server with --workflows or SQLTIDE_WORKFLOWS)")
        return
    table = compact_table()
    table.add_column("name", no_wrap=True)
    table.add_column("description", overflow="fold")
    for wf in found:
        table.add_row(wf["name"], wf.get("description") or "")
    console.print(table)


@workflows_app.command("executions")
def workflows_executions(
    workflow: Annotated[
        str | None, typer.Argument(help="Only executions of this workflow", show_default=False)
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only this status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or STOPPED"),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Started at or after this time (ISO 8601)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Started before this time (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option(help="At most this many", min=1)] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """List your executions, newest first."""
    wide = console.width >= 110  # room for the names too
    table = compact_table()
    # The id stays whole (other commands take it); the workflow's name gives way.
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("status", no_wrap=True)
    table.add_column("workflow", no_wrap=True, overflow="ellipsis", min_width=8)
    if wide:
        table.add_column("name", no_wrap=True, overflow="ellipsis", max_width=36)
    table.add_column("started", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    shown = 0
    with _client(url, api_key) as client:
        try:
            pages = client.list_executions(
                workflow,
                status.upper() if status else None,
                since,
                until,
                max_results=min(limit, 1000),
            )
            for ex in pages:
                if shown >= limit:
                    break
                shown += 1
                if json_out:
                    sys.stdout.write(json.dumps(ex.to_dict(), default=str) + "\n")
                    continue
                row: list[Any] = [ex.id, styled_status(ex.status), ex.workflow]
                if wide:
                    row.append(ex.name)
                row += [ex.created_at.astimezone(UTC).strftime("%m-%d %H:%M"), _duration(ex)]
                table.add_row(*row)
        except SqltideError as exc:
            raise _fail(exc) from exc
    if json_out:
        return
    if shown:
        console.print(table)
    else:
        err.print("no executions")


@workflows_app.command("start")
def workflows_start(
    workflow: Annotated[str, typer.Argument(help="The workflow's name (see `workflows list`)")],
    input: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            help="The workflow's input as JSON; @FILE reads a file, - reads stdin",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="The execution's name: starting under it again gives the same one"
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Seconds the execution may run before it ends TIMED_OUT \\[default: 1 day]",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for it to end; print its result")
    ] = False,
    wait_timeout: Annotated[
        float, typer.Option("--wait-timeout", help="With --wait: give up after this many seconds")
    ] = 3600.0,
    json_out: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Start an execution; prints its id (with --wait: its result, exit 1 if it failed)."""
    value: Any = None
    if input is not None:
        text = _read_value(input, "--input")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(
                f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                param_hint="--input",
            ) from exc
    with _client(url, api_key) as client:
        try:
            ex = client.start_execution(workflow, value, name=name, timeout_seconds=timeout)
            if wait:
                ex = _wait_with_spinner(client, ex, wait_timeout)
        except SqltideError as exc:
            raise _fail(exc) from exc
    if json_out:
        _print_json(ex.to_dict())
    elif not wait:
        console.print(ex.id, highlight=False)
        err.print(f"{ex.workflow} execution {ex.name}: {ex.status}", highlight=False)
    if wait:
        _print_outcome(ex, print_result=not json_out)


def _wait_with_spinner(client: Client, ex: Execution, timeout: float) -> Execution:
    start = time.monotonic()
    show = console.is_terminal
    with console.status("", spinner="dots") if show else nullcontext() as status:
        while not ex.is_terminal:
            elapsed = time.monotonic() - start
            if elapsed >= timeout:
                err.print(f"still {ex.status} after {timeout:g} s; execution id {ex.id}")
                raise typer.Exit(2)
            if status is not None:
                status.update(f"{ex.status.lower()} [dim]{elapsed:.1f}s[/] {ex.id}")
            ex = client.get_execution(ex.id, wait=min(1.0, max(0.05, timeout - elapsed)))
    return ex


def _print_outcome(ex: Execution, *, print_result: bool) -> None:
    """An ended execution: its result on stdout (SUCCEEDED), else its error; exit 1 then."""
    if ex.status == "SUCCEEDED":
        if print_result:
            _print_json(ex.result)
        err.print(Text.assemble(styled_status(ex.status), f" in {_duration(ex)} ", (ex.id, "dim")))
        return
    error = ex.error or {}
    what = ": ".join(str(x) for x in (error.get("type"), error.get("message")) if x)
    err.print(Text.assemble(styled_status(ex.status), f" {what}" if what else "", f" ({ex.id})"))
    raise typer.Exit(1)


@workflows_app.command("describe")
def workflows_describe(
    execution_id: ExecutionArg,
    wait: Annotated[
        float | None, typer.Option(help="Wait up to this many seconds for it to end")
    ] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Show an execution: status, times, input, and its result or error."""
    ex = _call(url, api_key, lambda client: client.get_execution(execution_id, wait=wait))
    if json_out:
        _print_json(ex.to_dict())
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("id", ex.id)
    grid.add_row("workflow", ex.workflow)
    grid.add_row("name", ex.name)
    grid.add_row("status", styled_status(ex.status))
    grid.add_row("started", _when(ex.created_at))
    if ex.ended_at is not None:
        grid.add_row("ended", f"{_when(ex.ended_at)} (took {_duration(ex)})")
    elif ex.next_run_at is not None:
        grid.add_row("next replay", _when(ex.next_run_at))
    grid.add_row("times out", _when(ex.timeout_at))
    grid.add_row("replays", str(ex.replays))
    if ex.parent_id:
        grid.add_row("parent", f"{ex.parent_id} (operation {ex.parent_operation_id})")
    grid.add_row("input", Text(_compact(ex.input)))
    if ex.status == "SUCCEEDED":
        grid.add_row("result", Text(_compact(ex.result)))
    if ex.error:
        grid.add_row("error", Text(_compact(ex.error)))
    console.print(grid)


@workflows_app.command("history")
def workflows_history(
    execution_id: ExecutionArg,
    results: Annotated[
        bool, typer.Option("--results", help="Show each operation's result too")
    ] = False,
    events: Annotated[
        bool, typer.Option("--events", help="Also list every history event, in order")
    ] = False,
    json_out: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Draw an execution's operations as a timeline: what ran, when, how long, which
    attempt, its status, and what the pending ones wait for."""
    history = _call(url, api_key, lambda client: client.execution_history(execution_id))
    if json_out:
        _print_json(history.to_dict())
        return
    console.print(Timeline(history, datetime.now(UTC), results=results).render())
    if events:
        start = history.execution.created_at
        table = compact_table()
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("at", justify="right", no_wrap=True)
        table.add_column("event", no_wrap=True)
        table.add_column("op", no_wrap=True)
        table.add_column("details", overflow="fold")
        for ev in history.events:
            table.add_row(
                str(ev.seq),
                offset((ev.at - start).total_seconds()),
                ev.event,
                ev.operation_id or "",
                _compact(ev.details) if ev.details else "",
            )
        console.print(table)


@workflows_app.command("stop")
def workflows_stop(
    execution_id: ExecutionArg,
    message: Annotated[
        str | None, typer.Option("--message", help="Why: recorded as the execution's error")
    ] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Stop a running execution (it ends STOPPED; a replay running it stops at its next
    checkpoint)."""
    error = None if message is None else {"type": "ExecutionStopped", "message": message}
    ex = _call(url, api_key, lambda client: client.stop_execution(execution_id, error))
    if json_out:
        _print_json(ex.to_dict())
        return
    console.print(Text.assemble(f"execution {ex.id}: ", styled_status(ex.status)))


# -- callbacks -----------------------------------------------------------------------------------
def _print_callback(state: CallbackState, json_out: bool) -> None:
    if json_out:
        _print_json(state.to_dict())
        return
    console.print(
        Text.assemble(
            f"callback {state.callback_id}: ",
            styled_status(state.status),
            f" (execution {state.execution_id} ",
            styled_status(state.execution_status),
            ")",
        )
    )


@callbacks_app.command("succeed")
def callbacks_succeed(
    callback_id: CallbackArg,
    result: Annotated[
        str | None,
        typer.Option(
            "--result",
            "-r",
            help="What the workflow gets, as text (JSON or not); @FILE reads a file, - stdin",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Complete a callback with its result."""
    # Sent as text: the workflow's callback reads it with its serdes (JSON text stays JSON).
    text = None if result is None else _read_value(result, "--result")
    state = _call(url, api_key, lambda client: client.succeed_callback(callback_id, text))
    _print_callback(state, json_out)


@callbacks_app.command("fail")
def callbacks_fail(
    callback_id: CallbackArg,
    message: Annotated[str | None, typer.Option("--message", "-m", help="What went wrong")] = None,
    error_type: Annotated[
        str | None, typer.Option("--type", help="The error's type, e.g. Rejected")
    ] = None,
    data: Annotated[str | None, typer.Option("--data", help="More about it, as text")] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Fail a callback: the workflow's callback raises CallbackError with this error."""
    state = _call(
        url,
        api_key,
        lambda client: client.fail_callback(callback_id, message, error_type=error_type, data=data),
    )
    _print_callback(state, json_out)


@callbacks_app.command("heartbeat")
def callbacks_heartbeat(
    callback_id: CallbackArg, json_out: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None
) -> None:
    """Tell the workflow the outside work goes on (moves the callback's heartbeat timeout)."""
    state = _call(url, api_key, lambda client: client.heartbeat_callback(callback_id))
    _print_callback(state, json_out)
