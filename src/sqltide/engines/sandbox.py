"""Which folders SQL on an embedded warehouse may touch, checked against sqltide's own files.

DuckDB runs inside the sqltide process, as its user: whatever folder its SQL may read is
readable by every API key that can run statements there. So a folder the operator allows
(``SQLTIDE_WAREHOUSE_ALLOWED_DIRS``) must not give away what sqltide keeps for itself: the
state database (key hashes, the token-signing secret, every principal's statements), the
credentials file (the admin key), the result storage (every principal's rows) and the
warehouse files (another warehouse's data). A folder that is one of these, holds one, or lies
inside the result storage is refused at start-up.

Anything else under ``SQLTIDE_HOME`` may be allowed: ``sqltide demo`` allows its ``data``
folder there, which holds only the generated trips.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..settings import Settings
from ..urls import path_of, scheme_of
from .transpile import split_dialect


def _real(path: str | Path) -> Path:
    # resolve() follows symlinks, so a link to the home folder is seen for what it is.
    return Path(path).expanduser().resolve()


def protected_paths(settings: Settings) -> dict[Path, str]:
    """sqltide's own files and folders, each with what it is (for the error message)."""
    protected = {_real(settings.credentials_path): "the credentials file (admin key)"}
    if scheme_of(settings.store_url) == "sqlite" and path_of(settings.store_url) != ":memory:":
        protected[_real(path_of(settings.store_url))] = "the state database"
    if scheme_of(settings.storage_url) == "file":
        protected[_real(path_of(settings.storage_url))] = "the result storage folder"
    for name, url in settings.warehouse_urls.items():
        url = split_dialect(url, name)[0]  # the file's path, without ?dialect=
        if scheme_of(url) == "duckdb" and path_of(url) != ":memory:":
            protected[_real(path_of(url))] = f"warehouse {name!r}'s database file"
    return protected


def allowed_dirs(settings: Settings) -> tuple[str, ...]:
    """The folders of ``SQLTIDE_WAREHOUSE_ALLOWED_DIRS``, absolute, once checked to be safe.

    Raises:
        ConfigError: a folder is, holds or lies inside one of sqltide's own files or folders.
    """
    protected = protected_paths(settings)
    storage = next((p for p, what in protected.items() if what.startswith("the result")), None)
    checked: list[str] = []
    for given in settings.warehouse_allowed_dirs:
        folder = _real(given)
        for path, what in protected.items():
            if folder == path or folder in path.parents:
                relation = "is" if folder == path else "holds"
                raise ConfigError(
                    f"SQLTIDE_WAREHOUSE_ALLOWED_DIRS: {given} {relation} {what} ({path}); SQL "
                    "could read or overwrite it with any API key. Allow a folder that holds "
                    "only the files SQL should see (for example a 'data' folder of its own)."
                )
        if storage is not None and storage in folder.parents:
            raise ConfigError(
                f"SQLTIDE_WAREHOUSE_ALLOWED_DIRS: {given} is inside the result storage folder "
                f"({storage}), which holds every principal's results. Allow a folder of its own."
            )
        checked.append(str(folder))
    return tuple(checked)
