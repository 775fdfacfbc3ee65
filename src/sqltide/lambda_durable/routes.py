"""The Lambda durable execution API on sqltide's port: REST-JSON under ``/2025-12-01/``.

The SDK's boto3 ``lambda`` client (pointed here by ``AWS_ENDPOINT_URL_LAMBDA``) sends each
operation to its path in the model, signed with Signature Version 4 for the service
``lambda``; the durable execution ARN and the callback id are one percent-encoded path segment
each. :func:`mount` adds one route for the whole prefix, which:

1. finds the operation by method and path (an operation of the model sqltide does not serve
   answers ``InvalidParameterValueException`` naming it);
2. verifies the signature with a sqltide key's AWS credentials (``dataapi.sigv4``, service
   ``lambda``), unless the app runs without authentication;
3. runs it (:class:`~.service.DurableApi`, off the event loop) and answers the model's output
   shape, or the model's exception: ``x-amzn-ErrorType`` and a body ``{"Type", "message"}``,
   which botocore raises as ``client.exceptions.<Name>``. Nothing escapes as a bare 500.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .. import errors
from ..api.calls import off_loop
from ..dataapi import sigv4
from .service import Caller, DurableApi

logger = logging.getLogger(__name__)

PREFIX = "/2025-12-01"
SIGNING_NAME = "lambda"
MEDIA_TYPE = "application/json"
#: The HTTP status of each exception this face answers with (the model's, and AWS's own
#: authentication ones, which Lambda answers with 403).
STATUS: dict[str, int] = {
    "InvalidParameterValueException": 400,
    "CallbackTimeoutException": 400,
    "ResourceNotFoundException": 404,
    "ResourceConflictException": 409,
    "TooManyRequestsException": 429,
    "ServiceException": 500,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "IncompleteSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
}
#: The exceptions whose model names the message member ``message`` (the rest: ``Message``).
_LOWER_MESSAGE = frozenset(
    ("InvalidParameterValueException", "TooManyRequestsException", "ResourceConflictException")
)
#: Operations of the model under this prefix that sqltide does not serve, by (method, path
#: shape): they answer naming themselves.
_NOT_SERVED = {
    ("GET", ("durable-executions", "*", "history")): "GetDurableExecutionHistory",
    ("POST", ("durable-executions", "*", "pause")): "PauseDurableExecution",
    ("POST", ("durable-executions", "*", "resume")): "ResumeDurableExecution",
    ("DELETE", ("durable-executions", "*")): "DeleteDurableExecution",
    ("GET", ("functions", "*", "durable-executions")): "ListDurableExecutionsByFunction",
}


def mount(app: Any) -> None:
    """Serve the Lambda durable execution API on ``app`` (``api.app``'s FastAPI app)."""
    app.state.durable_api = DurableApi(app.state.runtime)
    app.add_route(
        PREFIX + "/{rest:path}",
        handle,
        methods=["GET", "POST", "DELETE"],
        include_in_schema=False,
    )


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers={"x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})},
    )


def error_answer(aws_type: str, message: str) -> Response:
    status = STATUS.get(aws_type, 400)
    member = "message" if aws_type in _LOWER_MESSAGE else "Message"
    body = {"Type": "Service" if status >= 500 else "User", member: message}
    return _answer(status, body, {"x-amzn-ErrorType": aws_type})


def aws_type_of(exc: BaseException) -> str:
    """The model's exception for an error raised while answering."""
    if isinstance(exc, errors.LambdaApiError | errors.AwsAuthFailure):
        return str(exc.details.get("aws_type") or "InvalidParameterValueException")
    if isinstance(exc, errors.ExecutionNotFound | errors.CallbackNotFound):
        return "ResourceNotFoundException"
    if isinstance(exc, errors.CallbackConflict):
        timed_out = exc.details.get("state") == "TIMED_OUT"
        return "CallbackTimeoutException" if timed_out else "InvalidParameterValueException"
    if isinstance(exc, errors.TooManyRequests):
        return "TooManyRequestsException"
    if isinstance(exc, errors.SqltideError) and exc.http_status < 500:
        return "InvalidParameterValueException"
    return "ServiceException"


Operation = Callable[[DurableApi, Caller, list[str], dict[str, str], bytes], Any]


def _json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise errors.LambdaApiError(
            "the request body is not valid JSON",
            details={"aws_type": "InvalidParameterValueException"},
        ) from None
    if not isinstance(data, dict):
        raise errors.LambdaApiError(
            "the request body must be a JSON object",
            details={"aws_type": "InvalidParameterValueException"},
        )
    return data


def _flag(value: str | None, name: str, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise errors.LambdaApiError(
        f"{name} must be true or false", details={"aws_type": "InvalidParameterValueException"}
    )


def _count(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise errors.LambdaApiError(
            f"{name} must be an integer", details={"aws_type": "InvalidParameterValueException"}
        )
    return int(value)


def _route(method: str, parts: list[str]) -> tuple[str, Operation] | None:
    """The operation for a method and the path's segments (decoded) after the prefix."""
    shape = tuple(parts)
    if len(parts) == 3 and parts[0] == "durable-executions":
        if method == "POST" and parts[2] == "checkpoint":
            return "CheckpointDurableExecution", lambda api, who, p, q, b: api.checkpoint(
                who, p[1], _json(b)
            )
        if method == "GET" and parts[2] == "state":
            return "GetDurableExecutionState", lambda api, who, p, q, b: api.state(
                who,
                p[1],
                q.get("CheckpointToken"),
                q.get("Marker"),
                _count(q.get("MaxItems"), "MaxItems"),
            )
        if method == "POST" and parts[2] == "stop":
            return "StopDurableExecution", lambda api, who, p, q, b: api.stop(who, p[1], _json(b))
    if len(parts) == 2 and parts[0] == "durable-executions" and method == "GET":
        return "GetDurableExecution", lambda api, who, p, q, b: api.describe(
            who, p[1], _flag(q.get("IncludeExecutionData"), "IncludeExecutionData", True)
        )
    if len(parts) == 3 and parts[0] == "durable-execution-callbacks" and method == "POST":
        names = {
            "succeed": "SendDurableExecutionCallbackSuccess",
            "fail": "SendDurableExecutionCallbackFailure",
            "heartbeat": "SendDurableExecutionCallbackHeartbeat",
        }
        if parts[2] in names:
            return names[parts[2]], lambda api, who, p, q, b: api.callback(who, p[1], p[2], b)
    for (m, pattern), name in _NOT_SERVED.items():
        if (
            m == method
            and len(pattern) == len(shape)
            and all(a in ("*", b) for a, b in zip(pattern, shape, strict=True))
        ):
            return name, _not_served(name)
    return None


def _not_served(name: str) -> Operation:
    def run(*_: Any) -> Any:
        raise errors.LambdaApiError(
            f"{name} is not supported by sqltide: it serves CheckpointDurableExecution, "
            "GetDurableExecutionState, GetDurableExecution, StopDurableExecution and the "
            "SendDurableExecutionCallback* operations (use sqltide's own API and CLI for the rest: "
            "sqltide workflows executions / history)",
            details={"aws_type": "InvalidParameterValueException"},
        )

    return run


async def handle(request: Request) -> Response:
    """Any request under ``/2025-12-01/``."""
    raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    raw_path = raw_path.split("?", 1)[0]
    parts = [unquote(p) for p in raw_path[len(PREFIX) :].split("/") if p]
    found = _route(request.method, parts)
    if found is None:
        return error_answer(
            "InvalidParameterValueException",
            f"{request.method} {raw_path[:200]} is not an operation of the Lambda durable "
            "execution API",
        )
    name, run = found
    try:
        body = await request.body()
        caller = await _caller(request, raw_path, body)
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        api: DurableApi = request.app.state.durable_api
        result = await off_loop(run, api, caller, parts, query, body)
    except Exception as exc:
        aws_type = aws_type_of(exc)
        if aws_type == "ServiceException":
            logger.exception("unexpected error in Lambda durable operation %s", name)
            message = "sqltide could not complete the request; see its log"
        else:
            message = getattr(exc, "message", None) or str(exc)
        return error_answer(aws_type, message)
    return _answer(200, result)


async def _caller(request: Request, raw_path: str, body: bytes) -> Caller:
    state = request.app.state
    runtime = state.runtime
    if state.no_auth:
        return Caller("anonymous", True)
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        key = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    check: Callable[[], sigv4.AwsCaller] = functools.partial(
        sigv4.authenticate,
        runtime,
        method=request.method,
        path=raw_path,
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        body=body,
        service=SIGNING_NAME,
    )
    who = check() if runtime.store.reads_never_wait else await off_loop(check)
    return Caller(who.principal, who.is_admin)
