"""What :class:`~sqltide.client.Client` and :class:`~sqltide.client.AsyncClient` share
besides their calls (those are :mod:`sqltide.client._operations`).

Like httpx's own ``BaseClient``, this module does no I/O: it resolves the configuration,
describes a request (:class:`RequestSpec`) and whether it may be sent again, plans the polling
of ``wait`` and turns error answers into exceptions. The two subclasses only send the
requests (and sleep), one blocking, one with ``await``.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sqltide import __version__
from sqltide.client.models import Execution, Statement
from sqltide.errors import SqltideError, error_class_for
from sqltide.paths import credentials_file, home_from_env

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8765"
USER_AGENT = f"sqltide-python/{__version__}"

#: Longest server-side long-poll one describe asks for while waiting.
MAX_POLL_SECONDS = 20
#: First backoff step (before jitter) when the server answers a long-poll early.
BACKOFF_BASE_SECONDS = 0.1
#: An answer this much sooner than the asked long-poll counts as early.
EARLY_ANSWER_SECONDS = 0.25
#: Extra read time given to requests the server may hold (long-polls, cancel).
SERVER_HOLD_SLACK_SECONDS = 10.0
#: How long the server holds a cancel request at most.
CANCEL_HOLD_SECONDS = 5.0

NEXT_TOKEN_HEADER = "Sqltide-Next-Token"
TOTAL_ROWS_HEADER = "Sqltide-Total-Rows"


class ConnectionFailed(SqltideError):
    """Could not reach the sqltide server."""

    code = "connection_failed"
    http_status = 503


class StatementWaitTimeout(SqltideError):
    """The statement did not end before the wait's timeout."""

    code = "wait_timeout"
    http_status = 408

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        statement: Statement | None = None,
    ):
        super().__init__(message, details=details)
        #: The last description seen (not terminal).
        self.statement = statement


class ExecutionWaitTimeout(SqltideError):
    """The workflow execution did not end before the wait's timeout."""

    code = "execution_wait_timeout"
    http_status = 408

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        execution: Execution | None = None,
    ):
        super().__init__(message, details=details)
        #: The last description seen (still RUNNING).
        self.execution = execution


def credentials_path() -> Path:
    """Where the API key is kept: ``$SQLTIDE_HOME/credentials`` (``~/.sqltide/credentials``)."""
    return credentials_file(home_from_env())


def resolve_base_url(base_url: str | None) -> str:
    """The server URL: the argument, else ``$SQLTIDE_URL``, else the local default."""
    url = base_url or os.environ.get("SQLTIDE_URL") or DEFAULT_URL
    return url.rstrip("/")


def resolve_api_key(api_key: str | None) -> str | None:
    """The API key: the argument, else ``$SQLTIDE_API_KEY``, else the credentials file.

    An explicit empty string means "send no key".
    """
    if api_key is not None:
        return api_key or None
    from_env = os.environ.get("SQLTIDE_API_KEY")
    if from_env:
        return from_env
    path = credentials_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read the credentials file %s: %s", path, exc)
        return None
    key = text.strip().split("\n", 1)[0].strip()
    return key or None


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One API call, before it is sent: path relative to the base URL."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    #: Overall timeout for this request, when it must differ from the client's.
    timeout: float | None = None
    #: A POST that may be sent again all the same (a start under an execution name, a
    #: callback's heartbeat).
    resendable: bool = False

    @property
    def idempotent(self) -> bool:
        """Whether sending this twice does no more than sending it once: the HTTP methods
        that mean so, a submit that carries a client token (the server answers a repeat
        with the statement it already has), and the requests marked :attr:`resendable`."""
        if self.method in ("GET", "HEAD", "PUT", "DELETE") or self.resendable:
            return True
        return isinstance(self.json, dict) and bool(self.json.get("client_token"))

    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.build_request`` (and the async one)."""
        return {
            "method": self.method,
            "url": self.path,
            "params": self.params,
            "json": self.json,
            "timeout": httpx.USE_CLIENT_DEFAULT if self.timeout is None else self.timeout,
        }


_ssl_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client in the process.

    httpx builds one per client by default, loading the whole CA bundle (~30 ms, holding the
    GIL), even for an ``http://`` URL: 50 clients made at once waited ~1.5 s before their
    first request. A context is safe to share between connections and threads; the lock
    makes 50 threads that start at once build it once, not 50 times.
    """
    with _ssl_lock:
        return _ssl_context()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def retry_unanswered(spec: RequestSpec, exc: httpx.TransportError, attempt: int) -> bool:
    """Whether to send ``spec`` again after ``exc`` ended attempt ``attempt`` (1-based).

    Once, for an idempotent request whose connection was closed or reset before any answer
    came. That is the keep-alive race: the server closes a connection that has been idle
    for its keep-alive timeout just as the client reuses it, so the request never reached
    the app. The client cannot know whether it did, which is why only idempotent requests
    are sent again. Timeouts and failures to connect are not retried.
    """
    if attempt > 1 or not spec.idempotent:
        return False
    if isinstance(exc, httpx.RemoteProtocolError):
        return "without sending a response" in str(exc)
    return isinstance(exc, httpx.ReadError | httpx.WriteError)


