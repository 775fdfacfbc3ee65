"""The blocking client."""

from __future__ import annotations

import builtins
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx
import pyarrow as pa

from sqltide.client._base import (
    BaseClient,
    RequestSpec,
    retry_unanswered,
    shared_ssl_context,
)
from sqltide.client.models import Column, ResultPage, Statement

log = logging.getLogger(__name__)


class Client(BaseClient):
    """A blocking client of the sqltide HTTP API.

    ``base_url`` defaults to ``$SQLTIDE_URL`` (else ``http://127.0.0.1:8765``); ``api_key`` to
    ``$SQLTIDE_API_KEY``, else the first line of ``$SQLTIDE_HOME/credentials``. Use it as a
    context manager, or call :meth:`close`.

        with Client() as client:
            statement = client.wait(client.execute("SELECT 42 AS answer").id)
            print(list(client.rows(statement.id)))
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        _sleep: Callable[[float], None] = time.sleep,
        _clock: Callable[[], float] = time.monotonic,
        _uniform: Callable[[float, float], float] = random.uniform,
    ):
        super().__init__(base_url, api_key, timeout=timeout, clock=_clock, uniform=_uniform)
        self._sleep = _sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=self._headers(),
            timeout=timeout,
            transport=transport,
            verify=shared_ssl_context(),
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _send(self, spec: RequestSpec) -> httpx.Response:
        request = self._http.build_request(**spec.build_kwargs())
        attempt = 1
        while True:
            try:
                # Streamed, so an error here means no answer had arrived (see
                # retry_unanswered). A failure while reading the body below is not retried.
                response = self._http.send(request, stream=True)
                break
            except httpx.TransportError as exc:
                if not retry_unanswered(spec, exc, attempt):
                    raise self._transport_error(exc, request) from exc
                log.debug(
                    "%s %s got no answer (%s); sending it again", request.method, request.url, exc
                )
                attempt += 1
        try:
            response.read()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, request) from exc
        finally:
            response.close()
        log.debug("%s %s -> %s", request.method, request.url, response.status_code)
        return response

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
    ) -> Statement:
        """Submit one statement; returns its description (status ``SUBMITTED``).

        ``parameters`` bind ``:name`` placeholders. A repeated ``client_token`` with the same
        request returns the original statement instead of running it again.
        """
        spec = self._execute_request(
            sql,
            parameters=parameters,
            statement_name=statement_name,
            client_token=client_token,
            with_event=with_event,
            warehouse=warehouse,
            session_id=session_id,
            session_keep_alive_seconds=session_keep_alive_seconds,
        )
        return self._statement(self._send(spec))

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
    ) -> Statement:
        """Submit a batch of 1 to 40 statements, ``mode`` ``"transaction"`` or ``"auto_commit"``."""
        spec = self._batch_request(
            sqls,
            mode,
            parameters=parameters,
            statement_name=statement_name,
            client_token=client_token,
            with_event=with_event,
            warehouse=warehouse,
            session_id=session_id,
            session_keep_alive_seconds=session_keep_alive_seconds,
        )
        return self._statement(self._send(spec))

    def describe(self, id: str, wait: float | None = None) -> Statement:
        """A statement's description; with ``wait`` the server holds the answer up to that
        many seconds (0 to 30) until the statement ends."""
        return self._statement(self._send(self._describe_request(id, wait)))

    def wait(
        self, id: str, timeout: float | None = None, *, max_interval: float = 5.0
    ) -> Statement:
        """Wait until the statement ends and return its description.

        Uses the server's long-poll, and exponential backoff with full jitter (at most
        ``max_interval`` seconds) when the server answers early. A FAILED or ABORTED statement
        is returned, not raised. Raises :class:`StatementWaitTimeout` after ``timeout`` seconds
        (``None``: wait as long as it takes).
        """
        plan = self._wait_plan(id, timeout, max_interval)
        while True:
            poll = plan.poll_seconds()
            started = self._clock()
            statement = self.describe(id, wait=poll)
            if statement.is_terminal:
                return statement
            delay = plan.next_delay(statement, poll, self._clock() - started)
            if delay > 0:
                self._sleep(delay)

    def cancel(self, id: str) -> Statement:
        """Cancel a statement; returns its description once it has stopped (or after 5 s)."""
        return self._statement(self._send(self._cancel_request(id)))

    # -- results ----------------------------------------------------------------------------

    def result_page(
        self, id: str, next_token: str | None = None, *, max_rows: int | None = None
    ) -> ResultPage:
        """One page of a finished statement's result (a batch's: by sub-statement id)."""
        return self._page(self._send(self._result_request(id, next_token, max_rows)))

    def result(self, id: str, *, max_rows: int | None = None) -> Iterator[ResultPage]:
        """All pages of a result, following ``next_token``."""
        next_token: str | None = None
        while True:
            page = self.result_page(id, next_token, max_rows=max_rows)
            yield page
            next_token = page.next_token
            if not next_token:
                return

    def rows(self, id: str, *, max_rows: int | None = None) -> Iterator[builtins.list[Any]]:
        """All rows of a result, page after page (``max_rows`` is the page size)."""
        for page in self.result(id, max_rows=max_rows):
            yield from page.rows

    def result_arrow(self, id: str, *, max_rows: int | None = None) -> Iterator[pa.Table]:
        """A result as Arrow, one table per page (no JSON conversion at all)."""
        next_token: str | None = None
        while True:
            spec = self._result_request(id, next_token, max_rows, fmt="arrow")
            table, next_token = self._arrow_page(self._send(spec))
            yield table
            if not next_token:
                return

    def result_table(self, id: str) -> pa.Table:
        """A whole result as one Arrow table (for results that fit in memory)."""
        return pa.concat_tables(self.result_arrow(id))

    def result_csv(self, id: str, *, max_rows: int | None = None) -> Iterator[bytes]:
        """A result as CSV, page after page; the pages concatenate into one file."""
        next_token: str | None = None
        while True:
            spec = self._result_request(id, next_token, max_rows, fmt="csv")
            content, next_token = self._csv_page(self._send(spec))
            yield content
            if not next_token:
                return

    def list(
        self,
        status: str | None = None,
        name_prefix: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        max_results: int | None = None,
    ) -> Iterator[Statement]:
        """The caller's statements, newest first, across all pages.

        ``max_results`` (1 to 100) is the page size asked of the server, not a total.
        """
        next_token: str | None = None
        while True:
            spec = self._list_request(
                status, name_prefix, created_after, created_before, max_results, next_token
            )
            statements, next_token = self._statements_page(self._send(spec))
            yield from statements
            if not next_token:
                return

    # -- catalog and service ----------------------------------------------------------------

    def warehouses(self) -> builtins.list[dict[str, Any]]:
        """The configured warehouses: ``[{"name", "scheme", "default"}]``."""
        return self._key(self._send(self._warehouses_request()), "warehouses")

    def databases(self, warehouse: str | None = None) -> builtins.list[str]:
        """The databases of a warehouse (the default one when ``None``)."""
        return self._key(self._send(self._databases_request(warehouse)), "databases")

    def schemas(
        self,
        warehouse: str | None = None,
        database: str | None = None,
        schema_pattern: str | None = None,
    ) -> builtins.list[str]:
        """Schema names; ``schema_pattern`` uses SQL ``LIKE`` wildcards."""
        spec = self._schemas_request(warehouse, database, schema_pattern)
        return self._key(self._send(spec), "schemas")

    def tables(
        self,
        warehouse: str | None = None,
        database: str | None = None,
        schema_pattern: str | None = None,
        table_pattern: str | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Tables as ``[{"name", "schema", "type"}]``; patterns use SQL ``LIKE`` wildcards."""
        spec = self._tables_request(warehouse, database, schema_pattern, table_pattern)
        return self._key(self._send(spec), "tables")

    def describe_table(
        self,
        schema: str,
        table: str,
        *,
        warehouse: str | None = None,
        database: str | None = None,
    ) -> builtins.list[Column]:
        """A table's columns."""
        spec = self._describe_table_request(schema, table, warehouse, database)
        return self._columns(self._send(spec))

    def health(self) -> dict[str, Any]:
        """The server's health: ``{"status": "ok", "version": ...}`` (needs no key)."""
        return self._json(self._send(self._health_request()))

    # -- events, rules, topics, deliveries --------------------------------------------------
    # Answers are the API's JSON objects, as docs/events.md shows them.

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> builtins.list[dict[str, Any]]:
        """Put 1 to 10 events (``{"source", "detail_type", "detail", "resources", "time"}``).

        Returns one result per entry, in order: ``{"event_id"}`` or ``{"error_code",
        "error_message"}``. An entry that failed is not raised; check the results (the other
        entries are recorded all the same, as with PutEvents).
        """
        return self._put_events_results(self._send(self._put_events_request(entries)))

    def put_event(
        self,
        source: str,
        detail_type: str,
        detail: Mapping[str, Any] | None = None,
        *,
        resources: Sequence[str] | None = None,
        time: datetime | str | None = None,
    ) -> str:
        """Put one event; returns its id. A refused entry is raised (``UnprocessableEntity``,
        ``PayloadTooLarge``, ...)."""
        entry = self._event_entry(source, detail_type, detail, resources, time)
        return self._put_event_id(self._send(self._put_events_request([entry])))

    def events(
        self,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        max_results: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The event archive between ``start`` and ``end``, oldest first, across all pages.

        ``max_results`` (1 to 1000) is the page size asked of the server, not a total.
        """
        next_token: str | None = None
        while True:
            spec = self._events_request(start, end, max_results, next_token)
            events, next_token = self._events_page(self._send(spec))
            yield from events
            if not next_token:
                return

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
    ) -> dict[str, Any]:
        """Create or replace a rule (an ``event_pattern`` or a ``schedule``, one of them) and
        return it. An invalid rule raises ``invalid_rule`` naming the place in ``details``."""
        spec = self._put_rule_request(
            name,
            event_pattern=event_pattern,
            schedule=schedule,
            targets=targets,
            state=state,
            description=description,
            timezone=timezone,
            missed_policy=missed_policy,
            missed_window_seconds=missed_window_seconds,
        )
        return self._json(self._send(spec))

    def rule(self, name: str) -> dict[str, Any]:
        """A rule (a target's webhook ``secret`` reads ``"***"``)."""
        return self._json(self._send(self._rule_request(name)))

    def rules(self) -> builtins.list[dict[str, Any]]:
        """Your rules."""
        return self._key(self._send(self._rules_request()), "rules")

    def delete_rule(self, name: str) -> None:
        """Delete a rule (``rule_not_found`` if there is none)."""
        self._no_content(self._send(self._delete_rule_request(name)))

    def put_topic(
        self,
        name: str,
        subscriptions: Sequence[Mapping[str, Any]],
        display_name: str | None = None,
    ) -> dict[str, Any]:
        """Create or replace a topic with its subscriptions and return it."""
        spec = self._put_topic_request(name, subscriptions, display_name)
        return self._json(self._send(spec))

    def topic(self, name: str) -> dict[str, Any]:
        """A topic and its subscriptions (a webhook ``secret`` reads ``"***"``)."""
        return self._json(self._send(self._topic_request(name)))

    def topics(self) -> builtins.list[dict[str, Any]]:
        """Your topics."""
        return self._key(self._send(self._topics_request()), "topics")

    def delete_topic(self, name: str) -> None:
        """Delete a topic (``topic_not_found`` if there is none)."""
        self._no_content(self._send(self._delete_topic_request(name)))

    def deliveries(
        self, status: str | None = None, max_results: int | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Deliveries, newest first; ``status`` ``PENDING``, ``DELIVERED`` or ``DEAD``."""
        spec = self._deliveries_request(status, max_results)
        return self._key(self._send(spec), "deliveries")

    def dead_letters(self, max_results: int | None = None) -> builtins.list[dict[str, Any]]:
        """The dead letters (deliveries with status ``DEAD``), newest first."""
        return self.deliveries("DEAD", max_results)

    def redrive(self, delivery_id: str) -> dict[str, Any]:
        """Send a dead letter again (back to ``PENDING``, due now); returns the delivery."""
        return self._json(self._send(self._redrive_request(delivery_id)))
