"""Pipeline files: reading YAML and JSON, ${VAR} substitution, and every problem with its place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import ELT_PIPELINE as ELT
from sqltide.errors import UnprocessableEntity, error_class_for
from sqltide.pipeline import (
    Pipeline,
    PipelineError,
    Problem,
    Remote,
    apply,
    load_pipeline,
    plan,
    render_plan,
)


def problems_of(source: str | Path, **kwargs: Any) -> list[Problem]:
    with pytest.raises(PipelineError) as info:
        load_pipeline(source, environ=kwargs.pop("environ", {}), **kwargs)
    return info.value.problems


def where(problems: list[Problem]) -> dict[str, tuple[int | None, int | None]]:
    return {p.path: (p.line, p.column) for p in problems}


# -- reading ---------------------------------------------------------------------------------
def test_the_elt_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "elt.yaml"
    path.write_text(ELT)
    pipeline = load_pipeline(path, environ={})
    assert list(pipeline.topics) == ["elt-status"]
    assert list(pipeline.rules) == ["nightly-elt", "elt-done"]
    nightly = pipeline.rules["nightly-elt"]
    assert nightly["schedule"] == "cron(0 11 ? * MON-FRI *)"
    assert nightly["targets"][0]["with_event"] is True
    done = pipeline.rules["elt-done"]
    assert done["event_pattern"] == {
        "source": ["aws.redshift-data"],
        "detail": {"principal": ["etl"]},
    }
    paths = done["targets"][0]["input_transformer"]["input_paths_map"]
    assert paths == {"state": "$.detail.state", "id": "$.detail.statementId"}
    assert [r.name for r in pipeline.topic_refs] == ["elt-status"]


def test_the_same_pipeline_in_json(tmp_path: Path) -> None:
    yaml_pipeline = load_pipeline(ELT, environ={})
    document = {
        "version": 1,
        "topics": yaml_pipeline.topics,
        "rules": yaml_pipeline.rules,
    }
    path = tmp_path / "elt.json"
    path.write_text(json.dumps(document, indent=2))
    from_json = load_pipeline(path, environ={})
    assert from_json.topics == yaml_pipeline.topics
    assert from_json.rules == yaml_pipeline.rules
    # JSON text is recognised without a file name too, with JSON's numbers and escapes
    text = json.dumps({**document, "rules": {"r": {**yaml_pipeline.rules["elt-done"]}}})
    text = text.replace('"ELT <state>', '"ELT \\ud83d\\ude00 <state>').replace(
        '"targets"', '"missed_window_seconds": 1.5e3, "targets"'
    )
    rule = load_pipeline(text, environ={}).rules["r"]
    assert rule["missed_window_seconds"] == 1500.0
    assert "ELT \U0001f600 <state>" in rule["targets"][0]["input_transformer"]["input_template"]


def test_json_problems_have_places(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "version": 1,\n  "rules": {\n    "r": {"schedule": "rate(0 days)"},,\n')
    [problem] = problems_of(path)
    assert (problem.line, problem.column) == (4, 39)
    assert "not valid JSON" in problem.message
    path.write_text(
        '{\n  "version": 1,\n  "rules": {\n    "r": {"schedule": "rate(0 days)", '
        '"targets": [{"kind": "sql", "sql": "x"}]}\n  },\n  "extra": 1\n}\n'
    )
    found = where(problems_of(path))
    assert found == {"rules.r.schedule": (4, 23), "extra": (6, 3)}


def test_yaml_is_read_with_json_scalars() -> None:
    pipeline = load_pipeline(
        """
version: 1
rules:
  r:
    schedule: at(2030-01-01T00:00:00)
    description: 2030-01-01
    missed_window_seconds: 0755
    targets: [{kind: event, source: on, detail_type: '12:30'}]
""",
        environ={},
    )
    rule = pipeline.rules["r"]
    assert rule["description"] == "2030-01-01"  # a string, not a date
    assert rule["missed_window_seconds"] == 755  # decimal, not octal
    assert rule["targets"][0]["source"] == "on"  # a string, not True


def test_anchors_and_merge_keys_with_x_keys() -> None:
    pipeline = load_pipeline(
        """
