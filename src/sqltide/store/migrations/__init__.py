"""Numbered schema migrations, one folder per store dialect: ``NNNN_name.sql``."""

from __future__ import annotations

from importlib import resources


def migration_files(dialect: str) -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every migration for ``dialect``, in order."""
    folder = resources.files(__package__).joinpath(dialect)
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)
