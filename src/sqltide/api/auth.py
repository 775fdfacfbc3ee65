"""Who is calling: an API key from ``Authorization: Bearer`` or ``X-API-Key``.

Verified keys are remembered for a few seconds (by hash), so a busy client does not cost a
store read per request; a revoked key stops working within ``CACHE_SECONDS``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import Request

from ..keys import authenticate, hash_key
from .calls import read

ANONYMOUS = "anonymous"
CACHE_SECONDS = 2.0
_CACHE_MAX = 10_000


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
    state = request.app.state
    if state.no_auth:
        return Caller(ANONYMOUS, is_admin=True)
    key = _key_from(request)
    cache: dict[str, tuple[Caller, float]] = state.__dict__.setdefault("key_cache", {})
    now = time.monotonic()
    digest = hash_key(key) if key else ""
    hit = cache.get(digest)
    if hit is not None and hit[1] > now:
        return hit[0]
    record = await read(request, authenticate, state.runtime.store, key)
    who = Caller(record.principal, record.is_admin)
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[digest] = (who, now + CACHE_SECONDS)
    return who
