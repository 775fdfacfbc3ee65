"""Where sqltide keeps things on this machine: the one place that names the home and the
credentials file, for the server (through :class:`~sqltide.settings.Settings`) and for the
client alike (which reads no settings, only ``SQLTIDE_HOME``)."""

from __future__ import annotations

import os
from pathlib import Path

#: The home when ``SQLTIDE_HOME`` is not set.
DEFAULT_HOME = Path("~/.sqltide")


def credentials_file(home: Path | str) -> Path:
    """The file holding the API key `sqltide serve` made first (mode 600), under ``home``."""
    return Path(home).expanduser() / "credentials"


def home_from_env() -> Path:
    """``$SQLTIDE_HOME``, else :data:`DEFAULT_HOME`, as the client finds it."""
    return Path(os.environ.get("SQLTIDE_HOME") or DEFAULT_HOME).expanduser()
