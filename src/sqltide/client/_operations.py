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
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import pyarrow as pa

from sqltide.client._base import (
    CANCEL_HOLD_SECONDS,
    SERVER_HOLD_SLACK_SECONDS,
    RequestSpec,
    WaitPlan,
    event_id_of,
)
from sqltide.client._wire import (
    Call,
    Pages,
    Sleep,
    _collect,
    _get,
    _json,
    _named_path,
    _next_token,
    _page,
    _paged,
    _params,
    _plain,
    _raise_for_error,
    _result_request,
    _seconds,
    _statement,
    _statement_path,
)
from sqltide.client._workflow_ops import WorkflowOperations
from sqltide.client.models import (
    Column,
    ResultPage,
    Statement,
    format_time,
)


class Operations(WorkflowOperations):
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


def face_signature(op: Callable[..., Any], shape: str) -> inspect.Signature:
    """``op``'s signature as a face shows it: its ``Call[X]`` or ``Pages[X]`` answer becomes
    ``shape.format(X)`` (``"{}"``, ``"Iterator[{}]"``...), so ``help()`` reads true."""
    signature = inspect.signature(op)
    answer = str(signature.return_annotation).partition("[")[2].removesuffix("]")
    return signature.replace(return_annotation=shape.format(answer))
