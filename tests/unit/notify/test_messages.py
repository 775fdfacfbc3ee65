"""Messages and their per-protocol renderings (SNS Publish semantics, seed 000's notify)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import sqltide.notify
from sqltide.notify import InvalidMessage, Message, message_for
from sqltide.notify.messages import (
    DEFAULT_EMAIL_SUBJECT,
    MAX_MESSAGE_BYTES,
    PROTOCOLS,
    SUBJECT_MAX_CHARS,
    email_subject,
    sns_message_attributes,
)

SUBJECT = "Extract Load Transform process completed in Amazon Redshift"
DETAIL = {"statementId": "dd2e1ec9", "state": "FINISHED", "rows": 1}


def seed_message() -> Message:
    """What seed 000's notify action publishes: MessageStructure=json with default/sms/email."""
    return Message.per_protocol(
        SUBJECT,
        {"default": json.dumps("{}"), "sms": SUBJECT, "email": str(DETAIL)},
        attributes={"state": "FINISHED", "rows": 1},
    )


def test_public_api_is_curated() -> None:
    assert sorted(sqltide.notify.__all__) == [
        "DeliveryError",
        "DeliveryResult",
        "FilterPolicy",
        "InvalidFilterPolicy",
        "InvalidMessage",
        "Message",
        "ProtocolMessage",
        "SmtpSettings",
        "compile_filter_policy",
        "message_for",
        "publish_sns",
        "send_email",
        "send_webhook",
        "verify_signature",
    ]
    for name in sqltide.notify.__all__:
        assert getattr(sqltide.notify, name).__doc__


def test_per_protocol_bodies_fall_back_to_default() -> None:
    message = seed_message()
    assert message_for("email", message, topic="elt").body == str(DETAIL)
    assert message_for("sms", message, topic="elt").body == SUBJECT
    https = message_for("https", message, topic="elt")
    assert https.document is not None and https.document["Message"] == '"{}"'
    assert message.text_for("email-json") == '"{}"'


def test_a_plain_message_is_the_same_for_every_protocol() -> None:
    message = Message("Done", "12 rows loaded")
    for protocol in PROTOCOLS:
        rendered = message_for(protocol, message, topic="elt")
        assert rendered.protocol == protocol
        if rendered.document is None:
            assert rendered.body == "12 rows loaded"
        else:
            assert rendered.document["Message"] == "12 rows loaded"


def test_email_rendering() -> None:
    rendered = message_for("email", Message("Load\r\ndone\t\x07now", "body"), topic="elt")
    assert rendered.subject == "Load done now"
    assert rendered.content_type == "text/plain; charset=utf-8"
    assert rendered.document is None
    # no subject: SNS uses a default one
    assert message_for("email", Message("", "b"), topic="t").subject == DEFAULT_EMAIL_SUBJECT
    assert message_for("email", Message("\n\x00", "b"), topic="t").subject == DEFAULT_EMAIL_SUBJECT


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("short", "short"),
        ("x" * SUBJECT_MAX_CHARS, "x" * SUBJECT_MAX_CHARS),
        ("x" * 100, "x" * (SUBJECT_MAX_CHARS - 1) + "\u2026"),
        ("word " * 30, "word " * 19 + "wor\u2026"),  # cut at the limit, even mid-word
        ("  a \n\n b  ", "a b"),
        ("Zürich ✓ \u200bdone", "Zürich ✓ done"),  # a zero-width space is a format character
    ],
)
def test_email_subject_fits_sns(subject: str, expected: str) -> None:
    out = email_subject(subject)
    assert out == expected
    assert len(out) < 100  # SNS: "less than 100 characters long"
    assert "\n" not in out and "\r" not in out


def test_http_notification_document() -> None:
    when = datetime(2019, 11, 3, 23, 28, 1, 631000, tzinfo=UTC)
    message = Message(
        "Order", "details", {"store": "example_corp", "price_usd": 210.75, "tags": ["a", 1]}
    )
    rendered = message_for(
        "https",
        message,
        topic="arn:aws:sns:us-east-2:123456789012:MyTopic",
        message_id="a1b2c34d",
        timestamp=when,
    )
    assert rendered.content_type == "application/json"
    assert json.loads(rendered.body) == rendered.document
    assert rendered.document == {
        "Type": "Notification",
        "MessageId": "a1b2c34d",
        "TopicArn": "arn:aws:sns:us-east-2:123456789012:MyTopic",
        "Subject": "Order",
        "Message": "details",
        "Timestamp": "2019-11-03T23:28:01.631Z",
        "MessageAttributes": {
            "store": {"Type": "String", "Value": "example_corp"},
            "price_usd": {"Type": "Number", "Value": "210.75"},
            "tags": {"Type": "String.Array", "Value": '["a", 1]'},
        },
    }


