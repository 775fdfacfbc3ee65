"""``sqltide grants``: which warehouses each principal may use (on the local state store)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from .cli_common import _fail, _fail_with, console, err
from .errors import SqltideError, UnprocessableEntity

if TYPE_CHECKING:
    from .grants import Grants
    from .settings import Settings

grants_app = typer.Typer(
    help="Manage warehouse grants: which warehouses a principal may use, read_write or "
    "read_only, and as which database role (PostgreSQL warehouses). Admin keys may use every "
    "warehouse without a grant. Works on the local state store directly, like `sqltide keys`.",
    no_args_is_help=True,
)

ReadOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--read-only",
        help="Read only: statements run in read-only transactions and may not end them",
    ),
]
DbRoleOpt = Annotated[
    str | None,
    typer.Option(
        "--db-role",
        help="Run as this database role on PostgreSQL warehouses (its privileges and "
        "row-level security apply)",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``sqltide grants`` to ``app``."""
    app.add_typer(grants_app, name="grants")


def local_grants() -> tuple[Grants, Settings]:
    """The grants of the local state store, and the settings naming the warehouses."""
    from .grants import Grants
    from .settings import load_settings
    from .store import store_from_url

    try:
        settings = load_settings()
        store = store_from_url(settings.store_url)
        store.migrate()
        return Grants(store, list(settings.warehouse_urls), settings.default_grants), settings
    except SqltideError as exc:
        raise _fail(exc) from exc


def check_warehouses(settings: Settings, warehouses: Sequence[str], db_role: str | None) -> None:
    """Refuse unknown warehouses, and a database role for a warehouse without roles."""
    urls = settings.warehouse_urls
    for name in warehouses:
        if name not in urls:
            raise _fail(
                UnprocessableEntity(
                    f"no warehouse named {name!r}; configured: {', '.join(urls)}",
                    details={"warehouse": name},
                )
            )
        if db_role is not None and not urls[name].startswith(("postgresql:", "postgres:")):
            raise _fail(
                UnprocessableEntity(
                    f"--db-role applies to PostgreSQL warehouses only; {name!r} is "
                    f"{urls[name].split(':', 1)[0]}, which has no roles",
                    details={"warehouse": name},
                )
            )


@grants_app.command("list")
def grants_list(
    principal: Annotated[
        str | None, typer.Option(help="Only this principal's grants", show_default=False)
    ] = None,
) -> None:
    """List grants (principal, warehouse, access, database role)."""
    grants, _ = local_grants()
    table = Table("principal", "warehouse", "access", "db role", "granted", header_style="bold")
    for g in grants.store.list_grants(principal):
        table.add_row(
            g.principal,
            g.warehouse,
            g.access,
            g.db_role or "",
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(g.created_at)),
        )
    console.print(table)
    if grants.defaults:
        defaults = ", ".join(f"{w} ({a})" for w, a in grants.defaults.items())
        err.print(f"[dim]every principal may also use (SQLTIDE_DEFAULT_GRANTS): {defaults}[/]")


@grants_app.command("add")
def grants_add(
    principal: Annotated[str, typer.Argument(help="Who may use the warehouses")],
    warehouses: Annotated[list[str], typer.Argument(help="Warehouse names, one or more")],
    read_only: ReadOnlyOpt = False,
    db_role: DbRoleOpt = None,
) -> None:
    """Grant a principal warehouses, or change its grants (access, database role).

    Takes effect at once for new statements; statements already accepted keep the access
    they were accepted with.
    """
    grants, settings = local_grants()
    check_warehouses(settings, warehouses, db_role)
    access = "read_only" if read_only else "read_write"
    try:
        for warehouse in warehouses:
            grant, created = grants.grant(principal, warehouse, access, db_role)
            role = f" as database role {grant.db_role!r}" if grant.db_role else ""
            verb = "granted" if created else "changed"
            console.print(f"{verb}: {principal!r} may use {warehouse!r} {access}{role}")
    except SqltideError as exc:
        raise _fail(exc) from exc


@grants_app.command("revoke")
def grants_revoke(
    principal: Annotated[str, typer.Argument(help="Whose grants")],
    warehouses: Annotated[list[str], typer.Argument(help="Warehouse names, one or more")],
) -> None:
    """Revoke grants; new statements on those warehouses answer 404 at once."""
    store = local_grants()[0].store
    missing = [w for w in warehouses if not store.delete_grant(principal, w)]
    for warehouse in warehouses:
        if warehouse not in missing:
            console.print(f"revoked: {principal!r} may no longer use {warehouse!r}")
    if missing:
        raise _fail_with(
            "not_found",
            f"{principal!r} had no grant for {', '.join(map(repr, missing))}",
            missing=missing,
        )
