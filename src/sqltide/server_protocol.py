"""uvicorn's HTTP protocol with the guards it lacks: a header timeout, a bound on reading the
rest of a body nobody reads, and a limit on open connections per client address.

uvicorn times out idle keep-alive connections, but not a request that is arriving slowly:
a client that opens connections and sends headers a byte at a time (slowloris) holds each one
for ever. Headers are parsed by the protocol before the app sees anything, so their timeout
lives here; a stalled *body* the app is reading is timed out by ``api/hygiene.BodyTimeout``,
which can answer in the error envelope.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .api.hygiene import SECURITY_HEADERS
from .errors import InvalidRequest, RequestTimeout, SqltideError
from .settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """How long a client may take to send, and how many connections it may hold."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive: float = 75.0
    #: 0: no limit.
    max_connections_per_client: int = 64

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            header_timeout=settings.http_header_timeout_seconds,
            body_timeout=settings.http_body_timeout_seconds,
            keep_alive=settings.http_keep_alive_seconds,
            max_connections_per_client=settings.http_max_connections_per_client,
        )


def protocol_class(limits: HttpLimits) -> type[asyncio.Protocol]:
    """A protocol class for one server (``uvicorn.Config(http=...)``): its own limits and
    its own count of connections per client."""
    return type(
        "SqltideHttpProtocol",
        (GuardedHttpProtocol,),
        {"limits": limits, "open_per_client": Counter(), "refusing": set()},
    )


class HeadThenBody:
    """A transport that sends a response's head and the body that follows in one write.

    uvicorn writes the status line and headers, then the body, with one ``write`` each: two
    ``send`` calls on the socket per answer. On loopback each one wakes the reader and runs
    the TCP path, which measured about a third of the server's system time per request. A
    small write is held until the next write (sent together at once) or the end of this
    turn of the event loop, whichever comes first: nothing waits longer than that, larger
    writes are never held, and flow control sees every byte as before.
    """

    __slots__ = ("_held", "_loop", "_transport")

    #: Only writes up to this size wait for company (a response head is a few hundred bytes).
    HOLD_MAX = 4096

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
        elif len(data) <= self.HOLD_MAX:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpProtocol(HttpToolsProtocol):
    """One connection. uvicorn runs every protocol of a server on one event loop, so the
    shared per-client count needs no lock."""

    limits: ClassVar[HttpLimits]
    open_per_client: ClassVar[Counter[str]]
    #: Client addresses at their limit whose refusal has been logged.
    refusing: ClassVar[set[str]]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # uvicorn's own setting is an int; ours may be a fraction (tests use short ones).
        self.timeout_keep_alive = self.limits.keep_alive  # type: ignore[assignment]
        self._guard_timer: asyncio.TimerHandle | None = None
        self._counted: str | None = None
        self._reading_headers = False

    # -- connections ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeadThenBody(transport, self.loop))  # type: ignore[arg-type]
        host = self.client[0] if self.client else ""
        limit = self.limits.max_connections_per_client
        if limit and self.open_per_client[host] >= limit:
            # Closed before anything is read: the client has sent nothing to answer yet.
            if host not in self.refusing:  # once per episode, not once per connection
                self.refusing.add(host)
                logger.warning(
                    "refusing connections from %s: it has %d open (limit %d, "
                    "SQLTIDE_HTTP_MAX_CONNECTIONS_PER_CLIENT)",
                    host,
                    self.open_per_client[host],
                    limit,
                )
            transport.close()
            return
        self.open_per_client[host] += 1
        self._counted = host
        # A new connection must start its request within the header timeout.
        self._arm(self.limits.header_timeout, self._headers_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted is not None:
            self.open_per_client[self._counted] -= 1
            if self.open_per_client[self._counted] <= 0:
                del self.open_per_client[self._counted]
            self.refusing.discard(self._counted)
            self._counted = None
        super().connection_lost(exc)

    # -- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        if self._guard_timer is None:  # a new request on a kept-alive connection
            self._arm(self.limits.header_timeout, self._headers_timed_out)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()  # the end of a body that was being drained
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not self.transport.is_closing():
            # Answered before the body was read (a 413, a 404 to a POST): uvicorn reads and
            # drops the rest so the connection stays usable, and the client, which sends its
            # whole body before it reads, never meets a reset. Only for so long, though.
            self._arm(self.limits.body_timeout, self._drain_timed_out)

    # -- answers uvicorn writes itself -----------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """Malformed HTTP, in the one error envelope (uvicorn's own is plain text)."""
        self._write_error(InvalidRequest(f"invalid HTTP request: {msg}"))
        self.transport.close()

    # -- timers ---------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._guard_timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._guard_timer is not None:
            self._guard_timer.cancel()
            self._guard_timer = None

    def _headers_timed_out(self) -> None:
        self._guard_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request stalled behind one still being answered: finish that one,
            # then close.
            self.cycle.keep_alive = False
            return
        if self._reading_headers:  # part of a request came: say why it is dropped
            logger.info(
                "request headers from %s stalled for %g s: answered 408",
                self._counted,
                self.limits.header_timeout,
            )
            self._write_error(
                RequestTimeout(
                    f"the request headers did not arrive within {self.limits.header_timeout:g} s",
                    details={"timeout_seconds": self.limits.header_timeout},
                )
            )
        self.transport.close()

    def _drain_timed_out(self) -> None:
        self._guard_timer = None
        if not self.transport.is_closing():
            logger.info("the unread rest of a request body from %s stalled: closed", self._counted)
            self.transport.close()

    def _write_error(self, error: SqltideError) -> None:
        body = json.dumps({"error": error.to_dict()}).encode()
        head = [STATUS_LINE[error.http_status]]
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
            *SECURITY_HEADERS,
        ]
        head.extend(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(b"".join([*head, b"\r\n", body]))
