"""What every call of the client shares: the effects it yields (:class:`Sleep`,
:class:`Emit`), paging, building requests and reading answers (docs/adr/0005-one-client.md)."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeAlias, TypeVar
from urllib.parse import quote

import httpx
import orjson

from sqltide.client._base import (
    NEXT_TOKEN_HEADER,
    RequestSpec,
    error_from_response,
    http_error,
)
from sqltide.client.models import (
    Execution,
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
