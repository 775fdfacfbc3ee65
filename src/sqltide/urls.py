"""Backend URLs: ``scheme:///path`` in the SQLAlchemy convention (four slashes = absolute)."""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any

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
