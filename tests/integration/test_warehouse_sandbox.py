"""Through the real API, with an ordinary (non-admin) key: SQL on the embedded DuckDB warehouse
reaches no file but those in SQLTIDE_WAREHOUSE_ALLOWED_DIRS, installs and loads no extension,
and changes no setting. The targets are what an attacker wants: the credentials file (the
admin key), the state database (key hashes, the token-signing secret, other principals'
statements) and any path the server's user can write."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_settings
from sqltide.client import Client
from sqltide.files import write_private
from sqltide.runtime import Runtime
from sqltide.settings import Settings

DEADLINE_S = 30.0
ADMIN_KEY = "stk_adminkey_the-real-one-would-be-here"


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "trips.csv").write_text("id,city\n1,Lyon\n2,Oslo\n")
    return make_settings(
        tmp_path,
        store=store_url,
        warehouse_allowed_dirs=[allowed],
        default_grants="default",  # alice (not an admin) may use the default warehouse
    )


@pytest.fixture
def targets(runtime: Runtime, tmp_path: Path) -> dict[str, str]:
    home = runtime.settings.home_dir
    write_private(home / "credentials", ADMIN_KEY + "\n")
    return {
        "credentials": str(home / "credentials"),
        "state": str(home / "state.db"),  # exists on the SQLite store; denied either way
        "home": str(home),
        "outside": str(tmp_path / "outside"),
    }


# Every way DuckDB's SQL reads or writes a file, loads code, or changes its configuration.
ATTEMPTS = {
    "read_text": "SELECT content FROM read_text('{credentials}')",
    "read_blob": "SELECT content FROM read_blob('{state}')",
    "read_csv": "SELECT * FROM read_csv('{credentials}', header = false)",
    "read_csv_auto": "SELECT * FROM read_csv_auto('{credentials}')",
    "read_json": "SELECT * FROM read_json('{credentials}')",
    "read_parquet": "SELECT * FROM read_parquet('{state}')",
    "glob": "SELECT * FROM glob('{home}/*')",
    "call": "CALL read_text('{credentials}')",
    "copy_to": "COPY (SELECT 'pwned') TO '{outside}.csv'",
    "copy_to_home": "COPY (SELECT 'pwned') TO '{home}/planted.csv'",
    "copy_from": "COPY t FROM '{credentials}'",
    "attach": "ATTACH '{state}' AS state",
    "attach_new": "ATTACH '{outside}.duckdb' AS other",
    "export": "EXPORT DATABASE '{outside}'",
    "import": "IMPORT DATABASE '{home}'",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "load_file": "LOAD '{outside}.duckdb_extension'",
    "set": "SET enable_external_access = true",
    "set_dirs": "SET allowed_directories = ['/']",
    "reset": "RESET enable_external_access",
    "pragma": "PRAGMA threads = 1",
    "pragma_file": "PRAGMA profiling_output = '{outside}.txt'",
    "create_secret": "CREATE SECRET leak (TYPE s3, KEY_ID 'a', SECRET 'b')",
}


@pytest.mark.parametrize("name", ATTEMPTS)
def test_a_key_cannot_reach_files_extensions_or_settings(
    client: Client, targets: dict[str, str], tmp_path: Path, name: str
) -> None:
    made = client.wait(client.execute("CREATE TABLE t (line VARCHAR)").id, timeout=DEADLINE_S)
    assert made.status == "FINISHED", made.error
    sql = ATTEMPTS[name].format(**targets)
    done = client.wait(client.execute(sql).id, timeout=DEADLINE_S)
    assert done.status == "FAILED", (sql, done.status)
    assert done.error is not None and done.error["code"] == "permission_denied", done.error
    assert ADMIN_KEY not in str(done.error)
    assert not list(tmp_path.glob("outside*"))  # nothing was written outside
    assert not Path(targets["home"], "planted.csv").exists()
    rows = client.wait(client.execute("SELECT count(*) FROM t").id, timeout=DEADLINE_S)
    assert list(client.rows(rows.id)) == [[0]]  # nor read in


def test_the_allowed_folder_works_for_copy_and_read_csv(client: Client, settings: Settings) -> None:
    [allowed] = settings.warehouse_allowed_dirs
    for sql in [
        "CREATE TABLE trips (id INTEGER, city VARCHAR)",
        f"COPY trips FROM '{allowed}/trips.csv' (HEADER)",
        f"COPY (SELECT * FROM trips ORDER BY id) TO '{allowed}/copy.csv' (HEADER)",
    ]:
        done = client.wait(client.execute(sql).id, timeout=DEADLINE_S)
        assert done.status == "FINISHED", (sql, done.error)
    assert (allowed / "copy.csv").read_text() == "id,city\n1,Lyon\n2,Oslo\n"
    read = client.wait(
        client.execute(f"SELECT city FROM read_csv('{allowed}/copy.csv') ORDER BY id").id,
        timeout=DEADLINE_S,
    )
    assert read.status == "FINISHED", read.error
    assert list(client.rows(read.id)) == [["Lyon"], ["Oslo"]]


def test_a_denied_statement_in_a_batch_rolls_the_batch_back(
    client: Client, targets: dict[str, str]
) -> None:
    done = client.wait(
        client.batch(
            [
                "CREATE TABLE loot (line VARCHAR)",
                f"INSERT INTO loot SELECT content FROM read_text('{targets['credentials']}')",
            ]
        ).id,
        timeout=DEADLINE_S,
    )
    assert done.status == "FAILED"
    assert done.error is not None and done.error["code"] == "permission_denied", done.error