version: 1
x-retry: &retry {retry_policy: {maximum_retry_attempts: 3}}
rules:
  a:
    schedule: rate(1 hour)
    targets:
      - {<<: *retry, kind: sql, sql: SELECT 1}
      - {<<: *retry, id: two, kind: sql, sql: SELECT 2, retry_policy: {maximum_retry_attempts: 5}}
""",
        environ={},
    )
    targets = pipeline.rules["a"]["targets"]
    assert targets[0]["retry_policy"] == {"maximum_retry_attempts": 3}
    assert targets[1]["retry_policy"] == {"maximum_retry_attempts": 5}  # the explicit key wins


# -- ${VAR} ----------------------------------------------------------------------------------
def test_environment_substitution(monkeypatch: pytest.MonkeyPatch) -> None:
    default = load_pipeline(ELT, environ={})
    assert default.rules["nightly-elt"]["schedule"] == "cron(0 11 ? * MON-FRI *)"
    now = load_pipeline(ELT, environ={"ELT_SCHEDULE": "rate(1 minute)"})
    assert now.rules["nightly-elt"]["schedule"] == "rate(1 minute)"
    empty = load_pipeline(ELT, environ={"ELT_SCHEDULE": ""})  # :- also replaces an empty value
    assert empty.rules["nightly-elt"]["schedule"] == "cron(0 11 ? * MON-FRI *)"
    monkeypatch.setenv("ELT_SCHEDULE", "rate(5 minutes)")  # os.environ by default
    assert load_pipeline(ELT).rules["nightly-elt"]["schedule"] == "rate(5 minutes)"


def test_substituted_plain_values_get_their_type_quoted_ones_stay_strings() -> None:
    text = """
version: 1
rules:
  r:
    schedule: rate(1 day)
    missed_window_seconds: ${WINDOW:-300}
    description: "${WINDOW:-300} and $${NOT_A_VAR} and $.detail"
    state: ${STATE}
    targets:
      - kind: sql
        sql: "SELECT ${N}"
        with_event: ${EVENTS:-false}
"""
    rule = load_pipeline(text, environ={"STATE": "DISABLED", "N": "42"}).rules["r"]
    assert rule["missed_window_seconds"] == 300
    assert rule["description"] == "300 and ${NOT_A_VAR} and $.detail"
    assert rule["state"] == "DISABLED"
    assert rule["targets"][0] == {"kind": "sql", "sql": "SELECT 42", "with_event": False}


def test_unset_and_malformed_variables_are_problems_with_places() -> None:
    text = """version: 1
rules:
  r:
    schedule: ${SCHEDULE}
    description: "${1BAD} ${OK:-fine}"
    targets: [{kind: sql, sql: "SELECT ${N:-${M}}"}]
"""
    problems = problems_of(text, environ={})
    assert where(problems) == {
        "rules.r.schedule": (4, 15),
        "rules.r.description": (5, 18),
        "rules.r.targets[0].sql": (6, 32),
    }
    assert "SCHEDULE is not set" in problems[0].message
    assert "${SCHEDULE:-value}" in problems[0].message


def test_escapes_and_unterminated_references() -> None:
    base = (
        "version: 1\nrules:\n  r:\n    schedule: rate(1 day)\n    targets: [{kind: sql, sql: x}]\n"
    )
    rule = load_pipeline(base + "    description: '$${HOME and $$ and $5'\n", environ={}).rules["r"]
    assert rule["description"] == "${HOME and $$ and $5"
    [problem] = problems_of(base + "    description: 'a ${HOME'\n")
    assert problem.path == "rules.r.description" and "unterminated" in problem.message


# -- problems --------------------------------------------------------------------------------
BAD = """\
version: 2
bogus: 1
topics:
  elt-status:
    subscriptions:
      - {protocol: email, endpoint: nobody}
      - {protocol: pigeon, endpoint: x}
