"""``sqltide apply`` end to end: a pipeline file planned and applied against a real server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from helpers import ELT_PIPELINE
from sqltide.pipeline import PipelineError, Remote, apply, cli_apply, load_pipeline, plan
from sqltide.server import ServerThread

# ... with a webhook target too, whose secret the server never shows.
ELT = (
    ELT_PIPELINE
    + """\
      - {id: hook, kind: webhook, url: "http://127.0.0.1:9/hook", secret: "${HOOK_SECRET:-s3cret}"}
"""
)


class Api:
    """Plain HTTP to the server, to look at (and change) what it has behind the pipeline's back."""

    def __init__(self, server: ServerThread, api_key: str):
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
        )

    def rules(self) -> dict[str, dict[str, Any]]:
        """The rules as stored, without ``last_fired_at``: the running scheduler moves that
        on its own (a schedule's first look at a new rule records where it starts)."""
        rules = self.http.get("/v1/rules").json()["rules"]
        return {r["name"]: {k: v for k, v in r.items() if k != "last_fired_at"} for r in rules}

    def topics(self) -> dict[str, dict[str, Any]]:
        return {t["name"]: t for t in self.http.get("/v1/topics").json()["topics"]}


@pytest.fixture
def api(server: ServerThread, api_key: str) -> Iterator[Api]:
    a = Api(server, api_key)
    yield a
    a.http.close()


@pytest.fixture
def remote(server: ServerThread, api_key: str) -> Iterator[Remote]:
    with Remote(server.url, api_key) as r:
        yield r


