"""What every ``sqltide`` command shares: consoles, the server options, error printing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .errors import SqltideError

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
    """Print ``exc`` the one way every command prints an error; raise what it returns."""
    err.print(f"[bold red]error[/] [dim]({exc.code})[/]: {exc.message}")
    if exc.details:
        err.print(f"[dim]{json.dumps(exc.details, default=str)}[/]")
    return typer.Exit(1)


def _fail_with(code: str, message: str, **details: Any) -> typer.Exit:
    """Like :func:`_fail`, for a problem found by the command rather than by the server."""
    exc = SqltideError(message, details=details)
    exc.code = code  # type: ignore[misc]
    return _fail(exc)


def _client(url: str | None, api_key: str | None) -> Any:
    from .client import Client

    return Client(url, api_key)


def credentials_path() -> Path:
    from .settings import load_settings

    return load_settings().credentials_path
