"""``/v1/grants``: which warehouses each principal may use. Admin keys only.

The same grants ``sqltide grants`` manages on the local store (see ``sqltide.grants``); any
other key gets 403 ``permission_denied``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .. import errors
from ..grants import Grants
from ..keys import check_principal
from ..store import GrantRecord
from .auth import Caller, caller
from .calls import off_loop
from .responses import JSONResponse
from .schemas import ERROR_RESPONSES
from .views import iso

router = APIRouter(prefix="/v1/grants", tags=["grants"], responses=ERROR_RESPONSES)


async def admin_caller(who: Annotated[Caller, Depends(caller)]) -> Caller:
    if not who.is_admin:
        raise errors.PermissionDenied("managing warehouse grants needs an admin key")
    return who


AdminDep = Annotated[Caller, Depends(admin_caller)]


class GrantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access: Literal["read_write", "read_only"] = Field(
        default="read_write",
        description="`read_only`: statements run in read-only transactions and may not end them.",
    )
    db_role: str | None = Field(
        default=None,
        description="The database role the principal runs as (PostgreSQL warehouses).",
    )


def _grants(request: Request) -> Grants:
    return request.app.state.runtime.statements.grants


def grant_dict(g: GrantRecord) -> dict[str, Any]:
    return {
        "principal": g.principal,
        "warehouse": g.warehouse,
        "access": g.access,
        "db_role": g.db_role,
        "created_at": iso(g.created_at),
    }


@router.get("", summary="List grants (every principal's, or one's)")
async def list_grants(
    request: Request, who: AdminDep, principal: str | None = None
) -> dict[str, Any]:
    found = await off_loop(_grants(request).store.list_grants, principal)
    return {"grants": [grant_dict(g) for g in found]}


# A principal may hold "/" (ARN-like names): it takes every segment but the last.
@router.put("/{principal:path}/{warehouse}", summary="Grant a principal a warehouse")
async def put_grant(
    principal: str, warehouse: str, request: Request, who: AdminDep, body: GrantBody
) -> JSONResponse:
    check_principal(principal)
    engine = request.app.state.runtime.engines.get(warehouse)
    if body.db_role is not None and engine is not None and engine.scheme != "postgresql":
        raise errors.UnprocessableEntity(
            f"db_role applies to PostgreSQL warehouses only; {warehouse!r} is {engine.scheme}, "
            "which has no roles",
            details={"warehouse": warehouse},
        )
    grant, created = await off_loop(
        _grants(request).grant, principal, warehouse, body.access, body.db_role
    )
    return JSONResponse(grant_dict(grant), status_code=201 if created else 200)


@router.delete(
    "/{principal:path}/{warehouse}", status_code=204, summary="Revoke a principal's grant"
)
async def delete_grant(principal: str, warehouse: str, request: Request, who: AdminDep) -> Response:
    if not await off_loop(_grants(request).store.delete_grant, principal, warehouse):
        raise errors.NotFound(
            f"principal {principal!r} has no grant for warehouse {warehouse!r}",
            details={"principal": principal, "warehouse": warehouse},
        )
    return Response(status_code=204)
