"""The event bus commands of the CLI (``events``, ``rules``, ``topics``, ``dlq``, ``schedules``)
as a user runs them: new ``sqltide`` processes against one real ``sqltide serve``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import ServeProcess, clean_env, run_cli

SEED = "cron(0 11 ? * MON-FRI *)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("cli-events")
    proc = ServeProcess(root / "home", root / "serve.log", {})
    try:
        proc.wait_healthy()
        yield proc
    finally:
        proc.close()


@pytest.fixture(scope="module")
def env(server: ServeProcess) -> dict[str, str]:
    key = (server.home / "credentials").read_text().strip()
    # wide, so Rich does not wrap messages and paths
    return clean_env(SQLTIDE_URL=server.url, SQLTIDE_API_KEY=key, COLUMNS="250")


def cli(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = run_cli(*args, env=env)
    assert done.returncode == code, (args, done.stdout, done.stderr)
    return done


def flat(text: str) -> str:
    return " ".join(text.split())


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write(path: Path, value: Any) -> Path:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


# -- events ------------------------------------------------------------------------------------


def test_put_an_event_and_see_it_in_events_list(env: dict[str, str], tmp_path: Path) -> None:
    event_id = cli(
        env,
        "events", "put", "--source", "cli.shop", "--detail-type", "Order Placed",
        "--detail", '{"order": 42}', "--resource", "order/42",
    ).stdout.strip()  # fmt: skip
    detail_file = write(tmp_path / "detail.json", {"order": 43})
    other_id = cli(
        env,
        "events", "put", "--source", "cli.shop", "--detail-type", "Order Placed",
        "--detail-file", str(detail_file), "--time", "2020-01-01T00:00:00Z",
    ).stdout.strip()  # fmt: skip

    listed = json_lines(cli(env, "events", "list", "--format", "json", "--limit", "1000").stdout)
    by_id = {e["id"]: e for e in listed}
    assert by_id[event_id]["source"] == "cli.shop"
    assert by_id[event_id]["detail-type"] == "Order Placed"
    assert by_id[event_id]["detail"] == {"order": 42}
    assert by_id[event_id]["resources"] == ["order/42"]
    assert by_id[other_id]["time"].startswith("2020-01-01T00:00:00")
    assert listed[0]["id"] == other_id  # oldest first

    table = cli(env, "events", "list", "--start", "2021-01-01T00:00:00Z").stdout
    assert event_id in table and "cli.shop" in table and '{"order":42}' in table
    assert other_id not in table


def test_an_event_the_server_refuses_exits_1_with_its_code(env: dict[str, str]) -> None:
    done = cli(
        env, "events", "put", "--source", "s", "--detail-type", "t", "--detail", "[1, 2]", code=1
    )
    assert "validation_error" in done.stderr
    assert "entries[0].detail: must be a JSON object" in flat(done.stderr)


# -- rules -------------------------------------------------------------------------------------


def test_a_rule_from_a_json_file_through_its_life(env: dict[str, str], tmp_path: Path) -> None:
    rule = {
        "description": "orders to the audit table",
        "event_pattern": {"source": ["cli.nothing-puts-this"]},
        "targets": [{"id": "audit", "kind": "sql", "sql": "SELECT 1"}],
    }
    path = write(tmp_path / "rule.json", rule)
    out = cli(env, "rules", "put", "orders", "-f", str(path)).stdout
    assert "rule orders saved (ENABLED)" in flat(out)

    listed = cli(env, "rules", "list").stdout
    assert "orders" in listed and "ENABLED" in listed and "audit:sql" in listed
    described = json.loads(cli(env, "rules", "describe", "orders").stdout)
    assert described["name"] == "orders"
    assert described["event_pattern"] == rule["event_pattern"]
    assert described["targets"][0]["sql"] == "SELECT 1"

    assert "rule orders is DISABLED" in cli(env, "rules", "disable", "orders").stdout
    disabled = json.loads(cli(env, "rules", "describe", "orders").stdout)
    # only the state changed
    assert disabled == {**described, "state": "DISABLED", "updated_at": disabled["updated_at"]}
    assert "rule orders is ENABLED" in cli(env, "rules", "enable", "orders").stdout

    # what describe prints can be edited and put back
    described["state"] = "DISABLED"
    again = write(tmp_path / "described.json", described)
    assert "(DISABLED)" in cli(env, "rules", "put", "orders", "-f", str(again)).stdout

    assert "deleted rule orders" in cli(env, "rules", "delete", "orders").stdout
    assert "(rule_not_found)" in cli(env, "rules", "describe", "orders", code=1).stderr


@pytest.mark.parametrize(
    ("content", "path", "reason"),
    [
        (
            {"schedule": "cron(0 11 * * MON-FRI *)", "targets": [{"kind": "event"}]},
            "bad.schedule",
            "cron needs ? in day-of-month or day-of-week",
        ),
        (
            {"event_pattern": {"source": ["x"]}, "targets": [{"kind": "nope"}]},
            "bad.targets[0].kind",
            "one of sql, topic",
        ),
    ],
)
def test_an_invalid_rule_file_exits_1_with_invalid_rule_and_the_path(
    env: dict[str, str], tmp_path: Path, content: dict[str, Any], path: str, reason: str
) -> None:
    file = write(tmp_path / "bad.json", content)
    done = cli(env, "rules", "put", "bad", "-f", str(file), code=1)
    err = flat(done.stderr)
    assert "(invalid_rule)" in err
    assert f'"path": "{path}' in err, err
    assert reason in err
    assert str(file) in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"targets": [', "not valid JSON"),
        ('{"event_pattern": {}, "targets": [], "ScheduleExpression": "x"}', "unknown field"),
        (
            '{"event_pattern": {"source": ["x"]}, "targets": '
            '[{"kind": "webhook", "url": "http://127.0.0.1:9/", "secret": "***"}]}',
            "this target has none: give the secret",
        ),
    ],
)
def test_a_rule_file_refused_before_it_is_sent(
    env: dict[str, str], tmp_path: Path, text: str, expected: str
) -> None:
    file = write(tmp_path / "bad.json", text)
    done = cli(env, "rules", "put", "bad", "-f", str(file), code=1)
    assert "(invalid_rule)" in done.stderr
    assert expected in flat(done.stderr)
    assert str(file) in flat(done.stderr)


def test_a_yaml_rule_file(env: dict[str, str], tmp_path: Path) -> None:
    file = write(
        tmp_path / "rule.yaml",
        "schedule: rate(1 day)\nstate: DISABLED\ntargets:\n  - kind: event\n    source: cli\n",
    )
    try:
        import yaml  # noqa: F401
    except ImportError:
        done = cli(env, "rules", "put", "daily", "-f", str(file), code=1)
        assert "needs PyYAML" in flat(done.stderr)
        return
    cli(env, "rules", "put", "daily", "-f", str(file))
    assert json.loads(cli(env, "rules", "describe", "daily").stdout)["schedule"] == "rate(1 day)"
    cli(env, "rules", "delete", "daily")


def test_enable_and_disable_keep_a_webhook_secret(env: dict[str, str], tmp_path: Path) -> None:
    rule = {
        "event_pattern": {"source": ["cli.nothing-puts-this"]},
        "targets": [{"id": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/", "secret": "s"}],
    }
    cli(env, "rules", "put", "hooked", "-f", str(write(tmp_path / "r.json", rule)))
    described = json.loads(cli(env, "rules", "describe", "hooked").stdout)
    assert described["targets"][0]["secret"] == "***"
    cli(env, "rules", "disable", "hooked")
    cli(env, "rules", "enable", "hooked")
    assert json.loads(cli(env, "rules", "describe", "hooked").stdout)["state"] == "ENABLED"
    cli(env, "rules", "delete", "hooked")


# -- topics, dead letters ----------------------------------------------------------------------


def test_a_topic_and_a_rule_that_targets_it(env: dict[str, str], tmp_path: Path) -> None:
    topic = {
        "display_name": "Operations",
        "subscriptions": [
            {"protocol": "email", "endpoint": "ops@example.com", "filter_policy": {"sev": ["high"]}}
        ],
    }
    out = cli(env, "topics", "put", "ops", "-f", str(write(tmp_path / "topic.json", topic))).stdout
    assert "topic ops saved (1 subscription)" in out
    listed = cli(env, "topics", "list").stdout
    assert "ops" in listed and "Operations" in listed and "email:ops@example.com" in listed
    described = json.loads(cli(env, "topics", "describe", "ops").stdout)
    assert described["subscriptions"][0]["filter_policy"] == {"sev": ["high"]}

    rule = {
        "event_pattern": {"source": ["cli.ops"]},
        "targets": [{"kind": "topic", "topic": "ops"}],
    }
    cli(env, "rules", "put", "to-ops", "-f", str(write(tmp_path / "rule.json", rule)))
    cli(env, "rules", "delete", "to-ops")

    bad = write(tmp_path / "bad.json", {"subscriptions": [{"protocol": "fax", "endpoint": "1"}]})
    done = cli(env, "topics", "put", "ops", "-f", str(bad), code=1)
    assert "(validation_error)" in done.stderr and "ops.subscriptions[0].protocol" in done.stderr

    assert "deleted topic ops" in cli(env, "topics", "delete", "ops").stdout
    assert "topic_not_found" in cli(env, "topics", "describe", "ops", code=1).stderr


def test_dlq_list_is_empty_and_redrive_of_an_unknown_id_exits_1(env: dict[str, str]) -> None:
    done = cli(env, "dlq", "list")
    assert done.stdout == "" and "no dead letters" in done.stderr
    assert cli(env, "dlq", "list", "--format", "json").stdout == ""
    done = cli(env, "dlq", "redrive", "no-such-delivery", code=1)
    assert "delivery_not_found" in done.stderr


def test_a_wrong_api_key_exits_1_with_unauthorized(env: dict[str, str]) -> None:
    done = cli({**env, "SQLTIDE_API_KEY": "wrong"}, "rules", "list", code=1)
    assert "(unauthorized)" in done.stderr


# -- schedules ---------------------------------------------------------------------------------


def test_schedules_next_skips_the_weekend() -> None:
    env = clean_env(COLUMNS="250")  # local: no server, no key
    friday = "2026-11-27T12:00:00Z"
    done = cli(env, "schedules", "next", SEED, "--after", friday, "--count", "3", "-F", "json")
    out = json.loads(done.stdout)
    assert out["description"] == "at 11:00 on MON-FRI (UTC)"
    assert [f["utc"] for f in out["firings"]] == [
        "2026-11-30T11:00:00Z",  # Monday
        "2026-12-01T11:00:00Z",
        "2026-12-02T11:00:00Z",
    ]

    table = flat(cli(env, "schedules", "next", SEED, "--after", friday).stdout)
    assert "at 11:00 on MON-FRI (UTC)" in table
    assert "Mon 2026-11-30 11:00:00" in table and "Fri 2026-12-04 11:00:00" in table
    assert "Sat" not in table and "Sun" not in table

    berlin = flat(
        cli(env, "schedules", "next", SEED, "--timezone", "Europe/Berlin", "--after", friday).stdout
    )
    assert "at 11:00 on MON-FRI (Europe/Berlin)" in berlin
    assert "Mon 2026-11-30 10:00:00" in berlin  # UTC
    assert "Mon 2026-11-30 11:00:00 CET" in berlin  # Berlin


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["cron(0 11 * * MON-FRI *)"], "cron needs ? in day-of-month or day-of-week"),
        (["cron(0 11 ? * MON-FRI)"], "cron("),
        (["rate(1 hours)"], "rate("),
        ([SEED, "--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_schedules_next_of_an_invalid_expression_exits_1_with_the_reason(
    args: list[str], reason: str
) -> None:
    done = cli(clean_env(COLUMNS="250"), "schedules", "next", *args, code=1)
    assert "(invalid_schedule)" in done.stderr
    assert reason in flat(done.stderr)
    assert done.stdout == ""


def test_rules_next_of_a_schedule_rule_on_the_server(env: dict[str, str], tmp_path: Path) -> None:
    rule = {"schedule": SEED, "state": "DISABLED", "targets": [{"kind": "event", "source": "cli"}]}
    cli(env, "rules", "put", "seed", "-f", str(write(tmp_path / "seed.json", rule)))
    # the next Friday noon after now (the rule counts its firings from its creation)
    now = datetime.now(UTC)
    friday = (now + timedelta(days=(4 - now.weekday()) % 7 + 7)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    monday = friday + timedelta(days=3)
    done = cli(env, "rules", "next", "seed", "--after", friday.isoformat(), "-F", "json")
    out = json.loads(done.stdout)
    assert out["description"] == "at 11:00 on MON-FRI (UTC)"
    firings = [f["utc"] for f in out["firings"]]
    assert len(firings) == 5
    assert firings[0] == monday.replace(hour=11).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "DISABLED" in done.stderr

    cli(env, "rules", "put", "pattern", "-f", str(write(tmp_path / "p.json", {
        "event_pattern": {"source": ["x"]}, "targets": [{"kind": "event"}]
    })))  # fmt: skip
    assert "(no_schedule)" in cli(env, "rules", "next", "pattern", code=1).stderr


def test_apply_a_pipeline_file_then_again_unchanged(env: dict[str, str], tmp_path: Path) -> None:
    file = write(
        tmp_path / "pipeline.json",
        {
            "version": 1,
            "topics": {
                "ops": {"subscriptions": [{"protocol": "email", "endpoint": "ops@example.com"}]}
            },
            "rules": {
                "nightly": {
                    "schedule": "cron(0 11 ? * MON-FRI *)",
                    "targets": [
                        {"id": "run", "kind": "sql", "sql": "SELECT 1", "with_event": True}
                    ],
                },
                "done": {
                    "event_pattern": {"source": ["aws.redshift-data"]},
                    "targets": [{"id": "mail", "kind": "topic", "topic": "ops"}],
                },
            },
        },
    )
    dry = cli(env, "apply", "-f", str(file), "--dry-run")
    assert "create rule nightly" in flat(dry.stdout + dry.stderr)
    assert "nightly" not in cli(env, "rules", "list").stdout  # a dry run changes nothing
    cli(env, "apply", "-f", str(file))
    again = cli(env, "apply", "-f", str(file))
    text = flat(again.stdout + again.stderr)
    assert "unchanged rule nightly" in text and "+ create" not in text
    piped = run_cli("apply", "-f", "-", "--dry-run", env=env, stdin=file.read_text())
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert "unchanged rule nightly" in flat(piped.stdout + piped.stderr)  # - is standard input
    bad = write(tmp_path / "bad.json", {"version": 1, "rules": {"x": {"targets": []}}})
    done = cli(env, "apply", "-f", str(bad), code=1)
    assert "invalid_pipeline" in flat(done.stdout + done.stderr)
    for name in ("nightly", "done"):
        cli(env, "rules", "delete", name)
    cli(env, "topics", "delete", "ops")
