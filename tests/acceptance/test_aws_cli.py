"""The AWS CLI (``awscli`` from PyPI, unchanged) against ``sqltide serve``: the Data API face
as a user meets it from a shell.

A real ``sqltide serve`` runs in a new process on a temporary ``SQLTIDE_HOME``; the key and its
AWS credentials come from the real ``sqltide keys create --aws``, parsed from what it prints;
every ``aws redshift-data ...`` is a new process of the CLI with an environment of its own (no
``~/.aws`` of the machine's, no instance metadata), pointed at the server by
``AWS_ENDPOINT_URL_REDSHIFT_DATA`` or by ``--endpoint-url``.

The CLI v1 on PyPI exits with 255 for any error the service answers (v2 says 254); its message
on stderr names the exception, as ``An error occurred (<__type>) when calling ...``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import ServeProcess, clean_env, run_cli

PROFILE = re.compile(
    r"^\[sqltide\]\naws_access_key_id = (ASQT[A-Z2-7]{16})\naws_secret_access_key = (\S{40})$",
    re.MULTILINE,
)
KEY = re.compile(r"^stk_[0-9a-f]{8}_[A-Za-z0-9_-]+$", re.MULTILINE)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: The CLI v1's exit status for an error answered by the service (or by the CLI itself).
CLI_ERROR = 255


@dataclass
class Served:
    server: ServeProcess
    tmp: Path
    bearer: str  # the key of ``keys create``, for /v1
    access_key_id: str
    secret: str
    profile_file: Path  # the printed profile, saved as a credentials file

    def aws(
        self, *args: str, endpoint: str = "variable", **env: str
    ) -> subprocess.CompletedProcess[str]:
        """``aws ARGS`` in a new process; ``endpoint`` says how it finds the server:
        ``"variable"`` (AWS_ENDPOINT_URL_REDSHIFT_DATA) or ``"option"`` (--endpoint-url)."""
        base = {
            "HOME": str(self.tmp / "user"),
            # never the machine's files: only what this test gives
            "AWS_CONFIG_FILE": str(self.tmp / "no-such-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.tmp / "no-such-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
        }
        options: list[str] = []
        if endpoint == "variable":
            base["AWS_ENDPOINT_URL_REDSHIFT_DATA"] = self.server.url
        else:
            options = ["--endpoint-url", self.server.url]
        full = {k: v for k, v in clean_env().items() if not k.startswith("AWS_")}
        full.update(base)
        full.update(env)
        for name in [k for k, v in full.items() if v == ""]:
            del full[name]  # env NAME="" removes a variable
        return subprocess.run(
            [sys.executable, "-m", "awscli", *options, "redshift-data", *args],
            env=full,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, **kw: Any) -> dict[str, Any]:
        done = self.aws(*args, **kw)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stderr == "", done.stderr
        out: dict[str, Any] = json.loads(done.stdout)
        return out

    def failure(self, *args: str, **kw: Any) -> str:
        """Run a command that must fail as the CLI fails a service error; its stderr."""
        done = self.aws(*args, **kw)
        assert done.returncode == CLI_ERROR, done.stdout + done.stderr
        assert done.stdout == "", done.stdout
        assert "Traceback" not in done.stderr, done.stderr
        return done.stderr

    def finished(self, statement_id: str) -> dict[str, Any]:
        """describe-statement, long-polling, until the statement has ended."""
        for _ in range(5):
            desc = self.ok("describe-statement", "--id", statement_id, "--wait-time-seconds", "20")
            if desc["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                return desc
        raise AssertionError(f"statement {statement_id} did not end: {desc}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("aws-cli")
    (tmp / "user").mkdir()
    env = clean_env(
        HOME=str(tmp / "user"),
        SQLTIDE_HOME=str(tmp / "sqltide-home"),
        COLUMNS="200",
        PYTHONIOENCODING="utf-8",
    )
    server = ServeProcess(Path(env["SQLTIDE_HOME"]), tmp / "serve.log", env)
    try:
        server.wait_healthy()
        made = run_cli("keys", "create", "etl", "--aws", "--warehouse", "default", env=env)
        assert made.returncode == 0, made.stdout + made.stderr
        profile = PROFILE.search(made.stdout)
        bearer = KEY.search(made.stdout)
        assert profile is not None and bearer is not None, made.stdout
        assert "arn:aws:iam::000000000000:user/etl" in made.stderr, made.stderr
        # The printed profile, pasted into a credentials file as the hint says.
        profile_file = tmp / "credentials"
        profile_file.write_text(profile.group(0) + "\n")
        yield Served(server, tmp, bearer.group(0), profile.group(1), profile.group(2), profile_file)
    finally:
        server.close()


def test_execute_describe_and_fetch_a_result(served: Served) -> None:
    submitted = served.ok(
        "execute-statement",
        "--workgroup-name",
        "default",
        "--database",
        "dev",
        "--sql",
        "SELECT 1 AS one, 'a''b' AS two, CAST(NULL AS INTEGER) AS three",
    )
    statement_id = submitted["Id"]
    assert re.fullmatch(UUID, statement_id), submitted
    assert submitted["WorkgroupName"] == "default" and submitted["Database"] == "dev", submitted

    desc = served.finished(statement_id)
    assert desc["Status"] == "FINISHED", desc
    assert desc["HasResultSet"] is True and desc["ResultRows"] == 1, desc
    assert desc["QueryString"].startswith("SELECT 1 AS one"), desc

    result = served.ok("get-statement-result", "--id", statement_id)
    assert result["TotalNumRows"] == 1, result
    assert result["Records"] == [[{"longValue": 1}, {"stringValue": "a'b"}, {"isNull": True}]]
    columns = [(c["name"], c["typeName"]) for c in result["ColumnMetadata"]]
    assert columns == [("one", "int4"), ("two", "varchar"), ("three", "int4")], result

    # One statement world: the same statement through /v1, with the same key's bearer token.
    v1 = httpx.get(
        f"{served.server.url}/v1/statements/{statement_id}",
        headers={"Authorization": f"Bearer {served.bearer}"},
        timeout=10,
    )
    assert v1.status_code == 200, v1.text
    assert v1.json()["status"] == "FINISHED", v1.text


def test_a_batch_then_list_statements_and_tables(served: Served) -> None:
    submitted = served.ok(
        "batch-execute-statement",
        "--workgroup-name",
        "default",
        "--database",
        "dev",
        "--statement-name",
        "cli-batch",
        "--sqls",
        "CREATE TABLE cli_orders (id INTEGER, item VARCHAR)",
        "INSERT INTO cli_orders VALUES (1, 'tea'), (2, 'milk')",
        "SELECT item FROM cli_orders ORDER BY id",
    )
    batch_id = submitted["Id"]
    desc = served.finished(batch_id)
    assert desc["Status"] == "FINISHED", desc
    subs = desc["SubStatements"]
    assert [s["Id"] for s in subs] == [f"{batch_id}:{n}" for n in (1, 2, 3)], desc
    assert [s["Status"] for s in subs] == ["FINISHED"] * 3, desc
    rows = served.ok("get-statement-result", "--id", f"{batch_id}:3")["Records"]
    assert rows == [[{"stringValue": "tea"}], [{"stringValue": "milk"}]]

    listed = served.ok("list-statements", "--statement-name", "cli-", "--status", "ALL")
    [mine] = listed["Statements"]
    assert mine["Id"] == batch_id and mine["IsBatchStatement"] is True, listed
    assert mine["StatementName"] == "cli-batch" and mine["Status"] == "FINISHED", listed
    assert len(mine["QueryStrings"]) == 3, listed

    tables = served.ok(
        "list-tables", "--workgroup-name", "default", "--database", "dev", "--table-pattern", "cli%"
    )
    assert [(t["schema"], t["name"], t["type"]) for t in tables["Tables"]] == [
        ("main", "cli_orders", "TABLE")
    ], tables


def test_the_printed_profile_and_endpoint_url_option_work(served: Served) -> None:
    """No endpoint variable, no keys in the environment: ``--endpoint-url`` and the profile
    exactly as ``keys create --aws`` printed it."""
    databases = served.ok(
        "list-databases",
        "--workgroup-name",
        "default",
        "--database",
        "dev",
        endpoint="option",
        AWS_ACCESS_KEY_ID="",
        AWS_SECRET_ACCESS_KEY="",
        AWS_SHARED_CREDENTIALS_FILE=str(served.profile_file),
        AWS_PROFILE="sqltide",
    )
    # The DuckDB file of the default warehouse is $SQLTIDE_HOME/warehouse.duckdb.
    assert "warehouse" in databases["Databases"], databases


def test_errors_are_the_services_exceptions(served: Served) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    err = served.failure("describe-statement", "--id", unknown)
    assert "An error occurred (ResourceNotFoundException)" in err, err
    assert "DescribeStatement" in err, err

    err = served.failure("list-statements", AWS_SECRET_ACCESS_KEY="x" * 40)
    assert "An error occurred (InvalidSignatureException)" in err, err
    assert "signature we calculated does not match" in err, err

    err = served.failure("execute-statement", "--workgroup-name", "no-such-wg", "--sql", "SELECT 1")
    assert "An error occurred (ValidationException)" in err, err
    assert "Redshift endpoint doesn't exist in this region." in err, err
