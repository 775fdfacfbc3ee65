"""What :class:`~sqltide.client.Client` and :class:`~sqltide.client.AsyncClient` share.

Like httpx's own ``BaseClient``, this module does no I/O: it resolves the configuration, turns
each API call into a :class:`RequestSpec`, turns answers into value objects or exceptions, and
plans the polling of :meth:`Client.wait`. The two subclasses only send the requests (and
sleep), one blocking, one with ``await``.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pyarrow as pa

from sqltide import __version__
from sqltide.client.models import Column, ResultPage, Statement, format_time
from sqltide.errors import SqltideError, error_class_for

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8765"
DEFAULT_HOME = "~/.sqltide"
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


def credentials_path() -> Path:
    """Where the API key is kept: ``$SQLTIDE_HOME/credentials`` (``~/.sqltide/credentials``)."""
    home = os.environ.get("SQLTIDE_HOME") or DEFAULT_HOME
    return Path(home).expanduser() / "credentials"


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

    @property
    def idempotent(self) -> bool:
        """Whether sending this twice does no more than sending it once: the HTTP methods
        that mean so, and a submit that carries a client token (the server answers a
        repeat with the statement it already has)."""
        if self.method in ("GET", "HEAD", "PUT", "DELETE"):
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


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters without the ``None`` ones; times as ISO 8601 UTC."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = format_time(value) if isinstance(value, datetime) else value
    return out


def _seg(value: str) -> str:
    """One path segment, escaped (sub-statement ids keep their ``:``)."""
    return quote(str(value), safe=":")


def _statement_path(statement_id: str, suffix: str = "") -> str:
    return f"/v1/statements/{_seg(statement_id)}{suffix}"


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists (one level deep), for the JSON body; anything
    else as it is, so the server names what is wrong with it."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list | tuple):
        return [dict(v) if isinstance(v, Mapping) else v for v in value]
    return value


def _named_path(collection: str, name: str) -> str:
    """``/v1/rules/{name}`` or ``/v1/topics/{name}``, the name escaped whole."""
    return f"/v1/{collection}/{quote(str(name), safe='')}"


class WaitPlan:
    """The schedule of one ``wait``: long-poll lengths, backoff sleeps and the deadline.

    Each round asks the server to hold the describe for up to :data:`MAX_POLL_SECONDS`, never
    past the deadline. When the server answers a non-terminal statement before that (long-poll
    off, or a shorter server limit), the next round is delayed by exponential backoff with full
    jitter: ``uniform(0, min(max_interval, BACKOFF_BASE_SECONDS * 2**attempt))``.
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

    def next_delay(self, statement: Statement, poll: int, elapsed: float) -> float:
        """After a non-terminal answer: seconds to sleep before the next describe.

        Raises :class:`StatementWaitTimeout` once the deadline has passed.
        """
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise StatementWaitTimeout(
                f"Statement {self.statement_id} did not end within {self.timeout:g} s "
                f"(last status {statement.status}).",
                details={
                    "id": self.statement_id,
                    "timeout": self.timeout,
                    "status": statement.status,
                },
                statement=statement,
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
        log.debug("statement %s is %s; retrying in %.3f s", statement.id, statement.status, delay)
        return delay


class BaseClient:
    """Configuration, request building and response parsing; no I/O."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float,
        clock: Callable[[], float],
        uniform: Callable[[float, float], float],
    ):
        self.base_url = resolve_base_url(base_url)
        self.timeout = timeout
        self._api_key = resolve_api_key(api_key)
        self._clock = clock
        self._uniform = uniform

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

    def _wait_plan(self, statement_id: str, timeout: float | None, max_interval: float) -> WaitPlan:
        return WaitPlan(statement_id, timeout, max_interval, self._clock, self._uniform)

    # -- requests ---------------------------------------------------------------------------

    @staticmethod
    def _submit_fields(
        parameters: Mapping[str, Any] | None,
        statement_name: str | None,
        client_token: str | None,
        with_event: bool,
        warehouse: str | None,
        session_id: str | None,
        session_keep_alive_seconds: int | None,
    ) -> dict[str, Any]:
        return {
            "parameters": None if parameters is None else dict(parameters),
            "statement_name": statement_name,
            "client_token": client_token,
            "with_event": with_event,
            "warehouse": warehouse,
            "session_id": session_id,
            "session_keep_alive_seconds": session_keep_alive_seconds,
        }

    def _execute_request(self, sql: str, **fields: Any) -> RequestSpec:
        body = {"sql": sql, **self._submit_fields(**fields)}
        return RequestSpec("POST", "/v1/statements", json=body)

    def _batch_request(self, sqls: Sequence[str], mode: str, **fields: Any) -> RequestSpec:
        if isinstance(sqls, str):
            raise TypeError("batch() takes a list of SQL texts, not one string")
        body = {"sqls": list(sqls), "mode": mode, **self._submit_fields(**fields)}
        return RequestSpec("POST", "/v1/statements/batch", json=body)

    def _describe_request(self, statement_id: str, wait: float | None) -> RequestSpec:
        if wait is None:
            return RequestSpec("GET", _statement_path(statement_id))
        return RequestSpec(
            "GET",
            _statement_path(statement_id),
            params={"wait": _seconds(wait)},
            timeout=max(self.timeout, wait + SERVER_HOLD_SLACK_SECONDS),
        )

    def _result_request(
        self,
        statement_id: str,
        next_token: str | None,
        max_rows: int | None,
        fmt: str = "json",
    ) -> RequestSpec:
        params = _params(format=fmt, next_token=next_token, max_rows=max_rows)
        return RequestSpec("GET", _statement_path(statement_id, "/result"), params=params)

    def _cancel_request(self, statement_id: str) -> RequestSpec:
        return RequestSpec(
            "POST",
            _statement_path(statement_id, "/cancel"),
            timeout=max(self.timeout, CANCEL_HOLD_SECONDS + SERVER_HOLD_SLACK_SECONDS),
        )

    def _list_request(
        self,
        status: str | None,
        name_prefix: str | None,
        created_after: datetime | str | None,
        created_before: datetime | str | None,
        max_results: int | None,
        next_token: str | None,
    ) -> RequestSpec:
        params = _params(
            status=status,
            name_prefix=name_prefix,
            created_after=created_after,
            created_before=created_before,
            max_results=max_results,
            next_token=next_token,
        )
        return RequestSpec("GET", "/v1/statements", params=params)

    def _warehouses_request(self) -> RequestSpec:
        return RequestSpec("GET", "/v1/warehouses")

    def _databases_request(self, warehouse: str | None) -> RequestSpec:
        return RequestSpec("GET", "/v1/catalog/databases", params=_params(warehouse=warehouse))

    def _schemas_request(
        self, warehouse: str | None, database: str | None, schema_pattern: str | None
    ) -> RequestSpec:
        params = _params(warehouse=warehouse, database=database, schema_pattern=schema_pattern)
        return RequestSpec("GET", "/v1/catalog/schemas", params=params)

    def _tables_request(
        self,
        warehouse: str | None,
        database: str | None,
        schema_pattern: str | None,
        table_pattern: str | None,
    ) -> RequestSpec:
        params = _params(
            warehouse=warehouse,
            database=database,
            schema_pattern=schema_pattern,
            table_pattern=table_pattern,
        )
        return RequestSpec("GET", "/v1/catalog/tables", params=params)

    def _describe_table_request(
        self, schema: str, table: str, warehouse: str | None, database: str | None
    ) -> RequestSpec:
        path = f"/v1/catalog/tables/{quote(schema, safe='')}/{quote(table, safe='')}"
        return RequestSpec("GET", path, params=_params(warehouse=warehouse, database=database))

    def _health_request(self) -> RequestSpec:
        return RequestSpec("GET", "/health")

    # -- events, rules, topics, deliveries (docs/events.md) -------------------------------

    @staticmethod
    def _event_entry(
        source: str,
        detail_type: str,
        detail: Mapping[str, Any] | None,
        resources: Sequence[str] | None,
        time: datetime | str | None,
    ) -> dict[str, Any]:
        """One PutEvents entry; the keys left out take the server's defaults."""
        entry: dict[str, Any] = {"source": source, "detail_type": detail_type}
        if detail is not None:
            entry["detail"] = _plain(detail)
        if resources is not None:
            if isinstance(resources, str):
                raise TypeError("resources is a list of strings, not one string")
            entry["resources"] = list(resources)
        if time is not None:
            entry["time"] = format_time(time) if isinstance(time, datetime) else time
        return entry

    def _put_events_request(self, entries: Sequence[Mapping[str, Any]]) -> RequestSpec:
        if isinstance(entries, Mapping):
            raise TypeError("put_events() takes a list of entries; use put_event() for one")
        return RequestSpec("POST", "/v1/events", json={"entries": _plain(entries)})

    def _events_request(
        self,
        start: datetime | str | None,
        end: datetime | str | None,
        max_results: int | None,
        next_token: str | None,
    ) -> RequestSpec:
        params = _params(start=start, end=end, max_results=max_results, next_token=next_token)
        return RequestSpec("GET", "/v1/events", params=params)

    def _put_rule_request(
        self,
        name: str,
        *,
        event_pattern: Mapping[str, Any] | None,
        schedule: str | None,
        targets: Sequence[Mapping[str, Any]],
        state: str,
        description: str | None,
        timezone: str,
        missed_policy: str | None,
        missed_window_seconds: float | None,
    ) -> RequestSpec:
        body: dict[str, Any] = {
            "targets": _plain(targets),
            "state": state,
            "timezone": timezone,
        }
        # Absent, not null: the server applies its defaults (and refuses both or neither).
        optional = {
            "event_pattern": _plain(event_pattern),
            "schedule": schedule,
            "description": description,
            "missed_policy": missed_policy,
            "missed_window_seconds": missed_window_seconds,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return RequestSpec("PUT", _named_path("rules", name), json=body)

    def _rule_request(self, name: str) -> RequestSpec:
        return RequestSpec("GET", _named_path("rules", name))

    def _rules_request(self) -> RequestSpec:
        return RequestSpec("GET", "/v1/rules")

    def _delete_rule_request(self, name: str) -> RequestSpec:
        return RequestSpec("DELETE", _named_path("rules", name))

    def _put_topic_request(
        self, name: str, subscriptions: Sequence[Mapping[str, Any]], display_name: str | None
    ) -> RequestSpec:
        body: dict[str, Any] = {"subscriptions": _plain(subscriptions)}
        if display_name is not None:
            body["display_name"] = display_name
        return RequestSpec("PUT", _named_path("topics", name), json=body)

    def _topic_request(self, name: str) -> RequestSpec:
        return RequestSpec("GET", _named_path("topics", name))

    def _topics_request(self) -> RequestSpec:
        return RequestSpec("GET", "/v1/topics")

    def _delete_topic_request(self, name: str) -> RequestSpec:
        return RequestSpec("DELETE", _named_path("topics", name))

    def _deliveries_request(self, status: str | None, max_results: int | None) -> RequestSpec:
        return RequestSpec(
            "GET", "/v1/deliveries", params=_params(status=status, max_results=max_results)
        )

    def _redrive_request(self, delivery_id: str) -> RequestSpec:
        return RequestSpec("POST", f"/v1/deliveries/{quote(str(delivery_id), safe='')}/redrive")

    # -- answers ----------------------------------------------------------------------------

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

    def _json(self, response: httpx.Response) -> Any:
        """The JSON body of a successful answer; raises the API's error otherwise."""
        if not response.is_success:
            raise error_from_response(response)
        try:
            return orjson.loads(response.content)  # several times faster than json
        except ValueError as exc:
            raise _http_error(response, "invalid_response", "The answer is not JSON") from exc

    def _statement(self, response: httpx.Response) -> Statement:
        return Statement.from_dict(self._json(response))

    def _page(self, response: httpx.Response) -> ResultPage:
        return ResultPage.from_dict(self._json(response))

    def _statements_page(self, response: httpx.Response) -> tuple[list[Statement], str | None]:
        body = self._json(response)
        statements = [Statement.from_dict(item) for item in body.get("statements") or ()]
        return statements, body.get("next_token")

    def _arrow_page(self, response: httpx.Response) -> tuple[pa.Table, str | None]:
        if not response.is_success:
            raise error_from_response(response)
        table = pa.ipc.open_stream(response.content).read_all()
        return table, response.headers.get(NEXT_TOKEN_HEADER) or None

    def _csv_page(self, response: httpx.Response) -> tuple[bytes, str | None]:
        if not response.is_success:
            raise error_from_response(response)
        return response.content, response.headers.get(NEXT_TOKEN_HEADER) or None

    def _key(self, response: httpx.Response, key: str) -> Any:
        return self._json(response)[key]

    def _columns(self, response: httpx.Response) -> list[Column]:
        return [Column.from_dict(c) for c in self._json(response).get("columns") or ()]

    def _no_content(self, response: httpx.Response) -> None:
        """An answer without a body (``204``); raises the API's error otherwise."""
        if not response.is_success:
            raise error_from_response(response)

    def _put_events_results(self, response: httpx.Response) -> list[dict[str, Any]]:
        return list(self._json(response)["entries"])

    def _put_event_id(self, response: httpx.Response) -> str:
        return event_id_of(self._put_events_results(response)[0])

    def _events_page(self, response: httpx.Response) -> tuple[list[dict[str, Any]], str | None]:
        body = self._json(response)
        return list(body.get("events") or ()), body.get("next_token")


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
        return _http_error(response, "http_error", "Unexpected answer")
    code: str = envelope["code"]
    details = envelope.get("details")
    exc = error_class_for(code)(
        envelope.get("message"), details=details if isinstance(details, dict) else None
    )
    if exc.code != code:  # a code this client does not know yet
        exc.code = code  # type: ignore[misc]
    if exc.http_status != response.status_code:
        exc.http_status = response.status_code  # type: ignore[misc]
    return exc


def _http_error(response: httpx.Response, code: str, what: str) -> SqltideError:
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


def _seconds(value: float) -> int | float:
    """Seconds for a query string: whole numbers without a fraction."""
    return int(value) if float(value).is_integer() else round(value, 3)
