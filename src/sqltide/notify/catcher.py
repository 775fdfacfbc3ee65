"""A local SMTP server that keeps every message it receives in a mail folder.

For trying pipelines out without a real mail server: point ``SQLTIDE_SMTP_URL`` at it
(``smtp://127.0.0.1:1025?security=none``) and read what sqltide sent as ``.eml`` files, one
per message, in the order received. ``sqltide demo`` runs one; ``sqltide mail-catcher`` runs
one on its own. It is a real SMTP server (aiosmtpd): sqltide's e-mail delivery is exercised
exactly as with any other server. It listens on loopback only and accepts every recipient.

    with MailCatcher(Path("mail")) as catcher:
        print(catcher.smtp_url)          # smtp://127.0.0.1:41234?security=none&from=...
        mail = catcher.wait_for(1, timeout=30)[0]
        print(mail.subject, mail.path)
"""

from __future__ import annotations

import email
import email.policy
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

__all__ = ["CaughtMail", "MailCatcher"]


@dataclass(frozen=True)
class CaughtMail:
    """One message the catcher received, and the file it is kept in."""

    path: Path
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        """The plain-text body."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


class _Handler:
    def __init__(self, catcher: MailCatcher):
        self.catcher = catcher

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.catcher._keep(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content)
        return "250 Message accepted for delivery"


class MailCatcher:
    """An SMTP server on ``host:port`` (port 0: any free port) writing to ``folder``.

    Args:
        folder: where messages go, as ``0001.eml``, ``0002.eml``...; created if missing.
            Numbering continues after the files already there.
        on_mail: called (in the server's thread) with each message as it arrives.
    """

    def __init__(
        self,
        folder: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        on_mail: Callable[[CaughtMail], None] | None = None,
    ):
        self.folder = Path(folder)
        self.host = host
        self.port = port
        self.on_mail = on_mail
        self.mails: list[CaughtMail] = []
        self._arrived = threading.Condition()
        self._controller: Any = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> MailCatcher:
        try:
            from aiosmtpd.controller import Controller
        except ImportError as exc:  # pragma: no cover - a dependency of sqltide
            raise RuntimeError("the mail catcher needs aiosmtpd: pip install aiosmtpd") from exc
        self.folder.mkdir(parents=True, exist_ok=True)
        self._next = 1 + max((_number(p) for p in self.folder.glob("*.eml")), default=0)
        if self.port == 0:
            # aiosmtpd checks its server by connecting to the port it was given: pick one.
            from ..server import free_port

            self.port = free_port()
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()  # returns once the server answers
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- use -----------------------------------------------------------------------------------
    def smtp_url(self, sender: str = "sqltide@localhost") -> str:
        """The ``SQLTIDE_SMTP_URL`` that sends to this catcher."""
        return f"smtp://{self.host}:{self.port}?security=none&from={sender}"

    def wait_for(self, count: int, *, timeout: float) -> list[CaughtMail]:
        """The first ``count`` messages, once they are here; :class:`TimeoutError` if they are
        not within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.mails) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self.mails)} of {count} messages arrived within {timeout:g}s"
                    )
                self._arrived.wait(left)
            return self.mails[:count]

    def _keep(self, sender: str, recipients: tuple[str, ...], content: bytes) -> None:
        with self._arrived:
            path = self.folder / f"{self._next:04d}.eml"
            self._next += 1
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(content)
            os.replace(tmp, path)
            message = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            mail = CaughtMail(path, sender, recipients, message)
            self.mails.append(mail)
            self._arrived.notify_all()
        if self.on_mail is not None:
            self.on_mail(mail)


def _number(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        return 0
