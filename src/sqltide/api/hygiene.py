"""HTTP hygiene around the whole app: security headers, a body-read timeout, and errors that
leave the connection usable.

These wrap the app *outside* Starlette's ``ServerErrorMiddleware`` (see :func:`install`),
because that is where a 500 is sent from: a middleware added with ``add_middleware`` sits
inside it and never sees the 500. All three are pure ASGI (no ``BaseHTTPMiddleware``), so
streamed results pass through without being buffered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import RequestTimeout
from .errors import envelope

logger = logging.getLogger(__name__)

#: Sent on every answer, errors included. ``no-store``: results and statement texts must not
#: be kept by a browser or a shared proxy.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
#: Everything but the interactive docs (which load scripts and styles from a CDN) is data that
#: is never rendered as a page, so it may load nothing at all.
_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS_PATHS = ("/docs", "/redoc")


def install(app: FastAPI, *, body_timeout: float) -> None:
    """Wrap ``app``'s whole middleware stack, ``ServerErrorMiddleware`` included.

    FastAPI builds the stack on the first request; wrapping its builder keeps the app a
    FastAPI object (routes added later still count) while these run outermost.
    """
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_wrapped() -> ASGIApp:
        return SecurityHeaders(KeepConnectionOnError(BodyTimeout(build(), body_timeout)))

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` to every answer, without touching its body.

    A header the route set itself (say a ``Cache-Control`` of its own) is kept as it is.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(SECURITY_HEADERS)
        if not scope.get("path", "").startswith(_DOCS_PATHS):
            extra.append(_CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class KeepConnectionOnError:
    """Keep the connection open after an unexpected error has been answered.

    Starlette's ``ServerErrorMiddleware`` sends the 500 (our handler in ``errors.py`` logs
    the exception with its traceback) and then re-raises, "so servers can log it". uvicorn
    does log it, a second time, and closes the connection: the client's next request on the
    same keep-alive connection is reset. Once an answer has started, the exception has been
    handled, so it stops here. A response that started but did not finish (a stream that
    failed half-way) is then left unfinished, and uvicorn closes that connection, as it must.
    Without any answer (the handler itself failed) the exception goes on to uvicorn.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if not started:
                raise
            logger.debug("an exception after the answer started, already logged", exc_info=True)


class BodyTimeout:
    """Answer 408 ``request_timeout`` when a request body stalls for ``timeout`` seconds.

    Only the wait for the client's body is timed: once the whole body has arrived, the app's
    later ``receive`` calls (Starlette listens for a disconnect while it streams a result, a
    long-poll may wait 30 s) are passed through untouched. After the 408 (sent with
    ``Connection: close``) the app is told the client went away and whatever it answers is
    dropped.
    """

    def __init__(self, app: ASGIApp, timeout: float):
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        timed_out = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()
            if timed_out:
                return {"type": "http.disconnect"}
            try:
                async with asyncio.timeout(self.timeout):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                await self._answer_timeout(scope, started, send)
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the 408 went out; the app's own late answer has nowhere to go
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, timed_receive, guarded_send)

    async def _answer_timeout(self, scope: Scope, started: bool, send: Send) -> None:
        logger.info(
            "request body from %s stalled for %g s: answered 408",
            (scope.get("client") or ("?",))[0],
            self.timeout,
        )
        if started:  # an answer is under way: the server drops the connection instead
            return
        error = RequestTimeout(
            f"the request body did not arrive within {self.timeout:g} s",
            details={"timeout_seconds": self.timeout},
        )
        response = envelope(error.http_status, error.code, error.message, error.details)
        response.headers["connection"] = "close"

        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, nothing, send)
