"""Refusing, before any route runs, a URL that no store could look up.

A NUL character (``%00``) in a path or query parameter cannot be held by PostgreSQL text, so a
lookup with one (``GET /v1/statements/%00``) would fail inside the store as a 500. No id,
name or filter sqltide accepts holds one, so such a URL is refused at the edge with a 400.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import envelope


class RejectNulInUrl:
    """Answer 400 ``invalid_request`` for a URL whose path or query holds a NUL character."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query: bytes = scope.get("query_string", b"")
            if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
                response = envelope(
                    400,
                    "invalid_request",
                    "the URL must not hold NUL characters (%00) in its path or query",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
