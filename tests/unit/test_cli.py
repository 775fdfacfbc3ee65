"""The command line in-process (``typer.testing.CliRunner``): arguments, help, local commands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from sqltide import __version__
from sqltide.cli import _parse_params, app
from sqltide.server import free_port

# wide, so Rich's help panels do not wrap or cut option names and help texts
runner = CliRunner(env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result.exit_code, " ".join(result.output.split())


def commands() -> list[tuple[list[str], Any]]:
    """Every command, as (the words to run it, its (Typer's own) click command)."""
    out: list[tuple[list[str], Any]] = []

    def walk(words: list[str], command: Any) -> None:
        out.append((words, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk([*words, name], sub)

    walk([], typer.main.get_command(app))
    return out


def test_version() -> None:
    code, out = invoke("version")
    assert code == 0
    assert out == __version__


@pytest.mark.parametrize(
    ("words", "command"),
    [
        pytest.param(words, command, id=" ".join(["sqltide", *words]))
        for words, command in commands()
    ],
)
def test_help_of_every_command_shows_its_options(words: list[str], command: Any) -> None:
    code, out = invoke(*words, "--help")
    assert code == 0, out
    assert "Usage:" in out
    if command.help:
        assert command.help.split("\n")[0].strip() in out
    for param in command.params:
        if param.param_type_name == "option":
            longest = max(param.opts, key=len)
            assert longest in out, (longest, out)
            if param.help:  # help texts are shown whole (no "[...]" eaten as Rich markup)
                assert " ".join(param.help.replace("\\[", "[").split()) in out, (param.help, out)
        else:
            assert param.name is not None
            assert param.name.upper() in out.upper(), (param.name, out)
    for name in getattr(command, "commands", {}):
        assert name in out


def test_help_shows_defaults_and_environment_variables() -> None:
    _, out = invoke("sql", "--help")
    assert "[default: http://127.0.0.1:8765]" in out
    assert "SQLTIDE_URL" in out and "SQLTIDE_API_KEY" in out
    assert "$SQLTIDE_HOME/credentials" in out
    _, out = invoke("serve", "--help")
    assert "[default: 127.0.0.1]" in out and "[default: 8765]" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sql"], "not both or neither"),
        (["sql", "SELECT 1", "-f", "{script}"], "not both or neither"),
        (["sql", "SELECT 1", "--format", "xml"], "--format must be table, csv or json"),
        (["sql", "SELECT 1", "-F", "yaml"], "--format must be table, csv or json"),
        (["sql", "SELECT :n", "-p", "n5"], "expected NAME=VALUE, got 'n5'"),
        (["sql", "SELECT :n", "-p", "=5"], "expected NAME=VALUE, got '=5'"),
        (["sql", "-f", "{missing}"], "does not exist"),
        (["sql", "SELECT 1", "--timeout", "soon"], "Invalid value for '--timeout'"),
        (["statements", "describe"], "Missing argument"),
        (["statements", "result", "x", "--bogus"], "No such option"),
        (["keys", "create"], "Missing argument"),
        (["nope"], "No such command"),
    ],
)
def test_argument_errors_exit_2_with_a_message(
    args: list[str], message: str, tmp_path: Path
) -> None:
    script = tmp_path / "script.sql"
    script.write_text("SELECT 1;\n")
    url = f"http://127.0.0.1:{free_port()}"  # never reached: arguments are checked first
    args = [a.format(script=script, missing=tmp_path / "missing.sql") for a in args]
    code, out = invoke(*args, *(["--url", url] if args[0] == "sql" else []))
    assert code == 2, out
    assert message in out, out
    assert "Traceback" not in out


def test_a_script_without_statements_is_an_argument_error(tmp_path: Path) -> None:
    script = tmp_path / "empty.sql"
    script.write_text("-- nothing here\n;\n")
    code, out = invoke("sql", "-f", str(script), "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 2, out
    assert "holds no SQL statements" in out


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (None, None),
        ([], None),
        (["n=5"], {"n": 5}),
        (["x=2.5", "b=true", "z=null"], {"x": 2.5, "b": True, "z": None}),
        (["s=abc"], {"s": "abc"}),
        (['s="5"'], {"s": "5"}),
        (["s="], {"s": ""}),
        (["s=a=b"], {"s": "a=b"}),
        (["l=[1, 2]", "o={}"], {"l": "[1, 2]", "o": "{}"}),  # no lists or objects: the text
        (["n=1", "n=2"], {"n": 2}),
    ],
)
def test_parameters_are_read_as_json_when_they_parse(
    values: list[str] | None, expected: dict[str, object] | None
) -> None:
    assert _parse_params(values) == expected


def test_an_unreachable_server_is_a_clean_connection_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["sql", "SELECT 1"], ["statements", "list"], ["statements", "cancel", "x"]):
        code, out = invoke(*args, "--url", url)
        assert code == 1, out
        assert "connection_failed" in out and url in out, out


def test_keys_create_list_revoke_on_the_local_store() -> None:
    code, out = invoke("keys", "create", "carol", "--name", "ci", "--admin")
    assert code == 0, out
    found = re.search(r"key (\w+) for principal 'carol' \(shown once\): (stk_\S+)", out)
    assert found is not None, out
    key_id, key = found.groups()

    code, out = invoke("keys", "list")
    assert code == 0, out
    assert re.search(rf"{key_id}\W+carol\W+ci\W+yes", out), out
    assert key not in out

    code, out = invoke("keys", "revoke", key_id)
    assert code == 0 and f"revoked {key_id}" in out, out
    code, out = invoke("keys", "revoke", key_id)
    assert code == 1 and "no active key" in out, out
    code, out = invoke("keys", "revoke", "nosuchid")
    assert code == 1 and "no active key" in out, out


