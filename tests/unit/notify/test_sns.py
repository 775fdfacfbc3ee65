"""Publishing to Amazon SNS with botocore's Stubber: no network, no credentials.

boto3 is the optional ``sqltide[sns]`` extra, so this module (and only this one) is skipped
when it is not installed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")

import botocore.exceptions  # noqa: E402  (after the importorskip on purpose)
from botocore.stub import Stubber  # noqa: E402

from sqltide.notify import DeliveryError, Message, publish_sns  # noqa: E402
from sqltide.notify import sns as sns_module  # noqa: E402
from sqltide.notify.sns import publish_request  # noqa: E402

TOPIC = "arn:aws:sns:us-west-2:123456789012:RedshiftNotificationTopicSNS"
SUBJECT = "Extract Load Transform process completed in Amazon Redshift"
DETAIL = {"statementId": "dd2e1ec9", "state": "FINISHED", "rows": 1}


@pytest.fixture
def client() -> Any:
    return boto3.session.Session().client(
        "sns",
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def test_seed_000_notify_is_one_publish(client: Any, stubber: Stubber) -> None:
    """The seed's Lambda: MessageStructure=json with default/sms/email bodies."""
    bodies = {"default": json.dumps("{}"), "sms": SUBJECT, "email": str(DETAIL)}
    message = Message.per_protocol(SUBJECT, bodies, attributes={"state": "FINISHED", "rows": 1})
    stubber.add_response(
        "publish",
        {"MessageId": "5f3a-1"},
        expected_params={
            "TopicArn": TOPIC,
            "Message": json.dumps(bodies),
            "Subject": SUBJECT,
            "MessageStructure": "json",
            "MessageAttributes": {
                "state": {"DataType": "String", "StringValue": "FINISHED"},
                "rows": {"DataType": "Number", "StringValue": "1"},
            },
        },
    )
    result = publish_sns(TOPIC, message, client=client)
    assert result.ok and result.message_id == "5f3a-1" and result.status == 200
    assert result.summary == f"published to {TOPIC} as 5f3a-1"


def test_a_plain_message_and_a_subject_made_to_fit(client: Any, stubber: Stubber) -> None:
    message = Message("Error:run_sql:" + "x" * 200 + "\nTraceback", "traceback text")
    request = publish_request(TOPIC, message)
    assert "MessageStructure" not in request and "MessageAttributes" not in request
    assert len(request["Subject"]) == 99 and "\n" not in request["Subject"]
    stubber.add_response("publish", {"MessageId": "m"}, expected_params=request)
    assert publish_sns(TOPIC, message, client=client).ok


def test_fifo_topics_and_no_subject(client: Any, stubber: Stubber) -> None:
    stubber.add_response(
        "publish",
        {"MessageId": "m", "SequenceNumber": "1"},
        expected_params={
            "TopicArn": TOPIC + ".fifo",
            "Message": "b",
            "MessageGroupId": "elt",
            "MessageDeduplicationId": "delivery-42",
        },
    )
    result = publish_sns(
        TOPIC + ".fifo", Message("", "b"), client=client,
        message_group_id="elt", message_deduplication_id="delivery-42",
    )  # fmt: skip
    assert result.ok


@pytest.mark.parametrize(
    ("aws_code", "status", "retryable"),
    [
        ("Throttled", 429, True),
        ("Throttling", 400, True),
        ("KMSThrottling", 400, True),
        ("InternalError", 500, True),
        ("ServiceUnavailable", 503, True),
        ("InvalidParameter", 400, False),
        ("ParameterValueInvalid", 400, False),
        ("NotFound", 404, False),
        ("AuthorizationError", 403, False),
        ("KMSDisabled", 400, False),
        ("EndpointDisabled", 400, False),
    ],
)
def test_errors_are_classified(
    client: Any, stubber: Stubber, aws_code: str, status: int, retryable: bool
) -> None:
    stubber.add_client_error(
        "publish", service_error_code=aws_code, service_message="nope", http_status_code=status
    )
    with pytest.raises(DeliveryError) as caught:
        publish_sns(TOPIC, Message("s", "b"), client=client)
    error = caught.value
    assert (error.code, error.retryable, error.status) == ("sns_error", retryable, status)
    assert error.details == {"aws_code": aws_code}
    assert f"{aws_code}: nope" in error.message
    assert error.latency_s is not None


class _Raising:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def publish(self, **kwargs: Any) -> dict[str, Any]:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "code", "retryable"),
    [
        (botocore.exceptions.EndpointConnectionError(endpoint_url="https://sns"), "sns_unavailable", True),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="https://sns"), "sns_unavailable", True),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="https://sns"), "sns_unavailable", True),
        (botocore.exceptions.NoCredentialsError(), "sns_error", False),
        (botocore.exceptions.NoRegionError(), "sns_error", False),
    ],
)  # fmt: skip
def test_transport_and_configuration_errors(exc: Exception, code: str, retryable: bool) -> None:
    with pytest.raises(DeliveryError) as caught:
        publish_sns(TOPIC, Message("s", "b"), client=_Raising(exc))
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


def test_the_default_client_is_made_for_the_topic_region(
    monkeypatch: pytest.MonkeyPatch, client: Any, stubber: Stubber
) -> None:
    regions: list[str | None] = []

    def fake_default_client(region: str | None) -> Any:
        regions.append(region)
        return client

    monkeypatch.setattr(sns_module, "_default_client", fake_default_client)
    stubber.add_response("publish", {"MessageId": "m"})
    stubber.add_response("publish", {"MessageId": "m"})
    publish_sns(TOPIC, Message("s", "b"))
    publish_sns(TOPIC, Message("s", "b"), region="eu-west-1")
    assert regions == ["us-west-2", "eu-west-1"]


def test_the_real_default_client_is_cached_per_region() -> None:
    sns_module._default_client.cache_clear()
    try:
        first = sns_module._default_client("eu-central-1")
        assert sns_module._default_client("eu-central-1") is first
        assert first.meta.region_name == "eu-central-1"
    finally:
        sns_module._default_client.cache_clear()


def test_a_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore.exceptions", None)  # import now fails
    with pytest.raises(DeliveryError) as caught:
        publish_sns(TOPIC, Message("s", "b"))
    assert (caught.value.code, caught.value.retryable) == ("sns_not_installed", False)
    assert "sqltide[sns]" in caught.value.message
