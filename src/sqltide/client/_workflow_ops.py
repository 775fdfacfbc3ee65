"""The workflow calls of the client (executions, history, callbacks), written once like the
rest (see ``_operations.py``); :class:`~sqltide.client._operations.Operations` inherits them."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from sqltide.client._base import (
    SERVER_HOLD_SLACK_SECONDS,
    RequestSpec,
    WaitPlan,
)
from sqltide.client._wire import (
    Call,
    Pages,
    Sleep,
    _callback_path,
    _execution,
    _execution_path,
    _get,
    _json,
    _paged,
    _params,
    _seconds,
)
from sqltide.client.models import (
    CallbackState,
    Execution,
    ExecutionHistory,
)


class WorkflowOperations:
    """Workflows, executions and callbacks (``/v1/workflows``, ``/v1/executions``,
    ``/v1/callbacks``)."""

    timeout: float
    _clock: Callable[[], float]
    _uniform: Callable[[float, float], float]

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
