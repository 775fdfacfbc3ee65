"""One error envelope for every answer: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import errors
from .responses import JSONResponse

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def envelope(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details or {}}},
        status_code=status,
        headers=headers,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.SqltideError)
    async def _sqltide(_: Request, exc: errors.SqltideError) -> JSONResponse:
        return envelope(exc.http_status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return envelope(400, "malformed_json", "the request body is not valid JSON")
        fields = [
            {
                "field": ".".join(str(x) for x in p.get("loc", ()) if x != "body"),
                "problem": p.get("msg", ""),
            }
            for p in problems
        ]
        summary = "; ".join(f"{f['field'] or 'body'}: {f['problem']}" for f in fields[:5])
        return envelope(422, "validation_error", f"invalid request: {summary}", {"fields": fields})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return envelope(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return envelope(500, "internal_error", "an unexpected error happened on the server")


class BodyLimit:
    """Answer 413 before reading more than ``limit`` bytes of a request body.

    A body with a ``Content-Length`` over the limit is refused before any of it is read. A
    body without one (chunked) is read here, up to the limit, before the app sees it: an
    error raised from inside the app's ``receive`` would reach FastAPI's body parsing, which
    turns any such error into a 400.
    """

    def __init__(self, app: ASGIApp, limit: int, data_api_limit: int | None = None):
        self.app = app
        self.limit = limit
        #: The Data API's own limit (``POST /`` with ``X-Amz-Target``): a batch of 40
        #: statements of 100 KB each must fit. Its refusal is an AWS error, not the envelope.
        self.data_api_limit = data_api_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        limit = self.limit
        aws = (
            self.data_api_limit is not None
            and b"x-amz-target" in headers
            and scope.get("path") == "/"
        )
        if aws:
            limit = self.data_api_limit  # type: ignore[assignment]
        declared = headers.get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > limit:
                await self._reject(scope, receive, send, limit, aws)
                return
            await self.app(scope, receive, send)  # the server holds the body to its length
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                replay = [message]
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await self._reject(scope, receive, send, limit, aws)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
                break

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, limit: int, aws: bool = False
    ) -> None:
        message = f"the request body is larger than {limit} bytes"
        response: Response
        if aws:
            # As the AWS SDKs read errors (sqltide.dataapi.exceptions).
            response = Response(
                orjson.dumps({"__type": "ValidationException", "message": message}),
                status_code=413,
                media_type="application/x-amz-json-1.1",
            )
        else:
            response = envelope(413, "payload_too_large", message, {"limit": limit})
        await response(scope, receive, send)
