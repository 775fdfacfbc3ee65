"""Backend URLs: ``scheme:///path`` in the SQLAlchemy convention (four slashes = absolute)."""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import ConfigError


def scheme_of(url: str) -> str:
    if "://" not in url:
        raise ConfigError(f"not a backend URL: {url!r} (expected e.g. 'duckdb:///path.db')")
    return url.split("://", 1)[0].lower()


def path_of(url: str) -> str:
    """The path part of a ``scheme:///path`` URL (``:memory:`` passes through)."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        raise ConfigError(f"{url!r}: expected '{scheme_of(url)}:///path' (three slashes)")
    path = rest[1:]
    if path in ("", ":memory:"):
        return ":memory:"
    return str(Path(path).expanduser())


def unknown_scheme(kind: str, scheme: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(scheme, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        f"unknown {kind} URL scheme {scheme!r}; known: {', '.join(sorted(known))}.{hint}"
    )


def implementation_for(kind: str, url: str, implementations: dict[str, str]) -> Any:
    """The class serving ``url`` among ``{"scheme": "module:Class"}``, imported only now."""
    scheme = scheme_of(url)
    target = implementations.get(scheme)
    if target is None:
        raise unknown_scheme(kind, scheme, list(implementations))
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def redact_url(url: str) -> str:
    """``url`` with any password (in the user part or a ``password=`` query) shown as ``***``.

    The one function that prints or logs a backend URL. A URL with nothing to hide comes back
    exactly as given (rebuilding it would drop the slashes of ``sqlite:////abs/path``).
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        secret_in_user = "@" in netloc and ":" in netloc.rsplit("@", 1)[0]
        secret_in_query = "password" in parts.query
        if not (secret_in_user or secret_in_query):
            return url
        if secret_in_user:
            userinfo, host = netloc.rsplit("@", 1)
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
        query = parts.query
        if secret_in_query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "<unparsable URL>"
