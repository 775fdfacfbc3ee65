"""``sqltide events|rules|topics|dlq|schedules``: the event bus from the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from .cli_common import KeyOpt, UrlOpt, _client, _fail, _fail_with, console, err
from .errors import SqltideError

if TYPE_CHECKING:
    from datetime import tzinfo

    from .client import Client
    from .events.schedules import Schedule

T = TypeVar("T")

events_app = typer.Typer(help="Put events and read the event archive.", no_args_is_help=True)
rules_app = typer.Typer(
    help="Manage rules: an event pattern or a schedule, and up to five targets.",
    no_args_is_help=True,
)
topics_app = typer.Typer(
    help="Manage notification topics and their subscriptions.", no_args_is_help=True
)
dlq_app = typer.Typer(
    help="Dead letters: deliveries that failed for good, and sending them again.",
    no_args_is_help=True,
)
schedules_app = typer.Typer(
    help="Check schedule expressions (cron, rate, at) locally, without a server.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the event-bus command groups to ``app``."""
    app.add_typer(events_app, name="events")
    app.add_typer(rules_app, name="rules")
    app.add_typer(topics_app, name="topics")
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(schedules_app, name="schedules")


# -- events, rules, topics, dead letters, schedules ----------------------------------------------
ListFormatOpt = Annotated[str, typer.Option("--format", "-F", help="table or json (one per line)")]
SpecFileOpt = Annotated[
    Path,
    typer.Option(
        "--file",
        "-f",
        help="A JSON file (or YAML, .yaml/.yml, when PyYAML is installed)",
        exists=True,
        dir_okay=False,
    ),
]
#: What `rules describe` / `topics describe` print but `put` does not take (a described rule
#: can be edited and put back).
_READ_ONLY = frozenset({"name", "created_at", "updated_at", "last_fired_at"})
_RULE_FIELDS = (
    "event_pattern",
    "schedule",
    "targets",
    "state",
    "description",
    "timezone",
    "missed_policy",
    "missed_window_seconds",
)
_TOPIC_FIELDS = ("subscriptions", "display_name")
#: How the server shows a webhook secret; putting it back would replace the real secret.


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")


def _json_line(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str) + "\n")


def _compact(value: Any) -> str:
    return "" if value is None else json.dumps(value, separators=(",", ":"), default=str)


def _read_spec(file: Path, code: str, fields: tuple[str, ...], name: str) -> dict[str, Any]:
    """The object in a rule or topic file (JSON, or YAML when PyYAML is importable).

    Refuses what the server would silently ignore: unknown keys, and another ``name``.
    """
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail_with(code, f"{file}: cannot read it: {exc}", file=str(file)) from exc
    if file.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise _fail_with(
                code,
                f"{file}: reading YAML needs PyYAML (pip install pyyaml); or write the file "
                "as JSON",
                file=str(file),
            ) from None
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _fail_with(code, f"{file}: not valid YAML: {exc}", file=str(file)) from exc
    else:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail_with(
                code,
                f"{file}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                file=str(file),
                line=exc.lineno,
                column=exc.colno,
            ) from exc
    if not isinstance(spec, dict):
        raise _fail_with(code, f"{file}: the file must hold one object", file=str(file))
    if spec.get("name", name) != name:
        raise _fail_with(
            code,
            f"{file}: names {spec['name']!r}, not {name!r}",
            file=str(file),
            path="name",
        )
    unknown = sorted(k for k in spec if k not in fields and k not in _READ_ONLY)
    if unknown:
        raise _fail_with(
            code,
            f"{file}: unknown field {unknown[0]!r}; expected {', '.join(fields)}",
            file=str(file),
            path=unknown[0],
        )
    return {k: v for k, v in spec.items() if k in fields}


def _call(
    url: str | None,
    api_key: str | None,
    action: Callable[[Client], T],
    *,
    file: Path | None = None,
) -> T:
    """``action(client)`` against the server; an error is printed and exits 1 (naming
    ``file`` when the request came from one)."""
    with _client(url, api_key) as client:
        try:
            return action(client)
        except SqltideError as exc:
            raise _fail(_with_file(exc, file) if file else exc) from exc


