"""The event models: every problem of a value, each with its place and sqltide's words."""

from __future__ import annotations

from typing import Any

import pytest

from sqltide.events.models import (
    EventEntry,
    InnerPath,
    dotted,
    problems_of,
    rule_problems,
    topic_problems,
    validated,
)


@pytest.mark.parametrize(
    ("entry", "where", "reason"),
    [
        (5, "", "an event entry is an object"),
        ({"detail_type": "x"}, "source", "a non-empty string of at most 256 characters"),
        ({"source": "a", "detail_type": "x" * 257}, "detail_type", "at most 256"),
        ({"source": "a\tb", "detail_type": "x"}, "source", "control characters"),
        ({"source": "aws.x", "detail_type": "x"}, "source", "sqltide's own"),
        ({"source": "a", "detail_type": "x", "detail": "{"}, "detail", "not valid JSON"),
        ({"source": "a", "detail_type": "x", "detail": []}, "detail", "must be a JSON object"),
        ({"source": "a", "detail_type": "x", "resources": "r"}, "resources", "a list of strings"),
        (
            {"source": "a", "detail_type": "x", "resources": ["ok", "\ud800"]},
            "resources[1]",
            "lone surrogate",
        ),
        ({"source": "a", "detail_type": "x", "time": "soon"}, "time", "an ISO 8601 time"),
        ({"source": "a", "detail_type": "x", "time": -1}, "time", "between 1970-01-01"),
    ],
)
def test_an_entry_names_its_first_problem(entry: Any, where: str, reason: str) -> None:
    [problem, *_] = problems_of(EventEntry, entry)
    assert dotted(problem.loc) == where
    assert reason in problem.reason


def test_an_entry_is_read_as_it_will_be_recorded() -> None:
    entry, problems = validated(
        EventEntry,
        {"source": "app", "detail_type": "x", "detail": '{"a": 1}', "time": "1970-01-01T00:01Z"},
    )
    assert problems == [] and entry is not None
    assert (entry.detail, entry.time, entry.resources) == ({"a": 1}, 60.0, [])


def test_every_rule_problem_at_once_with_its_place() -> None:
    found = rule_problems(
        {
            "schedule": "rate(1 day)",
            "event_pattern": {"source": [{"prefix": 1}]},
            "targets": [
                {"kind": "sql", "sql": "x"},
                {"kind": "webhook", "id": "0", "url": "ftp://x", "timeout_seconds": 0},
            ],
        }
    )
    places = {dotted(p.loc, "r"): p for p in found}
    assert set(places) == {
        "r",
        "r.event_pattern.source[0].prefix",
        "r.targets[1].url",
        "r.targets[1].timeout_seconds",
        "r.targets[1].id",
    }
    assert isinstance(places["r.event_pattern.source[0].prefix"].loc[-1], InnerPath)
    used_twice = places["r.targets[1].id"]
    assert used_twice.also == ("targets", 0)  # so a longer path can name targets[0] in full
    assert dotted(used_twice.also) in used_twice.reason


def test_a_wrapped_checker_keeps_its_code() -> None:
    [problem] = topic_problems(
        {"subscriptions": [{"protocol": "sns", "endpoint": "arn", "filter_policy": {"a": "b"}}]}
    )
    assert problem.code == "invalid_filter_policy"
    assert dotted(problem.loc) == "subscriptions[0].filter_policy.$.a"
