"""``sqltide serve``: the HTTP API, the worker and the scheduler, in one process or split by role."""

from __future__ import annotations

import socket
import threading
from typing import Annotated, Any

import typer
from rich.panel import Panel

from . import __version__
from .cli_common import _fail, _fail_with, console, credentials_path, err
from .errors import SqltideError
from .urls import redact_url


def register(app: typer.Typer) -> None:
    """Add ``sqltide serve`` to ``app``."""
    app.command()(serve)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on \\[default: 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port \\[default: 8765]")] = None,
    role: Annotated[
        str,
        typer.Option(
            help="all (API + worker + scheduler), api, worker (statements, event routing, "
            "deliveries and workflow executions) or scheduler (schedule firings)"
        ),
    ] = "all",
    workflows: Annotated[
        list[str] | None,
        typer.Option(
            "--workflows",
            metavar="MODULE|PATH",
            help="Workflow module, .py file or folder to load (repeatable; adds to "
            "SQLTIDE_WORKFLOWS)",
        ),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Turn authentication off (local experiments only!)")
    ] = False,
) -> None:
    """Run the sqltide server: the HTTP API, the worker and the scheduler (or one --role)."""
    import uvicorn

    from .api import create_app
    from .files import write_private
    from .keys import create_key
    from .runtime import ROLES, Runtime
    from .server import uvicorn_config
    from .settings import load_settings

    try:
        settings = load_settings()
    except SqltideError as exc:
        raise _fail(exc) from exc
    if workflows:
        settings = settings.model_copy(update={"workflows": [*settings.workflows, *workflows]})
    host = host or settings.host
    port = port or settings.port
    no_auth = no_auth or settings.no_auth
    if role not in ROLES:
        raise typer.BadParameter("--role must be all, api, worker or scheduler")
    # Take the port first: a port in use is a clear error before anything else happens.
    sock = _listen(host, port) if role in ("all", "api") else None
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
        # An admin key may use every warehouse; the grant of ``default`` is recorded too, so
        # `sqltide grants list` shows who can use what.
        _, key = create_key(
            runtime.store, "admin", name="first admin key", admin=True, warehouses=["default"]
        )
        path = credentials_path()
        # mode 600 (its folder 700) before the key is written, whatever the umask
        write_private(path, key + "\n")
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
        f"  home: {settings.home_dir}\n  store: {redact_url(settings.store_url)}\n"
        f"  storage: {settings.storage_url}\n"
        + "".join(f"  warehouse {n}: {redact_url(u)}\n" for n, u in settings.warehouse_urls.items())
    )
    if role == "api":
        console.print(
            "  role: api (no worker: statements run in worker processes, schedules fire in "
            "scheduler processes)"
        )
    _print_workflows(runtime)
    config = uvicorn_config(create_app(runtime, no_auth=no_auth), settings)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if runtime._started:  # uvicorn gave up before its lifespan shutdown stopped it
            runtime.stop()


def _print_workflows(runtime: Any) -> None:
    """Say which workflows were loaded and which modules failed (their tracebacks are logged
    as errors while the runtime is built)."""
    if not runtime.settings.workflows or runtime.role == "scheduler":
        return
    names = runtime.workflows.names()
    console.print(f"  workflows: {', '.join(names) if names else 'none'}", highlight=False)
    for problem in runtime.workflow_problems:
        err.print(
            f"workflow module {problem} failed to import (traceback above); its executions "
            "wait for a worker that loads it",
            markup=False,
            highlight=False,
        )


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _fail_with("config_error", f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def _run_worker(runtime: Any) -> None:
    """``serve --role worker|scheduler``: run the work loop until SIGTERM or Ctrl-C, no HTTP."""
    import signal

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    settings = runtime.settings
    if runtime.role == "scheduler":
        console.print(
            f"sqltide {__version__} scheduler {runtime.loop.owner} running (schedule firings)\n"
            f"  store: {redact_url(settings.store_url)}\n"
        )
    else:
        console.print(
            f"sqltide {__version__} worker {runtime.loop.owner} running "
            f"({settings.worker_concurrency} at once)\n  store: {redact_url(settings.store_url)}\n"
            + "".join(
                f"  warehouse {n}: {redact_url(u)}\n" for n, u in settings.warehouse_urls.items()
            )
        )
    _print_workflows(runtime)
    try:
        stop.wait()
    finally:
        console.print("stopping: running statements get the grace period, then are interrupted")
        runtime.stop()
