"""Bad input to the Data API's statement operations: each answered with the exception the real
service raises (``__type``, message, HTTP status), never a 500, on both state stores.

Requests boto3 would refuse to send (malformed JSON, unknown members, wrong types, lengths under
a minimum) go out raw, signed as botocore signs them (``aws_data_api.signed_post``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from aws_data_api import aws_type, data_api_client, signed_post
from conftest import make_settings
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def creds(runtime: Runtime) -> Any:
    return create_key(runtime.store, "alice", warehouses=list(runtime.engines), aws=True)[2]


@pytest.fixture
def rsd(server: ServerThread, creds: Any) -> Any:
    return data_api_client(server.url, creds.access_key_id, creds.secret_access_key)


def post(server: ServerThread, creds: Any, body: bytes, **kw: Any) -> Any:
    return signed_post(server.url, creds.access_key_id, creds.secret_access_key, body, **kw)


# -- the protocol ------------------------------------------------------------------------------
def test_target_content_type_and_json(server: ServerThread, creds: Any) -> None:
    body = orjson.dumps({"Id": ID})
    missing = post(server, creds, body, target=None)
    assert (missing.status_code, aws_type(missing)) == (400, "UnknownOperationException")
    assert missing.headers["content-type"] == "application/x-amz-json-1.1"
    for target in ("RedshiftData.DropEverything", "DynamoDB_20120810.GetItem", "RedshiftData"):
        unknown = post(server, creds, body, target=target)
        assert (unknown.status_code, aws_type(unknown)) == (400, "UnknownOperationException")
    wrong_type = post(server, creds, body, content_type="text/plain")
    assert (wrong_type.status_code, aws_type(wrong_type)) == (400, "UnknownOperationException")
    malformed = post(server, creds, b'{"Id": ')
    assert (malformed.status_code, aws_type(malformed)) == (400, "SerializationException")
    not_object = post(server, creds, b"[1, 2]")
    assert aws_type(not_object) == "SerializationException"
    # Plain JSON is taken as well (the request then reaches the operation).
    ok = post(server, creds, body, content_type="application/json")
    assert ok.status_code == 400 and aws_type(ok) == "ResourceNotFoundException"


def test_members_types_and_constraints(server: ServerThread, creds: Any) -> None:
    def call(target: str, payload: dict[str, Any]) -> Any:
        return post(server, creds, orjson.dumps(payload), target=f"RedshiftData.{target}")

    unknown = call("DescribeStatement", {"Id": ID, "Colour": "blue"})
    assert aws_type(unknown) == "ValidationException" and "Colour" in unknown.json()["message"]
    for payload in (
        {"Id": 42},
        {"Id": ID, "WaitTimeSeconds": "5"},
        {"Id": ID, "WaitTimeSeconds": 2.5},
    ):
        wrong = call("DescribeStatement", payload)
        assert (wrong.status_code, aws_type(wrong)) == (400, "SerializationException"), payload
    nested = call(
        "ExecuteStatement",
        {"Sql": "SELECT :a", "WorkgroupName": "default", "Parameters": [{"name": "a", "value": 1}]},
    )
    assert aws_type(nested) == "SerializationException"
    assert "parameters.1.member.value" in nested.json()["message"]
    # Every broken constraint is listed, in AWS's words.
    many = call(
        "ExecuteStatement",
        {
            "WorkgroupName": "x",
            "ClientToken": "",
            "SessionKeepAliveSeconds": 86401,
            "ResultFormat": "XML",
            "Parameters": [],
        },
    )
    message = many.json()["message"]
    assert many.status_code == 400 and aws_type(many) == "ValidationException"
    assert message.startswith("7 validation errors detected: ")  # "x" misses the pattern too
    for part in (
        "Value null at 'sql' failed to satisfy constraint: Member must not be null",
        "Value 'x' at 'workgroupName' failed to satisfy constraint: Member must have length "
        "greater than or equal to 3",
        "at 'clientToken' failed to satisfy constraint: Member must have length greater than",
        "Value '86401' at 'sessionKeepAliveSeconds' failed to satisfy constraint: Member must "
        "have value less than or equal to 86400",
        "Member must satisfy enum value set: [JSON, CSV]",
        "at 'parameters' failed to satisfy constraint: Member must have length greater than",
    ):
        assert part in message, (part, message)
    bad_id = call("DescribeStatement", {"Id": "not-a-uuid"})
    assert (
        aws_type(bad_id) == "ValidationException"
        and "regular expression" in bad_id.json()["message"]
    )
    bad_name = call("ExecuteStatement", {"Sql": "SELECT 1", "ClusterIdentifier": "Upper_Case"})
    assert aws_type(bad_name) == "ValidationException"


# -- statements --------------------------------------------------------------------------------
def test_submit_validation(rsd: Any) -> None:
    errors = rsd.exceptions
    with pytest.raises(errors.ValidationException, match="length less than or equal to 40"):
        rsd.batch_execute_statement(WorkgroupName="default", Sqls=["SELECT 1"] * 41)
    with pytest.raises(errors.ValidationException, match="102401 bytes; the limit is 102400"):
        rsd.execute_statement(WorkgroupName="default", Sql="SELECT 1" + " " * (100 * 1024 - 7))
    with pytest.raises(errors.ValidationException, match="needs to be specified"):
        rsd.execute_statement(Sql="SELECT 1")
    with pytest.raises(errors.ValidationException, match="cannot both be specified"):
        rsd.execute_statement(Sql="SELECT 1", WorkgroupName="default", ClusterIdentifier="default")
    with pytest.raises(errors.ValidationException, match="doesn't exist in this region"):
        rsd.execute_statement(Sql="SELECT 1", ClusterIdentifier="no-such-cluster")
    with pytest.raises(errors.ValidationException, match="does not exist on 'default'"):
        rsd.execute_statement(Sql="SELECT 1", WorkgroupName="default", Database="nope")
    with pytest.raises(errors.ValidationException, match="more than once"):
        rsd.execute_statement(
            Sql="SELECT :a",
            WorkgroupName="default",
            Parameters=[{"name": "a", "value": "1"}, {"name": "a", "value": "2"}],
        )
    with pytest.raises(errors.ValidationException, match="not used in the SQL"):
        rsd.execute_statement(
            Sql="SELECT 1", WorkgroupName="default", Parameters=[{"name": "a", "value": "1"}]
        )
    with pytest.raises(errors.ValidationException, match="no value for parameter"):
        rsd.execute_statement(Sql="SELECT :a", WorkgroupName="default")
    with pytest.raises(errors.ResourceNotFoundException):
        rsd.execute_statement(Sql="SELECT 1", SessionId=ID)
    with pytest.raises(errors.ValidationException, match="SessionKeepAliveSeconds"):
        rsd.execute_statement(Sql="SELECT 1", SessionId=ID, SessionKeepAliveSeconds=60)


def test_unknown_ids_and_tokens(rsd: Any) -> None:
    errors = rsd.exceptions
    for op in (rsd.describe_statement, rsd.cancel_statement):
        with pytest.raises(errors.ResourceNotFoundException) as caught:
            op(Id=ID)
        assert caught.value.response["ResourceId"] == ID
    with pytest.raises(errors.ResourceNotFoundException):
        rsd.describe_statement(Id=f"{ID}:3")
    for _ in range(3):
        rsd.execute_statement(WorkgroupName="default", Sql="SELECT 1")
    token = rsd.list_statements(Status="ALL", MaxResults=1)["NextToken"]
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    with pytest.raises(errors.ValidationException, match="next token"):
        rsd.list_statements(Status="ALL", NextToken=tampered)
    with pytest.raises(errors.ValidationException):
        rsd.list_sessions(NextToken=token)  # a statements token is no sessions token


def test_body_over_the_limit_is_an_aws_error(rsd: Any) -> None:
    # 40 statements near 100 KB each fit (AWS takes them); more than that is refused as AWS
    # errors are, never with sqltide's own envelope.
    with pytest.raises(rsd.exceptions.ValidationException, match="request body is larger"):
        rsd.batch_execute_statement(WorkgroupName="default", Sqls=["SELECT 1" + " " * 110_000] * 40)


# -- authentication ----------------------------------------------------------------------------
def test_bad_credentials(server: ServerThread, creds: Any) -> None:
    unknown = data_api_client(server.url, "ASQTAAAAAAAAAAAAAAAA", "x" * 40)
    with pytest.raises(unknown.exceptions.ClientError) as caught:
        unknown.describe_statement(Id=ID)
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    wrong = data_api_client(server.url, creds.access_key_id, "y" * 40)
    with pytest.raises(wrong.exceptions.ClientError) as caught:
        wrong.describe_statement(Id=ID)
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


# -- limits ------------------------------------------------------------------------------------
@pytest.fixture
def api_only(tmp_path: Path, store_url: str) -> Iterator[tuple[ServerThread, Any]]:
    """An API process (no worker: statements stay SUBMITTED) allowing two active statements."""
    settings = make_settings(tmp_path, store=store_url, max_active_statements_per_principal=2)
    rt = Runtime.build(settings, role="api")
    try:
        aws = create_key(rt.store, "alice", warehouses=list(rt.engines), aws=True)[2]
        with ServerThread(rt) as srv:
            yield srv, aws
    finally:
        rt.stop()


def test_too_many_active_statements(api_only: tuple[ServerThread, Any]) -> None:
    srv, aws = api_only
    rsd = data_api_client(srv.url, aws.access_key_id, aws.secret_access_key)
    for _ in range(2):
        rsd.execute_statement(WorkgroupName="default", Sql="SELECT 1")
    with pytest.raises(rsd.exceptions.ActiveStatementsExceededException):
        rsd.batch_execute_statement(WorkgroupName="default", Sqls=["SELECT 1"])
