"""PostgreSQL connection strings for the store and its wake-up transport.

Apart from ``postgres.py`` so that ``pg_notify.py`` and ``postgres.py`` do not import each other.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .. import errors


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{host}"
        query = parts.query
        if "password" in query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "<unparsable URL>"


def conninfo_for(url: str, **defaults: Any) -> str:
    """libpq connection string for a ``postgresql://`` or ``postgres://`` URL.

    ``defaults`` apply unless the URL sets them. Raises ``ConfigError`` for a malformed URL.
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise errors.ConfigError(f"invalid PostgreSQL URL {redact(url)}: {exc}") from exc
    for key, value in defaults.items():
        params.setdefault(key, value)
    return make_conninfo("", **params)
