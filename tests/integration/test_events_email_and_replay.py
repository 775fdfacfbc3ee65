"""The seed 000 hand-offs with a real SMTP server on loopback; replay; archive retention."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from conftest import make_settings
from helpers import wait_until
from sqltide.client import Client
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread, free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.down = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.down:
            return "451 4.3.0 try again later"
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def mail_runtime(tmp_path: Path, store_url: str, inbox: tuple[Inbox, int]) -> Iterator[Runtime]:
    _, port = inbox
    settings = make_settings(
        tmp_path,
        store=store_url,
        smtp_url=f"smtp://127.0.0.1:{port}?security=none&from=sqltide@example.com",
    )
    rt = Runtime.build(settings)
    yield rt
    rt.stop()  # also when never started: its store and listener hold connections


def test_statement_event_to_email_topic(mail_runtime: Runtime, inbox: tuple[Inbox, int]) -> None:
    box, _ = inbox
    rt = mail_runtime
    key = create_key(rt.store, "arn:aws:iam::123456789012:user/etl", warehouses=["default"])[1]
    with ServerThread(rt) as srv, Client(srv.url, key) as client:
        http = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"})
        box.down = True  # the mail server refuses at first: the delivery is retried
        r = http.put(
            "/v1/topics/elt-status",
            json={"subscriptions": [{"protocol": "email", "endpoint": "data-team@example.com"}]},
        )
        assert r.status_code == 201, r.text
        rule = {
            "event_pattern": {
                "source": ["aws.redshift-data"],
                "detail": {"principal": ["arn:aws:iam::123456789012:user/etl"]},
            },
            "targets": [
                {
                    "id": "mail",
                    "kind": "topic",
                    "topic": "elt-status",
                    "input_transformer": {
                        "input_paths_map": {
                            "state": "$.detail.state",
                            "id": "$.detail.statementId",
                            "rows": "$.detail.rows",
                        },
                        "input_template": '{"subject": "ELT <state>", "body": "Statement <id> ended <state> with <rows> rows."}',
                    },
                }
            ],
        }
        assert http.put("/v1/rules/elt-done", json=rule).status_code == 201
        st = client.wait(
            client.execute(
                "SELECT 1 AS x UNION ALL SELECT 2", with_event=True, statement_name="elt"
            ).id,
            timeout=10,
        )
        assert st.status == "FINISHED"
        wait_until(
            lambda: any(
                d["attempts"] >= 1 and d["status"] == "PENDING"
                for d in http.get("/v1/deliveries").json()["deliveries"]
            )
        )
        box.down = False
        (mail,) = wait_until(lambda: box.messages)
        assert mail["Subject"] == "ELT FINISHED"
        assert mail["To"] == "data-team@example.com"
        assert f"Statement {st.id} ended FINISHED with 2 rows." in mail.get_content()


def test_replay_routes_archived_events_to_todays_rules(server: ServerThread, api_key: str) -> None:
    http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {api_key}"})
    for n in range(3):
        http.post(
            "/v1/events",
            json={"entries": [{"source": "shop", "detail_type": "Order", "detail": {"n": n}}]},
        )
    events = http.get("/v1/events").json()["events"]
    assert len(events) == 3
    # a rule made after the fact sees the events only through a replay
    http.put(
        "/v1/rules/late",
        json={
            "event_pattern": {"source": ["shop"]},
            "targets": [{"kind": "event", "source": "copy", "detail_type": "Seen"}],
        },
    )
    start, end = events[0]["time"], "2100-01-01T00:00:00Z"
    r = http.post("/v1/events/replay", json={"start": start, "end": end, "name": "fix-1"})
    assert r.json() == {"name": "fix-1", "events": 3}
    copies = wait_until(
        lambda: [e for e in http.get("/v1/events").json()["events"] if e["source"] == "copy"]
    )
    wait_until(
        lambda: (
            len([e for e in http.get("/v1/events").json()["events"] if e["source"] == "copy"]) == 3
        )
    )
    replayed = [
        e for e in http.get("/v1/events").json()["events"] if e.get("replay-name") == "fix-1"
    ]
    assert sorted(e["detail"]["n"] for e in replayed) == [0, 1, 2]
    assert copies
    # the same replay name again makes no second copy of the same originals
    http.post("/v1/events/replay", json={"start": start, "end": end, "name": "fix-1"})
    shop_copies = [
        e
        for e in http.get("/v1/events").json()["events"]
        if e.get("replay-name") == "fix-1" and e["source"] == "shop"
    ]
    assert len(shop_copies) == 3
    assert http.post("/v1/events/replay", json={"start": end, "end": start}).status_code == 422


def test_archive_retention_drops_old_routed_events(runtime: Runtime) -> None:
    from sqltide.store.event_records import EventRecord, envelope

    old, new = 1_000.0, time.time()
    runtime.store.put_events(
        [
            EventRecord(
                id=f"e{t}",
                principal="p",
                source="s",
                detail_type="d",
                time=t,
                body=envelope(source="s", detail_type="d", detail={}, time=t, event_id=f"e{t}"),
                created_at=t,
            )
            for t in (old, new)
        ]
    )
    assert runtime.store.delete_events_before(new - 60) == 0  # not routed yet: kept
    runtime.store.claim_events("bus", 10, 30, new)
    runtime.store.mark_events_routed([f"e{old}", f"e{new}"], new)
    assert runtime.store.delete_events_before(new - 60) == 1
    assert [e.id for e in runtime.store.list_events("p")] == [f"e{new}"]
