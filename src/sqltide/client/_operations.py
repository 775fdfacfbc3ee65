"""Every call of the client, written once, without I/O (docs/adr/0005-one-client.md).

Each public method of :class:`~sqltide.client.Client` and :class:`~sqltide.client.AsyncClient`
is a generator method of :class:`Operations`. It yields what it needs done and is sent the
answer: a :class:`~sqltide.client._base.RequestSpec` (sent back: the ``httpx.Response``), a
:class:`Sleep` (sent back: ``None``) or, for the methods that iterate, an :class:`Emit` of the
items to hand the caller. The generator's return value is the method's. The two faces are a
driver each (``_sync.py``, ``_async.py``) that perform those effects, blocking or awaited, as
h11 leaves the sockets to its caller; the wait loop, the paging and the parsing live here only.
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeAlias, TypeVar
from urllib.parse import quote

import httpx
import orjson
import pyarrow as pa

from sqltide.client._base import (
    CANCEL_HOLD_SECONDS,
    NEXT_TOKEN_HEADER,
    SERVER_HOLD_SLACK_SECONDS,
    RequestSpec,
    WaitPlan,
    error_from_response,
    event_id_of,
    http_error,
)
from sqltide.client.models import (
    CallbackState,
    Column,
    Execution,
    ExecutionHistory,
    ResultPage,
    Statement,
    format_time,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sleep:
    """Sleep this long, then go on (the wait loop's backoff)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Emit(Generic[T]):
    """Hand these items to the caller of an iterating method (one page's worth)."""

    items: Sequence[T]


Effect: TypeAlias = RequestSpec | Sleep
#: A call: yields effects, returns the method's answer.
Call: TypeAlias = Generator[Effect, Any, T]
#: An iteration: yields effects and the items, page by page.
Pages: TypeAlias = Generator[Effect | Emit[T], Any, None]


class Operations:
    """The API calls as generators (see the module docstring); no I/O, no state but settings.

    ``timeout`` is the client's, which the requests the server may hold extend; ``clock``
    and ``uniform`` plan :meth:`wait` (injectable, so tests run on a fake clock).
    """

    def __init__(
        self,
        timeout: float,
        clock: Callable[[], float],
        uniform: Callable[[float, float], float],
    ):
        self.timeout = timeout
        self._clock = clock
        self._uniform = uniform

    # -- statements -------------------------------------------------------------------------

    def execute(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        statement_name: str | None = None,
        client_token: str | None = None,
        with_event: bool = False,
        warehouse: str | None = None,
        session_id: str | None = None,
        session_keep_alive_seconds: int | None = None,
    ) -> Call[Statement]:
        """Submit one statement; returns its description (status ``SUBMITTED``).

        ``parameters`` bind ``:name`` placeholders. A repeated ``client_token`` with the same
        request returns the original statement instead of running it again.
        """
        body = {
            "sql": sql,
            "parameters": None if parameters is None else dict(parameters),
            "statement_name": statement_name,
            "client_token": client_token,
            "with_event": with_event,
            "warehouse": warehouse,
            "session_id": session_id,
            "session_keep_alive_seconds": session_keep_alive_seconds,
        }
        return _statement((yield RequestSpec("POST", "/v1/statements", json=body)))

    def batch(
        self,
        sqls: Sequence[str],
        parameters: Mapping[str, Any] | None = None,
        *,
        mode: str = "transaction",
        statement_name: str | None = None,
        client_token: str | None = None,
        with_event: bool = False,
        warehouse: str | None = None,
        session_id: str | None = None,
        session_keep_alive_seconds: int | None = None,
    ) -> Call[Statement]:
        """Submit a batch of 1 to 40 statements, ``mode`` ``"transaction"`` or ``"auto_commit"``."""
        if isinstance(sqls, str):
            raise TypeError("batch() takes a list of SQL texts, not one string")
        body = {
            "sqls": list(sqls),
            "mode": mode,
            "parameters": None if parameters is None else dict(parameters),
            "statement_name": statement_name,
            "client_token": client_token,
            "with_event": with_event,
            "warehouse": warehouse,
            "session_id": session_id,
            "session_keep_alive_seconds": session_keep_alive_seconds,
        }
        return _statement((yield RequestSpec("POST", "/v1/statements/batch", json=body)))

    def describe(self, id: str, wait: float | None = None) -> Call[Statement]:
        """A statement's description; with ``wait`` the server holds the answer up to that
        many seconds (0 to 30) until the statement ends."""
        if wait is None:
            spec = RequestSpec("GET", _statement_path(id))
        else:
            spec = RequestSpec(
                "GET",
                _statement_path(id),
                params={"wait": _seconds(wait)},
                timeout=max(self.timeout, wait + SERVER_HOLD_SLACK_SECONDS),
            )
        return _statement((yield spec))

    def wait(
        self, id: str, timeout: float | None = None, *, max_interval: float = 5.0
    ) -> Call[Statement]:
        """Wait until the statement ends and return its description.

        Uses the server's long-poll, and exponential backoff with full jitter (at most
        ``max_interval`` seconds) when the server answers early. A FAILED or ABORTED statement
        is returned, not raised. Raises :class:`StatementWaitTimeout` after ``timeout`` seconds
        (``None``: wait as long as it takes).
        """
        plan = WaitPlan(id, timeout, max_interval, self._clock, self._uniform)
        while True:
            poll = plan.poll_seconds()
            started = self._clock()
            statement = yield from self.describe(id, wait=poll)
            if statement.is_terminal:
                return statement
            delay = plan.next_delay(statement, poll, self._clock() - started)
            if delay > 0:
                yield Sleep(delay)

    def cancel(self, id: str) -> Call[Statement]:
        """Cancel a statement; returns its description once it has stopped (or after 5 s)."""
        timeout = max(self.timeout, CANCEL_HOLD_SECONDS + SERVER_HOLD_SLACK_SECONDS)
        return _statement(
            (yield RequestSpec("POST", _statement_path(id, "/cancel"), timeout=timeout))
        )

    # -- results ----------------------------------------------------------------------------

    def result_page(
        self, id: str, next_token: str | None = None, *, max_rows: int | None = None
    ) -> Call[ResultPage]:
        """One page of a finished statement's result (a batch's: by sub-statement id)."""
        return _page((yield _result_request(id, next_token, max_rows, "json")))

    def result(self, id: str, *, max_rows: int | None = None) -> Pages[ResultPage]:
        """All pages of a result, following ``next_token``."""

        def parse(response: httpx.Response) -> tuple[builtins.list[ResultPage], str | None]:
            page = _page(response)
            return [page], page.next_token

        yield from _paged(lambda token: _result_request(id, token, max_rows, "json"), parse)

    def rows(self, id: str, *, max_rows: int | None = None) -> Pages[builtins.list[Any]]:
        """All rows of a result, page after page (``max_rows`` is the page size)."""

        def parse(response: httpx.Response) -> tuple[builtins.list[Any], str | None]:
            page = _page(response)
            return page.rows, page.next_token

        yield from _paged(lambda token: _result_request(id, token, max_rows, "json"), parse)

    def result_arrow(self, id: str, *, max_rows: int | None = None) -> Pages[pa.Table]:
        """A result as Arrow, one table per page (no JSON conversion at all)."""

        def parse(response: httpx.Response) -> tuple[builtins.list[pa.Table], str | None]:
            _raise_for_error(response)
            return [pa.ipc.open_stream(response.content).read_all()], _next_token(response)

        yield from _paged(lambda token: _result_request(id, token, max_rows, "arrow"), parse)

    def result_table(self, id: str) -> Call[pa.Table]:
        """A whole result as one Arrow table (for results that fit in memory)."""
        return pa.concat_tables((yield from _collect(self.result_arrow(id))))

    def result_csv(self, id: str, *, max_rows: int | None = None) -> Pages[bytes]:
        """A result as CSV, page after page; the pages concatenate into one file."""

        def parse(response: httpx.Response) -> tuple[builtins.list[bytes], str | None]:
            _raise_for_error(response)
            return [response.content], _next_token(response)

        yield from _paged(lambda token: _result_request(id, token, max_rows, "csv"), parse)

    def list(
        self,
        status: str | None = None,
        name_prefix: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        max_results: int | None = None,
    ) -> Pages[Statement]:
        """The caller's statements, newest first, across all pages.

        ``max_results`` (1 to 100) is the page size asked of the server, not a total.
        """
        filters = _params(
            status=status,
            name_prefix=name_prefix,
            created_after=created_after,
            created_before=created_before,
            max_results=max_results,
        )

        def parse(response: httpx.Response) -> tuple[builtins.list[Statement], str | None]:
            body = _json(response)
            statements = [Statement.from_dict(item) for item in body.get("statements") or ()]
            return statements, body.get("next_token")

        yield from _paged(lambda token: _get("/v1/statements", filters, next_token=token), parse)

    # -- catalog and service ----------------------------------------------------------------

    def warehouses(self) -> Call[builtins.list[dict[str, Any]]]:
        """The configured warehouses: ``[{"name", "scheme", "default"}]``."""
        return _json((yield RequestSpec("GET", "/v1/warehouses")))["warehouses"]

    def databases(self, warehouse: str | None = None) -> Call[builtins.list[str]]:
        """The databases of a warehouse (the default one when ``None``)."""
        spec = _get("/v1/catalog/databases", warehouse=warehouse)
        return _json((yield spec))["databases"]

    def schemas(
        self,
        warehouse: str | None = None,
        database: str | None = None,
        schema_pattern: str | None = None,
    ) -> Call[builtins.list[str]]:
        """Schema names; ``schema_pattern`` uses SQL ``LIKE`` wildcards."""
        spec = _get(
            "/v1/catalog/schemas",
            warehouse=warehouse,
            database=database,
            schema_pattern=schema_pattern,
        )
        return _json((yield spec))["schemas"]

    def tables(
        self,
        warehouse: str | None = None,
        database: str | None = None,
        schema_pattern: str | None = None,
        table_pattern: str | None = None,
    ) -> Call[builtins.list[dict[str, Any]]]:
        """Tables as ``[{"name", "schema", "type"}]``; patterns use SQL ``LIKE`` wildcards."""
        spec = _get(
            "/v1/catalog/tables",
            warehouse=warehouse,
            database=database,
            schema_pattern=schema_pattern,
            table_pattern=table_pattern,
        )
        return _json((yield spec))["tables"]

    def describe_table(
        self,
        schema: str,
        table: str,
        *,
        warehouse: str | None = None,
        database: str | None = None,
    ) -> Call[builtins.list[Column]]:
        """A table's columns."""
        path = f"/v1/catalog/tables/{quote(schema, safe='')}/{quote(table, safe='')}"
        body = _json((yield _get(path, warehouse=warehouse, database=database)))
        return [Column.from_dict(c) for c in body.get("columns") or ()]

    def health(self) -> Call[dict[str, Any]]:
        """The server's health: ``{"status": "ok", "version": ...}`` (needs no key)."""
        return _json((yield RequestSpec("GET", "/health")))

    # -- events, rules, topics, deliveries --------------------------------------------------
    # Answers are the API's JSON objects, as docs/events.md shows them.

    def put_events(
        self, entries: Sequence[Mapping[str, Any]]
    ) -> Call[builtins.list[dict[str, Any]]]:
        """Put 1 to 10 events (``{"source", "detail_type", "detail", "resources", "time"}``).

        Returns one result per entry, in order: ``{"event_id"}`` or ``{"error_code",
        "error_message"}``. An entry that failed is not raised; check the results (the other
        entries are recorded all the same, as with PutEvents).
        """
        if isinstance(entries, Mapping):
            raise TypeError("put_events() takes a list of entries; use put_event() for one")
        spec = RequestSpec("POST", "/v1/events", json={"entries": _plain(entries)})
        return builtins.list(_json((yield spec))["entries"])

    def put_event(
        self,
        source: str,
        detail_type: str,
        detail: Mapping[str, Any] | None = None,
        *,
        resources: Sequence[str] | None = None,
        time: datetime | str | None = None,
    ) -> Call[str]:
        """Put one event; returns its id. A refused entry is raised (``UnprocessableEntity``,
        ``PayloadTooLarge``, ...)."""
        # The keys left out take the server's defaults.
        entry: dict[str, Any] = {"source": source, "detail_type": detail_type}
        if detail is not None:
            entry["detail"] = _plain(detail)
        if resources is not None:
            if isinstance(resources, str):
                raise TypeError("resources is a list of strings, not one string")
            entry["resources"] = builtins.list(resources)
        if time is not None:
            entry["time"] = format_time(time) if isinstance(time, datetime) else time
        results = yield from self.put_events([entry])
        return event_id_of(results[0])

    def events(
        self,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        max_results: int | None = None,
    ) -> Pages[dict[str, Any]]:
        """The event archive between ``start`` and ``end``, oldest first, across all pages.

        ``max_results`` (1 to 1000) is the page size asked of the server, not a total.
        """
        filters = _params(start=start, end=end, max_results=max_results)

        def parse(response: httpx.Response) -> tuple[builtins.list[dict[str, Any]], str | None]:
            body = _json(response)
            return builtins.list(body.get("events") or ()), body.get("next_token")

        yield from _paged(lambda token: _get("/v1/events", filters, next_token=token), parse)

    def put_rule(
        self,
        name: str,
        *,
        event_pattern: Mapping[str, Any] | None = None,
        schedule: str | None = None,
        targets: Sequence[Mapping[str, Any]],
        state: str = "ENABLED",
        description: str | None = None,
        timezone: str = "UTC",
        missed_policy: str | None = None,
        missed_window_seconds: float | None = None,
    ) -> Call[dict[str, Any]]:
        """Create or replace a rule (an ``event_pattern`` or a ``schedule``, one of them) and
        return it. An invalid rule raises ``invalid_rule`` naming the place in ``details``."""
        body: dict[str, Any] = {"targets": _plain(targets), "state": state, "timezone": timezone}
        # Absent, not null: the server applies its defaults (and refuses both or neither).
        optional = {
            "event_pattern": _plain(event_pattern),
            "schedule": schedule,
            "description": description,
            "missed_policy": missed_policy,
            "missed_window_seconds": missed_window_seconds,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return _json((yield RequestSpec("PUT", _named_path("rules", name), json=body)))

    def rule(self, name: str) -> Call[dict[str, Any]]:
        """A rule (a target's webhook ``secret`` reads ``"***"``)."""
        return _json((yield RequestSpec("GET", _named_path("rules", name))))

    def rules(self) -> Call[builtins.list[dict[str, Any]]]:
        """Your rules."""
        return _json((yield RequestSpec("GET", "/v1/rules")))["rules"]

    def delete_rule(self, name: str) -> Call[None]:
        """Delete a rule (``rule_not_found`` if there is none)."""
        _raise_for_error((yield RequestSpec("DELETE", _named_path("rules", name))))

    def put_topic(
        self,
        name: str,
        subscriptions: Sequence[Mapping[str, Any]],
        display_name: str | None = None,
    ) -> Call[dict[str, Any]]:
        """Create or replace a topic with its subscriptions and return it."""
        body: dict[str, Any] = {"subscriptions": _plain(subscriptions)}
        if display_name is not None:
            body["display_name"] = display_name
        return _json((yield RequestSpec("PUT", _named_path("topics", name), json=body)))

    def topic(self, name: str) -> Call[dict[str, Any]]:
        """A topic and its subscriptions (a webhook ``secret`` reads ``"***"``)."""
        return _json((yield RequestSpec("GET", _named_path("topics", name))))

    def topics(self) -> Call[builtins.list[dict[str, Any]]]:
        """Your topics."""
        return _json((yield RequestSpec("GET", "/v1/topics")))["topics"]

    def delete_topic(self, name: str) -> Call[None]:
        """Delete a topic (``topic_not_found`` if there is none)."""
        _raise_for_error((yield RequestSpec("DELETE", _named_path("topics", name))))

    def deliveries(
        self, status: str | None = None, max_results: int | None = None
    ) -> Call[builtins.list[dict[str, Any]]]:
        """Deliveries, newest first; ``status`` ``PENDING``, ``DELIVERED`` or ``DEAD``."""
        spec = _get("/v1/deliveries", status=status, max_results=max_results)
        return _json((yield spec))["deliveries"]

    def dead_letters(self, max_results: int | None = None) -> Call[builtins.list[dict[str, Any]]]:
        """The dead letters (deliveries with status ``DEAD``), newest first."""
        return (yield from self.deliveries("DEAD", max_results))

    def redrive(self, delivery_id: str) -> Call[dict[str, Any]]:
        """Send a dead letter again (back to ``PENDING``, due now); returns the delivery."""
        path = f"/v1/deliveries/{quote(str(delivery_id), safe='')}/redrive"
        return _json((yield RequestSpec("POST", path)))

    # -- workflows, executions, callbacks ---------------------------------------------------

    def list_workflows(self) -> Call[builtins.list[dict[str, Any]]]:
        """The workflows the server loaded: ``[{"name", "description"}]``."""
        return _json((yield RequestSpec("GET", "/v1/workflows")))["workflows"]

    def start_execution(
        self,
        workflow: str,
        input: Any = None,
        *,
        name: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Call[Execution]:
        """Start an execution of ``workflow`` with ``input`` (any JSON value); returns its
        description (status ``RUNNING``).

        Under a ``name`` the start is idempotent: the same name gives back the execution
        started under it (``execution_conflict`` if its input differs). ``timeout_seconds``
        (1 s to 366 days): still running then, it ends ``TIMED_OUT``.
        """
        body: dict[str, Any] = {"input": input}
        if name is not None:
            body["name"] = name
        if timeout_seconds is not None:
            body["timeout_seconds"] = timeout_seconds
        path = f"/v1/workflows/{quote(str(workflow), safe='')}/executions"
        # Under a name, sending it again gives back the same execution: safe to resend.
        spec = RequestSpec("POST", path, json=body, resendable=name is not None)
        return _execution((yield spec))

    def get_execution(self, id: str, wait: float | None = None) -> Call[Execution]:
        """An execution's description; with ``wait`` the server holds the answer up to that
        many seconds (0 to 30) until the execution ends."""
        if wait is None:
            spec = RequestSpec("GET", _execution_path(id))
        else:
            spec = RequestSpec(
                "GET",
                _execution_path(id),
                params={"wait": _seconds(wait)},
                timeout=max(self.timeout, wait + SERVER_HOLD_SLACK_SECONDS),
            )
        return _execution((yield spec))

    def wait_execution(
        self, id: str, timeout: float | None = None, *, max_interval: float = 5.0
    ) -> Call[Execution]:
        """Wait until the execution ends and return its description (a FAILED, TIMED_OUT or
        STOPPED one is returned, not raised).

        Long-polls the server, with the backoff of :meth:`wait` when it answers early. Raises
        :class:`ExecutionWaitTimeout` after ``timeout`` seconds (``None``: no limit).
        """
        plan = WaitPlan(id, timeout, max_interval, self._clock, self._uniform)
        while True:
            poll = plan.poll_seconds()
            started = self._clock()
            execution = yield from self.get_execution(id, wait=poll)
            if execution.is_terminal:
                return execution
            delay = plan.next_delay(execution, poll, self._clock() - started)
            if delay > 0:
                yield Sleep(delay)

    def list_executions(
        self,
        workflow: str | None = None,
        status: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        max_results: int | None = None,
    ) -> Pages[Execution]:
        """The caller's executions, newest first, across all pages (``workflow``: of that
        workflow only; ``status``: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or STOPPED).

        ``max_results`` (1 to 1000) is the page size asked of the server, not a total.
        """
        filters = _params(
            workflow=workflow,
            status=status,
            created_after=created_after,
            created_before=created_before,
            max_results=max_results,
        )

        def parse(response: httpx.Response) -> tuple[builtins.list[Execution], str | None]:
            body = _json(response)
            found = [Execution.from_dict(item) for item in body.get("executions") or ()]
            return found, body.get("next_token")

        yield from _paged(lambda token: _get("/v1/executions", filters, next_token=token), parse)

    def execution_history(
        self, id: str, *, max_events: int | None = None
    ) -> Call[ExecutionHistory]:
        """An execution with every operation and its whole history (``max_events``, 1 to
        1000, is the page size of events asked of the server; every page is fetched)."""
        after = 0
        events: builtins.list[Any] = []
        while True:
            spec = _get(
                _execution_path(id, "/history"),
                after_seq=after or None,
                max_events=max_events,
            )
            body = _json((yield spec))
            page = ExecutionHistory.from_dict(body)
            events.extend(page.events)
            after = body.get("next_after_seq") or 0
            if not after:
                # The last page's execution and operations are the newest.
                return ExecutionHistory(page.execution, page.operations, tuple(events))

    def stop_execution(self, id: str, error: Mapping[str, Any] | None = None) -> Call[Execution]:
        """Stop a running execution (``STOPPED``, with ``error`` ``{"type", "message",
        "data"}`` or a default one); ``execution_conflict`` once it has ended."""
        body = None if error is None else {"error": dict(error)}
        return _execution((yield RequestSpec("POST", _execution_path(id, "/stop"), json=body)))

    def succeed_callback(self, callback_id: str, result: Any = None) -> Call[CallbackState]:
        """Complete a callback with ``result``: a string reaches the workflow as it is, any
        other JSON value as its JSON text. ``callback_conflict`` (``details.state``) when it
        was completed already, timed out, or its execution ended."""
        spec = RequestSpec("POST", _callback_path(callback_id, "succeed"), json={"result": result})
        return CallbackState.from_dict(_json((yield spec)))

    def fail_callback(
        self,
        callback_id: str,
        message: str | None = None,
        *,
        error_type: str | None = None,
        data: str | None = None,
    ) -> Call[CallbackState]:
        """Fail a callback: the workflow's ``callback.result()`` raises ``CallbackError`` with
        ``message`` (and ``error_type``, ``data``)."""
        error = {"type": error_type, "message": message, "data": data}
        body = {"error": {k: v for k, v in error.items() if v is not None}}
        spec = RequestSpec("POST", _callback_path(callback_id, "fail"), json=body)
        return CallbackState.from_dict(_json((yield spec)))

    def heartbeat_callback(self, callback_id: str) -> Call[CallbackState]:
        """Tell the workflow the outside work goes on (moves the callback's heartbeat
        timeout)."""
        spec = RequestSpec("POST", _callback_path(callback_id, "heartbeat"), resendable=True)
        return CallbackState.from_dict(_json((yield spec)))


# -- paging ----------------------------------------------------------------------------------


def _paged(
    request: Callable[[str | None], RequestSpec],
    parse: Callable[[httpx.Response], tuple[builtins.list[T], str | None]],
) -> Pages[T]:
    """The one paging loop: ask for a page, hand over its items, follow ``next_token``."""
    next_token: str | None = None
    while True:
        items, next_token = parse((yield request(next_token)))
        yield Emit(items)
        if not next_token:
            return


def _collect(pages: Pages[T]) -> Call[builtins.list[T]]:
    """A call that runs an iteration to its end and returns all its items."""
    items: builtins.list[T] = []
    reply: Any = None
    while True:
        try:
            effect = pages.send(reply)
        except StopIteration:
            return items
        if isinstance(effect, Emit):
            items.extend(effect.items)
            reply = None
        else:
            reply = yield effect


# -- requests --------------------------------------------------------------------------------


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters without the ``None`` ones; times as ISO 8601 UTC."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = format_time(value) if isinstance(value, datetime) else value
    return out


def _get(path: str, filters: Mapping[str, Any] | None = None, **params: Any) -> RequestSpec:
    """A GET with ``filters`` (already made query parameters) and ``params`` as query."""
    return RequestSpec("GET", path, params={**(filters or {}), **_params(**params)})


def _statement_path(statement_id: str, suffix: str = "") -> str:
    # One path segment, escaped (sub-statement ids keep their ``:``).
    return f"/v1/statements/{quote(str(statement_id), safe=':')}{suffix}"


def _execution_path(execution_id: str, suffix: str = "") -> str:
    return f"/v1/executions/{quote(str(execution_id), safe='')}{suffix}"


def _callback_path(callback_id: str, outcome: str) -> str:
    return f"/v1/callbacks/{quote(str(callback_id), safe='')}/{outcome}"


def _named_path(collection: str, name: str) -> str:
    """``/v1/rules/{name}`` or ``/v1/topics/{name}``, the name escaped whole."""
    return f"/v1/{collection}/{quote(str(name), safe='')}"


def _result_request(
    statement_id: str, next_token: str | None, max_rows: int | None, fmt: str
) -> RequestSpec:
    params = _params(format=fmt, next_token=next_token, max_rows=max_rows)
    return RequestSpec("GET", _statement_path(statement_id, "/result"), params=params)


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists (one level deep), for the JSON body; anything
    else as it is, so the server names what is wrong with it."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, builtins.list | tuple):
        return [dict(v) if isinstance(v, Mapping) else v for v in value]
    return value


def _seconds(value: float) -> int | float:
    """Seconds for a query string: whole numbers without a fraction."""
    return int(value) if float(value).is_integer() else round(value, 3)


# -- answers ---------------------------------------------------------------------------------


def _raise_for_error(response: httpx.Response) -> None:
    """Raises the API's error for an error answer (a ``204`` or a body are read elsewhere)."""
    if not response.is_success:
        raise error_from_response(response)


def _json(response: httpx.Response) -> Any:
    """The JSON body of a successful answer; raises the API's error otherwise."""
    _raise_for_error(response)
    try:
        return orjson.loads(response.content)  # several times faster than json
    except ValueError as exc:
        raise http_error(response, "invalid_response", "The answer is not JSON") from exc


def _statement(response: httpx.Response) -> Statement:
    return Statement.from_dict(_json(response))


def _execution(response: httpx.Response) -> Execution:
    return Execution.from_dict(_json(response))


def _page(response: httpx.Response) -> ResultPage:
    return ResultPage.from_dict(_json(response))


def _next_token(response: httpx.Response) -> str | None:
    return response.headers.get(NEXT_TOKEN_HEADER) or None


def face_signature(op: Callable[..., Any], shape: str) -> inspect.Signature:
    """``op``'s signature as a face shows it: its ``Call[X]`` or ``Pages[X]`` answer becomes
    ``shape.format(X)`` (``"{}"``, ``"Iterator[{}]"``...), so ``help()`` reads true."""
    signature = inspect.signature(op)
    answer = str(signature.return_annotation).partition("[")[2].removesuffix("]")
    return signature.replace(return_annotation=shape.format(answer))
