"""The asyncio client (the same API as :class:`~sqltide.client.Client`, awaited): a driver of
:class:`~sqltide.client._operations.Operations`."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from sqltide.client._base import BaseClient, RequestSpec
from sqltide.client._operations import Operations, face_signature
from sqltide.client._wire import Call, Emit, Pages, Sleep

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def awaited(
    op: Callable[Concatenate[Operations, P], Call[T]],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """An :class:`AsyncClient` method that runs the operation ``op`` to its answer."""

    @functools.wraps(op)
    async def method(self: AsyncClient, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._call(op(self._ops, *args, **kwargs))

    method.__signature__ = face_signature(op, "{}")  # type: ignore[attr-defined]
    return method


def async_iterating(
    op: Callable[Concatenate[Operations, P], Pages[T]],
) -> Callable[Concatenate[Any, P], AsyncIterator[T]]:
    """An :class:`AsyncClient` method that iterates over the items ``op`` hands out."""

    @functools.wraps(op)
    async def method(self: AsyncClient, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        async for item in self._iterate(op(self._ops, *args, **kwargs)):
            yield item

    method.__signature__ = face_signature(op, "AsyncIterator[{}]")  # type: ignore[attr-defined]
    return method


class AsyncClient(BaseClient):
    """An asyncio client of the sqltide HTTP API.

    ``base_url`` defaults to ``$SQLTIDE_URL`` (else ``http://127.0.0.1:8765``); ``api_key`` to
    ``$SQLTIDE_API_KEY``, else the first line of ``$SQLTIDE_HOME/credentials``. Use it as an
    async context manager, or await :meth:`close`.

        async with AsyncClient() as client:
            statement = await client.wait((await client.execute("SELECT 42 AS answer")).id)
            rows = [row async for row in client.rows(statement.id)]
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        _sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        _clock: Callable[[], float] = time.monotonic,
        _uniform: Callable[[float, float], float] = random.uniform,
    ):
        super().__init__(base_url, api_key, timeout=timeout)
        self._ops = Operations(timeout, _clock, _uniform)
        self._sleep = _sleep
        self._http = httpx.AsyncClient(**self._http_options(transport))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    aclose = close

    # -- the driver -------------------------------------------------------------------------

    async def _call(self, op: Call[T]) -> T:
        reply: Any = None
        while True:
            try:
                effect = op.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply = await self._perform(effect)

    async def _iterate(self, op: Pages[T]) -> AsyncIterator[T]:
        reply: Any = None
        while True:
            try:
                effect = op.send(reply)
            except StopIteration:
                return
            if isinstance(effect, Emit):
                for item in effect.items:
                    yield item
                reply = None
            else:
                reply = await self._perform(effect)

    async def _perform(self, effect: RequestSpec | Sleep) -> httpx.Response | None:
        if isinstance(effect, Sleep):
            await self._sleep(effect.seconds)
            return None
        request = self._http.build_request(**effect.build_kwargs())
        for attempt in itertools.count(1):
            try:
                # Streamed, so an error here means no answer had arrived (see
                # retry_unanswered). A failure while reading the body below is not retried.
                response = await self._http.send(request, stream=True)
                break
            except httpx.TransportError as exc:
                self._unanswered(effect, request, exc, attempt)
        try:
            await response.aread()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, request) from exc
        finally:
            await response.aclose()
        log.debug("%s %s -> %s", request.method, request.url, response.status_code)
        return response

    # -- the calls (written once, in _operations.py) ----------------------------------------

    execute = awaited(Operations.execute)
    batch = awaited(Operations.batch)
    describe = awaited(Operations.describe)
    wait = awaited(Operations.wait)
    cancel = awaited(Operations.cancel)
    result_page = awaited(Operations.result_page)
    result = async_iterating(Operations.result)
    rows = async_iterating(Operations.rows)
    result_arrow = async_iterating(Operations.result_arrow)
    result_table = awaited(Operations.result_table)
    result_csv = async_iterating(Operations.result_csv)
    list = async_iterating(Operations.list)
    warehouses = awaited(Operations.warehouses)
    databases = awaited(Operations.databases)
    schemas = awaited(Operations.schemas)
    tables = awaited(Operations.tables)
    describe_table = awaited(Operations.describe_table)
    health = awaited(Operations.health)
    put_events = awaited(Operations.put_events)
    put_event = awaited(Operations.put_event)
    events = async_iterating(Operations.events)
    put_rule = awaited(Operations.put_rule)
    rule = awaited(Operations.rule)
    rules = awaited(Operations.rules)
    delete_rule = awaited(Operations.delete_rule)
    put_topic = awaited(Operations.put_topic)
    topic = awaited(Operations.topic)
    topics = awaited(Operations.topics)
    delete_topic = awaited(Operations.delete_topic)
    deliveries = awaited(Operations.deliveries)
    dead_letters = awaited(Operations.dead_letters)
    redrive = awaited(Operations.redrive)
    list_workflows = awaited(Operations.list_workflows)
    start_execution = awaited(Operations.start_execution)
    get_execution = awaited(Operations.get_execution)
    wait_execution = awaited(Operations.wait_execution)
    list_executions = async_iterating(Operations.list_executions)
    execution_history = awaited(Operations.execution_history)
    stop_execution = awaited(Operations.stop_execution)
    succeed_callback = awaited(Operations.succeed_callback)
    fail_callback = awaited(Operations.fail_callback)
    heartbeat_callback = awaited(Operations.heartbeat_callback)