class WaitPlan:
    """The schedule of one ``wait``: long-poll lengths, backoff sleeps and the deadline.

    Each round asks the server to hold the describe for up to :data:`MAX_POLL_SECONDS`, never
    past the deadline. When the server answers a non-terminal statement before that (long-poll
    off, or a shorter server limit), the next round is delayed by exponential backoff with full
    jitter: ``uniform(0, min(max_interval, BACKOFF_BASE_SECONDS * 2**attempt))``.

    The same plan waits for workflow executions: ``next_delay`` is then given an
    :class:`~sqltide.client.models.Execution` and raises :class:`ExecutionWaitTimeout`.
    """

    def __init__(
        self,
        statement_id: str,
        timeout: float | None,
        max_interval: float,
        clock: Callable[[], float],
        uniform: Callable[[float, float], float],
    ):
        if max_interval <= 0:
            raise ValueError("max_interval must be positive")
        self.statement_id = statement_id
        self.timeout = None if timeout is None else max(0.0, timeout)
        self.max_interval = max_interval
        self._clock = clock
        self._uniform = uniform
        self._deadline = None if self.timeout is None else clock() + self.timeout
        self._attempt = 0

    def remaining(self) -> float | None:
        """Seconds left before the deadline (``None``: no deadline)."""
        return None if self._deadline is None else self._deadline - self._clock()

    def poll_seconds(self) -> int:
        """The ``wait`` to ask of the next describe (whole seconds, within the deadline)."""
        remaining = self.remaining()
        if remaining is None:
            return MAX_POLL_SECONDS
        return max(0, min(MAX_POLL_SECONDS, int(remaining)))

    def next_delay(self, statement: Statement | Execution, poll: int, elapsed: float) -> float:
        """After a non-terminal answer: seconds to sleep before the next describe.

        Raises :class:`StatementWaitTimeout` (:class:`ExecutionWaitTimeout` for an execution)
        once the deadline has passed.
        """
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            details = {"id": self.statement_id, "timeout": self.timeout, "status": statement.status}
            ended = f"did not end within {self.timeout:g} s (last status {statement.status})."
            if isinstance(statement, Execution):
                raise ExecutionWaitTimeout(
                    f"Execution {self.statement_id} {ended}", details=details, execution=statement
                )
            raise StatementWaitTimeout(
                f"Statement {self.statement_id} {ended}", details=details, statement=statement
            )
        if poll > 0 and elapsed >= poll - EARLY_ANSWER_SECONDS:
            # The server held the request for the whole long-poll: ask again at once.
            self._attempt = 0
            return 0.0
        cap = min(self.max_interval, BACKOFF_BASE_SECONDS * 2 ** min(self._attempt, 32))
        self._attempt += 1
        delay = self._uniform(0.0, cap)
        if remaining is not None:
            delay = min(delay, remaining)
        log.debug("%s is %s; asking again in %.3f s", statement.id, statement.status, delay)
        return delay


