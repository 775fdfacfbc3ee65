"""What one delivery attempt reports: a :class:`DeliveryResult`, or a :class:`DeliveryError`.

Every sender in :mod:`sqltide.notify` (e-mail, webhook, SNS) makes exactly one attempt and
either returns a :class:`DeliveryResult` (``ok=True``) or raises a :class:`DeliveryError`.
The error says whether trying again later could succeed (``retryable``); the outbox that
calls the senders owns the retry schedule and the dead letters, the senders never sleep or
loop.

Error codes (stable strings, never renamed once released):

==========================  =========  ====================================================
code                        retryable  when
==========================  =========  ====================================================
``smtp_unavailable``        yes        connection refused/reset, DNS failure, timeout,
                                       server closed the connection
``smtp_deferred``           yes        a 4xx reply (greylisting, mailbox busy, 454 ...)
``smtp_auth_failed``        no         the server refused the credentials (5xx), or cannot
                                       authenticate at all
``smtp_rejected``           no         a 5xx reply to the sender, a recipient or the data
``smtp_tls_failed``         no         STARTTLS not offered, or the certificate is not
                                       trusted
``webhook_timeout``         yes        connect/read/write timed out
``webhook_unreachable``     yes        connection refused/reset, DNS failure, TLS error
``webhook_http_<status>``   depends    408, 429 and 5xx are retryable; any other
                                       non-2xx status (3xx, 4xx) is not
``webhook_invalid_url``     no         the URL cannot be requested at all
``webhook_invalid_header``  no         a header name or value cannot be sent (a line
                                       break, a control character)
``target_forbidden``        no         the URL's host is, or resolves to, an address
                                       webhooks may not reach (loopback, private,
                                       metadata: see :mod:`sqltide.notify.netguard`)
``email_invalid_address``   no         a recipient is not one bare e-mail address (a
                                       line break would inject headers)
``sns_error``               depends    SNS answered with an error: throttling and 5xx
                                       are retryable, validation/authorization are not
``sns_unavailable``         yes        SNS could not be reached (connection, timeout)
``sns_not_installed``       no         boto3 is missing (install ``sqltide[sns]``)
==========================  =========  ====================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DeliveryError", "DeliveryResult"]


class DeliveryError(Exception):
    """One delivery attempt failed.

    Attributes:
        code: a stable string naming the kind of failure (see the module docstring).
        message: what happened, for a person reading the dead-letter table.
        retryable: whether the same delivery could succeed if tried again later.
        status: the HTTP status or SMTP reply code, when the other side answered.
        retry_after: seconds the other side asked us to wait (HTTP ``Retry-After``).
        latency_s: how long the attempt took, in seconds.
        details: provider-specific facts (an AWS error code, refused recipients ...).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        latency_s: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.latency_s = latency_s
        self.details: dict[str, Any] = dict(details or {})

    def __repr__(self) -> str:
        return (
            f"DeliveryError(code={self.code!r}, retryable={self.retryable}, "
            f"status={self.status!r}, message={self.message!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the failure (for the delivery log / dead letters)."""
        return {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "status": self.status,
            "retry_after": self.retry_after,
            "latency_s": self.latency_s,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome of one delivery attempt.

    Senders return it only on success (``ok=True``); :meth:`from_error` turns a
    :class:`DeliveryError` into the same shape so the caller can record every attempt alike.
    """

    #: True when the other side accepted the message.
    ok: bool
    #: Wall-clock duration of the attempt, in seconds.
    latency_s: float
    #: HTTP status or SMTP reply code of the final answer, if there was one.
    status: int | None = None
    #: A short, human-readable account of the answer (never a whole response body).
    summary: str = ""
    #: The id the other side gave the message (SNS MessageId, the e-mail Message-ID).
    message_id: str | None = None
    #: The :attr:`DeliveryError.code` for a failed attempt.
    error_code: str | None = None
    #: For a failed attempt: whether it is worth retrying.
    retryable: bool = False

    @classmethod
    def from_error(cls, error: DeliveryError) -> DeliveryResult:
        """The record of a failed attempt."""
        return cls(
            ok=False,
            latency_s=error.latency_s or 0.0,
            status=error.status,
            summary=error.message,
            error_code=error.code,
            retryable=error.retryable,
        )
