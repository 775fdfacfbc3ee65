"""Notifications: messages, subscription filter policies and delivery to subscribers.

sqltide delivers a topic's messages to its subscriptions at least once: an outbox keeps
every delivery until a subscriber accepts it, retries what failed with a retryable error
and parks the rest as dead letters. This package holds the parts that know nothing about
storage:

- :mod:`~sqltide.notify.messages`: :class:`Message` (subject, body, typed attributes, an
  optional per-protocol body like SNS's ``MessageStructure=json``) and :func:`message_for`,
  which renders it for a protocol the way SNS does;
- :mod:`~sqltide.notify.filters`: SNS subscription filter policies
  (:func:`compile_filter_policy`);
- :mod:`~sqltide.notify.delivery`: what an attempt reports, :class:`DeliveryResult` or a
  :class:`DeliveryError` that says whether to retry;
- one sender per protocol, each making exactly one attempt: :func:`send_email` (SMTP),
  :func:`send_webhook` (a signed HTTP POST; receivers use :func:`verify_signature`) and
  :func:`publish_sns` (Amazon SNS, with the optional ``sqltide[sns]`` extra).
"""

from __future__ import annotations

from sqltide.notify.delivery import DeliveryError, DeliveryResult
from sqltide.notify.email import SmtpSettings, send_email
from sqltide.notify.filters import FilterPolicy, InvalidFilterPolicy, compile_filter_policy
from sqltide.notify.messages import InvalidMessage, Message, ProtocolMessage, message_for
from sqltide.notify.sns import publish_sns
from sqltide.notify.webhook import send_webhook, verify_signature

__all__ = [
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