class BaseClient:
    """Configuration, headers and the failures of sending; no I/O."""

    def __init__(self, base_url: str | None, api_key: str | None, *, timeout: float):
        self.base_url = resolve_base_url(base_url)
        self.timeout = timeout
        self._api_key = resolve_api_key(api_key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    @property
    def has_api_key(self) -> bool:
        """Whether requests carry an API key."""
        return self._api_key is not None

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _http_options(self, transport: Any) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` or ``httpx.AsyncClient``."""
        return {
            "base_url": self.base_url,
            "headers": self._headers(),
            "timeout": self.timeout,
            "transport": transport,
            "verify": shared_ssl_context(),
        }

    # -- the drivers' shared part --------------------------------------------------------

    def _transport_error(self, exc: httpx.TransportError, request: httpx.Request) -> SqltideError:
        """A :class:`ConnectionFailed` for a request that got no answer."""
        details = {"url": self.base_url, "reason": type(exc).__name__}
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            message = (
                f"Could not connect to the sqltide server at {self.base_url} ({exc}). "
                "Is it running? Start one with `sqltide serve`, or point SQLTIDE_URL at it."
            )
        else:
            message = (
                f"The request {request.method} {request.url} to the sqltide server at "
                f"{self.base_url} failed: {type(exc).__name__}: {exc}"
            )
        return ConnectionFailed(message, details=details)

    def _unanswered(
        self, spec: RequestSpec, request: httpx.Request, exc: httpx.TransportError, attempt: int
    ) -> None:
        """After ``exc`` ended attempt ``attempt`` of ``request`` before any answer: returns
        if the driver is to send it again (:func:`retry_unanswered`), raises
        :class:`ConnectionFailed` otherwise."""
        if not retry_unanswered(spec, exc, attempt):
            raise self._transport_error(exc, request) from exc
        log.debug("%s %s got no answer (%s); sending it again", request.method, request.url, exc)


def event_id_of(result: Mapping[str, Any]) -> str:
    """The event id of one PutEvents result, or its error raised as a :class:`SqltideError`.

    The class is the one for the entry's ``error_code`` (``validation_error`` ->
    :class:`~sqltide.errors.UnprocessableEntity`, ...); an unknown code gives the base class
    with that ``code``.
    """
    if "error_code" not in result:
        return str(result["event_id"])
    code = str(result["error_code"])
    exc = error_class_for(code)(result.get("error_message"), details={"error_code": code})
    if exc.code != code:
        exc.code = code  # type: ignore[misc]
    raise exc


def error_from_response(response: httpx.Response) -> SqltideError:
    """The exception for an error answer: the envelope's class, or ``http_error``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("code"), str):
        return http_error(response, "http_error", "Unexpected answer")
    code: str = envelope["code"]
    details = envelope.get("details")
    message, details = envelope.get("message"), details if isinstance(details, dict) else None
    try:
        exc = error_class_for(code)(message, details=details)
    except TypeError:  # a class built differently: the base class, with the code kept below
        exc = SqltideError(message, details=details)
    if exc.code != code:  # a code this client does not know yet
        exc.code = code  # type: ignore[misc]
    if exc.http_status != response.status_code:
        exc.http_status = response.status_code  # type: ignore[misc]
    return exc


def http_error(response: httpx.Response, code: str, what: str) -> SqltideError:
    request = response.request
    snippet = response.text[:500]
    message = (
        f"{what} from {request.method} {request.url}: HTTP {response.status_code} "
        f"{response.reason_phrase}"
    )
    if snippet.strip():
        message += f": {snippet.strip()}"
    exc = SqltideError(message, details={"status": response.status_code, "body": snippet})
    exc.code = code  # type: ignore[misc]
    exc.http_status = response.status_code  # type: ignore[misc]
    return exc
