"""The Amazon Redshift Data API protocol (AWS JSON 1.1): ``POST /`` routed by ``X-Amz-Target``.

The SDKs send every operation as ``POST /`` with ``X-Amz-Target: RedshiftData.<Operation>``,
``Content-Type: application/x-amz-json-1.1`` and a JSON body, signed with AWS Signature
Version 4. :func:`mount` adds that one route to the sqltide app (``/v1`` is untouched; see
docs/adr/0007-data-api-face.md). A request is answered in this order:

1. ``X-Amz-Target`` names an operation of the model, else ``UnknownOperationException``;
2. the caller is authenticated (``sigv4.authenticate``, off the event loop, since it reads the
   store), unless the app runs with ``no_auth`` (then it is the anonymous admin);
3. the body is JSON of the right content type, else ``SerializationException`` /
   ``UnknownOperationException``;
4. the body is validated against the model (``shapes.check``);
5. the operation runs, and answers a JSON object; any error becomes the AWS exception
   ``exceptions.aws_error`` maps it to. Nothing escapes as a 500 without a ``__type``.

Operations live in ``statements.py``, ``results.py`` and ``catalog.py`` and register here with
:func:`operation`; each gets a :class:`DataApiCall` and the validated body.
"""

from __future__ import annotations

import functools
import importlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .. import errors
from ..api.calls import off_loop, point_read
from ..runtime import Runtime
from . import sigv4
from .exceptions import AwsError, aws_error
from .shapes import INPUTS, check
from .warehouses import warehouse_map

logger = logging.getLogger(__name__)
T = TypeVar("T")

TARGET_PREFIX = "RedshiftData"
MEDIA_TYPE = "application/x-amz-json-1.1"
#: Content types a request may have: the SDKs send 1.1; 1.0 and plain JSON are taken too.
_JSON_TYPES = frozenset(
    ("application/x-amz-json-1.1", "application/x-amz-json-1.0", "application/json")
)
#: The caller when the server runs without authentication (``sqltide serve --no-auth``).
ANONYMOUS = "anonymous"
ANONYMOUS_ARN = "arn:aws:iam::000000000000:user/anonymous"
#: The modules whose operations register here (imported by :func:`mount`).
OPERATION_MODULES = ("statements", "results", "catalog")


@dataclass(frozen=True, slots=True)
class DataApiCall:
    """Who calls, over which runtime: what every operation receives beside its body."""

    runtime: Runtime
    principal: str
    is_admin: bool
    arn: str
    #: The AWS access key id the request was signed with (None without authentication): the
    #: "IAM session" of ``RoleLevel=false`` lists.
    access_key_id: str | None = None


Operation = Callable[[DataApiCall, dict[str, Any]], Awaitable[dict[str, Any]]]

#: Operation name (as in ``X-Amz-Target: RedshiftData.<name>``) → its implementation.
OPERATIONS: dict[str, Operation] = {}


def operation(name: str) -> Callable[[Operation], Operation]:
    """Register the decorated coroutine as the Data API operation ``name``."""
    if name not in INPUTS:
        raise ValueError(f"{name!r} is not an operation of the Data API model")

    def register(fn: Operation) -> Operation:
        OPERATIONS[name] = fn
        return fn

    return register


async def read(call: DataApiCall, fn: Callable[..., T], *args: Any) -> T:
    """A point read for an operation (``api.calls.read`` without a request): on the loop
    when the store's reads never wait, else in a thread."""
    return await point_read(call.runtime.store, fn, *args)


def load_operations() -> None:
    """Import the modules that register the operations (once; later calls do nothing)."""
    for module in OPERATION_MODULES:
        importlib.import_module(f"{__package__}.{module}")


def mount(app: Any) -> None:
    """Serve the Data API on ``app`` (the FastAPI app of ``api.app``) at ``POST /``.

    Raises ``ConfigError`` for a warehouse map that names unknown warehouses.
    """
    load_operations()
    warehouse_map(app.state.runtime)  # built now: a bad map stops the server at start-up
    app.add_route("/", handle, methods=["POST"], include_in_schema=False)


def _unknown_operation(target: str | None) -> AwsError:
    if not target:
        message = (
            "the X-Amz-Target header is missing: it names the operation (RedshiftData.<Operation>)"
        )
    else:
        message = f"{target!r} is not an operation of the Redshift Data API"
    return AwsError("UnknownOperationException", message, 400)


def _answer(error: AwsError) -> Response:
    return Response(
        orjson.dumps(error.body()),
        status_code=error.status,
        media_type=MEDIA_TYPE,
        headers={"x-amzn-RequestId": str(uuid.uuid4()), "x-amzn-ErrorType": error.type},
    )


async def handle(request: Request) -> Response:
    """``POST /``: one Data API call."""
    target = request.headers.get("x-amz-target")
    prefix, _, name = (target or "").partition(".")
    if prefix != TARGET_PREFIX or name not in INPUTS:
        return _answer(_unknown_operation(target))
    try:
        body = await request.body()
        call = await _caller(request, body)
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type not in _JSON_TYPES:
            return _answer(
                AwsError(
                    "UnknownOperationException",
                    f"Content-Type {content_type or '(none)'!r} is not a Data API request: "
                    f"send {MEDIA_TYPE}",
                    400,
                )
            )
        try:
            data = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError:
            raise errors.DataApiError(
                "the request body is not valid JSON",
                details={"aws_type": "SerializationException"},
            ) from None
        params = check(name, data)
        fn = OPERATIONS.get(name)
        if fn is None:
            return _answer(
                AwsError("UnknownOperationException", f"{name} is not available here", 400)
            )
        result = await fn(call, params)
    except Exception as exc:
        error = aws_error(exc, operation=name)
        if not isinstance(exc, errors.SqltideError):
            logger.exception("unexpected error in Data API operation %s", name)
        return _answer(error)
    return Response(
        orjson.dumps(result),
        media_type=MEDIA_TYPE,
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


async def _caller(request: Request, body: bytes) -> DataApiCall:
    state = request.app.state
    runtime: Runtime = state.runtime
    if state.no_auth:
        return DataApiCall(runtime, ANONYMOUS, True, ANONYMOUS_ARN)
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        key = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        # SigV4 joins repeated headers with commas in its canonical form.
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    check = functools.partial(
        sigv4.authenticate,
        runtime,
        method=request.method,
        path=request.scope.get("raw_path", b"/").decode("latin-1") or "/",
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        body=body,
    )
    # A point read at most (the key by its access key id, usually cached): on the loop when
    # the store's reads never wait, as ``api.auth`` reads bearer keys; else in a thread.
    who = check() if runtime.store.reads_never_wait else await off_loop(check)
    return DataApiCall(runtime, who.principal, who.is_admin, who.arn, who.access_key_id)
