"""Checks for values that end up in an HTTP or SMTP header.

A line break in a header value ends the header: ``"x\\r\\nBcc: everyone@example.com"`` as an
e-mail address, or ``"1\\r\\nContent-Length: 0"`` as a webhook header value, would add
headers (or a whole request) of the caller's choosing. So the API refuses such values when a
target or subscription is created, and the senders refuse them again before anything is
sent (a stored value may predate the check).

Each function answers why a value is refused, or None when it is fine; callers turn the
answer into their own error (a 422 naming the field, a non-retryable delivery error).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_HEADERS", "email_address_problem", "header_problem", "headers_problem"]

#: Most extra headers one webhook target may set.
MAX_HEADERS = 32
_MAX_VALUE_CHARS = 4096
_MAX_NAME_CHARS = 256
#: RFC 9110's ``token``: what a header name is made of.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
#: Headers sqltide or the HTTP client sets: another value would break the request's framing
#: or routing, not add information.
_RESERVED = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
    }
)


def header_problem(name: Any, value: Any) -> str | None:
    """Why ``name: value`` cannot be sent as an HTTP request header, or None.

    >>> header_problem("X-Team", "data"), header_problem("X-Team", "a\\r\\nHost: evil")
    (None, 'the value of X-Team holds a control character (a line break)')
    """
    if not isinstance(name, str) or not _TOKEN.match(name) or len(name) > _MAX_NAME_CHARS:
        return f"{name!r} is not a header name (letters, digits and !#$%&'*+-.^_`|~)"
    if name.lower() in _RESERVED:
        return f"{name} is set by sqltide and the HTTP client, not by a target"
    if not isinstance(value, str):
        return f"the value of {name} must be a string"
    if len(value) > _MAX_VALUE_CHARS:
        return f"the value of {name} is longer than {_MAX_VALUE_CHARS} characters"
    for ch in value:
        if ch in "\r\n":
            return f"the value of {name} holds a control character (a line break)"
        if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            return f"the value of {name} holds a control character (U+{ord(ch):04X})"
        if ord(ch) > 0x7E:
            # HTTP/1.1 header values are sent as ASCII by the client
            return f"the value of {name} holds a character that is not ASCII (U+{ord(ch):04X})"
    return None


def headers_problem(headers: Any) -> tuple[str | None, str] | None:
    """Why a target's ``headers`` mapping cannot be sent: (the header's name, or None for
    the mapping as a whole; the reason), or None when every header is fine."""
    if headers is None:
        return None
    if not isinstance(headers, Mapping):
        return None, "a mapping of header names to strings"
    if len(headers) > MAX_HEADERS:
        return None, f"at most {MAX_HEADERS} headers"
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem:
            return (name if isinstance(name, str) else None), problem
    return None


def email_address_problem(address: Any) -> str | None:
    """Why ``address`` is not one bare e-mail address (``ops@example.com``), or None.

    Refused: anything with white space or a control or format character (CR and LF would
    start a new header; Unicode line separators count as line breaks to Python's e-mail
    package), a display name or list (``<>``, ``,``, ``;``, quotes, parentheses), and any
    address without exactly one ``@`` between a local part and a domain.

    >>> email_address_problem("ops@example.com"), email_address_problem("a@b\\nBcc: c@d")
    (None, 'holds a control character or white space (U+000A)')
    """
    if not isinstance(address, str) or not address:
        return "an e-mail address (a string)"
    if len(address) > 254:
        return "longer than 254 characters"
    for ch in address:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"holds a control character or white space (U+{ord(ch):04X})"
        if ch in '<>,;"()[]\\':
            return f"holds {ch!r}: give one bare address, without a display name"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "@" in local:
        return "not an e-mail address (local-part@domain)"
    if domain.startswith(".") or domain.endswith(".") or ".." in domain:
        return f"{domain!r} is not a domain"
    return None
