"""A JSON response rendered with orjson (several times faster than the standard library)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


#: How a stored field that cannot be written as JSON is shown (a lone surrogate, an integer
#: wider than 64 bits or nesting past 255 levels, as an older version without today's input
#: checks could record). The rest of the item is shown as usual; the item is logged once.
UNRENDERABLE = "<unrenderable>"

logger = logging.getLogger(__name__)
_reported: set[tuple[str, str]] = set()


def renderable(item: dict[str, Any], *, kind: str, ident: str) -> dict[str, Any]:
    """``item``, or a copy with each field orjson cannot write replaced by :data:`UNRENDERABLE`.

    One bad row must not make every answer that holds it fail (a list would answer 500 for
    as long as the row is kept).
    """
    try:
        orjson.dumps(item)
        return item
    except TypeError:  # orjson.JSONEncodeError is one
        pass
    out: dict[str, Any] = {}
    bad: list[str] = []
    for key, value in item.items():
        try:
            orjson.dumps(value)
            out[key] = value
        except TypeError:
            out[key] = UNRENDERABLE
            bad.append(key)
    if (kind, ident) not in _reported:
        if len(_reported) >= 10_000:  # bounded: an old bad row may be logged again later
            _reported.clear()
        _reported.add((kind, ident))
        logger.warning(
            "%s %s has stored field(s) that cannot be shown as JSON (%s); showing %r instead",
            kind,
            ident,
            ", ".join(bad),
            UNRENDERABLE,
        )
    return out


def items_fragment(items: list[dict[str, Any]], *, kind: str, id_key: str = "id") -> Any:
    """A list of items as one pre-rendered JSON fragment (written once when all are fine;
    item by item through :func:`renderable` when one is not)."""
    try:
        return orjson.Fragment(orjson.dumps(items))
    except TypeError:
        pass
    fixed = [renderable(i, kind=kind, ident=str(i.get(id_key))) for i in items]
    return orjson.Fragment(orjson.dumps(fixed))
