"""Notification messages, and what each kind of subscriber receives.

A :class:`Message` is what a publisher hands to a topic: a subject, a body and typed
attributes (strings, numbers and string arrays, as SNS message attributes). Like SNS's
``MessageStructure=json``, a message may instead carry one body per protocol::

    Message.per_protocol(
        "ELT finished",
        {"default": "{}", "email": "The nightly load finished.", "https": '{"ok": true}'},
    )

:func:`message_for` renders a message for one subscription protocol the way SNS does:

- ``email``: a plain-text body and a subject that fits SNS's limit (control characters
  removed, fewer than 100 characters, cut with an ellipsis);
- ``email-json`` and ``http``/``https``: the JSON notification document SNS posts to HTTP
  endpoints (``Type``, ``MessageId``, ``TopicArn``, ``Subject``, ``Message``, ``Timestamp``,
  ``MessageAttributes``), without SNS's certificate signature (webhooks are signed with an
  HMAC header instead, see :mod:`sqltide.notify.webhook`); ``raw=True`` sends the bare
  message text to HTTP endpoints, like SNS's raw message delivery;
- ``sms``: the bare text.

For each protocol the per-protocol body is used when present, else ``default``.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

from sqltide.errors import InvalidMessage

__all__ = [
    "DEFAULT_EMAIL_SUBJECT",
    "MAX_MESSAGE_BYTES",
    "PROTOCOLS",
    "SUBJECT_MAX_CHARS",
    "AttributeValue",
    "InvalidMessage",
    "Message",
    "ProtocolMessage",
    "email_subject",
    "message_for",
    "sns_message_attributes",
]

#: A message attribute: a String, a Number, or a String.Array (whose elements may be strings,
#: numbers, booleans or null, as in SNS).
AttributeValue: TypeAlias = str | int | float | list[Any]

#: The protocols :func:`message_for` renders.
PROTOCOLS = ("email", "email-json", "http", "https", "sms")

#: SNS: "Subjects must be UTF-8 text with no line breaks or control characters, and less than
#: 100 characters long" (the Publish API); seed 000's Lambda cuts its subjects to 99 characters.
SUBJECT_MAX_CHARS = 99

#: The subject of an e-mail whose message has none (SNS's is "AWS Notification Message").
DEFAULT_EMAIL_SUBJECT = "sqltide Notification Message"

#: SNS's message size limit: 256 KiB for the body and the attributes together.
MAX_MESSAGE_BYTES = 262_144

_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,256}")
_RESERVED_PREFIXES = ("aws.", "amazon.")
_ELLIPSIS = "\u2026"


@dataclass(frozen=True, slots=True)
class Message:
    """A notification: a subject, a body and typed attributes.

    Args:
        subject: the e-mail subject (also ``Subject`` in the JSON notifications). It may be
            long or contain line breaks: :func:`message_for` makes it fit.
        body: the text; with ``structure="json"`` a JSON object with one string per protocol
            and a required ``default`` (see :meth:`per_protocol`).
        attributes: name → ``str`` (String), ``int``/``float`` (Number) or ``list``
            (String.Array); subscription filter policies match on them.
        structure: ``"json"`` for a per-protocol body, like SNS's ``MessageStructure``.

    Raises:
        InvalidMessage: a bad attribute name or value, a per-protocol body that is not a JSON
            object of strings with a ``default``, or more than 256 KiB in all.
    """

    subject: str
    body: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    structure: Literal["json"] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.subject, str) or not isinstance(self.body, str):
            raise InvalidMessage("The subject and the body must be strings.")
        attributes = dict(self.attributes)
        for name, value in attributes.items():
            _check_attribute(name, value)
        object.__setattr__(self, "attributes", attributes)
        if self.structure is not None:
            if self.structure != "json":
                raise InvalidMessage(f"Unknown message structure {self.structure!r}; use 'json'.")
            _parse_structure(self.body)
        size = len(self.body.encode()) + sum(
            len(name.encode()) + len(_attribute_text(value).encode())
            for name, value in attributes.items()
        )
        if size > MAX_MESSAGE_BYTES:
            raise InvalidMessage(
                f"The message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} "
                "(body and attributes together)."
            )

    @classmethod
    def per_protocol(
        cls,
        subject: str,
        bodies: Mapping[str, str],
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Message:
        """A message with one body per protocol (``bodies`` must include ``default``)."""
        return cls(subject, json.dumps(dict(bodies)), dict(attributes or {}), "json")

    def text_for(self, protocol: str) -> str:
        """The body a subscriber of ``protocol`` gets: its own one, else ``default``."""
        if self.structure != "json":
            return self.body
        bodies = _parse_structure(self.body)
        return bodies.get(protocol, bodies["default"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``Message(**message.to_dict())`` gives the message back)."""
        return {
            "subject": self.subject,
            "body": self.body,
            "attributes": dict(self.attributes),
            "structure": self.structure,
        }


@dataclass(frozen=True, slots=True)
class ProtocolMessage:
    """A message rendered for one protocol: what goes on the wire."""

    protocol: str
    #: The e-mail subject (``email``/``email-json``), else None.
    subject: str | None
    #: The text sent: the e-mail body, the JSON document as text, the SMS text.
    body: str
    content_type: str
    #: The JSON notification document (``email-json``, ``http``/``https`` unless raw).
    document: dict[str, Any] | None = None


