"""Helpers for the Data API tests: boto3's real ``redshift-data`` client against a loopback
server, with every answer checked against botocore's own service model.

Import them as ``from aws_data_api import ...`` (``tests/`` is on ``sys.path``). botocore drops
members it does not know and never looks at types once parsed, so a test that only read the
parsed answer could not see an extra member or a string where a number belongs:
:func:`data_api_client` registers a hook that checks the raw JSON of each answer (success or
error) against the operation's output shape (or the error shapes) of the model, and fails the
call with ``AssertionError`` on the first difference.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.model import OperationModel, Shape

REGION = "us-east-1"
#: Exceptions any operation may answer with besides its modeled ones (protocol and auth).
COMMON_ERRORS = {
    "SerializationException",
    "UnknownOperationException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
}


def data_api_client(
    url: str, access_key_id: str, secret_access_key: str, *, check: bool = True
) -> Any:
    """A ``redshift-data`` client on ``url`` that never retries and checks every answer."""
    client = boto3.client(
        "redshift-data",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60),
    )
    if check:
        client.meta.events.register("after-call.redshift-data", _check_answer)
    return client


def _check_answer(http_response: Any, model: OperationModel, **_: Any) -> None:
    body = json.loads(http_response.content or b"{}")
    status = http_response.status_code
    if status >= 300:
        name = body.get("__type", "").rsplit("#", 1)[-1]
        modeled = {e.name: e for e in model.error_shapes}
        assert name in modeled or name in COMMON_ERRORS, f"{model.name}: unknown error {body}"
        assert isinstance(body.get("message"), str) and body["message"], body
        if name in modeled:
            shape = modeled[name]
            extra = {k: v for k, v in body.items() if k not in ("__type", "message")}
            check_shape(shape, extra, f"{model.name}!{name}", skip_required={"Message"})
        return
    assert model.output_shape is not None
    check_shape(model.output_shape, body, model.name)


def check_shape(shape: Shape, value: Any, path: str, skip_required: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """``value`` (decoded JSON) has exactly the members and types ``shape`` allows."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: {value!r} is not an object"
        members = shape.members  # type: ignore[attr-defined]
        unknown = set(value) - set(members)
        assert not unknown, f"{path}: members not in the model: {sorted(unknown)}"
        for name in shape.required_members:  # type: ignore[attr-defined]
            if name not in skip_required:
                assert name in value, f"{path}: required member {name} is missing"
        if shape.metadata.get("union"):
            assert len(value) == 1, f"{path}: a union holds one member, not {sorted(value)}"
        for name, item in value.items():
            check_shape(members[name], item, f"{path}.{name}")
    elif kind == "list":
        assert isinstance(value, list), f"{path}: {value!r} is not a list"
        for n, item in enumerate(value):
            check_shape(shape.member, item, f"{path}[{n}]")  # type: ignore[attr-defined]
    elif kind in ("string", "blob"):
        assert isinstance(value, str), f"{path}: {value!r} is not a string"
        enum = shape.metadata.get("enum")
        if enum:
            assert value in enum, f"{path}: {value!r} is not one of {enum}"
    elif kind in ("long", "integer"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: {value!r}"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: {value!r} is not a boolean"
    elif kind == "double":
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{path}: {value!r}"
    elif kind == "timestamp":
        # JSON 1.1 sends timestamps as epoch seconds.
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{path}: {value!r}"
    else:  # pragma: no cover - a shape kind the model does not use today
        raise AssertionError(f"{path}: unexpected shape kind {kind}")


def signed_post(
    url: str,
    access_key_id: str,
    secret_access_key: str,
    body: bytes,
    *,
    target: str | None = "RedshiftData.DescribeStatement",
    content_type: str = "application/x-amz-json-1.1",
) -> httpx.Response:
    """A raw ``POST /`` signed as botocore signs it (for bodies boto3 would never send)."""
    headers = {"Content-Type": content_type}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=url.rstrip("/") + "/", data=body, headers=headers)
    SigV4Auth(Credentials(access_key_id, secret_access_key), "redshift-data", REGION).add_auth(
        request
    )
    return httpx.post(
        url.rstrip("/") + "/", content=body, headers=dict(request.headers.items()), timeout=30
    )


def aws_type(response: httpx.Response) -> str:
    """The exception name of a raw error answer."""
    return str(response.json()["__type"])
