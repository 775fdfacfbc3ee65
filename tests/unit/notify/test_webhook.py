"""Signed webhooks against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from helpers import wait_for
from sqltide.notify import DeliveryError, Message, message_for, send_webhook, verify_signature
from sqltide.notify.webhook import MAX_RESPONSE_BYTES, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from sqltide.server import free_port

SECRET = "whsec_test"


@dataclass
class Received:
    path: str
    headers: httpx.Headers  # case-insensitive, like HTTP
    body: bytes
    verified: bool


@dataclass
class Receiver:
    """What the server saw, and how it was told to behave."""

    url: str
    requests: list[Received] = field(default_factory=list)
    release_slow: threading.Event = field(default_factory=threading.Event)
    big_body_done: threading.Event = field(default_factory=threading.Event)
    big_body_complete: bool | None = None


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = httpx.Headers(list(self.headers.items()))
            receiver.requests.append(
                Received(
                    self.path,
                    headers,
                    body,
                    # the receiver side of the scheme, exactly as a user would write it
                    verify_signature(
                        SECRET,
                        headers.get(TIMESTAMP_HEADER, ""),
                        body,
                        headers.get(SIGNATURE_HEADER, ""),
                    ),
                )
            )
            route = self.path.split("?")[0]
            if route == "/slow":
                receiver.release_slow.wait(10)  # until the test is over
                self._answer(200, b"late")
            elif route == "/big":
                self._stream_big_body()
            elif route == "/redirect":
                self._answer(302, b"", {"Location": "/ok"})
            elif route == "/throttle":
                self._answer(429, b"slow down", {"Retry-After": "7"})
            elif route == "/unavailable":
                self._answer(503, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
            else:
                status = {
                    "/ok": 200,
                    "/created": 201,
                    "/fail": 500,
                    "/bad": 400,
                    "/gone": 410,
                    "/timeout": 408,
                }.get(route, 404)
                self._answer(status, f"answer to {route}\n".encode())

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream_big_body(self) -> None:
            chunk = b"y" * 65536
            total = 256 * 1024 * 1024  # far more than any socket buffer
            self.send_response(200)
            self.send_header("Content-Length", str(total))
            self.end_headers()
            try:
                for _ in range(total // len(chunk)):
                    self.wfile.write(chunk)
                receiver.big_body_complete = True
            except OSError:  # the client hung up after reading what it wanted
                receiver.big_body_complete = False
            finally:
                receiver.big_body_done.set()

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Receiver("")))
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(receiver)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="webhook-receiver",
        daemon=True,
    )
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release_slow.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_delivery_is_signed_and_verifiable(receiver: Receiver) -> None:
    message = Message("Load done", "12 rows", {"state": "FINISHED"})
    rendered = message_for("https", message, topic="elt-finished", message_id="m-1")
    result = send_webhook(
        receiver.url + "/ok",
        rendered.body.encode(),
        secret=SECRET,
        timeout=5,
        headers={"X-Delivery": "d-1"},
    )
    assert result.ok and result.status == 200
    assert result.summary == "HTTP 200 OK: answer to /ok"
    assert result.latency_s > 0
    (got,) = receiver.requests
    assert got.verified
    assert json.loads(got.body)["MessageId"] == "m-1"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Delivery"] == "d-1"
    assert got.headers["User-Agent"].startswith("sqltide-webhook/")
    timestamp = int(got.headers[TIMESTAMP_HEADER])
    assert abs(timestamp - time.time()) < 60
    assert got.headers[SIGNATURE_HEADER] == "v1=" + sign(SECRET, timestamp, got.body)


def test_a_mapping_payload_is_sent_as_compact_utf8_json(receiver: Receiver) -> None:
    send_webhook(receiver.url + "/created", {"city": "Zürich", "n": 1}, secret=SECRET, timeout=5)
    (got,) = receiver.requests
    assert got.body == '{"city":"Zürich","n":1}'.encode()
    assert got.verified


def test_verification_rejects_tampering_old_timestamps_and_wrong_secrets(
    receiver: Receiver,
) -> None:
    send_webhook(receiver.url + "/ok", {"a": 1}, secret=SECRET, timeout=5)
    (got,) = receiver.requests
    ts, body, signature = got.headers[TIMESTAMP_HEADER], got.body, got.headers[SIGNATURE_HEADER]
    now = int(ts)
    assert verify_signature(SECRET, ts, body, signature, now=now)
    assert verify_signature(SECRET, ts, body.decode(), signature, now=now)  # str bodies too
    assert not verify_signature(SECRET, ts, body + b" ", signature, now=now)
    assert not verify_signature("other", ts, body, signature, now=now)
    assert not verify_signature(SECRET, str(now + 1), body, signature, now=now)
    assert not verify_signature(SECRET, ts, body, signature, now=now + 301)
    assert not verify_signature(SECRET, ts, body, signature, now=now - 301)
    assert verify_signature(SECRET, ts, body, signature, now=now + 299)
    assert verify_signature(SECRET, ts, body, signature, tolerance=1000, now=now + 999)
    assert not verify_signature(SECRET, "not a number", body, signature, now=now)
    assert not verify_signature(SECRET, ts, body, "", now=now)
    assert not verify_signature(SECRET, ts, body, signature.replace("v1=", "v0="), now=now)


def test_secret_rotation_signs_with_every_secret(receiver: Receiver) -> None:
    send_webhook(receiver.url + "/ok", {"a": 1}, secret=["new-secret", SECRET], timeout=5)
    (got,) = receiver.requests
    assert got.headers[SIGNATURE_HEADER].count("v1=") == 2
    assert got.verified  # the receiver still on the old secret accepts it
    ts = got.headers[TIMESTAMP_HEADER]
    assert verify_signature("new-secret", ts, got.body, got.headers[SIGNATURE_HEADER])


def test_no_secret_no_signature_and_callers_cannot_forge_one(receiver: Receiver) -> None:
    send_webhook(
        receiver.url + "/ok",
        {"a": 1},
        secret=None,
        timeout=5,
        headers={"sqltide-signature": "v1=forged", "content-type": "application/x-custom"},
    )
    (got,) = receiver.requests
    assert SIGNATURE_HEADER not in got.headers
    assert TIMESTAMP_HEADER in got.headers
    assert got.headers["Content-Type"] == "application/x-custom"
    assert not got.verified


@pytest.mark.parametrize(
    ("path", "status", "retryable"),
    [
        ("/fail", 500, True),
        ("/timeout", 408, True),
        ("/bad", 400, False),
        ("/gone", 410, False),
        ("/nowhere", 404, False),
        ("/redirect", 302, False),  # redirects are not followed
    ],
)
def test_http_errors_are_classified(
    receiver: Receiver, path: str, status: int, retryable: bool
) -> None:
    with pytest.raises(DeliveryError) as caught:
        send_webhook(receiver.url + path, {"a": 1}, secret=SECRET, timeout=5)
    error = caught.value
    assert (error.code, error.status, error.retryable) == (
        f"webhook_http_{status}",
        status,
        retryable,
    )
    assert error.latency_s is not None and error.latency_s > 0
    assert len(receiver.requests) == 1


def test_retry_after_is_reported(receiver: Receiver) -> None:
    with pytest.raises(DeliveryError) as caught:
        send_webhook(receiver.url + "/throttle", {"a": 1}, secret=SECRET, timeout=5)
    assert (caught.value.code, caught.value.retryable) == ("webhook_http_429", True)
    assert caught.value.retry_after == 7.0
    assert "slow down" in caught.value.message
    with pytest.raises(DeliveryError) as caught:
        send_webhook(receiver.url + "/unavailable", {"a": 1}, secret=SECRET, timeout=5)
    assert caught.value.retryable and caught.value.retry_after == 0.0  # a date in the past


def test_timeout_is_retryable(receiver: Receiver) -> None:
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        send_webhook(receiver.url + "/slow", {"a": 1}, secret=SECRET, timeout=0.3)
    assert (caught.value.code, caught.value.retryable) == ("webhook_timeout", True)
    assert time.monotonic() - started < 5
    wait_for("the request to reach the server", lambda: receiver.requests)


def test_connection_refused_is_retryable() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with pytest.raises(DeliveryError) as caught:
        send_webhook(url, {"a": 1}, secret=SECRET, timeout=2)
    assert (caught.value.code, caught.value.retryable) == ("webhook_unreachable", True)
    assert caught.value.status is None


def test_a_url_that_cannot_be_requested_is_not_retryable() -> None:
    with pytest.raises(DeliveryError) as caught:
        send_webhook("ftp://example.com/hook", {"a": 1}, secret=SECRET, timeout=2)
    assert (caught.value.code, caught.value.retryable) == ("webhook_invalid_url", False)


def test_only_the_start_of_a_big_response_is_read(receiver: Receiver) -> None:
    result = send_webhook(receiver.url + "/big", {"a": 1}, secret=SECRET, timeout=5)
    assert result.ok
    assert len(result.summary) < 400
    assert result.summary.startswith("HTTP 200 OK: yyyy")
    # the client hung up: the server could not write its 256 MiB
    wait_for("the server to stop writing", receiver.big_body_done.is_set, timeout=10)
    assert receiver.big_body_complete is False
    assert MAX_RESPONSE_BYTES <= 65536


def test_a_given_client_is_used_and_left_open(receiver: Receiver) -> None:
    seen: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda r: seen.append(str(r.url))]}) as client:
        result = send_webhook(
            receiver.url + "/ok", {"a": 1}, secret=SECRET, timeout=5, client=client
        )
        assert result.ok
        assert seen == [receiver.url + "/ok"]
        assert not client.is_closed
    # even a client that follows redirects does not follow them for webhooks
    with httpx.Client(follow_redirects=True) as client, pytest.raises(DeliveryError) as caught:
        send_webhook(receiver.url + "/redirect", {"a": 1}, secret=SECRET, timeout=5, client=client)
    assert caught.value.code == "webhook_http_302"