def test_keys_create_aws_prints_the_credentials_once_and_list_shows_the_id() -> None:
    from sqltide.keys import open_aws_secret, server_secret
    from sqltide.settings import load_settings
    from sqltide.store import store_from_url

    code, out = invoke("keys", "create", "dave", "--aws", "--name", "sdk")
    assert code == 0, out
    found = re.search(
        r"key (\w+) for principal 'dave' \(shown once\): (stk_\S+) "
        r"AWS credentials, caller arn:aws:iam::000000000000:user/dave \(shown once; .*?\): "
        r"\[sqltide\] aws_access_key_id = (ASQT[A-Z2-7]{16}) "
        r"aws_secret_access_key = ([A-Za-z0-9+/]{40}) "
        r"hint: `aws configure --profile sqltide`.* "
        r"AWS_ENDPOINT_URL_REDSHIFT_DATA=http://127.0.0.1:8765",
        out,
    )
    assert found is not None, out
    key_id, key, access_key_id, secret = found.groups()

    # what was printed is what the server will verify with
    store = store_from_url(load_settings().store_url)
    try:
        record = store.find_api_key_by_access_key_id(access_key_id)
        assert record is not None and record.id == key_id and record.aws_secret_sealed
        assert open_aws_secret(server_secret(store), access_key_id, record.aws_secret_sealed) == (
            secret
        )
    finally:
        store.close()

    code, out = invoke("keys", "list")
    assert code == 0, out
    assert re.search(rf"{key_id}\W+dave\W+sdk\W+{access_key_id}\W", out), out
    assert secret not in out and key not in out

    code, out = invoke(
        "keys", "create", "erin", "--aws", "--arn", "arn:aws:iam::123456789012:role/etl"
    )
    assert code == 0 and "caller arn:aws:iam::123456789012:role/etl" in out, out
    code, out = invoke("keys", "create", "erin", "--aws", "--arn", "etl")
    assert code == 1 and "an ARN looks like" in out, out
    code, out = invoke("keys", "create", "erin", "--arn", "arn:aws:iam::123456789012:role/etl")
    assert code == 2 and "add --aws" in out, out


def test_keys_create_with_grants_and_grants_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqltide.settings import load_settings
    from sqltide.store import store_from_url

    monkeypatch.setenv("SQLTIDE_WAREHOUSES", '{"pg": "postgresql://postgres@127.0.0.1:1/x"}')
    code, out = invoke(
        "keys", "create", "alice", "-w", "default", "-w", "pg", "--read-only", "--db-role", "al"
    )
    assert code == 1 and "--db-role applies to PostgreSQL warehouses only" in out, out
    code, out = invoke("keys", "create", "alice", "--warehouse", "nope")
    assert code == 1 and "no warehouse named 'nope'; configured: default, pg" in out, out
    code, out = invoke("keys", "create", "alice", "--read-only")
    assert code == 2 and "add --warehouse" in out, out
    code, out = invoke("keys", "create", "alice", "-w", "pg", "--read-only", "--db-role", "al")
    assert code == 0 and "granted 'alice' warehouse(s) pg, read_only as database role 'al'" in out

    code, out = invoke("grants", "add", "bob", "default", "pg")
    assert code == 0 and "granted: 'bob' may use 'pg' read_write" in out, out
    code, out = invoke("grants", "add", "bob", "pg", "--read-only")
    assert code == 0 and "changed: 'bob' may use 'pg' read_only" in out, out
    code, out = invoke("grants", "add", "bob", "pg", "--db-role", 'x"; DROP')
    assert code == 1 and "db_role must be a plain PostgreSQL role name" in out, out
    code, out = invoke("grants", "list")
    assert code == 0, out
    assert re.search(r"alice\W+pg\W+read_only\W+al\W", out), out
    assert re.search(r"bob\W+default\W+read_write\W", out), out
    assert re.search(r"bob\W+pg\W+read_only\W", out), out
    code, out = invoke("grants", "list", "--principal", "alice")
    assert code == 0 and "bob" not in out, out

    code, out = invoke("grants", "revoke", "bob", "pg", "nope")
    assert code == 1 and "revoked: 'bob' may no longer use 'pg'" in out, out
    assert "'bob' had no grant for 'nope'" in out, out
    store = store_from_url(load_settings().store_url)
    assert [(g.principal, g.warehouse) for g in store.list_grants()] == [
        ("alice", "pg"),
        ("bob", "default"),
    ]
    store.close()


def test_default_grants_must_name_valid_access(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTIDE_DEFAULT_GRANTS", "default:admin")
    code, out = invoke("grants", "list")
    assert code == 1 and "SQLTIDE_DEFAULT_GRANTS" in out and "read_only" in out, out
    monkeypatch.setenv("SQLTIDE_DEFAULT_GRANTS", "lake")
    code, out = invoke("grants", "list")
    assert code == 1 and "names unknown warehouse(s) lake" in out, out


def test_main_leaves_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import sys

    from sqltide.cli import main

    monkeypatch.delenv("SQLTIDE_HOME", raising=False)
    monkeypatch.setattr(sys, "argv", ["sqltide", "version"])
    before = dict(os.environ)
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, None)
    assert dict(os.environ) == before  # a library caller's process keeps its own environment
