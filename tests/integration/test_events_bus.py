"""Events, rules and deliveries end to end: a real server, a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from helpers import Receiver, api, wait_until
from sqltide.client import Client
from sqltide.events import bus as bus_module
from sqltide.notify.webhook import verify_signature
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

SECRET = "s3cret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_module, "BACKOFF_BASE_SECONDS", 0.01)
    monkeypatch.setattr(bus_module, "BACKOFF_CAP_SECONDS", 0.05)


def test_statement_status_event_reaches_a_signed_webhook(
    server: ServerThread, api_key: str, client: Client, receiver: Receiver
) -> None:
    http = api(server, api_key)
    rule = {
        "event_pattern": {"source": ["aws.redshift-data"], "detail": {"principal": ["alice"]}},
        "targets": [
            {
                "id": "hook",
                "kind": "webhook",
                "url": receiver.url,
                "secret": SECRET,
                "input_transformer": {
                    "input_paths_map": {"state": "$.detail.state", "id": "$.detail.statementId"},
                    "input_template": '{"text": "statement <id> is <state>", "state": <state>}',
                },
            }
        ],
    }
    r = http.put("/v1/rules/on-done", json=rule)
    assert r.status_code == 201, r.text
    assert r.json()["targets"][0]["secret"] == "***"
    st = client.wait(client.execute("SELECT 42", with_event=True).id, timeout=10)
    assert st.status == "FINISHED"
    (req,) = wait_until(lambda: receiver.requests)
    body = json.loads(req["body"])
    assert body == {"text": f"statement {st.id} is FINISHED", "state": "FINISHED"}
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert verify_signature(
        SECRET, headers["sqltide-timestamp"], req["body"], headers["sqltide-signature"]
    )
    # the event is in the archive with the Data API's shape
    events = http.get("/v1/events").json()["events"]
    (event,) = [e for e in events if e["source"] == "aws.redshift-data"]
    assert event["detail-type"] == "Redshift Data Statement Status Change"
    assert event["detail"]["statementId"] == st.id
    # a statement without with_event sends nothing
    client.wait(client.execute("SELECT 1").id, timeout=10)
    wait_until(lambda: http.get("/v1/deliveries").json()["deliveries"])
    assert len(receiver.requests) == 1


def test_failing_webhook_is_retried_then_dead_lettered_and_redriven(
    server: ServerThread, api_key: str, receiver: Receiver
) -> None:
    http = api(server, api_key)
    receiver.answers = [500, 503]  # then 200
    hook = {"id": "hook", "kind": "webhook", "url": receiver.url}
    assert (
        http.put(
            "/v1/rules/orders", json={"event_pattern": {"source": ["shop"]}, "targets": [hook]}
        ).status_code
        == 201
    )
    put = http.post(
        "/v1/events",
        json={"entries": [{"source": "shop", "detail_type": "Order", "detail": {"n": 1}}]},
    )
    assert put.json()["failed_entry_count"] == 0
    wait_until(lambda: len(receiver.requests) == 3)
    (d,) = wait_until(
        lambda: http.get("/v1/deliveries", params={"status": "DELIVERED"}).json()["deliveries"]
    )
    assert d["attempts"] == 3

    # always failing, two retries allowed: dead after three attempts
    receiver.answers = [500] * 10
    hook2 = {
        **hook,
        "retry_policy": {"maximum_retry_attempts": 2, "maximum_event_age_seconds": 3600},
    }
    http.put("/v1/rules/orders", json={"event_pattern": {"source": ["shop"]}, "targets": [hook2]})
    time.sleep(0)  # the rule cache lives one second: wait for the new version
    wait_until(
        lambda: (
            http.get("/v1/rules/orders").json()["targets"][0]["retry_policy"][
                "maximum_retry_attempts"
            ]
            == 2
        )
    )
    bus_cache_expiry = time.monotonic() + 1.1
    wait_until(lambda: time.monotonic() > bus_cache_expiry)
    http.post(
        "/v1/events",
        json={"entries": [{"source": "shop", "detail_type": "Order", "detail": {"n": 2}}]},
    )
    (dead,) = wait_until(
        lambda: http.get("/v1/deliveries", params={"status": "DEAD"}).json()["deliveries"]
    )
    assert dead["attempts"] == 3
    assert dead["last_error"]["code"].startswith("webhook")
    assert dead["last_error"]["dead_reason"] == "retry_attempts_exhausted"
    failed = wait_until(
        lambda: [
            e
            for e in http.get("/v1/events").json()["events"]
            if e["detail-type"] == "Delivery Failed"
        ]
    )
    assert failed[0]["detail"]["deliveryId"] == dead["id"]
    # the receiver is fixed; redrive sends it again
    receiver.answers = []
    r = http.post(f"/v1/deliveries/{dead['id']}/redrive")
    assert r.status_code == 200 and r.json()["status"] == "PENDING"
    wait_until(
        lambda: any(
            d["id"] == dead["id"]
            for d in http.get("/v1/deliveries", params={"status": "DELIVERED"}).json()["deliveries"]
        )
    )
    assert (
        http.post(f"/v1/deliveries/{dead['id']}/redrive").json()["error"]["code"]
        == "delivery_not_found"
    )


def test_a_rule_that_feeds_itself_stops_with_a_loop_dead_letter(
    server: ServerThread, api_key: str
) -> None:
    http = api(server, api_key)
    target = {"id": "again", "kind": "event", "input_path": "$"}
    assert (
        http.put(
            "/v1/rules/echo", json={"event_pattern": {"source": ["echo"]}, "targets": [target]}
        ).status_code
        == 201
    )
    http.post(
        "/v1/events", json={"entries": [{"source": "echo", "detail_type": "Ping", "detail": {}}]}
    )
    (dead,) = wait_until(
        lambda: http.get("/v1/deliveries", params={"status": "DEAD"}).json()["deliveries"]
    )
    assert dead["last_error"]["code"] == "loop"
    echoes = [
        e
        for e in http.get("/v1/events", params={"max_results": 1000}).json()["events"]
        if e["source"] == "echo"
    ]
    assert len(echoes) == bus_module.MAX_DEPTH + 1  # the original and eight hops


def test_sql_target_runs_once_per_delivery(
    server: ServerThread, api_key: str, client: Client
) -> None:
    http = api(server, api_key)
    assert (
        client.wait(client.execute("CREATE TABLE hits (n INTEGER)").id, timeout=10).status
        == "FINISHED"
    )
    target = {"id": "load", "kind": "sql", "sql": "INSERT INTO hits VALUES (1)"}
    assert (
        http.put(
            "/v1/rules/load", json={"event_pattern": {"detail-type": ["Load"]}, "targets": [target]}
        ).status_code
        == 201
    )
    http.post(
        "/v1/events", json={"entries": [{"source": "cron", "detail_type": "Load", "detail": {}}]}
    )

    def loaded() -> bool:
        st = client.wait(client.execute("SELECT count(*) FROM hits").id, timeout=10)
        return next(iter(client.rows(st.id)))[0] == 1

    wait_until(loaded)
    names = [s.statement_name for s in client.list(name_prefix="rule:")]
    assert names == ["rule:load"]


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        (
            {"event_pattern": {"source": "not-a-list"}, "targets": [{"kind": "event"}]},
            "invalid_rule",
        ),
        (
            {"event_pattern": {"source": ["a"]}, "targets": [{"kind": "topic", "topic": "nope"}]},
            "invalid_rule",
        ),
        (
            {
                "event_pattern": {"source": ["a"]},
                "targets": [{"kind": "sql", "sql": "SELECT 1", "warehouse": "nope"}],
            },
            "invalid_rule",
        ),
        ({"schedule": "cron(0 11 * * MON-FRI *)", "targets": [{"kind": "event"}]}, "invalid_rule"),
        (
            {
                "event_pattern": {"source": ["a"]},
                "schedule": "rate(5 minutes)",
                "targets": [{"kind": "event"}],
            },
            "invalid_rule",
        ),
        ({"event_pattern": {"source": ["a"]}, "targets": []}, "invalid_rule"),
        ({"event_pattern": {"source": ["a"]}, "targets": [{"kind": "event"}] * 6}, "invalid_rule"),
    ],
)
def test_invalid_rules_are_refused_with_a_reason(
    server: ServerThread, api_key: str, rule: dict, code: str
) -> None:
    http = api(server, api_key)
    r = http.put("/v1/rules/bad", json=rule)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert http.get("/v1/rules/bad").status_code == 404
    assert http.get("/health").status_code == 200


def test_event_over_256_kb_is_refused_per_entry(server: ServerThread, api_key: str) -> None:
    http = api(server, api_key)
    big = {"source": "s", "detail_type": "d", "detail": {"x": "a" * (256 * 1024)}}
    ok = {"source": "s", "detail_type": "d", "detail": {}}
    r = http.post("/v1/events", json={"entries": [big, ok]})
    assert r.status_code == 413 or r.json()["failed_entry_count"] == 1


def test_another_principal_cannot_see_rules_or_events(
    server: ServerThread, api_key: str, runtime: Runtime
) -> None:
    from sqltide.keys import create_key

    http = api(server, api_key)
    http.put(
        "/v1/rules/mine", json={"event_pattern": {"source": ["x"]}, "targets": [{"kind": "event"}]}
    )
    http.post("/v1/events", json={"entries": [{"source": "x", "detail_type": "d"}]})
    bob = api(server, create_key(runtime.store, "bob")[1])
    assert bob.get("/v1/rules/mine").status_code == 404
    assert bob.get("/v1/rules").json()["rules"] == []
    assert bob.get("/v1/events").json()["events"] == []


def test_a_masked_secret_put_back_keeps_the_stored_one(
    server: ServerThread, api_key: str, runtime: Runtime
) -> None:
    http = api(server, api_key)
    hook = {"id": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/", "secret": "real"}
    http.put("/v1/rules/keep", json={"event_pattern": {"source": ["k"]}, "targets": [hook]})
    shown = http.get("/v1/rules/keep").json()
    assert shown["targets"][0]["secret"] == "***"
    shown.pop("name")
    assert http.put("/v1/rules/keep", json={**shown, "state": "DISABLED"}).status_code == 200
    stored = runtime.store.get_rule("alice", "keep")
    assert stored is not None and stored.state == "DISABLED"
    assert stored.targets[0]["secret"] == "real"
    fresh = {**hook, "id": "other", "secret": "***"}
    r = http.put("/v1/rules/keep", json={"event_pattern": {"source": ["k"]}, "targets": [fresh]})
    assert r.status_code == 422 and "give the secret" in r.json()["error"]["message"]


def test_a_masked_subscription_secret_put_back_keeps_the_stored_one(
    server: ServerThread, api_key: str, runtime: Runtime
) -> None:
    http = api(server, api_key)
    sub = {"id": "hook", "protocol": "webhook", "endpoint": "http://127.0.0.1:9/", "secret": "real"}
    assert http.put("/v1/topics/t", json={"subscriptions": [sub]}).status_code == 201
    shown = http.get("/v1/topics/t").json()
    assert shown["subscriptions"][0]["secret"] == "***"
    assert (
        http.put("/v1/topics/t", json={"subscriptions": shown["subscriptions"]}).status_code == 200
    )
    stored = runtime.store.get_topic("alice", "t")
    assert stored is not None and stored.subscriptions[0]["secret"] == "real"
