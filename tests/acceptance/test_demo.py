"""The README as a user meets it: ``sqltide demo`` (the NYC taxi ELT pipeline, end to end),
``sqltide demo statements``, then ``sqltide serve`` and the CLI.

Everything here runs ``sqltide`` in new processes with a temporary ``SQLTIDE_HOME`` and
``HOME``, and checks what a user sees: exit codes, printed output, files written.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from helpers import ServeProcess, clean_env, run_cli, wait_for
from sqltide.server import free_port

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
KEY = r"stk_[0-9a-f]{8}_[A-Za-z0-9_-]+"
LONG_SQL = "SELECT count(*) FROM range(10000000000000)"


def user_env(tmp: Path, **more: str) -> dict[str, str]:
    """A user's environment: their own HOME and SQLTIDE_HOME, nothing else of sqltide's.

    COLUMNS keeps Rich from laying tables out for 80 columns (its width when stdout is not a
    terminal), which would cut statement ids short in ``statements list``.
    """
    (tmp / "user").mkdir(exist_ok=True)
    return clean_env(
        HOME=str(tmp / "user"),
        SQLTIDE_HOME=str(tmp / "sqltide-home"),
        COLUMNS="200",
        PYTHONIOENCODING="utf-8",
        **more,
    )


def flat(text: str) -> str:
    """Output with every run of whitespace as one space (Rich wraps long lines)."""
    return " ".join(text.split())


def assert_clean_failure(done: subprocess.CompletedProcess[str]) -> str:
    """Exit status 1 and an error message, not a traceback; returns stdout + stderr."""
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out, out
    return out


# -- sqltide demo ----------------------------------------------------------------------------
def sqltide_command() -> list[str]:
    if Path(sys.executable).with_name("sqltide").exists():
        return [str(Path(sys.executable).with_name("sqltide"))]
    return [sys.executable, "-m", "sqltide.cli"]


def run_demo(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``sqltide demo ARGS`` as the README's first command runs it: the installed script."""
    return subprocess.run(
        [*sqltide_command(), "demo", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=180,
        check=False,
    )


def test_the_elt_demo_runs_the_pipeline_end_to_end(tmp_path: Path) -> None:
    """The README's first command: schedule -> SQL -> status event -> rule -> topic -> mail."""
    env = user_env(tmp_path)
    done = run_demo(tmp_path, env, "--rows", "30000")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "Traceback" not in out and "UNEXPECTED" not in out, out
    text = flat(out)
    assert "Demo finished: every hand-off went as expected" in text, out

    # each hand-off is printed, in the order the pipeline makes them
    steps = [
        r"schedule rule nyc-taxi-elt-schedule fired: Scheduled Event " + UUID,
        r"rule rule nyc-taxi-elt-schedule -> run-elt: statement " + UUID + " submitted",
        r"statement nyc-taxi-elt " + UUID + r" STARTED on warehouse default \(a batch of 4",
        r"statement nyc-taxi-elt FINISHED in [0-9.]+s",
        r"event Redshift Data Statement Status Change: state FINISHED, rows \d+, principal "
        r"arn:aws:sts::000000000000:assumed-role/elt-role/nyc-taxi-elt",
        r"rule rule nyc-taxi-elt-completed -> mail: message published: "
        r"'Extract Load Transform process FINISHED in sqltide'",
        r"topic rule nyc-taxi-elt-completed -> mail/nyc-taxi-elt-status/data-team: e-mail "
        r"handed to the SMTP server",
        r"mail the mail catcher received 'Extract Load Transform process FINISHED in sqltide' "
        r"for data-team@example.com",
    ]
    positions = []
    for step in steps:
        found = re.search(step, text)
        assert found, (step, out)
        positions.append(found.start())
    assert positions[:4] == sorted(positions[:4]), out

    # the demo's folder is kept, under SQLTIDE_HOME, so the mail can be read afterwards
    home = tmp_path / "sqltide-home" / "demo"
    [mail_file] = sorted((home / "mail").glob("*.eml"))
    assert f"cat {mail_file}" in text, out
    mail = email.message_from_bytes(mail_file.read_bytes(), policy=email.policy.default)
    assert mail["Subject"] == "Extract Load Transform process FINISHED in sqltide"
    assert mail["To"] == "data-team@example.com"
    body = json.loads(mail.get_body(preferencelist=("plain",)).get_content())
    assert body["state"] == "FINISHED" and body["statementName"] == "nyc-taxi-elt"
    assert body["principal"] == "arn:aws:sts::000000000000:assumed-role/elt-role/nyc-taxi-elt"
    assert "ok 30,000 trips in the aggregate, as generated" in text, out
    assert (home / "data" / "nyc_yellow_taxi_raw.psv").exists()
    assert not (tmp_path / "user" / ".sqltide").exists()

    # run again: the folder is emptied and the run starts afresh
    again = run_demo(tmp_path, env, "--rows", "1000")
    assert again.returncode == 0, again.stdout + again.stderr
    assert [p.name for p in (home / "mail").glob("*.eml")] == ["0001.eml"]


def test_the_demo_does_not_empty_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    done = run_cli("demo", "--home", str(precious), env=user_env(tmp_path), cwd=tmp_path)
    out = assert_clean_failure(done)
    assert "is not empty and not a demo folder" in flat(out), out
    assert (precious / "keep.txt").read_text() == "mine"


def test_the_statements_demo_runs_every_step_as_expected(tmp_path: Path) -> None:
    env = user_env(tmp_path)
    done = run_demo(tmp_path, env, "statements", "--rows", "200000")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    text = flat(out)
    assert "Traceback" not in out, out
    assert "Demo finished: every step went as expected" in text, out
    assert "UNEXPECTED" not in out, out
    assert len(re.findall(r"^\s*ok ", done.stdout, re.M)) == 6, out  # one check per step 1-6

    # 1. the load batch
    assert "ok batch FINISHED" in text, out
    # 2. the parameterised query: 12 months of cash trips
    assert re.search(r"ok FINISHED, 12 rows", text), out
    # 3. the long statement, polled
    assert re.search(r"ok went SUBMITTED -> (STARTED -> )?FINISHED", text), out
    # 4. the cancel
    assert re.search(rf"{UUID} is STARTED; cancelling", text), out
    assert "ok ended ABORTED" in text, out
    # 5. the failing batch, rolled back whole
    assert re.search(r"FAILED: .*no_such_table.*rolled back", text), out
    assert "SQLSTATE 42P01" in text, out
    assert "ok trips still has 200,000 rows" in text, out
    # 6. the client token gives back the same statement
    assert re.search(rf"ok both submissions are statement {UUID}", text), out
    # 7. the list of everything it did
    for name, status in [
        ("demo-load", "FINISHED"),
        ("demo-monthly", "FINISHED"),
        ("demo-long", "FINISHED"),
        ("demo-cancel", "ABORTED"),
        ("demo-rollback", "FAILED"),
    ]:
        assert re.search(rf"{name}\W+{status}\b", out), (name, out)

    # the demo keeps its data in a temporary home and removes it; the user's are untouched
    home = re.search(r"files in (\S+)", out)
    assert home is not None, out
    assert not Path(home.group(1)).exists()
    assert not (tmp_path / "sqltide-home").exists()
    assert not (tmp_path / "user" / ".sqltide").exists()


# -- sqltide serve + the CLI against it --------------------------------------------------------
@dataclass
class Served:
    server: ServeProcess
    env: dict[str, str]  # a user's environment pointing at the server (SQLTIDE_URL)
    tmp: Path

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env={**self.env, **env}, cwd=self.tmp)

    def ok(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = self.cli(*args, **env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("user-path")
    env = user_env(tmp)
    server = ServeProcess(
        Path(env["SQLTIDE_HOME"]),
        tmp / "serve.log",
        {"HOME": env["HOME"], "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"},
    )
    try:
        server.wait_healthy()
        yield Served(server, {**env, "SQLTIDE_URL": server.url}, tmp)
    finally:
        server.close()


def test_first_start_prints_the_admin_key_and_saves_it_with_mode_600(served: Served) -> None:
    out = served.server.output()
    assert "API key created" in out, out
    shown = re.search(KEY, out)
    assert shown is not None, out
    credentials = Path(served.env["SQLTIDE_HOME"]) / "credentials"
    assert credentials.read_text().strip() == shown.group(0)
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert f"listening on {served.server.url}" in flat(out), out
    assert "Traceback" not in out, out


def test_sql_prints_a_table_csv_and_json_using_the_saved_key(served: Served) -> None:
    assert "SQLTIDE_API_KEY" not in served.env
    done = served.ok("sql", "SELECT 42 AS answer")
    assert re.search(r"\banswer\b", done.stdout), done.stdout
    assert re.search(r"\b42\b", done.stdout), done.stdout
    assert "FINISHED" in done.stderr

    done = served.ok("sql", "SELECT 42 AS answer, 'x,y' AS s", "--format", "csv")
    assert list(csv.reader(io.StringIO(done.stdout))) == [["answer", "s"], ["42", "x,y"]]

    done = served.ok("sql", "SELECT 42 AS answer, 'x' AS s", "--format", "json")
    assert [json.loads(line) for line in done.stdout.splitlines()] == [{"answer": 42, "s": "x"}]


def test_sql_binds_named_parameters(served: Served) -> None:
    done = served.ok(
        "sql", "SELECT :n * 2 AS doubled, :s AS s", "-p", "n=5", "-p", "s=abc", "--format", "json"
    )
    assert json.loads(done.stdout) == {"doubled": 10, "s": "abc"}


def test_sql_file_runs_a_script_as_one_batch(served: Served) -> None:
    script = served.tmp / "load.sql"
    script.write_text(
        "CREATE TABLE accept_t AS SELECT range AS x FROM range(3);\n"
        "INSERT INTO accept_t VALUES (10);\n"
        "SELECT sum(x)::BIGINT AS total, count(*) AS n FROM accept_t;\n"
    )
    done = served.ok("sql", "-f", str(script), "--no-wait")
    statement_id = done.stdout.strip()
    assert re.fullmatch(UUID, statement_id), done.stdout
    described = json.loads(served.ok("statements", "describe", statement_id, "--wait", "10").stdout)
    assert described["status"] == "FINISHED", described
    assert described["is_batch"] is True
    assert [s["status"] for s in described["sub_statements"]] == ["FINISHED"] * 3
    done = served.ok("statements", "result", f"{statement_id}:3", "--format", "json")
    assert json.loads(done.stdout) == {"total": 13, "n": 4}

    # waited for, it prints the result of the sub-statement that has one
    again = served.tmp / "again.sql"
    again.write_text("INSERT INTO accept_t VALUES (20);\nSELECT count(*) AS n FROM accept_t;\n")
    done = served.ok("sql", "-f", str(again), "--format", "json")
    assert json.loads(done.stdout) == {"n": 5}

    # one transaction: a failing statement rolls back the ones before it
    bad = served.tmp / "bad.sql"
    bad.write_text(
        "CREATE TABLE accept_rolled_back AS SELECT 1 AS x;\n"
        "INSERT INTO accept_t VALUES (30);\n"
        "SELECT * FROM accept_no_such_table;\n"
    )
    out = assert_clean_failure(served.cli("sql", "-f", str(bad)))
    assert "FAILED" in out and "accept_no_such_table" in out, out
    done = served.ok("sql", "SELECT count(*) AS n FROM accept_t", "--format", "json")
    assert json.loads(done.stdout) == {"n": 5}
    out = assert_clean_failure(served.cli("sql", "SELECT * FROM accept_rolled_back"))
    assert "42P01" in out, out


def test_failing_sql_exits_1_with_sqlstate_and_position(served: Served) -> None:
    out = flat(assert_clean_failure(served.cli("sql", "SELECT * FROM no_such_table")))
    assert "FAILED" in out, out
    assert "position 15" in out, out
    assert "SQLSTATE 42P01" in out, out
    assert "no_such_table" in out, out

    out = flat(assert_clean_failure(served.cli("sql", "SELEC 1")))
    assert "FAILED" in out and "SQLSTATE 42601" in out, out


def test_no_wait_then_describe_result_and_list(served: Served) -> None:
    done = served.ok("sql", "SELECT 7 AS seven", "--no-wait", "--name", "accept-nowait")
    statement_id = done.stdout.strip()
    assert re.fullmatch(UUID, statement_id), done.stdout

    described = json.loads(served.ok("statements", "describe", statement_id, "--wait", "10").stdout)
    assert described["id"] == statement_id
    assert described["status"] == "FINISHED", described
    assert described["statement_name"] == "accept-nowait"
    assert described["result_rows"] == 1

    done = served.ok("statements", "result", statement_id)
    assert re.search(r"\bseven\b", done.stdout) and re.search(r"\b7\b", done.stdout), done.stdout
    done = served.ok("statements", "result", statement_id, "--format", "csv")
    assert list(csv.reader(io.StringIO(done.stdout))) == [["seven"], ["7"]]

    done = served.ok("statements", "list")
    assert re.search(rf"{statement_id}\W+FINISHED\W+accept-nowait\b", done.stdout), done.stdout
    done = served.ok("statements", "list", "--name-prefix", "accept-nowait", "--status", "FINISHED")
    assert re.findall(UUID, done.stdout) == [statement_id], done.stdout


def test_cancel_a_running_statement(served: Served) -> None:
    statement_id = served.ok("sql", LONG_SQL, "--no-wait").stdout.strip()
    assert re.fullmatch(UUID, statement_id)

    def started() -> bool:
        status = json.loads(served.ok("statements", "describe", statement_id).stdout)["status"]
        assert status in ("SUBMITTED", "PICKED", "STARTED"), status
        return status == "STARTED"

    wait_for(f"{statement_id} to start", started, timeout=15)
    done = served.ok("statements", "cancel", statement_id)
    assert re.search(rf"{statement_id}\W+(ABORTED|STARTED)", done.stdout), done.stdout

    described = json.loads(served.ok("statements", "describe", statement_id, "--wait", "10").stdout)
    assert described["status"] == "ABORTED", described
    assert described["error"]["code"] == "cancelled"

    out = assert_clean_failure(served.cli("statements", "result", statement_id))
    assert "statement_failed" in out, out
    out = assert_clean_failure(served.cli("statements", "cancel", statement_id))
    assert "invalid_state" in out, out


def test_keys_create_list_revoke(served: Served) -> None:
    admins = served.ok("sql", "SELECT 'admin' AS who", "--no-wait").stdout.strip()

    done = served.ok("keys", "create", "bob", "--name", "bobs laptop", "--warehouse", "default")
    assert "granted 'bob' warehouse(s) default, read_write" in done.stderr, done.stderr
    bob_key = done.stdout.strip()
    assert re.fullmatch(KEY, bob_key), done.stdout
    made = re.search(r"key (\w+) for principal 'bob'", done.stderr)
    assert made is not None, done.stderr
    key_id = made.group(1)
    assert bob_key.startswith(f"stk_{key_id}_")

    listed = served.ok("keys", "list").stdout
    assert re.search(rf"{key_id}\W+bob\W+bobs laptop", listed), listed
    assert bob_key not in listed and bob_key.split("_")[-1] not in listed

    # bob's key works, for bob's statements only
    done = served.ok("sql", "SELECT 'bob' AS who", "--format", "json", "--api-key", bob_key)
    assert json.loads(done.stdout) == {"who": "bob"}
    bobs = served.ok("sql", "SELECT 1 AS one", "--no-wait", SQLTIDE_API_KEY=bob_key).stdout.strip()
    out = assert_clean_failure(served.cli("statements", "describe", admins, "--api-key", bob_key))
    assert "statement_not_found" in out, out
    out = assert_clean_failure(served.cli("statements", "result", admins, "--api-key", bob_key))
    assert "statement_not_found" in out, out
    out = assert_clean_failure(served.cli("statements", "cancel", admins, "--api-key", bob_key))
    assert "statement_not_found" in out, out
    listed = served.ok("statements", "list", "--api-key", bob_key).stdout
    assert bobs in listed and admins not in listed, listed

    # revoked: refused within the server's 2 s cache of verified keys
    done = served.ok("keys", "revoke", key_id)
    assert key_id in done.stdout

    def refused() -> str | None:
        done = served.cli("sql", "SELECT 1", "--api-key", bob_key)
        if done.returncode == 0:
            return None
        return assert_clean_failure(done)

    out = str(wait_for("the revoked key to be refused", refused, timeout=10))
    assert "unauthorized" in out, out
    listed = served.ok("keys", "list").stdout
    revoked_row = next(line for line in listed.splitlines() if key_id in line)
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", revoked_row)) == 2, revoked_row
    out = assert_clean_failure(served.cli("keys", "revoke", key_id))
    assert "no active key" in out, out
    # the admin key still works
    served.ok("statements", "describe", admins)


def test_no_key_is_refused_clearly(served: Served, tmp_path: Path) -> None:
    out = assert_clean_failure(
        served.cli("sql", "SELECT 1", SQLTIDE_HOME=str(tmp_path / "no-credentials"))
    )
    assert "unauthorized" in out, out


def test_wrong_server_url_is_a_connection_error(served: Served) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["sql", "SELECT 1"], ["statements", "list"], ["statements", "describe", "x"]):
        out = flat(assert_clean_failure(served.cli(*args, "--url", url)))
        assert "connection_failed" in out and "Could not connect" in out, out
        assert url in out, out


def test_a_second_serve_on_the_same_home_fails_cleanly(served: Served) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sqltide.cli", "serve", "--port", str(free_port())],
        env=served.env,
        cwd=served.tmp,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    out = flat(assert_clean_failure(done))
    assert "DuckDB" in out and "warehouse.duckdb" in out, out
    assert "one process only" in out and "another sqltide" in out, out
    assert "listening on" not in out, out
    # the first server is unharmed
    assert httpx.get(served.server.url + "/health", timeout=5).status_code == 200
    served.ok("sql", "SELECT 1 AS one")
