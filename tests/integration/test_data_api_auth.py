"""Signature Version 4 on the wire: boto3's real ``redshift-data`` client, signing with a key's
AWS credentials, against a loopback server on each state store.

Good credentials work; bad ones fail with the exception AWS answers (botocore's
``ClientError`` carries its ``__type``, message and HTTP status); tenant walls hold between
principals; the caller's ARN is the statement event's ``detail.principal``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.auth
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from aws_data_api import REGION, data_api_client
from helpers import wait_until
from sqltide.dataapi import sigv4
from sqltide.keys import AwsCredentials, create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

TERMINAL = ("FINISHED", "FAILED", "ABORTED")


def aws_key(runtime: Runtime, principal: str, **kw: Any) -> tuple[str, AwsCredentials]:
    """A key of ``principal`` with AWS credentials, granted every warehouse: (key id, creds)."""
    record, _, creds = create_key(
        runtime.store, principal, warehouses=list(runtime.engines), aws=True, **kw
    )
    return record.id, creds


def client(server: ServerThread, creds: AwsCredentials, **kw: Any) -> Any:
    return data_api_client(server.url, creds.access_key_id, creds.secret_access_key, **kw)


def refusal(call: Any) -> tuple[str, str, int]:
    """What AWS-style refusal ``call`` met: (``__type``, message, HTTP status)."""
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    status = caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return error["Code"], error["Message"], status


def finished(rsd: Any, statement_id: str) -> dict[str, Any]:
    desc = wait_until(
        lambda: (
            (d := rsd.describe_statement(Id=statement_id, WaitTimeSeconds=5))["Status"] in TERMINAL
            and d
        )
    )
    assert desc["Status"] == "FINISHED", desc
    return dict(desc)


def test_good_credentials_work_and_bad_ones_fail_as_aws_answers(
    runtime: Runtime, server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sqltide")
    _, alice = aws_key(runtime, "alice")
    rsd = client(server, alice)
    out = rsd.execute_statement(WorkgroupName="default", Sql="SELECT 1")
    assert finished(rsd, out["Id"])["HasResultSet"] is True

    wrong_secret = AwsCredentials(alice.access_key_id, "x" * 40, alice.arn)
    code, message, status = refusal(
        lambda: client(server, wrong_secret).describe_statement(Id=out["Id"])
    )
    assert (code, message, status) == ("InvalidSignatureException", sigv4.SIGNATURE_MISMATCH, 400)

    unknown = AwsCredentials("ASQT" + "Z" * 16, alice.secret_access_key, alice.arn)
    code, message, status = refusal(
        lambda: client(server, unknown).describe_statement(Id=out["Id"])
    )
    assert (code, message, status) == ("UnrecognizedClientException", sigv4.INVALID_TOKEN, 400)

    unsigned = boto3.client(
        "redshift-data",
        endpoint_url=server.url,
        region_name=REGION,
        config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}),
    )
    code, message, status = refusal(lambda: unsigned.describe_statement(Id=out["Id"]))
    assert (code, message, status) == (
        "MissingAuthenticationTokenException",
        sigv4.MISSING_TOKEN,
        403,
    )
    # the secret was never written to sqltide's log, whatever happened
    assert alice.secret_access_key not in caplog.text


def test_a_request_signed_too_long_ago_has_expired(
    runtime: Runtime, server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, alice = aws_key(runtime, "alice")
    rsd = client(server, alice)
    then = datetime.now(UTC) - timedelta(minutes=16)
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: then.replace(tzinfo=None)
    )
    code, message, status = refusal(lambda: rsd.list_statements())
    assert (code, status) == ("InvalidSignatureException", 400)
    assert message.startswith(
        f"Signature expired: {then.strftime('%Y%m%dT%H%M%SZ')} is now earlier"
    )
    monkeypatch.undo()
    assert rsd.list_statements()["Statements"] == []  # the same client, signing now


def test_a_revoked_key_stops_working(runtime: Runtime, server: ServerThread) -> None:
    key_id, alice = aws_key(runtime, "alice")
    rsd = client(server, alice)
    assert rsd.list_statements()["Statements"] == []
    assert runtime.store.revoke_api_key(key_id, runtime.clock())

    def refused() -> bool:
        try:
            rsd.list_statements()
        except ClientError as exc:
            return bool(exc.response["Error"]["Code"] == "UnrecognizedClientException")
        return False

    wait_until(refused, timeout=sigv4.CACHE_SECONDS + 10)


def test_another_principal_cannot_see_the_statement(runtime: Runtime, server: ServerThread) -> None:
    _, alice = aws_key(runtime, "alice")
    _, bob = aws_key(runtime, "bob")
    mine, theirs = client(server, alice), client(server, bob)
    out = mine.execute_statement(WorkgroupName="default", Sql="SELECT 1")
    finished(mine, out["Id"])
    for call in (
        lambda: theirs.describe_statement(Id=out["Id"]),
        lambda: theirs.get_statement_result(Id=out["Id"]),
        lambda: theirs.cancel_statement(Id=out["Id"]),
    ):
        code, _, status = refusal(call)
        assert (code, status) == ("ResourceNotFoundException", 400)
    assert theirs.list_statements(Status="ALL")["Statements"] == []
    assert [s["Id"] for s in mine.list_statements(Status="ALL")["Statements"]] == [out["Id"]]


def test_the_caller_arn_is_the_event_s_principal(runtime: Runtime, server: ServerThread) -> None:
    arn = "arn:aws:iam::123456789012:role/etl-runner"
    _, etl = aws_key(runtime, "etl", arn=arn)
    rsd = client(server, etl)
    out = rsd.execute_statement(WorkgroupName="default", Sql="SELECT 1", WithEvent=True)
    finished(rsd, out["Id"])
    events = wait_until(
        lambda: [
            e
            for e in runtime.store.list_events("etl")
            if e.body["detail"].get("statementId") == out["Id"]
        ]
    )
    assert events[0].body["detail"]["principal"] == arn
    assert events[0].principal == "etl"  # the sqltide principal still owns the event


def test_any_region_signs(runtime: Runtime, server: ServerThread) -> None:
    _, alice = aws_key(runtime, "alice")
    for region in ("eu-central-1", "local"):
        rsd = boto3.client(
            "redshift-data",
            endpoint_url=server.url,
            region_name=region,
            aws_access_key_id=alice.access_key_id,
            aws_secret_access_key=alice.secret_access_key,
            config=Config(retries={"total_max_attempts": 1}),
        )
        assert rsd.list_statements()["Statements"] == []
