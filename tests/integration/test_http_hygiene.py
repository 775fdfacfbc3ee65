"""HTTP hygiene against a real server: slow clients are timed out, a client cannot hold every
connection, an error answer leaves the connection usable, keep-alive does not race, and every
answer carries the security headers.

The server settings here are short (fractions of a second) so the timeouts are met fast;
nothing sleeps a fixed time: every wait is on a socket or a condition, with a deadline.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.responses import StreamingResponse

from conftest import make_settings
from helpers import wait_for
from sqltide.client import Client, ConnectionFailed
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread, uvicorn_config
from sqltide.settings import Settings

SHORT = 0.5  # header and body timeouts of the test server, in seconds
MARGIN = 5.0  # how much later than a timeout an answer may come and still pass

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@contextmanager
def serve(tmp_path: Path, **overrides: Any) -> Iterator[tuple[ServerThread, str]]:
    """A server on the embedded SQLite store with short HTTP timeouts, and an API key."""
    settings = make_settings(
        tmp_path,
        http_header_timeout_seconds=SHORT,
        http_body_timeout_seconds=SHORT,
        max_body_bytes=4096,
        **overrides,
    )
    runtime = Runtime.build(settings)
    try:
        key = create_key(runtime.store, "alice", warehouses=list(runtime.engines))[1]
        with ServerThread(runtime) as server:

            @server.app.get("/test/boom")
            async def boom() -> None:
                raise RuntimeError("boom, on purpose")

            @server.app.get("/test/stream")
            async def stream() -> StreamingResponse:
                async def parts() -> Any:
                    for i in range(3):
                        yield f"part {i}\n".encode()

                return StreamingResponse(parts(), media_type="text/plain")

            yield server, key
    finally:
        runtime.stop()


@pytest.fixture
def hygienic(tmp_path: Path) -> Iterator[tuple[ServerThread, str]]:
    with serve(tmp_path) as pair:
        yield pair


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (fails after ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass  # closed with a reset: also closed
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open {timeout} s: {data!r}") from None
    return data


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def error_code(raw: bytes) -> str:
    return str(json.loads(raw.split(b"\r\n\r\n", 1)[1])["error"]["code"])


# -- slow clients -------------------------------------------------------------------------------
def test_a_stalled_body_is_answered_408_and_dropped(hygienic: tuple[ServerThread, str]) -> None:
    server, key = hygienic
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /v1/statements HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 100\r\n\r\n"
            b'{"sql": "S'
        )
        raw = read_until_closed(sock, SHORT + MARGIN)
    assert time.monotonic() - started < SHORT + MARGIN
    assert status_of(raw) == 408, raw
    assert error_code(raw) == "request_timeout"
    assert b"connection: close" in raw.lower()


def test_a_trickled_body_nobody_reads_is_dropped(hygienic: tuple[ServerThread, str]) -> None:
    """A route that answers without reading the body (here a 404): the connection stays open
    to read the rest, but only for the body timeout, however the rest trickles in (each byte
    used to restart uvicorn's keep-alive timer, so the connection stayed open for ever)."""
    server, _ = hygienic
    deadline = time.monotonic() + SHORT + MARGIN
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        sock.settimeout(SHORT / 4)  # the client's pace: one byte each time nothing came
        raw = b""
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"x")
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            raw += chunk
        else:
            raise AssertionError(f"the connection was still open after {SHORT + MARGIN} s")
    assert status_of(raw) == 404, raw


def test_stalled_headers_are_answered_408_and_dropped(hygienic: tuple[ServerThread, str]) -> None:
    server, _ = hygienic
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        raw = read_until_closed(sock, SHORT + MARGIN)
    assert status_of(raw) == 408, raw
    assert error_code(raw) == "request_timeout"
    assert all(f"{k}: {v}".encode() in raw for k, v in SECURITY.items()), raw


def test_a_silent_connection_is_closed(hygienic: tuple[ServerThread, str]) -> None:
    server, _ = hygienic
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        assert read_until_closed(sock, SHORT + MARGIN) == b""  # nothing asked, nothing said


