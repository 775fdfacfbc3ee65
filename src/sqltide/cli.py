"""The ``sqltide`` command line (Typer + Rich)."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from . import __version__
from .cli_bus import register as _register_bus
from .cli_common import (
    FormatOpt,
    KeyOpt,
    UrlOpt,
    _client,
    _fail,
    _fail_with,
    console,
    err,
)
from .cli_grants import DbRoleOpt, ReadOnlyOpt, check_warehouses, local_grants
from .cli_grants import register as _register_grants
from .cli_serve import register as _register_serve
from .cli_workflows import register as _register_workflows
from .errors import SqltideError

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
_register_bus(app)
_register_grants(app)
_register_serve(app)
_register_workflows(app)


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
    admin: Annotated[
        bool, typer.Option("--admin", help="An admin key (may use every warehouse)")
    ] = False,
    warehouse: Annotated[
        list[str] | None,
        typer.Option(
            "--warehouse",
            "-w",
            help="Grant the principal this warehouse too (repeat for more; see `sqltide grants`)",
            show_default=False,
        ),
    ] = None,
    read_only: ReadOnlyOpt = False,
    db_role: DbRoleOpt = None,
    aws: Annotated[
        bool,
        typer.Option(
            "--aws",
            help="Give the key AWS credentials too (an access key id and a secret access key) "
            "for the Redshift Data API face: boto3, the AWS CLI and the other SDKs sign with them",
        ),
    ] = False,
    arn: Annotated[
        str | None,
        typer.Option(
            help="With --aws: the ARN the key's caller appears as (events' detail.principal) "
            "\\[default: arn:aws:iam::<SQLTIDE_AWS_ACCOUNT_ID>:user/<principal>]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create an API key; it is printed once.

    A key acts as its principal, which may use only the warehouses granted to it (--warehouse
    here, or `sqltide grants add`), those in SQLTIDE_DEFAULT_GRANTS, or all with --admin.
    With --aws it also gets AWS credentials, printed once as a profile for ~/.aws/credentials.
    """
    from .keys import create_key

    warehouses = warehouse or []
    if (read_only or db_role) and not warehouses:
        raise typer.BadParameter("--read-only and --db-role qualify a grant: add --warehouse")
    if arn is not None and not aws:
        raise typer.BadParameter("--arn names the AWS credentials' caller: add --aws")
    grants, settings = local_grants()
    check_warehouses(settings, warehouses, db_role)
    try:
        made = create_key(
            grants.store,
            principal,
            name=name,
            admin=admin,
            warehouses=warehouses,
            access="read_only" if read_only else "read_write",
            db_role=db_role,
            aws=aws,
            arn=arn,
            account_id=settings.aws_account_id,
        )
    except SqltideError as exc:
        raise _fail(exc) from exc
    record, key = made[0], made[1]
    if warehouses:
        how = ("read_only" if read_only else "read_write") + (
            f" as database role {db_role!r}" if db_role else ""
        )
        err.print(f"granted {principal!r} warehouse(s) {', '.join(warehouses)}, {how}")
    err.print(f"key {record.id} for principal {record.principal!r} (shown once):")
    console.print(key)
    if len(made) == 3:
        creds = made[2]
        err.print(
            f"AWS credentials, caller {creds.arn} (shown once; a profile for ~/.aws/credentials):"
        )
        # Plain text: "[sqltide]" is not Rich markup, and a secret must not be re-wrapped.
        console.print(
            "[sqltide]\n"
            f"aws_access_key_id = {creds.access_key_id}\n"
            f"aws_secret_access_key = {creds.secret_access_key}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        err.print(
            "hint: `aws configure --profile sqltide` takes them too (any region); point the "
            "SDKs at this server with "
            f"AWS_ENDPOINT_URL_REDSHIFT_DATA=http://{settings.host}:{settings.port}",
            markup=False,
            highlight=False,
        )


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    table = Table(
        "id",
        "principal",
        "name",
        "admin",
        "aws access key id",
        "created",
        "revoked",
        header_style="bold",
    )
    for k in _store().list_api_keys():
        table.add_row(
            k.id,
            k.principal,
            k.name or "",
            "yes" if k.is_admin else "",
            k.aws_access_key_id or "",
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
        raise _fail_with("not_found", f"no active key with id {key_id!r}", key_id=key_id)
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

    source: str | Path = "-" if str(file) == "-" else file  # typer makes "-" a Path
    raise typer.Exit(
        cli_apply(
            source, url=url, api_key=api_key, dry_run=dry_run, prune=prune, console=console, err=err
        )
    )


# -- demo ----------------------------------------------------------------------------------------
@app.command()
def demo(
    which: Annotated[
        str,
        typer.Argument(
            help="elt: the NYC taxi ELT pipeline, schedule to e-mail; "
            "statements: a tour of the statement API; "
            "durable: seed 001's Redshift batch handler as a durable workflow, its worker killed "
            "mid-wait (needs sqltide\\[demo])"
        ),
    ] = "elt",
    rows: Annotated[
        int | None,
        typer.Option(
            help="Taxi trips (orders for durable) to generate \\[default: 500,000 (elt), "
            "2,000,000 (statements), 3,000 (durable)]"
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the demo's data \\[elt: $SQLTIDE_HOME/demo, emptied each run; "
            "others: a temporary one; durable: must be new or empty, and is kept]"
        ),
    ] = None,
    store: Annotated[
        str, typer.Option(help="elt: state store URL, e.g. postgresql://... \\[default: SQLite]")
    ] = "",
    warehouse: Annotated[
        str,
        typer.Option(help="elt: warehouse URL, e.g. postgresql://... \\[default: DuckDB]"),
    ] = "",
    timeout: Annotated[
        float,
        typer.Option(help="elt, durable: seconds to wait for the pipeline or the execution to end"),
    ] = 300.0,
) -> None:
    """Run sqltide's main job on an embedded server, through its real HTTP API.

    `sqltide demo` generates NYC taxi trips and runs examples/nyc-taxi-elt end to end: a
    schedule fires, the ELT script runs on the warehouse, its status event matches a rule, a
    topic mails the result to a local mail catcher; every hand-off is printed as it happens.
    `sqltide demo durable` runs examples/durable-batch: seed 001's handler submits a batch
    through the Data API and polls it with durable waits while its worker is killed and
    restarted.
    """
    if which not in ("elt", "statements", "durable"):
        raise typer.BadParameter("elt, statements or durable", param_hint="WHICH")
    if rows is not None and rows < 1:
        raise typer.BadParameter("at least 1", param_hint="--rows")
    if which == "statements":
        from .demos.statements import run_demo

        raise typer.Exit(run_demo(console, rows=rows or 2_000_000, home=home))
    if which == "durable":
        from .demos.durable import run_durable_demo

        try:
            code = run_durable_demo(console, orders=rows or 3000, home=home, timeout=timeout)
        except (FileExistsError, FileNotFoundError) as exc:
            raise _fail_with("config_error", str(exc)) from exc
        raise typer.Exit(code)
    from .demos.elt import run_elt_demo

    try:
        code = run_elt_demo(
            console,
            rows=rows or 500_000,
            home=home,
            store=store,
            warehouse=warehouse,
            timeout=timeout,
        )
    except (FileExistsError, FileNotFoundError) as exc:
        raise _fail_with("config_error", str(exc)) from exc
    raise typer.Exit(code)


@app.command("mail-catcher")
def mail_catcher(
    folder: Annotated[
        Path, typer.Option("--dir", help="Folder to keep the messages in, one .eml file each")
    ] = Path("mail"),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 to listen on")] = 1025,
) -> None:
    """Run a local SMTP server that keeps every message it gets as a file, to try pipelines.

    Point sqltide at it with SQLTIDE_SMTP_URL='smtp://127.0.0.1:1025?security=none&from=sqltide@localhost'.
    It listens on loopback only and accepts every recipient. Stop it with Ctrl-C.
    """
    import threading

    from .notify.catcher import MailCatcher

    def show(mail: Any) -> None:
        console.print(
            f"{mail.path}: [bold]{mail.subject}[/] to {', '.join(mail.recipients)}",
            highlight=False,
        )

    catcher = MailCatcher(folder, port=port, on_mail=show)
    try:
        catcher.start()
    except OSError as exc:
        raise _fail_with("config_error", f"cannot listen on 127.0.0.1:{port}: {exc}") from None
    console.print(f"Catching mail on 127.0.0.1:{catcher.port}, keeping it in {folder.resolve()}")
    console.print(f"SQLTIDE_SMTP_URL='{catcher.smtp_url()}'", highlight=False, soft_wrap=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        catcher.stop()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
