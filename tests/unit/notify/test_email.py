"""E-mail delivery against real SMTP servers on loopback (aiosmtpd): plain, authenticating
(LOGIN and PLAIN), STARTTLS and implicit TLS with a throw-away self-signed certificate."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from helpers import wait_for
from sqltide.errors import ConfigError
from sqltide.notify import DeliveryError, Message, SmtpSettings, send_email
from sqltide.notify.email import build_email
from sqltide.server import free_port

# aiosmtpd warns about AUTH without TLS; on loopback that is the point of the test
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

HOST = "127.0.0.1"
SENDER = "etl@example.com"
USER, PASSWORD = "mailer", "p@ss:w/rd"


@dataclass
class Mailbox:
    """An aiosmtpd handler: keeps what it accepts; some addresses misbehave on purpose."""

    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "450 4.2.1 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(r.startswith("tempfail@") for r in envelope.rcpt_tos):
            return "451 4.3.0 Local problem, try later"
        if any(r.startswith("spam@") for r in envelope.rcpt_tos):
            return "554 5.7.1 Message rejected as spam"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class Server:
    mailbox: Mailbox
    port: int


def _start(**kwargs: Any) -> tuple[Controller, Server]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname=HOST, port=port, **kwargs)
    controller.start()  # returns once the server answers
    return controller, Server(mailbox, port)


@pytest.fixture
def plain_server() -> Iterator[Server]:
    controller, server = _start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture(params=["LOGIN", "PLAIN"])
def auth_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """Requires credentials, offering only one mechanism (plain text: loopback test)."""
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[request.param]
    controller, server = _start(
        authenticator=_authenticate,
        auth_required=True,
        auth_require_tls=False,
        auth_exclude_mechanism=[other],
    )
    try:
        yield server
    finally:
        controller.stop()


@dataclass
class Certificate:
    """A throw-away CA and a certificate it issued for localhost and 127.0.0.1 (trustme)."""

    ca: trustme.CA
    leaf: trustme.LeafCert

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.leaf.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="module")
def certificate() -> Certificate:
    """Made in memory for every run: no openssl command, nothing skipped."""
    ca = trustme.CA()
    return Certificate(ca, ca.issue_cert("localhost", "127.0.0.1"))


@pytest.fixture
def starttls_server(certificate: Certificate) -> Iterator[Server]:
    controller, server = _start(
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
    )
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def tls_server(certificate: Certificate) -> Iterator[Server]:
    controller, server = _start(ssl_context=certificate.server_context())
    try:
        yield server
    finally:
        controller.stop()


def settings_for(server: Server | int, **overrides: Any) -> SmtpSettings:
    port = server if isinstance(server, int) else server.port
    values: dict[str, Any] = {
        "host": HOST, "port": port, "security": "none", "sender": SENDER, "timeout": 5,
    }  # fmt: skip
    values.update(overrides)
    return SmtpSettings(**values)


def test_message_arrives_with_subject_body_and_recipients(plain_server: Server) -> None:
    message = Message(
        "ELT löppt ✓\nfinished", "Statement dd2e1ec9 FINISHED, 1 row.\nGrüße", {"state": "x"}
    )
    result = send_email(
        settings_for(plain_server),
        ["ana@example.com", "bo@example.org"],
        message,
        message_id="<delivery-42@example.com>",
    )
    assert result.ok and result.status == 250
    assert result.message_id == "<delivery-42@example.com>"
    assert result.summary == "accepted for 2 of 2 recipient(s)"
    wait_for("the message to arrive", lambda: plain_server.mailbox.received)
    (mail_from, rcpt_tos, mail), = plain_server.mailbox.received  # fmt: skip
    assert mail_from == SENDER
    assert rcpt_tos == ["ana@example.com", "bo@example.org"]
    assert mail["Subject"] == "ELT löppt ✓ finished"
    assert mail["From"] == SENDER
    assert mail["To"] == "ana@example.com, bo@example.org"
    assert mail["Message-ID"] == "<delivery-42@example.com>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Date"].datetime is not None
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    # on the wire lines end in CRLF
    assert (
        mail.get_content().replace("\r\n", "\n") == "Statement dd2e1ec9 FINISHED, 1 row.\nGrüße\n"
    )


def test_the_email_body_of_a_per_protocol_message_is_used(plain_server: Server) -> None:
    message = Message.per_protocol(
        "Extract Load Transform process completed in Amazon Redshift",
        {"default": '"{}"', "sms": "done", "email": "{'state': 'FINISHED', 'rows': 1}"},
    )
    result = send_email(settings_for(plain_server), ["ana@example.com"], message)
    assert result.message_id and result.message_id.endswith("@example.com>")
    wait_for("the message to arrive", lambda: plain_server.mailbox.received)
    mail = plain_server.mailbox.received[0][2]
    assert mail.get_content().rstrip() == "{'state': 'FINISHED', 'rows': 1}"
    assert mail["Message-ID"] == result.message_id


def test_server_down_is_retryable() -> None:
    with pytest.raises(DeliveryError) as caught:
        send_email(settings_for(free_port()), ["ana@example.com"], Message("s", "b"))
    error = caught.value
    assert (error.code, error.retryable) == ("smtp_unavailable", True)
    assert error.latency_s is not None


def test_a_server_that_never_greets_times_out_retryably() -> None:
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen()  # connections complete in the backlog; nobody ever answers
        port = listener.getsockname()[1]
        with pytest.raises(DeliveryError) as caught:
            send_email(settings_for(port, timeout=0.3), ["ana@example.com"], Message("s", "b"))
    assert (caught.value.code, caught.value.retryable) == ("smtp_unavailable", True)
    assert "did not answer within 0.3 s" in caught.value.message


def test_login_with_the_right_password(auth_server: Server) -> None:
    settings = settings_for(auth_server, username=USER, password=PASSWORD)
    assert send_email(settings, ["ana@example.com"], Message("s", "b")).ok
    wait_for("the message to arrive", lambda: auth_server.mailbox.received)


def test_wrong_password_is_not_retryable(auth_server: Server) -> None:
    settings = settings_for(auth_server, username=USER, password="wrong")
    with pytest.raises(DeliveryError) as caught:
        send_email(settings, ["ana@example.com"], Message("s", "b"))
    error = caught.value
    assert (error.code, error.retryable, error.status) == ("smtp_auth_failed", False, 535)
    assert auth_server.mailbox.received == []


def test_missing_credentials_are_not_retryable(auth_server: Server) -> None:
    with pytest.raises(DeliveryError) as caught:
        send_email(settings_for(auth_server), ["ana@example.com"], Message("s", "b"))
    # 530 5.7.0 Authentication required, in answer to MAIL FROM
    assert (caught.value.code, caught.value.retryable, caught.value.status) == (
        "smtp_rejected",
        False,
        530,
    )


def test_credentials_for_a_server_without_auth_are_not_retryable(plain_server: Server) -> None:
    settings = settings_for(plain_server, username=USER, password=PASSWORD)
    with pytest.raises(DeliveryError) as caught:
        send_email(settings, ["ana@example.com"], Message("s", "b"))
    assert (caught.value.code, caught.value.retryable) == ("smtp_auth_failed", False)


@pytest.mark.parametrize(
    ("recipients", "code", "retryable", "status"),
    [
        (["nobody@example.com"], "smtp_rejected", False, 550),
        (["busy@example.com"], "smtp_deferred", True, 450),
        (["nobody@example.com", "busy@example.com"], "smtp_deferred", True, 550),
        (["tempfail@example.com"], "smtp_deferred", True, 451),
        (["spam@example.com"], "smtp_rejected", False, 554),
    ],
)
def test_refusals_are_classified_by_reply_code(
    plain_server: Server, recipients: list[str], code: str, retryable: bool, status: int
) -> None:
    with pytest.raises(DeliveryError) as caught:
        send_email(settings_for(plain_server), recipients, Message("s", "b"))
    error = caught.value
    assert (error.code, error.retryable, error.status) == (code, retryable, status)
    assert plain_server.mailbox.received == []


def test_partly_refused_recipients_still_count_as_sent(plain_server: Server) -> None:
    result = send_email(
        settings_for(plain_server), ["ana@example.com", "nobody@example.com"], Message("s", "b")
    )
    assert result.ok
    assert result.summary.startswith(
        "accepted for 1 of 2 recipient(s); refused: nobody@example.com (550"
    )
    wait_for("the message to arrive", lambda: plain_server.mailbox.received)
    assert plain_server.mailbox.received[0][1] == ["ana@example.com"]


def test_starttls_then_login(starttls_server: Server, certificate: Certificate) -> None:
    settings = settings_for(starttls_server, security="starttls", username=USER, password=PASSWORD)
    result = send_email(
        settings,
        ["ana@example.com"],
        Message("over TLS", "b"),
        ssl_context=certificate.client_context(),
    )
    assert result.ok
    wait_for("the message to arrive", lambda: starttls_server.mailbox.received)
    assert starttls_server.mailbox.received[0][2]["Subject"] == "over TLS"


def test_an_untrusted_certificate_is_not_retryable(starttls_server: Server) -> None:
    settings = settings_for(starttls_server, security="starttls", username=USER, password=PASSWORD)
    with pytest.raises(DeliveryError) as caught:
        send_email(settings, ["ana@example.com"], Message("s", "b"))  # system CAs only
    assert (caught.value.code, caught.value.retryable) == ("smtp_tls_failed", False)


def test_starttls_required_but_not_offered(plain_server: Server) -> None:
    with pytest.raises(DeliveryError) as caught:
        send_email(
            settings_for(plain_server, security="starttls"), ["ana@example.com"], Message("s", "b")
        )
    assert (caught.value.code, caught.value.retryable) == ("smtp_tls_failed", False)
    assert plain_server.mailbox.received == []


def test_implicit_tls(tls_server: Server, certificate: Certificate) -> None:
    result = send_email(
        settings_for(tls_server, security="tls"),
        ["ana@example.com"],
        Message("s", "b"),
        ssl_context=certificate.client_context(),
    )
    assert result.ok
    wait_for("the message to arrive", lambda: tls_server.mailbox.received)


def test_build_email_refuses_bad_recipients() -> None:
    settings = SmtpSettings(host="h", sender=SENDER)
    with pytest.raises(ValueError, match="no recipients"):
        build_email(settings, [], Message("s", "b"))
    with pytest.raises(ValueError, match="not an e-mail address"):
        build_email(settings, ["ana@example.com\r\nBcc: eve@example.com"], Message("s", "b"))
    with pytest.raises(ValueError, match="not an e-mail address"):
        build_email(settings, ["ana"], Message("s", "b"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://mailer:p%40ss%3Aw%2Frd@mail.example.com:2525?security=starttls&from=etl@example.com",
            {"host": "mail.example.com", "port": 2525, "security": "starttls",
             "username": USER, "password": PASSWORD, "sender": SENDER, "timeout": 10.0},
        ),
        (
            "smtp://mail.example.com?from=etl@example.com",
            {"host": "mail.example.com", "port": 587, "security": "starttls",
             "username": None, "password": None, "sender": SENDER, "timeout": 10.0},
        ),
        (
            "smtps://u:p@mail.example.com?from=etl@example.com&timeout=2.5",
            {"host": "mail.example.com", "port": 465, "security": "tls",
             "username": "u", "password": "p", "sender": SENDER, "timeout": 2.5},
        ),
        (
            "smtp://localhost?security=none&from=etl@example.com",
            {"host": "localhost", "port": 25, "security": "none",
             "username": None, "password": None, "sender": SENDER, "timeout": 10.0},
        ),
    ],
)  # fmt: skip
def test_settings_from_url(url: str, expected: dict[str, Any]) -> None:
    settings = SmtpSettings.from_url(url)
    assert {name: getattr(settings, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://mail.example.com?from=a@b", "smtp://"),
        ("smtp://mail.example.com", "?from="),
        ("smtp://mail.example.com?from=a@b&security=ssl", "Unknown SMTP security"),
        ("smtp://mail.example.com?from=a@b&tls=1", "Unknown SMTP URL parameter"),
        ("smtp://mail.example.com?from=a@b&timeout=soon", "Bad SMTP URL"),
        ("smtp://mail.example.com:99999?from=a@b", "Bad SMTP URL"),
        ("smtp://?from=a@b", "host is empty"),
        ("smtp://mail.example.com?from=nobody", "not an e-mail address"),
        ("smtp://user@mail.example.com?from=a@b", "both an SMTP username and a password"),
    ],
)
def test_bad_settings(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        SmtpSettings.from_url(url)
    assert words in caught.value.message


def test_repr_hides_the_password() -> None:
    settings = SmtpSettings(host="h", sender=SENDER, username="u", password="hunter2")
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)
