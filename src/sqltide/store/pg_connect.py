"""PostgreSQL connection strings for the store and its wake-up transport.

Apart from ``postgres.py`` so that ``pg_wakeups.py`` and ``postgres.py`` do not import each other.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .. import errors
from ..urls import redact_url


def conninfo_for(url: str, **defaults: Any) -> str:
    """libpq connection string for a ``postgresql://`` or ``postgres://`` URL.

    ``defaults`` apply unless the URL sets them. Raises ``ConfigError`` for a malformed URL.
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise errors.ConfigError(f"invalid PostgreSQL URL {redact_url(url)}: {exc}") from exc
    for key, value in defaults.items():
        params.setdefault(key, value)
    return make_conninfo("", **params)