def test_a_slow_long_poll_is_not_a_slow_client(hygienic: tuple[ServerThread, str]) -> None:
    """The timeouts are about the client sending: a long-poll held longer than the body
    timeout is answered normally."""
    server, key = hygienic
    with Client(server.url, key) as client:
        sid = client.execute("SELECT count(*) FROM range(10000000000000)").id
        started = time.monotonic()
        st = client.describe(sid, wait=3 * SHORT)
        assert time.monotonic() - started >= 2 * SHORT
        assert not st.is_terminal
        client.cancel(sid)


def test_connections_per_client_are_limited(tmp_path: Path) -> None:
    limit = 4
    with serve(tmp_path, http_max_connections_per_client=limit) as (server, _), ExitStack() as s:
        held = []
        for _ in range(limit):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            s.callback(conn.close)
            conn.request("GET", "/health")
            assert conn.getresponse().read()
            held.append(conn)
        extra = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            extra.request("GET", "/health")
            extra.getresponse()
        extra.close()
        # Ones that are still open keep working, and a closed one frees a place.
        held[0].request("GET", "/health")
        assert held[0].getresponse().status == 200
        held.pop().close()

        def one_more_works() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                conn.request("GET", "/health")
                return conn.getresponse().status == 200
            except (http.client.RemoteDisconnected, ConnectionError):
                return False
            finally:
                conn.close()

        wait_for("a freed connection place", one_more_works, timeout=MARGIN)