def message_for(
    protocol: str,
    message: Message,
    *,
    topic: str,
    message_id: str | None = None,
    timestamp: datetime | None = None,
    raw: bool = False,
) -> ProtocolMessage:
    """Render ``message`` for a subscriber of ``protocol`` on ``topic``.

    Args:
        protocol: one of :data:`PROTOCOLS`.
        message: the message published.
        topic: the topic's name or ARN (``TopicArn`` in the JSON document).
        message_id: the notification's id; pass the same one on every retry of a delivery so
            receivers can drop duplicates (default: a new UUID).
        timestamp: when the message was published (default: now).
        raw: for ``http``/``https``, send the bare message text (SNS raw message delivery).

    >>> message_for("email", Message("Load\\ndone", "12 rows"), topic="elt").subject
    'Load done'
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    text = message.text_for(protocol)
    if protocol == "sms":
        return ProtocolMessage(protocol, None, text, "text/plain; charset=utf-8")
    if protocol == "email":
        subject = email_subject(message.subject) or DEFAULT_EMAIL_SUBJECT
        return ProtocolMessage(protocol, subject, text, "text/plain; charset=utf-8")
    if raw and protocol in ("http", "https"):
        return ProtocolMessage(protocol, None, text, "text/plain; charset=utf-8")
    document = _notification(message, text, topic, message_id, timestamp)
    if protocol == "email-json":
        subject = email_subject(message.subject) or DEFAULT_EMAIL_SUBJECT
        body = json.dumps(document, ensure_ascii=False, indent=2)
        return ProtocolMessage(protocol, subject, body, "application/json", document)
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return ProtocolMessage(protocol, None, body, "application/json", document)


def email_subject(subject: str, limit: int = SUBJECT_MAX_CHARS) -> str:
    """``subject`` made safe for an e-mail header and SNS: on one line, without control
    characters, at most ``limit`` characters (cut with an ellipsis).

    >>> email_subject("x" * 120)[-3:], len(email_subject("x" * 120))
    ('xx…', 99)
    """
    # Line breaks and tabs become spaces (seed 000 drops them, gluing words together).
    cleaned = "".join(
        " " if ch.isspace() else ch
        for ch in subject
        if ch.isspace() or not unicodedata.category(ch).startswith("C")
    )
    cleaned = " ".join(cleaned.split())
    if len(cleaned) <= limit:
        return cleaned
    return cleaned[: limit - 1].rstrip() + _ELLIPSIS


def sns_message_attributes(
    attributes: Mapping[str, AttributeValue],
) -> dict[str, dict[str, str]]:
    """``attributes`` in the shape of SNS Publish's ``MessageAttributes``
    (``{"DataType": ..., "StringValue": ...}``)."""
    return {
        name: {"DataType": _attribute_type(value), "StringValue": _attribute_text(value)}
        for name, value in attributes.items()
    }


def _notification(
    message: Message,
    text: str,
    topic: str,
    message_id: str | None,
    timestamp: datetime | None,
) -> dict[str, Any]:
    when = (timestamp or datetime.now(UTC)).astimezone(UTC)
    document: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": topic,
    }
    subject = email_subject(message.subject)
    if subject:
        document["Subject"] = subject
    document["Message"] = text
    document["Timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    if message.attributes:
        document["MessageAttributes"] = {
            name: {"Type": _attribute_type(value), "Value": _attribute_text(value)}
            for name, value in message.attributes.items()
        }
    return document


def _parse_structure(body: str) -> dict[str, str]:
    try:
        bodies = json.loads(body)
    except ValueError as exc:
        raise InvalidMessage("A per-protocol message body must be a JSON object.") from exc
    if not isinstance(bodies, dict) or not isinstance(bodies.get("default"), str):
        raise InvalidMessage(
            "A per-protocol message body must be a JSON object with a string 'default'."
        )
    for key, value in bodies.items():
        if not isinstance(value, str):
            raise InvalidMessage(f"The body for protocol {key!r} must be a string.")
    return bodies


def _check_attribute(name: object, value: object) -> None:
    if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name):
        raise InvalidMessage(
            f"Attribute name {name!r} is not valid: use 1-256 letters, digits, '_', '-' or '.'."
        )
    if name.startswith(".") or name.endswith(".") or ".." in name:
        raise InvalidMessage(
            f"Attribute name {name!r} is not valid: no leading, trailing or double '.'."
        )
    if name.lower().startswith(_RESERVED_PREFIXES):
        raise InvalidMessage(
            f"Attribute name {name!r} is not valid: 'AWS.' and 'Amazon.' are reserved."
        )
    if isinstance(value, str) or _is_number(value):
        return
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for element in value:
            if not (element is None or isinstance(element, str | bool) or _is_number(element)):
                raise InvalidMessage(
                    f"Attribute {name!r}: array elements must be strings, numbers, "
                    f"booleans or null, not {type(element).__name__}."
                )
        return
    raise InvalidMessage(
        f"Attribute {name!r} must be a string, a number or a list, not {type(value).__name__}."
    )


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _attribute_type(value: AttributeValue) -> str:
    if isinstance(value, str):
        return "String"
    if isinstance(value, int | float):
        return "Number"
    return "String.Array"


def _attribute_text(value: AttributeValue) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(list(value), ensure_ascii=False)
