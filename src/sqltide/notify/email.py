"""E-mail delivery over SMTP: one attempt, classified for retry.

:class:`SmtpSettings` say where and how to connect (``starttls`` on 587, implicit ``tls`` on
465, or ``none``), optionally from a URL::

    smtp://user:password@mail.example.com:587?security=starttls&from=etl@example.com
    smtps://user:password@mail.example.com?from=etl@example.com       (tls, port 465)

:func:`send_email` builds a proper MIME message (UTF-8 subject and body, ``Date``,
``Message-ID``, ``Auto-Submitted: auto-generated``) and hands it to the server with
:mod:`smtplib`. How failures are classified (see :mod:`sqltide.notify.delivery`):

==========================================  ====================  =========
failure                                     code                  retryable
==========================================  ====================  =========
refused, reset, DNS failure, timeout,       ``smtp_unavailable``  yes
disconnected
any 4xx reply (incl. 454 temporary auth)    ``smtp_deferred``     yes
5xx reply to AUTH; no AUTH offered          ``smtp_auth_failed``  no
5xx reply to MAIL FROM, RCPT TO or DATA     ``smtp_rejected``     no
STARTTLS not offered; untrusted certificate ``smtp_tls_failed``   no
==========================================  ====================  =========

When the server accepts some recipients and refuses others, the message went out, so the
attempt succeeds and the refused recipients are named in the result's summary (retrying
would send duplicates to the others); a subscription with one address per delivery avoids
the case entirely.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

from sqltide.errors import ConfigError
from sqltide.notify.delivery import DeliveryError, DeliveryResult
from sqltide.notify.headers import email_address_problem
from sqltide.notify.messages import Message, message_for

__all__ = ["SmtpSecurity", "SmtpSettings", "build_email", "send_email"]

logger = logging.getLogger(__name__)

SmtpSecurity: TypeAlias = Literal["starttls", "tls", "none"]

_DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpSettings:
    """Where and how to send e-mail.

    Args:
        host: the SMTP server.
        sender: the ``From`` address (and the envelope sender).
        port: 587 by default (465 for ``security="tls"`` when built from a URL).
        security: ``starttls`` (upgrade a plain connection; refuse to go on without TLS),
            ``tls`` (TLS from the first byte, "SMTPS") or ``none`` (plain text: loopback and
            test servers only).
        username, password: log in when given (after TLS is up).
        timeout: seconds for connecting and for each reply.
    """

    host: str
    sender: str
    port: int = 587
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.security not in _DEFAULT_PORTS:
            raise ConfigError(
                f"Unknown SMTP security {self.security!r}; use starttls, tls or none."
            )
        if not self.host:
            raise ConfigError("The SMTP host is empty.")
        if "@" not in self.sender or any(c in self.sender for c in "\r\n"):
            raise ConfigError(f"The SMTP sender {self.sender!r} is not an e-mail address.")
        if (self.username is None) != (self.password is None):
            raise ConfigError("Give both an SMTP username and a password, or neither.")

    def __repr__(self) -> str:  # never show the password
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r}, sender={self.sender!r}, timeout={self.timeout})"
        )

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """Settings from ``smtp://[user:password@]host[:port]?from=...&security=...&timeout=...``
        (``smtps://`` means ``security=tls``). User and password are percent-decoded."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ConfigError(f"An SMTP URL starts with smtp:// or smtps://, not {parts.scheme}://")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - {"from", "security", "timeout"}
        if unknown:
            raise ConfigError(f"Unknown SMTP URL parameter(s): {', '.join(sorted(unknown))}")
        security = query.get("security", "tls" if parts.scheme == "smtps" else "starttls")
        if security not in _DEFAULT_PORTS:
            raise ConfigError(f"Unknown SMTP security {security!r}; use starttls, tls or none.")
        if "from" not in query:
            raise ConfigError("The SMTP URL needs a sender: add ?from=address")
        try:
            port = parts.port or _DEFAULT_PORTS[security]
            timeout = float(query.get("timeout", 10.0))
        except ValueError as exc:
            raise ConfigError(f"Bad SMTP URL: {exc}") from exc
        return cls(
            host=parts.hostname or "",
            port=port,
            security=security,  # type: ignore[arg-type]  # checked above
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            sender=query["from"],
            timeout=timeout,
        )


def build_email(
    settings: SmtpSettings,
    to: Sequence[str],
    message: Message,
    *,
    message_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The MIME message :func:`send_email` sends (the ``email`` rendering of ``message``)."""
    if not to:
        raise ValueError("no recipients")
    for address in to:
        problem = email_address_problem(address)
        if problem:
            raise ValueError(f"not an e-mail address: {address!r}: {problem}")
    rendered = message_for("email", message, topic="")
    mail = EmailMessage()
    mail["Subject"] = rendered.subject
    mail["From"] = settings.sender
    mail["To"] = ", ".join(to)
    mail["Date"] = format_datetime(date or datetime.now(UTC))
    mail["Message-ID"] = message_id or make_msgid(domain=_domain(settings.sender))
    # RFC 3834: tell auto-responders (vacation replies) not to answer.
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(rendered.body, charset="utf-8")
    return mail


def send_email(
    settings: SmtpSettings,
    to: Sequence[str],
    message: Message,
    *,
    message_id: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> DeliveryResult:
    """Send ``message`` to ``to`` in one SMTP transaction.

    Args:
        settings: the server.
        to: the recipients.
        message: the notification; its ``email`` rendering is sent (see
            :func:`~sqltide.notify.messages.message_for`).
        message_id: the ``Message-ID`` header, e.g. ``<delivery-42@example.com>``; pass the
            same one on every retry of a delivery so mail clients can drop duplicates.
        ssl_context: for ``starttls``/``tls`` (default: the system's trusted CAs, with host
            name checking).

    Returns:
        ``ok=True``, the final reply code and the ``Message-ID``.

    Raises:
        DeliveryError: classified as in the module docstring; ``email_invalid_address``
            (not retried) for a recipient that is not one bare address, e.g. one with a
            line break that would add headers.
    """
    for address in to:
        problem = email_address_problem(address)
        if problem:
            raise DeliveryError(
                "email_invalid_address", f"recipient {address!r}: {problem}", retryable=False
            )
    mail = build_email(settings, to, message, message_id=message_id)
    started = time.monotonic()
    try:
        refused = _transmit(settings, mail, list(to), ssl_context)
    except DeliveryError as exc:
        exc.latency_s = time.monotonic() - started
        raise
    latency = time.monotonic() - started
    summary = f"accepted for {len(to) - len(refused)} of {len(to)} recipient(s)"
    if refused:
        summary += "; refused: " + ", ".join(
            f"{rcpt} ({code} {_text(reply)})" for rcpt, (code, reply) in refused.items()
        )
        logger.warning("SMTP server %s refused some recipients: %s", settings.host, refused)
    return DeliveryResult(
        ok=True, latency_s=latency, status=250, summary=summary, message_id=mail["Message-ID"]
    )


def _transmit(
    settings: SmtpSettings,
    mail: EmailMessage,
    to: list[str],
    ssl_context: ssl.SSLContext | None,
) -> dict[str, tuple[int, bytes]]:
    where = f"{settings.host}:{settings.port}"
    context = ssl_context or ssl.create_default_context()
    smtp: smtplib.SMTP | None = None
    try:
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        if settings.security == "starttls":
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    "smtp_tls_failed",
                    f"{where} does not offer STARTTLS; refusing to send in plain text "
                    "(use security=tls for port 465, or none for a trusted relay)",
                    retryable=False,
                )
            smtp.starttls(context=context)
        if settings.username is not None:
            _login(smtp, settings, where)
        refused = smtp.send_message(mail, from_addr=settings.sender, to_addrs=to)
        # the message was accepted; a rude goodbye changes nothing
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
        return dict(refused)
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise _by_reply(
            exc.smtp_code, exc.smtp_error, where, "smtp_auth_failed", "refused the login"
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:  # e.g. SMTPUTF8 needed but not offered
        raise DeliveryError(
            "smtp_rejected", f"{where} cannot take this message: {exc}", retryable=False
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        temporary = any(400 <= code < 500 for code in codes)
        detail = ", ".join(
            f"{rcpt} ({code} {_text(reply)})" for rcpt, (code, reply) in exc.recipients.items()
        )
        raise DeliveryError(
            "smtp_deferred" if temporary else "smtp_rejected",
            f"{where} refused every recipient: {detail}",
            retryable=temporary,
            status=codes[0] if codes else None,
            details={"refused": {r: c for r, (c, _) in exc.recipients.items()}},
        ) from exc
    except smtplib.SMTPResponseException as exc:
        # SMTPSenderRefused, SMTPDataError, SMTPHeloError, SMTPConnectError ...
        raise _by_reply(
            exc.smtp_code, exc.smtp_error, where, "smtp_rejected", "refused the message"
        ) from exc
    except smtplib.SMTPServerDisconnected as exc:
        # smtplib reports a reply that never came as a disconnection
        what = (
            f"did not answer within {settings.timeout} s"
            if isinstance(exc.__context__, TimeoutError)
            else f"closed the connection: {exc}"
        )
        raise DeliveryError("smtp_unavailable", f"{where} {what}", retryable=True) from exc
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(
            "smtp_tls_failed",
            f"{where} presented a certificate that is not trusted: {exc.verify_message}",
            retryable=False,
        ) from exc
    except TimeoutError as exc:
        raise DeliveryError(
            "smtp_unavailable",
            f"{where} did not answer within {settings.timeout} s",
            retryable=True,
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        # refused, reset, unreachable, DNS failure, TLS handshake cut ...
        raise DeliveryError(
            "smtp_unavailable", f"cannot reach {where}: {exc}", retryable=True
        ) from exc
    finally:
        if smtp is not None:
            smtp.close()


def _login(smtp: smtplib.SMTP, settings: SmtpSettings, where: str) -> None:
    try:
        smtp.login(settings.username or "", settings.password or "")
    except (smtplib.SMTPResponseException, smtplib.SMTPServerDisconnected):
        raise  # classified by the reply code, or as unavailable
    except smtplib.SMTPException as exc:
        # no AUTH extension, or no mechanism both sides support: configuration, not luck
        raise DeliveryError(
            "smtp_auth_failed", f"{where} cannot authenticate us: {exc}", retryable=False
        ) from exc


def _by_reply(
    code: int, reply: bytes | str, where: str, permanent_code: str, what: str
) -> DeliveryError:
    text = f"{where} {what}: {code} {_text(reply)}"
    if 400 <= code < 500:
        return DeliveryError("smtp_deferred", text, retryable=True, status=code)
    if code == -1:  # smtplib's "no valid reply" (e.g. the server hung up at once)
        return DeliveryError("smtp_unavailable", text, retryable=True)
    return DeliveryError(permanent_code, text, retryable=False, status=code)


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _domain(address: str) -> str:
    try:
        return Address(addr_spec=address).domain or "sqltide.invalid"
    except (ValueError, IndexError):
        return address.rpartition("@")[2] or "sqltide.invalid"
