"""The blocking client: a driver of :class:`~sqltide.client._operations.Operations`."""

from __future__ import annotations

import functools
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from sqltide.client._base import BaseClient, RequestSpec
from sqltide.client._operations import Operations, face_signature
from sqltide.client._wire import Call, Emit, Pages, Sleep

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def blocking(op: Callable[Concatenate[Operations, P], Call[T]]) -> Callable[Concatenate[Any, P], T]:
    """A :class:`Client` method that runs the operation ``op`` to its answer."""

    @functools.wraps(op)
    def method(self: Client, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._call(op(self._ops, *args, **kwargs))

    method.__signature__ = face_signature(op, "{}")  # type: ignore[attr-defined]
    return method


def iterating(
    op: Callable[Concatenate[Operations, P], Pages[T]],
) -> Callable[Concatenate[Any, P], Iterator[T]]:
    """A :class:`Client` method that iterates over the items ``op`` hands out."""

    @functools.wraps(op)
    def method(self: Client, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        yield from self._iterate(op(self._ops, *args, **kwargs))

    method.__signature__ = face_signature(op, "Iterator[{}]")  # type: ignore[attr-defined]
    return method


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
        super().__init__(base_url, api_key, timeout=timeout)
        self._ops = Operations(timeout, _clock, _uniform)
        self._sleep = _sleep
        self._http = httpx.Client(**self._http_options(transport))

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

    # -- the driver -------------------------------------------------------------------------

    def _call(self, op: Call[T]) -> T:
        reply: Any = None
        while True:
            try:
                effect = op.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply = self._perform(effect)

    def _iterate(self, op: Pages[T]) -> Iterator[T]:
        reply: Any = None
        while True:
            try:
                effect = op.send(reply)
            except StopIteration:
                return
            if isinstance(effect, Emit):
                yield from effect.items
                reply = None
            else:
                reply = self._perform(effect)

    def _perform(self, effect: RequestSpec | Sleep) -> httpx.Response | None:
        if isinstance(effect, Sleep):
            self._sleep(effect.seconds)
            return None
        request = self._http.build_request(**effect.build_kwargs())
        for attempt in itertools.count(1):
            try:
                # Streamed, so an error here means no answer had arrived (see
                # retry_unanswered). A failure while reading the body below is not retried.
                response = self._http.send(request, stream=True)
                break
            except httpx.TransportError as exc:
                self._unanswered(effect, request, exc, attempt)
        try:
            response.read()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, request) from exc
        finally:
            response.close()
        log.debug("%s %s -> %s", request.method, request.url, response.status_code)
        return response

    # -- the calls (written once, in _operations.py) ----------------------------------------

    execute = blocking(Operations.execute)
    batch = blocking(Operations.batch)
    describe = blocking(Operations.describe)
    wait = blocking(Operations.wait)
    cancel = blocking(Operations.cancel)
    result_page = blocking(Operations.result_page)
    result = iterating(Operations.result)
    rows = iterating(Operations.rows)
    result_arrow = iterating(Operations.result_arrow)
    result_table = blocking(Operations.result_table)
    result_csv = iterating(Operations.result_csv)
    list = iterating(Operations.list)
    warehouses = blocking(Operations.warehouses)
    databases = blocking(Operations.databases)
    schemas = blocking(Operations.schemas)
    tables = blocking(Operations.tables)
    describe_table = blocking(Operations.describe_table)
    health = blocking(Operations.health)
    put_events = blocking(Operations.put_events)
    put_event = blocking(Operations.put_event)
    events = iterating(Operations.events)
    put_rule = blocking(Operations.put_rule)
    rule = blocking(Operations.rule)
    rules = blocking(Operations.rules)
    delete_rule = blocking(Operations.delete_rule)
    put_topic = blocking(Operations.put_topic)
    topic = blocking(Operations.topic)
    topics = blocking(Operations.topics)
    delete_topic = blocking(Operations.delete_topic)
    deliveries = blocking(Operations.deliveries)
    dead_letters = blocking(Operations.dead_letters)
    redrive = blocking(Operations.redrive)
    list_workflows = blocking(Operations.list_workflows)
    start_execution = blocking(Operations.start_execution)
    get_execution = blocking(Operations.get_execution)
    wait_execution = blocking(Operations.wait_execution)
    list_executions = iterating(Operations.list_executions)
    execution_history = blocking(Operations.execution_history)
    stop_execution = blocking(Operations.stop_execution)
    succeed_callback = blocking(Operations.succeed_callback)
    fail_callback = blocking(Operations.fail_callback)
    heartbeat_callback = blocking(Operations.heartbeat_callback)