# -- errors keep the connection -----------------------------------------------------------------
class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_500_keeps_the_connection(hygienic: tuple[ServerThread, str]) -> None:
    server, _ = hygienic
    records = _Records()
    loggers = [logging.getLogger("uvicorn.error"), logging.getLogger("sqltide.api.errors")]
    for logger in loggers:
        logger.addHandler(records)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/test/boom")
        answer = conn.getresponse()
        body = json.loads(answer.read())
        assert answer.status == 500
        assert body["error"]["code"] == "internal_error"
        assert answer.getheader("connection") is None  # kept alive
        conn.request("GET", "/health")  # the same connection
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        for logger in loggers:
            logger.removeHandler(records)
    with_traceback = [r for r in records.records if r.exc_info]
    assert len(with_traceback) == 1, [r.getMessage() for r in records.records]
    assert "boom, on purpose" in str(with_traceback[0].exc_info[1])  # type: ignore[index]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_413_keeps_the_connection(hygienic: tuple[ServerThread, str], chunked: bool) -> None:
    server, key = hygienic
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    body = json.dumps({"sql": "SELECT 1 -- " + "x" * 100_000}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if chunked:
        conn.request("POST", "/v1/statements", body=iter([body]), headers=headers)
    else:
        conn.request("POST", "/v1/statements", body=body, headers=headers)
    answer = conn.getresponse()
    assert answer.status == 413
    assert json.loads(answer.read())["error"]["code"] == "payload_too_large"
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200
    conn.close()


# -- security headers ---------------------------------------------------------------------------
def test_security_headers_on_every_answer(hygienic: tuple[ServerThread, str]) -> None:
    server, key = hygienic
    with Client(server.url, key) as client:
        sid = client.wait(client.execute("SELECT 42 AS answer").id, timeout=20).id
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http_:
        answers = {
            "200": http_.get("/health"),
            "404": http_.get("/nowhere"),
            "401": http_.get("/v1/statements", headers={"Authorization": "Bearer wrong"}),
            "500": http_.get("/test/boom"),
            "docs": http_.get("/docs"),
            "streamed": http_.get("/test/stream"),
            "csv result": http_.get(f"/v1/statements/{sid}/result", params={"format": "csv"}),
            "json result": http_.get(f"/v1/statements/{sid}/result"),
        }
    assert answers["streamed"].text == "part 0\npart 1\npart 2\n"
    assert answers["csv result"].status_code == 200
    for what, answer in answers.items():
        missing = {k: v for k, v in SECURITY.items() if answer.headers.get(k) != v}
        assert not missing, (what, answer.status_code, dict(answer.headers))
        assert "server" not in answer.headers, what
    assert "default-src 'none'" in answers["json result"].headers["content-security-policy"]
    assert "content-security-policy" not in answers["docs"].headers  # it loads a CDN's scripts


# -- keep-alive ---------------------------------------------------------------------------------
def test_server_keep_alive_outlives_client_idle_expiry(tmp_path: Path) -> None:
    """uvicorn's 5 s equals httpx's 5 s idle expiry: a client could send on a connection the
    server was closing. The server's keep-alive is now well longer."""
    settings = Settings(home=tmp_path)
    config = uvicorn_config(object(), settings)
    assert config.timeout_keep_alive >= 60
    httpx_expiry = httpx.Limits().keepalive_expiry
    assert httpx_expiry is not None and settings.http_keep_alive_seconds > 2 * httpx_expiry


def _load(clients: int, requests: int, gaps: tuple[float, float], send: Any) -> list[str]:
    """``clients`` threads, each sending ``requests`` with idle gaps; the failures."""
    failures: list[str] = []

    def one(i: int) -> None:
        rng = random.Random(i)
        for _ in range(requests):
            try:
                send(i)
            except Exception as exc:  # every failure is what is counted
                failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(rng.uniform(*gaps))  # the idle gap under test, not a wait

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return failures


def test_no_resets_when_the_server_outlives_the_clients_idle_expiry(tmp_path: Path) -> None:
    """50 keep-alive clients idle around their own expiry; the server's is longer."""
    with serve(tmp_path, http_keep_alive_seconds=1.5) as (server, _):
        pool = [
            httpx.Client(base_url=server.url, limits=httpx.Limits(keepalive_expiry=0.5))
            for _ in range(50)
        ]
        try:
            failures = _load(50, 3, (0.4, 0.6), lambda i: pool[i].get("/health").raise_for_status())
        finally:
            for c in pool:
                c.close()
    assert failures == []


def test_the_client_survives_the_keep_alive_race(tmp_path: Path) -> None:
    """The race itself (server and client idle limits equal, gaps right at them): a few
    reused connections are closed under a request. sqltide's client sends those again."""
    with serve(tmp_path, http_keep_alive_seconds=0.5) as (server, key):
        # httpx's default idle expiry is 5 s, uvicorn's was 5 s: both are 0.5 s here.
        limits = httpx.Limits(keepalive_expiry=0.5)
        pool = [
            Client(server.url, key, transport=httpx.HTTPTransport(limits=limits)) for _ in range(50)
        ]
        try:
            failures = _load(50, 4, (0.48, 0.52), lambda i: pool[i].health())
        finally:
            for c in pool:
                c.close()
    assert failures == []


class _DropSecondRequest:
    """A real HTTP server on loopback that answers the first request of each connection and
    closes the connection, unanswered, on its second: the keep-alive race, every time."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            for n in (1, 2):
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = [
                    int(v)
                    for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n"))
                    if k.strip().lower() == b"content-length"
                ]
                while len(rest) < (length[0] if length else 0):
                    rest += conn.recv(65536)
                self.requests += 1
                if n == 2:
                    return  # closed without a word
                body = b'{"status": "ok", "version": "test"}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )

    def close(self) -> None:
        self.sock.close()


def test_the_client_sends_an_idempotent_request_again_after_no_answer() -> None:
    fake = _DropSecondRequest()
    try:
        with Client(f"http://127.0.0.1:{fake.port}", "key") as client:
            assert client.health()  # a new connection, answered
            assert client.health()  # the reused one is dropped; sent again on a new one
            assert fake.requests == 3  # answered, dropped, answered on a new connection
    finally:
        fake.close()


def test_the_client_does_not_repeat_a_submit_without_a_client_token() -> None:
    fake = _DropSecondRequest()
    try:
        with Client(f"http://127.0.0.1:{fake.port}", "key") as client:
            client.health()
            with pytest.raises(ConnectionFailed):
                client.execute("INSERT INTO t VALUES (1)")
            assert fake.requests == 2  # sent once
    finally:
        fake.close()
