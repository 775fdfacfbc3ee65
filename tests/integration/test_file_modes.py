"""Everything sqltide keeps on disk is its user's alone (0600 files, 0700 folders), whatever
the umask: the state database and its journals, the warehouse and its WAL, result files, the
home folder and the credentials file."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from conftest import make_settings
from sqltide.client import Client
from sqltide.files import write_private
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

DEADLINE_S = 30.0


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def modes_under(home: Path) -> dict[str, int]:
    """The mode of ``home`` and of every file and folder under it, by relative path."""
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for path in home.rglob("*"):
        found[path.relative_to(home).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


def loose(modes: dict[str, int], home: Path) -> dict[str, str]:
    return {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (home / name).is_dir() else 0o600)
    }


def test_everything_under_home_is_owner_only(tmp_path: Path, umask: int) -> None:
    # every result in a file; alice may use the default warehouse
    settings = make_settings(tmp_path, result_inline_bytes=0, default_grants="default")
    home = settings.home_dir
    with Runtime.build(settings) as runtime, ServerThread(runtime) as server:
        key = create_key(runtime.store, "alice")[1]
        with Client(server.url, key) as client:
            made = client.wait(
                client.execute("CREATE TABLE t AS SELECT range AS n FROM range(1000)").id,
                timeout=DEADLINE_S,
            )
            assert made.status == "FINISHED", made.error
            read = client.wait(client.execute("SELECT n FROM t").id, timeout=DEADLINE_S)
            assert read.status == "FINISHED", read.error
            assert len(list(client.rows(read.id))) == 1000
        write_private(home / "credentials", "stk_secret\n")  # as `sqltide serve` does
        modes = modes_under(home)
        # while it runs: the journals and the WAL exist, as do the result files
        for name in ("state.db", "state.db-wal", "state.db-shm", "warehouse.duckdb"):
            assert name in modes, sorted(modes)
        assert "warehouse.duckdb.wal" in modes, sorted(modes)
        assert any(n.startswith("files/") and (home / n).is_file() for n in modes), modes
        assert loose(modes, home) == {}
    assert loose(modes_under(home), home) == {}


def test_looser_files_are_tightened_at_open_with_one_warning(
    tmp_path: Path, umask: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path)
    home = settings.home_dir
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    sqlite3.connect(home / "state.db").close()
    duckdb.connect(str(home / "warehouse.duckdb")).close()
    (home / "credentials").write_text("stk_secret\n")
    (home / "files").mkdir()
    for path in [home / "state.db", home / "warehouse.duckdb", home / "credentials"]:
        os.chmod(path, 0o644)
    os.chmod(home / "files", 0o755)
    with caplog.at_level(logging.WARNING, logger="sqltide.files"):
        with Runtime.build(settings):
            pass
        assert loose(modes_under(home), home) == {}
        for path in [home / "state.db", home / "warehouse.duckdb", home / "credentials"]:
            os.chmod(path, 0o644)
        with Runtime.build(settings):  # loosened again: tightened again, but said once only
            pass
    assert loose(modes_under(home), home) == {}
    warned = [
        r.getMessage().split(" was accessible to other users")[0]
        for r in caplog.records
        if "owner-only" in r.getMessage()
    ]
    expected = [home, *(home / n for n in ["state.db", "warehouse.duckdb", "credentials", "files"])]
    assert sorted(warned) == sorted(str(p) for p in expected)


def test_write_private_makes_its_folder_and_file_owner_only(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "new" / "deeper" / "credentials"
    write_private(path, "first\n")
    write_private(path, "second\n")
    assert path.read_text() == "second\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