def test_http_document_leaves_out_what_is_empty_and_ids_are_fresh() -> None:
    first = message_for("http", Message("", "x"), topic="t").document
    second = message_for("http", Message("", "x"), topic="t").document
    assert first is not None and second is not None
    assert "Subject" not in first and "MessageAttributes" not in first
    assert first["MessageId"] != second["MessageId"]
    assert first["Timestamp"].endswith("Z")


def test_raw_delivery_and_email_json() -> None:
    message = Message("S", "payload")
    raw = message_for("https", message, topic="t", raw=True)
    assert (raw.body, raw.document, raw.content_type) == (
        "payload",
        None,
        "text/plain; charset=utf-8",
    )
    email_json = message_for("email-json", message, topic="t", message_id="m1")
    assert email_json.subject == "S"
    assert json.loads(email_json.body)["MessageId"] == "m1"


def test_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="unknown protocol 'sqs'"):
        message_for("sqs", Message("s", "b"), topic="t")


def test_sns_message_attributes() -> None:
    assert sns_message_attributes({"s": "x", "n": 3, "f": 0.5, "a": ["x", None, True]}) == {
        "s": {"DataType": "String", "StringValue": "x"},
        "n": {"DataType": "Number", "StringValue": "3"},
        "f": {"DataType": "Number", "StringValue": "0.5"},
        "a": {"DataType": "String.Array", "StringValue": '["x", null, true]'},
    }


def test_round_trip_through_a_dict() -> None:
    message = seed_message()
    assert Message(**message.to_dict()) == message
    json.dumps(message.to_dict())  # storable as JSON in the outbox


def test_attributes_are_copied() -> None:
    attributes = {"a": "1"}
    message = Message("s", "b", attributes)
    attributes["a"] = "2"
    assert message.attributes == {"a": "1"}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"subject": "s", "body": "not json", "structure": "json"}, "JSON object"),
        ({"subject": "s", "body": '{"email": "x"}', "structure": "json"}, "'default'"),
        ({"subject": "s", "body": '{"default": "x", "email": 5}', "structure": "json"}, "'email'"),
        ({"subject": "s", "body": "[]", "structure": "json"}, "string 'default'"),
        ({"subject": "s", "body": "b", "structure": "xml"}, "Unknown message structure"),
        ({"subject": None, "body": "b"}, "strings"),
        ({"subject": "s", "body": "b", "attributes": {"bad name": "x"}}, "not valid"),
        ({"subject": "s", "body": "b", "attributes": {"": "x"}}, "not valid"),
        ({"subject": "s", "body": "b", "attributes": {".a": "x"}}, "leading"),
        ({"subject": "s", "body": "b", "attributes": {"a..b": "x"}}, "double"),
        ({"subject": "s", "body": "b", "attributes": {"AWS.x": "x"}}, "reserved"),
        ({"subject": "s", "body": "b", "attributes": {"a" * 257: "x"}}, "not valid"),
        ({"subject": "s", "body": "b", "attributes": {"a": True}}, "not bool"),
        ({"subject": "s", "body": "b", "attributes": {"a": float("nan")}}, "not float"),
        ({"subject": "s", "body": "b", "attributes": {"a": {"x": 1}}}, "not dict"),
        ({"subject": "s", "body": "b", "attributes": {"a": ["x", {"y": 1}]}}, "array elements"),
        ({"subject": "s", "body": "x" * (MAX_MESSAGE_BYTES + 1)}, "the limit is 262144"),
        (
            {"subject": "s", "body": "é" * (MAX_MESSAGE_BYTES // 2 + 1)},
            "the limit",
        ),  # bytes, not chars
    ],
)
def test_invalid_messages(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidMessage, match=None) as caught:
        Message(**kwargs)  # type: ignore[arg-type]
    assert words in caught.value.message
    assert caught.value.code == "invalid_message"
    assert caught.value.http_status == 422


def test_a_message_at_the_size_limit_is_fine() -> None:
    Message("s", "x" * (MAX_MESSAGE_BYTES - 10), {"k": "v"})
