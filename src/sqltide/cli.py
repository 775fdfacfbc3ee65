"""The ``sqltide`` command line (Typer + Rich)."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from . import __version__
from .errors import SqltideError

if TYPE_CHECKING:
    from datetime import tzinfo

    from .events.schedules import Schedule

app = typer.Typer(
    name="sqltide",
    help="Run warehouse SQL asynchronously, durably and event-driven.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
statements_app = typer.Typer(help="Inspect and control statements.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Manage API keys (works on the local state store directly).", no_args_is_help=True
)
app.add_typer(statements_app, name="statements")
app.add_typer(keys_app, name="keys")
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
app.add_typer(events_app, name="events")
app.add_typer(rules_app, name="rules")
app.add_typer(topics_app, name="topics")
app.add_typer(dlq_app, name="dlq")
app.add_typer(schedules_app, name="schedules")

console = Console()
err = Console(stderr=True)

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="SQLTIDE_URL", help="Server URL \\[default: http://127.0.0.1:8765]"
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="SQLTIDE_API_KEY",
        help="API key \\[default: the key saved in $SQLTIDE_HOME/credentials by `sqltide serve`]",
        show_default=False,
    ),
]
FormatOpt = Annotated[str, typer.Option("--format", "-F", help="table, csv or json")]


def _fail(exc: SqltideError) -> typer.Exit:
    err.print(f"[bold red]error[/] [dim]({exc.code})[/]: {exc.message}")
    if exc.details:
        err.print(f"[dim]{json.dumps(exc.details, default=str)}[/]")
    return typer.Exit(1)


def _client(url: str | None, api_key: str | None) -> Any:
    from .client import Client

    return Client(url, api_key)


def credentials_path() -> Path:
    from .settings import load_settings

    return load_settings().home_dir / "credentials"


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def version() -> None:
    """Print sqltide's version."""
    console.print(__version__)


