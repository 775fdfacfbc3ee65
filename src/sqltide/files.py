"""Owner-only files and folders: what sqltide keeps on disk is readable by its user alone.

The state database holds API key hashes and the token-signing secret, result files hold every
principal's rows, and the credentials file holds the admin key; none of them may be readable
by other users of the machine. Modes are set explicitly rather than through ``os.umask``, which
is process-wide and would change what a host application creates too: files are created
``0600`` and folders ``0700``, and an existing one with group or other bits is tightened when
sqltide opens it (with a warning, once per path, since someone may have loosened it on purpose).

Files a library creates (SQLite's ``-wal``/``-shm``, DuckDB's database and ``.wal``) are made
first with the right mode where the library accepts that (SQLite takes an empty file, and copies
its mode to the journals), or tightened right after (DuckDB refuses an empty file and makes its
WAL with the umask's mode).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

#: Mode of every file sqltide creates.
PRIVATE_FILE = 0o600
#: Mode of every folder sqltide creates.
PRIVATE_DIR = 0o700

_warned: set[str] = set()
_warned_lock = threading.Lock()


def tighten(path: str | os.PathLike[str], *, warn: bool = True) -> bool:
    """Take group and other permissions off ``path`` if it has any; whether it had.

    A missing path is not an error (a WAL may come and go at any moment). The owner's own bits
    are kept, so a read-only file stays read-only. ``warn=False`` for files a library has just
    made with the umask's mode (nobody loosened those on purpose).
    """
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return False
    if not mode & 0o077:
        return False
    try:
        os.chmod(path, mode & 0o700)
    except PermissionError:  # another user's file: say so, but it may still be usable
        logger.warning(
            "%s is accessible to other users (mode %o) and not ours to change", path, mode
        )
        return False
    key = os.fspath(path)
    with _warned_lock:
        first = key not in _warned
        _warned.add(key)
    if first and warn:
        logger.warning(
            "%s was accessible to other users (mode %o); made it owner-only (mode %o)",
            key,
            mode,
            mode & 0o700,
        )
    return True


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Make the folder ``path`` (and any missing parents) owner-only; tighten it if it exists.

    Parents that already exist are left alone (they may be ``/srv`` or a user's home); parents
    made here are ``0700`` too, since ``mkdir(parents=True)`` would give them the umask's mode.
    """
    folder = Path(path)
    missing: list[Path] = []
    for p in (folder, *folder.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by another thread meanwhile
            p.mkdir(mode=PRIVATE_DIR)
        # mkdir's mode is masked by the umask: a umask without owner bits set is harmless
        # here, but one that removes them (e.g. 0o277) would leave a folder we cannot use.
        os.chmod(p, PRIVATE_DIR)
    tighten(folder)
    return folder


def private_file(path: str | os.PathLike[str]) -> Path:
    """Make sure the file ``path`` exists and is owner-only: created empty with ``0600``.

    For files a library opens afterwards (SQLite's database): made by us first, it gets our
    mode; an existing one is tightened.
    """
    file = Path(path)
    if not file.parent.exists():
        private_dir(file.parent)
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        tighten(file)
    else:
        os.close(fd)
        os.chmod(file, PRIVATE_FILE)  # the umask may have taken owner bits off
    return file


def write_private(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path``, owner-only before the first byte is written."""
    file = private_file(path)
    fd = os.open(file, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return file