def _put_rule(client: Client, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """PUT a rule from a spec shaped like ``rules describe``'s output."""
    return client.put_rule(
        name,
        event_pattern=spec.get("event_pattern"),
        schedule=spec.get("schedule"),
        targets=spec.get("targets") or [],
        state=spec.get("state") or "ENABLED",
        description=spec.get("description"),
        timezone=spec.get("timezone") or "UTC",
        missed_policy=spec.get("missed_policy"),
        missed_window_seconds=spec.get("missed_window_seconds"),
    )


def _with_file(exc: SqltideError, file: Path) -> SqltideError:
    exc.details.setdefault("file", str(file))
    return exc


# events ------------------------------------------------------------------------------------------
@events_app.command("put")
def events_put(
    source: Annotated[str, typer.Option("--source", help="The event's source, e.g. shop")],
    detail_type: Annotated[
        str, typer.Option("--detail-type", help="The event's detail-type, e.g. 'Order Placed'")
    ],
    detail: Annotated[
        str | None, typer.Option("--detail", help="The detail: a JSON object")
    ] = None,
    detail_file: Annotated[
        Path | None,
        typer.Option(
            "--detail-file", help="A file holding the detail (JSON)", exists=True, dir_okay=False
        ),
    ] = None,
    resource: Annotated[
        list[str] | None, typer.Option("--resource", help="A resource ARN or name (repeatable)")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--time", help="The event's time (ISO 8601) \\[default: now]")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Put one event on the bus; prints its id."""
    if detail is not None and detail_file is not None:
        raise typer.BadParameter("give --detail or --detail-file, not both")
    text = detail_file.read_text(encoding="utf-8") if detail_file is not None else detail
    body = None
    if text is not None:
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            hint = "--detail-file" if detail_file is not None else "--detail"
            raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=hint) from exc
    event_id = _call(
        url,
        api_key,
        lambda client: client.put_event(source, detail_type, body, resources=resource, time=at),
    )
    console.print(event_id)


@events_app.command("list")
def events_list(
    start: Annotated[str | None, typer.Option(help="From this time (ISO 8601)")] = None,
    end: Annotated[str | None, typer.Option(help="Up to this time (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option(help="At most this many", min=1)] = 50,
    fmt: ListFormatOpt = "table",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """List archived events, oldest first (narrow with --start and --end)."""
    _check_format(fmt)
    table = Table(header_style="bold")
    table.add_column("time (UTC)", no_wrap=True, min_width=20)
    table.add_column("source", overflow="ellipsis", no_wrap=True, min_width=12, max_width=24)
    table.add_column("detail-type", overflow="ellipsis", no_wrap=True, min_width=16, max_width=32)
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("detail", overflow="ellipsis", no_wrap=True, min_width=16, max_width=60)
    shown = 0
    with _client(url, api_key) as client:
        try:
            for event in client.events(start, end, max_results=min(limit, 1000)):
                if shown >= limit:
                    break
                shown += 1
                if fmt == "json":
                    _json_line(event)
                    continue
                table.add_row(
                    str(event.get("time", "")),
                    str(event.get("source", "")),
                    str(event.get("detail-type", "")),
                    str(event.get("id", "")),
                    _compact(event.get("detail")),
                )
        except SqltideError as exc:
            raise _fail(exc) from exc
    if fmt == "table":
        if shown:
            # Every column stays readable: a narrow terminal wraps the lines instead of Rich
            # squeezing columns to nothing.
            console.print(table, width=max(console.width, 130), crop=False)
        else:
            err.print("no events")


# rules -------------------------------------------------------------------------------------------
def _rule_when(rule: dict[str, Any]) -> str:
    if rule.get("schedule"):
        return f"{rule['schedule']} ({rule.get('timezone') or 'UTC'})"
    return _compact(rule.get("event_pattern"))


@rules_app.command("list")
def rules_list(fmt: ListFormatOpt = "table", url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """List your rules."""
    _check_format(fmt)
    rules = _call(url, api_key, lambda client: client.rules())
    if fmt == "json":
        for rule in rules:
            _json_line(rule)
        return
    if not rules:
        err.print("no rules")
        return
    table = Table(header_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("schedule or event pattern", overflow="ellipsis", no_wrap=True, max_width=60)
    table.add_column("targets", overflow="ellipsis", no_wrap=True, max_width=40)
    table.add_column("description", overflow="ellipsis", no_wrap=True, max_width=40)
    for rule in rules:
        targets = ", ".join(f"{t.get('id')}:{t.get('kind')}" for t in rule.get("targets") or ())
        table.add_row(
            rule["name"], rule["state"], _rule_when(rule), targets, rule.get("description") or ""
        )
    console.print(table)


@rules_app.command("describe")
def rules_describe(
    name: Annotated[str, typer.Argument(help="The rule's name")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Show a rule as JSON (webhook secrets read ***)."""
    rule = _call(url, api_key, lambda client: client.rule(name))
    console.print_json(json.dumps(rule, default=str))


@rules_app.command("put")
def rules_put(
    name: Annotated[str, typer.Argument(help="The rule's name")],
    file: SpecFileOpt,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Create or replace a rule from a file (the shape of `rules describe`)."""
    # A "***" secret (as `rules describe` shows it) keeps the secret the server has.
    spec = _read_spec(file, "invalid_rule", _RULE_FIELDS, name)
    rule = _call(url, api_key, lambda client: _put_rule(client, name, spec), file=file)
    console.print(f"rule {rule['name']} saved ({rule['state']}): {_rule_when(rule)}")


@rules_app.command("delete")
def rules_delete(
    name: Annotated[str, typer.Argument(help="The rule's name")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Delete a rule."""
    _call(url, api_key, lambda client: client.delete_rule(name))
    console.print(f"deleted rule {name}")


def _set_rule_state(name: str, state: str, url: str | None, api_key: str | None) -> None:
    with _client(url, api_key) as client:
        try:
            rule = client.rule(name)
            if rule["state"] == state:
                console.print(f"rule {name} is already {state}")
                return
            # The targets come back with secrets shown as "***"; putting them back keeps the
            # secrets the server has.
            rule = _put_rule(client, name, {**rule, "state": state})
        except SqltideError as exc:
            raise _fail(exc) from exc
    console.print(f"rule {name} is {rule['state']}")


@rules_app.command("enable")
def rules_enable(
    name: Annotated[str, typer.Argument(help="The rule's name")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Enable a rule (it matches events or fires again)."""
    _set_rule_state(name, "ENABLED", url, api_key)


@rules_app.command("disable")
def rules_disable(
    name: Annotated[str, typer.Argument(help="The rule's name")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Disable a rule (kept, but it neither matches nor fires)."""
    _set_rule_state(name, "DISABLED", url, api_key)


CountOpt = Annotated[int, typer.Option(help="How many firings", min=1, max=1000)]
AfterOpt = Annotated[
    str | None,
    typer.Option(
        help="Firings after this time (ISO 8601; UTC unless it names an offset) \\[default: now]"
    ),
]


@rules_app.command("next")
def rules_next(
    name: Annotated[str, typer.Argument(help="The name of a rule with a schedule")],
    count: CountOpt = 5,
    after: AfterOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-F", help="table or json")] = "table",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """When a schedule rule fires next (fetched from the server, computed here)."""
    from .events.schedules import parse_schedule

    _check_format(fmt)
    t0 = _after(after)
    rule = _call(url, api_key, lambda client: client.rule(name))
    if not rule.get("schedule"):
        raise _fail_with(
            "no_schedule", f"rule {name} matches events; it has no schedule", name=name
        )
    # As the scheduler does: a rule's firings count from its creation (rate() starts there).
    created = rule.get("created_at")
    start = datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None
    try:
        schedule = parse_schedule(
            rule["schedule"],
            rule.get("timezone") or "UTC",
            start=start.astimezone(UTC) if start else None,
        )
    except SqltideError as exc:
        raise _fail(exc) from exc
    if rule.get("state") != "ENABLED":
        err.print(f"[yellow]rule {name} is {rule.get('state')}: it does not fire until enabled[/]")
    _print_firings(schedule, t0, count, fmt)


# topics ------------------------------------------------------------------------------------------
@topics_app.command("list")
def topics_list(fmt: ListFormatOpt = "table", url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """List your topics."""
    _check_format(fmt)
    topics = _call(url, api_key, lambda client: client.topics())
    if fmt == "json":
        for topic in topics:
            _json_line(topic)
        return
    if not topics:
        err.print("no topics")
        return
    table = Table(header_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("display name", overflow="ellipsis", no_wrap=True, max_width=30)
    table.add_column("subscriptions", overflow="fold")
    for topic in topics:
        subs = ", ".join(
            f"{s.get('protocol')}:{s.get('endpoint')}" for s in topic.get("subscriptions") or ()
        )
        table.add_row(topic["name"], topic.get("display_name") or "", subs)
    console.print(table)


@topics_app.command("describe")
def topics_describe(
    name: Annotated[str, typer.Argument(help="The topic's name")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Show a topic and its subscriptions as JSON (webhook secrets read ***)."""
    topic = _call(url, api_key, lambda client: client.topic(name))
    console.print_json(json.dumps(topic, default=str))


@topics_app.command("put")
def topics_put(
    name: Annotated[str, typer.Argument(help="The topic's name")],
    file: SpecFileOpt,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Create or replace a topic from a file: {"subscriptions": [...], "display_name": ...}."""
    # A "***" secret (as `topics describe` shows it) keeps the secret the server has.
    spec = _read_spec(file, "validation_error", _TOPIC_FIELDS, name)
    topic = _call(
        url,
        api_key,
        lambda client: client.put_topic(
            name, spec.get("subscriptions") or [], display_name=spec.get("display_name")
        ),
        file=file,
    )
    n = len(topic.get("subscriptions") or ())
    console.print(f"topic {topic['name']} saved ({n} subscription{'' if n == 1 else 's'})")


@topics_app.command("delete")
def topics_delete(
    name: Annotated[str, typer.Argument(help="The topic's name")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Delete a topic."""
    _call(url, api_key, lambda client: client.delete_topic(name))
    console.print(f"deleted topic {name}")


# dead letters ------------------------------------------------------------------------------------
@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(help="At most this many", min=1, max=1000)] = 100,
    fmt: ListFormatOpt = "table",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """List dead letters, newest first, with why each one died."""
    _check_format(fmt)
    dead = _call(url, api_key, lambda client: client.dead_letters(max_results=limit))
    if fmt == "json":
        for d in dead:
            _json_line(d)
        return
    if not dead:
        err.print("no dead letters")
        return
    table = Table(header_style="bold")
    table.add_column("id", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("reason", no_wrap=True)
    table.add_column("last error", overflow="ellipsis", no_wrap=True, max_width=60)
    table.add_column("died (UTC)", no_wrap=True)
    for d in dead:
        error = d.get("last_error") or {}
        table.add_row(
            d["id"],
            str(d.get("rule", "")),
            str(d.get("target", "")),
            str(d.get("attempts", "")),
            str(error.get("dead_reason", "")),
            str(error.get("message", "")),
            str(d.get("updated_at", "")),
        )
    console.print(table)


@dlq_app.command("redrive")
def dlq_redrive(
    delivery_id: Annotated[str, typer.Argument(help="The dead letter's id (from `dlq list`)")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Send a dead letter again (back to PENDING, due now)."""
    d = _call(url, api_key, lambda client: client.redrive(delivery_id))
    console.print(f"{d['id']}: {d['status']}")


# schedules ---------------------------------------------------------------------------------------
def _after(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint="--after") from exc
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).astimezone(UTC)


def _print_firings(schedule: Schedule, after: datetime, count: int, fmt: str) -> None:
    """The next ``count`` firings of a parsed schedule after ``after``, in UTC and its zone."""
    from zoneinfo import ZoneInfo

    zone: tzinfo = UTC if schedule.timezone == "UTC" else ZoneInfo(schedule.timezone)
    firings: list[datetime] = []
    t = after
    while len(firings) < count:
        nxt = schedule.next_after(t)
        if nxt is None:
            break
        firings.append(nxt)
        t = nxt
    if fmt == "json":
        _json_line(
            {
                "expression": schedule.expression,
                "timezone": schedule.timezone,
                "description": schedule.describe(),
                "after": after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "firings": [
                    {
                        "utc": f.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "local": f.astimezone(zone).isoformat(),
                    }
                    for f in firings
                ],
            }
        )
        return
    console.print(f"[bold]{schedule.expression}[/]: {schedule.describe()}", highlight=False)
    if not firings:
        err.print(f"no firings after {after:%Y-%m-%d %H:%M:%S} UTC")
        return
    table = Table(header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("UTC", no_wrap=True)
    if schedule.timezone != "UTC":
        table.add_column(schedule.timezone, no_wrap=True)
    for n, f in enumerate(firings, 1):
        row = [str(n), f"{f:%a %Y-%m-%d %H:%M:%S}"]
        if schedule.timezone != "UTC":
            row.append(f"{f.astimezone(zone):%a %Y-%m-%d %H:%M:%S %Z}")
        table.add_row(*row)
    console.print(table)


@schedules_app.command("next")
def schedules_next(
    expression: Annotated[
        str, typer.Argument(help='cron(...), rate(...) or at(...), e.g. "cron(0 11 ? * MON-FRI *)"')
    ],
    timezone: Annotated[
        str, typer.Option("--timezone", help="The IANA time zone the expression is read in")
    ] = "UTC",
    count: CountOpt = 5,
    after: AfterOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-F", help="table or json")] = "table",
) -> None:
    """Print when a schedule expression fires next, in UTC and in its time zone."""
    from .events.schedules import parse_schedule

    _check_format(fmt)
    t0 = _after(after)
    try:
        schedule = parse_schedule(expression, timezone)
    except SqltideError as exc:
        raise _fail(exc) from exc
    _print_firings(schedule, t0, count, fmt)