rules:
  nightly-elt:
    schedule: cron(0 25 ? * MON-FRI *)
    event_pattern: {source: [x]}
    shedule: x
    targets:
      - {id: run, kind: sqll, sql: "CALL run_elt_process()"}
      - {id: run, kind: sql, sql: SELECT 1}
  elt-done:
    event_pattern: {source: [aws.redshift-data], detail: {state: [{prefix: 1}]}}
    targets:
      - id: mail
        kind: topic
        topic: elt-status
        input_transformer:
          input_paths_map: {state: $.detail.state}
          input_template: '{"subject": "ELT <state>", "body": "Statement <id>"}'
        retry_policy: {maximum_retry_attempts: 500}
  neither:
    targets: []
"""


def test_every_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(PipelineError) as info:
        load_pipeline(path, environ={})
    exc = info.value
    assert isinstance(exc, UnprocessableEntity)
    assert exc.code == "invalid_pipeline" and exc.http_status == 422
    assert error_class_for("invalid_pipeline") is PipelineError
    found = where(exc.problems)
    assert found == {
        "version": (1, 10),
        "bogus": (2, 1),
        "topics.elt-status.subscriptions[0].endpoint": (6, 37),
        "topics.elt-status.subscriptions[1].protocol": (7, 20),
        "rules.nightly-elt": (10, 5),
        "rules.nightly-elt.schedule": (10, 15),
        "rules.nightly-elt.shedule": (12, 5),
        "rules.nightly-elt.targets[0].kind": (14, 25),
        "rules.nightly-elt.targets[1].id": (15, 14),
        "rules.elt-done.event_pattern.detail.state[0].prefix": (17, 76),
        "rules.elt-done.targets[0].input_transformer.input_template": (24, 27),
        "rules.elt-done.targets[0].retry_policy.maximum_retry_attempts": (25, 48),
        "rules.neither": (27, 5),
        "rules.neither.targets": (27, 14),
    }
    messages = {p.path: p.message for p in exc.problems}
    assert "did you mean 'schedule'" in messages["rules.nightly-elt.shedule"]
    assert "not both" in messages["rules.nightly-elt"]
    assert "neither" in messages["rules.neither"]
    assert "hours: 25" in messages["rules.nightly-elt.schedule"]
    assert "'sqll'" in messages["rules.nightly-elt.targets[0].kind"]
    assert "unique" in messages["rules.nightly-elt.targets[1].id"]
    assert "<id>" in messages["rules.elt-done.targets[0].input_transformer.input_template"]
    # in file order; each printed as file:line:column: path: message; all in details too
    assert [p.line for p in exc.problems] == sorted(p.line or 0 for p in exc.problems)
    assert (
        str(exc.problems[0]) == f"{path}:1:10: version: unsupported version 2; this sqltide reads 1"
    )
    assert len(exc.details["errors"]) == len(exc.problems) == 14
    assert exc.details["errors"][0] == {
        "path": "version",
        "message": "unsupported version 2; this sqltide reads 1",
        "file": str(path),
        "line": 1,
        "column": 10,
    }
    assert str(exc).startswith(f"{path} has 14 problems:\n  {path}:1:10: version:")


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        ("", "", "empty"),
        ("- a\n- b\n", "", "must be a mapping"),
        ("version: 1\n", "", "no topics and no rules"),
        ("rules: {}\ntopics: {}\n", "", "version is missing"),
        ("version: 1\nrules: [a]\n", "rules", "must be a mapping, not a list"),
        ("version: 1\nrules:\n  a: 1\n", "rules.a", "a rule must be a mapping"),
        (
            "version: 1\nrules:\n  a b: {schedule: rate(1 day), targets: [{kind: sql, sql: x}]}\n",
            'rules["a b"]',
            "1 to 64",
        ),
        ("version: 1\ntopics:\n  t: {subscriptions: {}}\n", "topics.t.subscriptions", "a list"),
        ("version: 1\nrules: {a: {}, a: {}}\n", "rules.a", "duplicate key"),
        ("version: 1\nrules:\n  r:\n    schedule: x\n   bad\n", "", "not valid YAML"),
        ("version: 1\nrules: {r: !!binary aGk=}\n", "rules.r", "bytes is not a JSON value"),
        ("version: 1\nrules: {r: {schedule: ${S}}}\n", "", "quote values holding ${...}"),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), timezone: Mars/Base, targets: [{kind: sql, sql: x}]}}",
            "rules.r.timezone",
            "unknown time zone",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: workflow}]}}",
            "rules.r.targets[0]",
            "needs workflow",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: workflow, workflow: w, sql: x}]}}",
            "rules.r.targets[0].sql",
            "unknown key",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: workflow, workflow: w, timeout_seconds: 0}]}}",
            "rules.r.targets[0].timeout_seconds",
            "from 1 to 31622400",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: flow, workflow: w}]}}",
            "rules.r.targets[0].kind",
            "sql, topic, webhook, event, workflow",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: sql}]}}",
            "rules.r.targets[0]",
            "needs sql",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: sql, sql: x, sqls: [y]}]}}",
            "rules.r.targets[0]",
            "not both",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: sql, sql: x, mode: fast}]}}",
            "rules.r.targets[0].mode",
            "transaction or auto_commit",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: webhook, url: x}]}}",
            "rules.r.targets[0].url",
            "http",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: topic, topic: t, url: x}]}}",
            "rules.r.targets[0].url",
            "unknown key",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: event, input_path: detail}]}}",
            "rules.r.targets[0].input_path",
            "not a JSON path",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), state: OFF, targets: [{kind: sql, sql: x}]}}",
            "rules.r.state",
            "ENABLED or DISABLED, not 'OFF'",
        ),
        (
            "version: 1\nrules: {r: {event_pattern: {source: x}, targets: [{kind: sql, sql: x}]}}",
            "rules.r.event_pattern.source",
            "array",
        ),
        (
            "version: 1\nrules: {r: {schedule: rate(1 day), targets: [{kind: sql, sql: x}, {kind: sql, sql: y, id: '0'}]}}",
            "rules.r.targets[1].id",
            "already used by rules.r.targets[0]",
        ),
        (
            "version: 1\ntopics: {t: {subscriptions: [{protocol: webhook, endpoint: 'https://x', filter_policy: {a: b}}]}}",
            "topics.t.subscriptions[0].filter_policy.a",
            "",
        ),
    ],
)
def test_single_problems(text: str, path: str, fragment: str) -> None:
    problems = problems_of(text)
    assert [p.path for p in problems] == [path], problems
    assert fragment in problems[0].message
    assert problems[0].file == "<string>"


def test_a_missing_file_and_a_file_name_for_text(tmp_path: Path) -> None:
    [problem] = problems_of(str(tmp_path / "nope.yaml"))
    assert problem.message == "no such file"
    [problem] = problems_of("version: 3\nrules: {}\n", name="elt.yaml")
    assert str(problem) == "elt.yaml:1:10: version: unsupported version 3; this sqltide reads 1"


def _sql_target_file(tmp_path: Path, file_line: str, **files: str) -> Path:
    (tmp_path / "sql").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / "sql" / name).write_text(text)
    path = tmp_path / "pipe.yaml"
    path.write_text(
        "version: 1\nrules:\n  r:\n    schedule: rate(1 hour)\n    targets:\n"
        f"      - {{kind: sql, {file_line}}}\n"
    )
    return path


def test_a_sql_file_target_is_read_beside_the_pipeline_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = "-- load\nDELETE FROM t;\nINSERT INTO t SELECT 1; -- one\n\n"
    path = _sql_target_file(
        tmp_path, "file: sql/load.sql", **{"load.sql": script, "one.sql": "CALL p(:x);"}
    )
    monkeypatch.chdir("/")  # relative to the file, not to the working directory
    [target] = load_pipeline(path, environ={}).rules["r"]["targets"]
    assert "file" not in target  # the server gets the SQL, a batch for several statements
    assert target["sqls"] == ["-- load\nDELETE FROM t", "INSERT INTO t SELECT 1"]
    path = _sql_target_file(tmp_path, "file: sql/one.sql")
    [target] = load_pipeline(path, environ={}).rules["r"]["targets"]
    assert target["sql"] == "CALL p(:x)" and "sqls" not in target


@pytest.mark.parametrize(
    ("file_line", "fragment"),
    [
        ("file: sql/missing.sql", "no such file: "),
        ("file: sql/empty.sql", "holds no SQL statement"),
        ("file: ''", "the path of a .sql file"),
        ("file: sql/empty.sql, sql: SELECT 1", "give one of sql, sqls or file"),
    ],
)
def test_sql_file_problems_have_places(tmp_path: Path, file_line: str, fragment: str) -> None:
    path = _sql_target_file(tmp_path, file_line, **{"empty.sql": "-- nothing here\n;\n"})
    [problem] = problems_of(path)
    assert fragment in problem.message, problem
    assert problem.line == 6, problem
    assert problem.path.startswith("rules.r.targets[0]"), problem


def test_known_topics_check_topic_targets_at_load_time() -> None:
    text = ELT.replace("topic: elt-status", "topic: elsewhere")
    assert load_pipeline(text, environ={}).topic_refs  # not checked without known_topics
    load_pipeline(text, environ={}, known_topics={"elsewhere"})
    [problem] = problems_of(text, known_topics=set())
    assert problem.path == "rules.elt-done.targets[0].topic"
    assert (problem.line, problem.column) == (17, 16)
    assert "no topic named 'elsewhere' in the file or on the server" in problem.message


# -- plans and applying, against a fake server ---------------------------------------------
class FakeServer:
    """Just enough of /v1/rules, /v1/topics and /v1/warehouses, in memory."""

    def __init__(self) -> None:
        self.rules: dict[str, dict[str, Any]] = {}
        self.topics: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_on: str | None = None

    @staticmethod
    def normalized(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """With the defaults the real server fills in, and secrets hidden as it shows them."""
        if kind == "topics":
            subs = [{"id": str(n), **s} for n, s in enumerate(body.get("subscriptions", []))]
            return {"display_name": None, **body, "subscriptions": subs}
        targets = []
        for n, target in enumerate(body["targets"]):
            t = {"id": str(n), **target}
            t["retry_policy"] = {
                "maximum_event_age_seconds": 86400,
                "maximum_retry_attempts": 185,
                **t.get("retry_policy", {}),
            }
            if t.get("secret"):
                t["secret"] = "***"
            targets.append(t)
        defaults = {"description": None, "state": "ENABLED", "event_pattern": None}
        defaults.update(schedule=None, timezone="UTC", missed_policy="skip")
        return {**defaults, "missed_window_seconds": None, **body, "targets": targets}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        kind, _, name = request.url.path.removeprefix("/v1/").partition("/")
        self.calls.append(f"{request.method} {request.url.path}")
        store = self.rules if kind == "rules" else self.topics
        if kind == "warehouses":
            return httpx.Response(200, json={"warehouses": [{"name": "default"}]})
        if request.method == "GET":
            return httpx.Response(200, json={kind: [{"name": n, **b} for n, b in store.items()]})
        if f"{request.method} {request.url.path}" == self.fail_on:
            error = {"code": "invalid_rule", "message": "no", "details": {"path": name}}
            return httpx.Response(422, json={"error": error})
        if request.method == "PUT":
            store[name] = self.normalized(kind, json.loads(request.content))
            return httpx.Response(200, json={})
        store.pop(name)
        return httpx.Response(204)


@pytest.fixture
def fake() -> FakeServer:
    return FakeServer()


@pytest.fixture
def remote(fake: FakeServer) -> Remote:
    return Remote("http://sqltide.test", "key", transport=httpx.MockTransport(fake))


def elt() -> Pipeline:
    return load_pipeline(ELT, environ={})


def test_plan_apply_and_plan_again(fake: FakeServer, remote: Remote) -> None:
    first = plan(elt(), remote)
    assert render_plan(first).splitlines() == [
        "+ create topic elt-status",
        "+ create rule nightly-elt",
        "+ create rule elt-done",
        "Plan: 3 to create, 0 to update, 0 to delete, 0 unchanged.",
    ]
    result = apply(first, remote)
    assert result.ok and [str(c) for c in result.applied] == [
        "create topic elt-status",
        "create rule nightly-elt",
        "create rule elt-done",
    ]
    # the server filled in defaults (ids, retry policies, state...): they compare equal
    assert fake.rules["elt-done"]["targets"][0]["retry_policy"]["maximum_retry_attempts"] == 185
    again = plan(elt(), remote)
    assert not again.has_changes
    assert render_plan(again).splitlines()[0] == "= unchanged topic elt-status"
    assert apply(again, remote).applied == []


def test_an_update_lists_its_fields_and_values(fake: FakeServer, remote: Remote) -> None:
    apply(plan(elt(), remote), remote)
    changed = load_pipeline(ELT.replace("ended <state>", "is <state>"), environ={})
    the_plan = plan(changed, remote)
    text = render_plan(the_plan)
    assert "~ update rule elt-done: targets" in text.splitlines()
    assert "    targets[0].input_transformer.input_template: " in text
    assert "= unchanged rule nightly-elt" in text
    assert the_plan.summary() == "0 to create, 1 to update, 0 to delete, 2 unchanged"


def test_apply_stops_at_the_first_server_error(fake: FakeServer, remote: Remote) -> None:
    fake.fail_on = "PUT /v1/rules/nightly-elt"
    result = apply(plan(elt(), remote), remote)
    assert not result.ok
    assert result.error is not None and result.error.code == "invalid_rule"
    assert [str(c) for c in result.applied] == ["create topic elt-status"]
    assert result.failed is not None and result.failed.name == "nightly-elt"
    assert [c.name for c in result.not_applied] == ["elt-done"]
    assert "PUT /v1/rules/elt-done" not in fake.calls


def test_plan_problems_need_the_server(fake: FakeServer, remote: Remote) -> None:
    text = ELT.replace("topic: elt-status", "topic: alerts").replace(
        "with_event: true", "with_event: true, warehouse: lake"
    )
    with pytest.raises(PipelineError) as info:
        plan(load_pipeline(text, environ={}), remote)
    assert where(info.value.problems) == {
        "rules.nightly-elt.targets[0].warehouse": (11, 90),
        "rules.elt-done.targets[0].topic": (17, 16),
    }
    fake.topics["alerts"] = {"subscriptions": []}
    with pytest.raises(PipelineError) as info:
        plan(load_pipeline(text, environ={}), remote)
    assert [p.path for p in info.value.problems] == ["rules.nightly-elt.targets[0].warehouse"]
    assert not [c for c in fake.calls if not c.startswith("GET")]


def test_a_pipeline_error_survives_the_trip_through_an_error_envelope() -> None:
    with pytest.raises(PipelineError) as info:
        load_pipeline(BAD, environ={})
    envelope = info.value.to_dict()
    again = error_class_for(envelope["code"])(envelope["message"], details=envelope["details"])
    assert isinstance(again, PipelineError)
    assert again.problems == info.value.problems


def test_secrets_are_compared_as_set_or_not(fake: FakeServer, remote: Remote) -> None:
    text = ELT.replace(
        "statement_name: nightly-elt}",
        "statement_name: nightly-elt}\n      - {id: hook, kind: webhook, url: 'https://h', secret: '${S}'}",
    )
    apply(plan(load_pipeline(text, environ={"S": "one"}), remote), remote)
    assert fake.rules["nightly-elt"]["targets"][1]["secret"] == "***"
    # the server never shows a secret, so a new one alone is not a change...
    assert not plan(load_pipeline(text, environ={"S": "two"}), remote).has_changes
    # ...but removing it is
    the_plan = plan(load_pipeline(text.replace(", secret: '${S}'", ""), environ={}), remote)
    assert [str(c) for c in the_plan.changes if c.action == "update"] == [
        "update rule nightly-elt: targets"
    ]
    assert '"***" -> (none)' in render_plan(the_plan)