# -- serve -------------------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on \\[default: 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port \\[default: 8765]")] = None,
    role: Annotated[str, typer.Option(help="all (API + worker), api or worker")] = "all",
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Turn authentication off (local experiments only!)")
    ] = False,
) -> None:
    """Run the sqltide server: the HTTP API and the worker, on the embedded defaults."""
    import uvicorn

    from .api import create_app
    from .keys import create_key
    from .runtime import Runtime
    from .settings import load_settings

    try:
        settings = load_settings()
    except SqltideError as exc:
        raise _fail(exc) from exc
    host = host or settings.host
    port = port or settings.port
    no_auth = no_auth or settings.no_auth
    if role not in ("all", "api", "worker"):
        raise typer.BadParameter("--role must be all, api or worker")
    # Take the port first: a port in use is a clear error before anything else happens.
    sock = _listen(host, port) if role != "worker" else None
    try:
        runtime = Runtime.build(settings, role=role)
        # Open the warehouses (and start the worker) here rather than in the app's lifespan,
        # where a failure (e.g. a DuckDB file locked by another process) ends up as a
        # traceback from uvicorn. The lifespan's start is then a no-op; its stop still runs.
        runtime.start()
    except (SqltideError, ValueError) as exc:
        if sock is not None:
            sock.close()
        raise _fail(exc) if isinstance(exc, SqltideError) else typer.BadParameter(str(exc)) from exc
    if sock is None:
        _run_worker(runtime)
        return
    if no_auth:
        err.print(
            Panel(
                "Authentication is OFF: anyone who can reach this port can run SQL as "
                "'anonymous'. Use this only on your own machine.",
                title="[bold red]warning",
                border_style="red",
            )
        )
    elif not runtime.store.list_api_keys():
        _, key = create_key(runtime.store, "admin", name="first admin key", admin=True)
        path = credentials_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        # mode 600 before the key is written (an existing file keeps its mode on open)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        path.chmod(0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        console.print(
            Panel(
                f"[bold]{key}[/]\n\nThis admin key is shown once. It is also saved to {path} "
                "(mode 600) so the sqltide CLI on this machine finds it.\n"
                "Use it as 'Authorization: Bearer <key>'; make more with `sqltide keys create`.",
                title="API key created",
                border_style="green",
            )
        )
    console.print(
        f"sqltide {__version__} listening on [bold]http://{host}:{port}[/] "
        f"(API docs at http://{host}:{port}/docs)\n"
        f"  home: {settings.home_dir}\n  store: {_redact(settings.store_url)}\n"
        f"  storage: {settings.storage_url}\n"
        + "".join(f"  warehouse {n}: {_redact(u)}\n" for n, u in settings.warehouse_urls.items())
    )
    if role == "api":
        console.print("  role: api (no worker: statements run in worker processes)")
    config = uvicorn.Config(
        create_app(runtime, no_auth=no_auth), log_level="warning", access_log=False
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if runtime._started:  # uvicorn gave up before its lifespan shutdown stopped it
            runtime.stop()


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        err.print(
            f"[bold red]error[/] [dim](config_error)[/]: cannot listen on {host}:{port}: "
            f"{exc.strerror}"
        )
        raise typer.Exit(1) from exc
    return sock


def _run_worker(runtime: Any) -> None:
    """``serve --role worker``: run the worker until SIGTERM or Ctrl-C, no HTTP."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    settings = runtime.settings
    console.print(
        f"sqltide {__version__} worker {runtime.worker.owner} running "
        f"({settings.worker_concurrency} at once)\n  store: {_redact(settings.store_url)}\n"
        + "".join(f"  warehouse {n}: {_redact(u)}\n" for n, u in settings.warehouse_urls.items())
    )
    try:
        stop.wait()
    finally:
        console.print("stopping: running statements get the grace period, then are interrupted")
        runtime.stop()


def _redact(url: str) -> str:
    """A URL without its password, for printing."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.password:
        return url  # unchanged (urlunsplit would drop the slashes of sqlite:////abs/path)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


# -- sql ---------------------------------------------------------------------------------------
def _parse_params(values: list[str] | None) -> dict[str, Any] | None:
    if not values:
        return None
    out: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--param")
        try:
            value = json.loads(raw)
            if not isinstance(value, str | int | float | bool) and value is not None:
                value = raw
        except json.JSONDecodeError:
            value = raw
        out[name] = value
    return out


@app.command()
def sql(
    query: Annotated[str | None, typer.Argument(help="The SQL to run (or use -f)")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="A .sql script, run as one batch", exists=True, dir_okay=False
        ),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE for :NAME (repeatable)")
    ] = None,
    fmt: FormatOpt = "table",
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the statement id and return")
    ] = False,
    warehouse: Annotated[
        str | None, typer.Option(help="Warehouse name \\[default: default]")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Statement name")] = None,
    auto_commit: Annotated[
        bool, typer.Option("--auto-commit", help="Batch: commit each statement on its own")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait before giving up")] = 3600.0,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Run SQL: submit, wait (with a spinner), print the result."""
    if (query is None) == (file is None):
        raise typer.BadParameter("give SQL as an argument or a script with -f, not both or neither")
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    params = _parse_params(param)
    with _client(url, api_key) as client:
        try:
            if file is not None:
                from .statements.script import split_script

                sqls = split_script(file.read_text())
                if not sqls:
                    raise typer.BadParameter(f"{file} holds no SQL statements")
                st = client.batch(
                    sqls,
                    params,
                    mode="auto_commit" if auto_commit else "transaction",
                    statement_name=name,
                    warehouse=warehouse,
                )
            else:
                assert query is not None
                st = client.execute(query, params, statement_name=name, warehouse=warehouse)
            if no_wait:
                console.print(st.id)
                return
            st = _wait_with_spinner(client, st.id, timeout)
            _print_outcome(client, st, fmt)
        except SqltideError as exc:
            raise _fail(exc) from exc


def _wait_with_spinner(client: Any, statement_id: str, timeout: float) -> Any:
    start = time.monotonic()
    st = client.describe(statement_id)
    show = console.is_terminal
    with console.status("", spinner="dots") if show else _nullcontext() as status:
        while not st.is_terminal:
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                err.print(f"still {st.status} after {timeout:.0f} s; statement id {st.id}")
                raise typer.Exit(2)
            if status is not None:
                status.update(f"{st.status.lower()} [dim]{elapsed:.1f}s[/] {st.id}")
            st = client.describe(statement_id, wait=min(1.0, max(0.05, timeout - elapsed)))
    return st


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _print_outcome(client: Any, st: Any, fmt: str) -> None:
    if st.status != "FINISHED":
        error = st.error or {}
        where = f" at position {error['position']}" if error.get("position") else ""
        state = f" [SQLSTATE {error['sqlstate']}]" if error.get("sqlstate") else ""
        code = f" [dim]({error['code']})[/]" if error.get("code") else ""
        err.print(f"[bold red]{st.status}[/]{code}{where}{state}: {error.get('message', '')}")
        raise typer.Exit(1)
    targets = (
        [s for s in st.sub_statements if s.has_result_set]
        if st.is_batch
        else ([st] if st.has_result_set else [])
    )
    if not targets:
        rows = st.result_rows
        counted = "" if rows is None else f"{rows} row{'' if rows == 1 else 's'} "
        err.print(f"[green]{st.status}[/] {counted}in {_dur(st)}")
        return
    for target in targets:
        _print_result(client, target.id, fmt)
    err.print(f"[green]{st.status}[/] in {_dur(st)} [dim]{st.id}[/]")


def _dur(st: Any) -> str:
    ns = st.duration_ns or 0
    return f"{ns / 1e9:.3f}s"


def _print_result(client: Any, statement_id: str, fmt: str) -> None:
    if fmt == "csv":
        for chunk in client.result_csv(statement_id):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return
    if fmt == "json":
        columns = None
        for page in client.result(statement_id):
            if columns is None:
                columns = [c.name for c in page.columns]
            for row in page.rows:
                sys.stdout.write(
                    json.dumps(dict(zip(columns, row, strict=True)), default=str) + "\n"
                )
        return
    table = Table(show_edge=False, header_style="bold")
    shown = 0
    total = 0
    limit = 1000
    for page in client.result(statement_id):
        if not table.columns:
            for c in page.columns:
                table.add_column(c.name, justify="right" if _numeric(c.type_name) else "left")
        total = page.total_rows
        for row in page.rows:
            if shown < limit:
                table.add_row(*("NULL" if v is None else str(v) for v in row))
                shown += 1
        if shown >= limit:
            break
    console.print(table)
    more = f" (showing {shown}; use --format csv for all)" if total > shown else ""
    err.print(f"{total} row{'' if total == 1 else 's'}{more}")


def _numeric(type_name: str) -> bool:
    t = type_name.upper()
    return any(
        t.startswith(p)
        for p in (
            "INT",
            "BIGINT",
            "SMALLINT",
            "TINYINT",
            "HUGEINT",
            "DOUBLE",
            "FLOAT",
            "DECIMAL",
            "REAL",
            "UBIGINT",
            "UINTEGER",
        )
    )


# -- statements ----------------------------------------------------------------------------------
@statements_app.command("list")
def statements_list(
    status: Annotated[str | None, typer.Option(help="Only this status")] = None,
    name_prefix: Annotated[str | None, typer.Option(help="Only names starting with this")] = None,
    limit: Annotated[int, typer.Option(help="At most this many")] = 50,
    fmt: Annotated[
        str, typer.Option("--format", "-F", help="table or json (one per line)")
    ] = "table",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """List your statements, newest first."""
    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")
    with _client(url, api_key) as client:
        try:
            table = Table(header_style="bold")
            # The id must stay whole (it is what other commands take); the SQL gives way.
            table.add_column("id", no_wrap=True, min_width=36)
            table.add_column("status", no_wrap=True, min_width=9)
            table.add_column("name", overflow="ellipsis", no_wrap=True, max_width=20)
            table.add_column("created (UTC)", no_wrap=True, min_width=14)
            table.add_column("duration", justify="right", no_wrap=True, min_width=8)
            table.add_column("rows", justify="right", no_wrap=True)
            table.add_column("sql", overflow="ellipsis", no_wrap=True, max_width=60)
            for n, st in enumerate(client.list(status=status, name_prefix=name_prefix)):
                if n >= limit:
                    break
                if fmt == "json":
                    sys.stdout.write(json.dumps(st.to_dict(), default=str) + "\n")
                    continue
                table.add_row(
                    st.id,
                    st.status,
                    st.statement_name or "",
                    st.created_at.strftime("%m-%d %H:%M:%S"),
                    _dur(st) if st.duration_ns is not None else "",
                    "" if st.result_rows is None else str(st.result_rows),
                    " ".join(st.query_string.split()),
                )
            if fmt == "json":
                return
            console.print(table)
        except SqltideError as exc:
            raise _fail(exc) from exc


@statements_app.command("describe")
def statements_describe(
    statement_id: Annotated[str, typer.Argument(help="Statement or sub-statement id")],
    wait: Annotated[
        float | None, typer.Option(help="Wait up to this many seconds for it to end")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Show a statement's status and details as JSON."""
    with _client(url, api_key) as client:
        try:
            st = client.describe(statement_id, wait=wait)
        except SqltideError as exc:
            raise _fail(exc) from exc
        console.print_json(json.dumps(st.to_dict(), default=str))


@statements_app.command("result")
def statements_result(
    statement_id: Annotated[str, typer.Argument(help="Statement or sub-statement id")],
    fmt: FormatOpt = "table",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Print a finished statement's result."""
    with _client(url, api_key) as client:
        try:
            _print_result(client, statement_id, fmt)
        except SqltideError as exc:
            raise _fail(exc) from exc


@statements_app.command("cancel")
def statements_cancel(
    statement_id: Annotated[str, typer.Argument(help="Statement id")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Cancel a statement that has not ended."""
    with _client(url, api_key) as client:
        try:
            st = client.cancel(statement_id)
        except SqltideError as exc:
            raise _fail(exc) from exc
        console.print(f"{st.id}: {st.status}")


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


def _fail_with(code: str, message: str, **details: Any) -> typer.Exit:
    """Like :func:`_fail`, for a problem found here rather than by the server."""
    exc = SqltideError(message, details=details)
    exc.code = code  # type: ignore[misc]
    return _fail(exc)


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
    with _client(url, api_key) as client:
        try:
            event_id = client.put_event(source, detail_type, body, resources=resource, time=at)
        except SqltideError as exc:
            raise _fail(exc) from exc
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
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("source", overflow="ellipsis", no_wrap=True, max_width=24)
    table.add_column("detail-type", overflow="ellipsis", no_wrap=True, max_width=32)
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("detail", overflow="ellipsis", no_wrap=True, max_width=60)
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
            console.print(table)
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
    with _client(url, api_key) as client:
        try:
            rules = client.rules()
        except SqltideError as exc:
            raise _fail(exc) from exc
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
    with _client(url, api_key) as client:
        try:
            rule = client.rule(name)
        except SqltideError as exc:
            raise _fail(exc) from exc
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
    with _client(url, api_key) as client:
        try:
            rule = client.put_rule(
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
        except SqltideError as exc:
            raise _fail(_with_file(exc, file)) from exc
    console.print(f"rule {rule['name']} saved ({rule['state']}): {_rule_when(rule)}")


@rules_app.command("delete")
def rules_delete(
    name: Annotated[str, typer.Argument(help="The rule's name")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Delete a rule."""
    with _client(url, api_key) as client:
        try:
            client.delete_rule(name)
        except SqltideError as exc:
            raise _fail(exc) from exc
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
            rule = client.put_rule(
                name,
                event_pattern=rule.get("event_pattern"),
                schedule=rule.get("schedule"),
                targets=rule.get("targets") or [],
                state=state,
                description=rule.get("description"),
                timezone=rule.get("timezone") or "UTC",
                missed_policy=rule.get("missed_policy"),
                missed_window_seconds=rule.get("missed_window_seconds"),
            )
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
    with _client(url, api_key) as client:
        try:
            rule = client.rule(name)
        except SqltideError as exc:
            raise _fail(exc) from exc
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
    with _client(url, api_key) as client:
        try:
            topics = client.topics()
        except SqltideError as exc:
            raise _fail(exc) from exc
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
    with _client(url, api_key) as client:
        try:
            topic = client.topic(name)
        except SqltideError as exc:
            raise _fail(exc) from exc
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
    with _client(url, api_key) as client:
        try:
            topic = client.put_topic(
                name, spec.get("subscriptions") or [], display_name=spec.get("display_name")
            )
        except SqltideError as exc:
            raise _fail(_with_file(exc, file)) from exc
    n = len(topic.get("subscriptions") or ())
    console.print(f"topic {topic['name']} saved ({n} subscription{'' if n == 1 else 's'})")


@topics_app.command("delete")
def topics_delete(
    name: Annotated[str, typer.Argument(help="The topic's name")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Delete a topic."""
    with _client(url, api_key) as client:
        try:
            client.delete_topic(name)
        except SqltideError as exc:
            raise _fail(exc) from exc
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
    with _client(url, api_key) as client:
        try:
            dead = client.dead_letters(max_results=limit)
        except SqltideError as exc:
            raise _fail(exc) from exc
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
    with _client(url, api_key) as client:
        try:
            d = client.redrive(delivery_id)
        except SqltideError as exc:
            raise _fail(exc) from exc
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


# -- keys ----------------------------------------------------------------------------------------
def _store() -> Any:
    from .settings import load_settings
    from .store import store_from_url

    try:
        store = store_from_url(load_settings().store_url)
        store.migrate()
    except SqltideError as exc:
        raise _fail(exc) from exc
    return store


@keys_app.command("create")
def keys_create(
    principal: Annotated[
        str, typer.Argument(help="Who the key acts as; statements are scoped to it")
    ],
    name: Annotated[str | None, typer.Option(help="A label for the key")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="An admin key")] = False,
) -> None:
    """Create an API key; it is printed once."""
    from .keys import create_key

    try:
        record, key = create_key(_store(), principal, name=name, admin=admin)
    except SqltideError as exc:
        raise _fail(exc) from exc
    err.print(f"key {record.id} for principal {record.principal!r} (shown once):")
    console.print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    table = Table("id", "principal", "name", "admin", "created", "revoked", header_style="bold")
    for k in _store().list_api_keys():
        table.add_row(
            k.id,
            k.principal,
            k.name or "",
            "yes" if k.is_admin else "",
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(k.created_at)),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(k.revoked_at)) if k.revoked_at else "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`)")],
) -> None:
    """Revoke an API key at once."""
    if not _store().revoke_api_key(key_id, time.time()):
        err.print(f"[red]no active key with id {key_id!r}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


# -- apply -------------------------------------------------------------------------------------
@app.command()
def apply(
    file: Annotated[
        Path, typer.Option("--file", "-f", help="The pipeline file (YAML or JSON; - for stdin)")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Also delete rules and topics the file leaves out")
    ] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Create or update the rules and topics of a pipeline file, idempotently (docs/pipelines.md)."""
    from .pipeline import cli_apply

    raise typer.Exit(
        cli_apply(
            file, url=url, api_key=api_key, dry_run=dry_run, prune=prune, console=console, err=err
        )
    )


# -- demo ----------------------------------------------------------------------------------------
@app.command()
def demo(
    rows: Annotated[int, typer.Option(help="Rows of sample trips to generate")] = 2_000_000,
    home: Annotated[
        Path | None, typer.Option(help="Data directory for the demo \\[default: a temporary one]")
    ] = None,
) -> None:
    """Start an embedded sqltide, load sample data and run real statements through the API."""
    from .demo import run_demo

    code = run_demo(console, rows=rows, home=home)
    raise typer.Exit(code)


def main() -> None:
    # Typer reads SQLTIDE_* flags itself; keep pydantic-settings' view of the home consistent.
    os.environ.setdefault("SQLTIDE_HOME", str(Path("~/.sqltide").expanduser()))
    app()


if __name__ == "__main__":
    main()