def run_cli(path: Path, server: ServerThread, api_key: str, **flags: bool) -> tuple[int, str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    code = cli_apply(path, url=server.url, api_key=api_key, console=console, **flags)
    return code, buffer.getvalue()


def test_dry_run_changes_nothing_then_apply_creates_then_all_unchanged(
    tmp_path: Path, server: ServerThread, api_key: str, api: Api
) -> None:
    path = tmp_path / "elt.yaml"
    path.write_text(ELT)

    code, out = run_cli(path, server, api_key, dry_run=True)
    assert code == 0, out
    assert out.splitlines() == [
        "+ create topic elt-status",
        "+ create rule nightly-elt",
        "+ create rule elt-done",
        "Plan: 3 to create, 0 to update, 0 to delete, 0 unchanged.",
        "Dry run: nothing was applied.",
    ]
    assert api.rules() == {} and api.topics() == {}

    code, out = run_cli(path, server, api_key)
    assert code == 0, out
    assert "created rule elt-done" in out
    assert out.splitlines()[-1] == "Applied: 3 to create, 0 to update, 0 to delete, 0 unchanged."
    rules, topics = api.rules(), api.topics()
    assert set(rules) == {"nightly-elt", "elt-done"} and set(topics) == {"elt-status"}
    assert rules["nightly-elt"]["schedule"] == "cron(0 11 ? * MON-FRI *)"
    assert rules["elt-done"]["targets"][0]["topic"] == "elt-status"
    assert rules["elt-done"]["targets"][1]["secret"] == "***"

    code, out = run_cli(path, server, api_key)
    assert code == 0, out
    assert out.splitlines() == [
        "= unchanged topic elt-status",
        "= unchanged rule nightly-elt",
        "= unchanged rule elt-done",
        "Plan: 0 to create, 0 to update, 0 to delete, 3 unchanged.",
        "Nothing to do: the server matches the file.",
    ]
    assert api.rules() == rules  # not even updated_at moved


def test_a_changed_file_updates_only_what_changed(
    remote: Remote, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert apply(plan(load_pipeline(ELT, environ={}), remote), remote).ok
    before = api.rules()

    # "run now": the schedule from the environment, and a new e-mail text; the webhook's
    # secret as the server shows it, '***', which keeps the stored one
    changed = ELT.replace("ended <state>", "is <state>").replace(
        '"${HOOK_SECRET:-s3cret}"', "'***'"
    )
    monkeypatch.setenv("ELT_SCHEDULE", "rate(1 minute)")
    the_plan = plan(load_pipeline(changed), remote)
    assert [str(c) for c in the_plan.changes] == [
        "unchanged topic elt-status",
        "update rule nightly-elt: schedule",
        "update rule elt-done: targets",
    ]
    [diff] = the_plan.changes[2].diff
    assert diff.path == "targets[0].input_transformer.input_template"
    assert "is <state>" in diff.after and "ended <state>" in diff.before

    result = apply(the_plan, remote)
    assert result.ok
    assert [str(c) for c in result.applied] == [
        "update rule nightly-elt: schedule",
        "update rule elt-done: targets",
    ]
    after = api.rules()
    assert after["nightly-elt"]["schedule"] == "rate(1 minute)"
    template = after["elt-done"]["targets"][0]["input_transformer"]["input_template"]
    assert "is <state>" in template
    assert after["elt-done"]["targets"][1] == before["elt-done"]["targets"][1]
    assert not plan(load_pipeline(changed), remote).has_changes


def test_prune_deletes_what_the_file_does_not_mention(
    tmp_path: Path, server: ServerThread, api_key: str, remote: Remote, api: Api
) -> None:
    assert apply(plan(load_pipeline(ELT, environ={}), remote), remote).ok
    api.http.put("/v1/topics/old-topic", json={"subscriptions": []}).raise_for_status()
    api.http.put(
        "/v1/rules/old-rule",
        json={"schedule": "rate(1 day)", "targets": [{"kind": "topic", "topic": "old-topic"}]},
    ).raise_for_status()

    # without prune, the others stay and are not even listed
    assert [c.name for c in plan(load_pipeline(ELT, environ={}), remote).changes] == [
        "elt-status",
        "nightly-elt",
        "elt-done",
    ]
    path = tmp_path / "elt.yaml"
    path.write_text(ELT)
    code, out = run_cli(path, server, api_key, prune=True, dry_run=True)
    assert code == 0, out
    assert "- delete rule old-rule" in out and "- delete topic old-topic" in out
    assert "old-rule" in api.rules()

    code, out = run_cli(path, server, api_key, prune=True)
    assert code == 0, out
    assert out.index("deleted rule old-rule") < out.index("deleted topic old-topic")
    assert set(api.rules()) == {"nightly-elt", "elt-done"}
    assert set(api.topics()) == {"elt-status"}


def test_an_invalid_file_applies_nothing(
    tmp_path: Path, server: ServerThread, api_key: str, remote: Remote, api: Api
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        ELT.replace("timezone: UTC", "timezone: UTC\n    colour: blue").replace(
            "kind: topic", "kind: topik"
        )
    )
    code, out = run_cli(path, server, api_key)
    assert code == 1
    assert f"{path}:10:5: rules.nightly-elt.colour: unknown key 'colour'" in out
    assert f"{path}:17:15: rules.elt-done.targets[0].kind: kind must be one of" in out
    assert out.splitlines()[-1] == "Nothing was applied."
    assert api.rules() == {} and api.topics() == {}

    # a topic neither in the file nor on the server: only the server can tell
    missing = ELT.replace("topic: elt-status", "topic: alerts")
    with pytest.raises(PipelineError) as info:
        plan(load_pipeline(missing, environ={}), remote)
    [problem] = info.value.problems
    assert problem.path == "rules.elt-done.targets[0].topic"
    assert "no topic named 'alerts'" in problem.message
    assert api.rules() == {} and api.topics() == {}

    # once the server has it, the file may use it (but not with prune, which would delete it)
    api.http.put("/v1/topics/alerts", json={"subscriptions": []}).raise_for_status()
    assert plan(load_pipeline(missing, environ={}), remote).has_changes
    with pytest.raises(PipelineError, match="with prune"):
        plan(load_pipeline(missing, environ={}), remote, prune=True)


def test_apply_stops_at_the_first_server_error(tmp_path: Path, remote: Remote, api: Api) -> None:
    text = """\
version: 1
topics:
  first: {}
rules:
  a: {schedule: rate(1 day), targets: [{kind: topic, topic: gone}]}
  b: {schedule: rate(1 day), targets: [{kind: sql, sql: SELECT 1}]}
"""
    api.http.put("/v1/topics/gone", json={"subscriptions": []}).raise_for_status()
    the_plan = plan(load_pipeline(text, environ={}), remote)
    api.http.delete("/v1/topics/gone").raise_for_status()  # behind the plan's back
    result = apply(the_plan, remote)
    assert not result.ok
    assert result.error is not None and result.error.code == "invalid_rule"
    assert "gone" in result.error.message
    assert [str(c) for c in result.applied] == ["create topic first"]
    assert result.failed is not None and str(result.failed) == "create rule a"
    assert [str(c) for c in result.not_applied] == ["create rule b"]
    assert set(api.topics()) == {"first"} and api.rules() == {}


def test_cli_reports_an_unreachable_server(tmp_path: Path) -> None:
    from sqltide.server import free_port

    path = tmp_path / "elt.yaml"
    path.write_text(ELT)
    buffer = io.StringIO()
    code = cli_apply(
        path,
        url=f"http://127.0.0.1:{free_port()}",
        api_key="k",
        console=Console(file=buffer, width=200, color_system=None),
    )
    assert code == 1
    assert "connection_failed" in buffer.getvalue()
