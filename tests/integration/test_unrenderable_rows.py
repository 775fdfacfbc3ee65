"""Rows an older version recorded without today's input checks: still listed, never a 500.

Each bad row is written through the real store (SQLite and PostgreSQL), as the old version
did, and then read through the live API. The field that cannot be shown as JSON is shown as
``"<unrenderable>"``; the delivery of such an event is dead-lettered at once, not retried as
an internal error for a day.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import pytest

from helpers import api, wait_until
from sqltide.api.responses import UNRENDERABLE
from sqltide.runtime import Runtime
from sqltide.server import ServerThread
from sqltide.store import StatementRecord, StatementStatus
from sqltide.store.event_records import EventRecord, RuleRecord, envelope


def deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"d": value}
    return value


def test_a_statement_recorded_with_unservable_parameters_is_listed_with_a_marker(
    runtime: Runtime, server: ServerThread, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    now = time.time()
    bad = StatementRecord(
        id=str(uuid.uuid4()),
        principal="alice",
        warehouse="default",
        status=StatementStatus.FAILED,  # ended: no worker picks it up
        query_string="select :a, :b",
        created_at=now,
        updated_at=now,
        ended_at=now,
        parameters={"a": 2**80, "b": "\ud800"},
        statement_name="old",
    )
    runtime.store.create_statement(bad, now=now)
    http = api(server, api_key)
    good = http.post("/v1/statements", json={"sql": "select 1"})
    assert good.status_code == 201, good.text

    with caplog.at_level(logging.WARNING, logger="sqltide.api.responses"):
        for _ in range(3):
            listed = http.get("/v1/statements")
            assert listed.status_code == 200, listed.text
    rows = {s["id"]: s for s in listed.json()["statements"]}
    assert rows[bad.id]["parameters"] == UNRENDERABLE
    assert rows[bad.id]["statement_name"] == "old"  # the rest of the row is shown as usual
    assert rows[good.json()["id"]]["query_string"] == "select 1"
    described = http.get(f"/v1/statements/{bad.id}")
    assert described.status_code == 200, described.text
    assert described.json()["parameters"] == UNRENDERABLE
    # Logged once for the row, not once per answer.
    logged = [r for r in caplog.records if bad.id in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert "parameters" in logged[0].getMessage()


def test_an_unservable_old_event_is_listed_and_its_delivery_dead_lettered_at_once(
    runtime: Runtime, server: ServerThread, api_key: str
) -> None:
    now = time.time()
    rule = RuleRecord(
        principal="alice",
        name="old-events",
        state="ENABLED",
        event_pattern={"source": ["old.app"]},
        targets=[
            {
                "id": "t",
                "kind": "event",
                "retry_policy": {
                    "maximum_event_age_seconds": 86_400,
                    "maximum_retry_attempts": 185,
                },
            }
        ],
        created_at=now,
        updated_at=now,
    )
    runtime.store.upsert_rule(rule)
    runtime.notifier.publish("rules", "alice")
    events = []
    for detail in ({"deep": deep(300)}, {"\ud800": "lone surrogate key"}, {"n": 2**70}):
        event_id = str(uuid.uuid4())
        events.append(
            EventRecord(
                id=event_id,
                principal="alice",
                source="old.app",
                detail_type="Old",
                time=now,
                body=envelope(
                    source="old.app", detail_type="Old", detail=detail, time=now, event_id=event_id
                ),
                created_at=now,
            )
        )
    runtime.store.put_events(events)
    runtime.notifier.publish("events", "alice")
    http = api(server, api_key)

    def dead() -> list[dict[str, Any]]:
        r = http.get("/v1/deliveries", params={"status": "DEAD"})
        assert r.status_code == 200, r.text
        found = r.json()["deliveries"]
        return found if len(found) == len(events) else []

    for d in wait_until(dead):
        assert d["attempts"] == 1, d  # failed once, for good: no day of retries
        assert d["last_error"]["code"] == "unencodable_input", d
        assert d["last_error"]["dead_reason"] == "unencodable_input", d
        assert d["payload"] == UNRENDERABLE
    listed = http.get("/v1/events", params={"max_results": 1000})
    assert listed.status_code == 200, listed.text
    shown = {e["id"]: e for e in listed.json()["events"]}
    for event in events:
        assert shown[event.id]["detail"] == UNRENDERABLE
        assert shown[event.id]["source"] == "old.app"
