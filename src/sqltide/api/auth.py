"""Who is calling: an API key from ``Authorization: Bearer`` or ``X-API-Key``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..keys import authenticate

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Caller:
    principal: str
    is_admin: bool = False


def _key_from(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.headers.get("x-api-key")


async def caller(request: Request) -> Caller:
    """FastAPI dependency: the authenticated caller (raises ``Unauthorized``)."""
    runtime = request.app.state.runtime
    if request.app.state.no_auth:
        return Caller(ANONYMOUS, is_admin=True)
    record = await run_in_threadpool(authenticate, runtime.store, _key_from(request))
    return Caller(record.principal, record.is_admin)
