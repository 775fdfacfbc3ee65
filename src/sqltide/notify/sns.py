"""Publishing to an Amazon SNS topic: one ``Publish`` call, classified for retry.

This is what seed 000's Lambda does in its ``notify`` action (``sns.publish(TargetArn=...,
Subject=..., MessageStructure='json', Message=json.dumps({'default': ..., 'sms': ...,
'email': ...}))``): a :class:`~sqltide.notify.messages.Message` made with
:meth:`Message.per_protocol <sqltide.notify.messages.Message.per_protocol>` is sent with
``MessageStructure="json"``, its subject cleaned and cut to SNS's limit, its attributes as
typed ``MessageAttributes``.

boto3 is an optional dependency (``pip install 'sqltide[sns]'``), imported only when SNS is
used. Classification: throttling (``Throttled``, ``Throttling``, ``KMSThrottling`` ...),
HTTP 429 and 5xx answers and connection failures are retryable; validation, authorization,
missing topics and KMS configuration errors are not.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from sqltide.notify.delivery import DeliveryError, DeliveryResult
from sqltide.notify.messages import Message, email_subject, sns_message_attributes

__all__ = ["publish_request", "publish_sns"]

_INSTALL_HINT = "Publishing to Amazon SNS needs boto3: pip install 'sqltide[sns]'"

# Error codes worth another try even though SNS answers them with a 4xx status.
_RETRYABLE_CODES = frozenset(
    {
        "Throttled",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "KMSThrottling",
        "KMSThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)


def publish_request(
    topic_arn: str,
    message: Message,
    *,
    message_group_id: str | None = None,
    message_deduplication_id: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments of the SNS ``Publish`` call for ``message``."""
    request: dict[str, Any] = {"TopicArn": topic_arn, "Message": message.body}
    subject = email_subject(message.subject)
    if subject:
        request["Subject"] = subject
    if message.structure == "json":
        request["MessageStructure"] = "json"
    if message.attributes:
        request["MessageAttributes"] = sns_message_attributes(message.attributes)
    if message_group_id is not None:
        request["MessageGroupId"] = message_group_id
    if message_deduplication_id is not None:
        request["MessageDeduplicationId"] = message_deduplication_id
    return request


def publish_sns(
    topic_arn: str,
    message: Message,
    *,
    client: Any = None,
    region: str | None = None,
    message_group_id: str | None = None,
    message_deduplication_id: str | None = None,
) -> DeliveryResult:
    """Publish ``message`` to the SNS topic ``topic_arn``; one attempt.

    Args:
        topic_arn: the topic.
        message: the notification (a per-protocol message goes out with
            ``MessageStructure="json"``).
        client: a boto3 SNS client to use (its credentials, region and retry settings).
            Default: one cached client per region from the default credential chain.
        region: the region of the default client (default: the topic ARN's region).
        message_group_id, message_deduplication_id: for FIFO topics; pass the same
            deduplication id on every retry of a delivery.

    Returns:
        ``ok=True`` with SNS's ``MessageId``.

    Raises:
        DeliveryError: ``sns_error`` (retryable for throttling and 5xx), ``sns_unavailable``
            (retryable) or ``sns_not_installed``.
    """
    exceptions = _botocore_exceptions()
    request = publish_request(
        topic_arn,
        message,
        message_group_id=message_group_id,
        message_deduplication_id=message_deduplication_id,
    )
    started = time.monotonic()
    try:
        if client is None:
            client = _default_client(region or _region_of(topic_arn))
        response = client.publish(**request)
    except exceptions.ClientError as exc:
        raise _client_error(exc, topic_arn, time.monotonic() - started) from exc
    except (exceptions.ConnectionError, exceptions.HTTPClientError) as exc:
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError
        raise DeliveryError(
            "sns_unavailable",
            f"cannot reach SNS for {topic_arn}: {exc}",
            retryable=True,
            latency_s=time.monotonic() - started,
        ) from exc
    except exceptions.BotoCoreError as exc:
        # NoCredentialsError, NoRegionError, ParamValidationError: configuration, not luck
        raise DeliveryError(
            "sns_error",
            f"cannot publish to {topic_arn}: {exc}",
            retryable=False,
            latency_s=time.monotonic() - started,
        ) from exc
    latency = time.monotonic() - started
    message_id = response.get("MessageId")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)
    return DeliveryResult(
        ok=True,
        latency_s=latency,
        status=status,
        summary=f"published to {topic_arn} as {message_id}",
        message_id=message_id,
    )


def _client_error(exc: Any, topic_arn: str, latency: float) -> DeliveryError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    text = str(error.get("Message", "")) or str(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    retryable = code in _RETRYABLE_CODES or status == 429 or (status or 0) >= 500
    return DeliveryError(
        "sns_error",
        f"SNS refused to publish to {topic_arn}: {code}: {text}",
        retryable=retryable,
        status=status,
        latency_s=latency,
        details={"aws_code": code},
    )


def _botocore_exceptions() -> Any:
    try:
        import botocore.exceptions
    except ImportError as exc:
        raise DeliveryError("sns_not_installed", _INSTALL_HINT, retryable=False) from exc
    return botocore.exceptions


def _region_of(topic_arn: str) -> str | None:
    # arn:aws:sns:us-east-1:123456789012:name
    parts = topic_arn.split(":")
    return parts[3] if len(parts) >= 6 and parts[0] == "arn" and parts[3] else None


@functools.lru_cache(maxsize=16)
def _default_client(region: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise DeliveryError("sns_not_installed", _INSTALL_HINT, retryable=False) from exc
    config = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard"})
    # boto3 clients are thread-safe (sessions are not): one per region, made once.
    return boto3.session.Session().client("sns", region_name=region, config=config)
