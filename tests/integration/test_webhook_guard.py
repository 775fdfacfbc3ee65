"""The webhook guard end to end: refused at create time (422, through the real API) and at
delivery time (a dead letter, nothing sent), opened by the allow-list; header injection
refused at both times.

The module's ``settings`` have no allow-list (the defaults); tests that need one build their
runtimes from the environment, where ``conftest`` allows 127.0.0.1 and ::1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import make_settings
from helpers import Receiver
from sqltide.runtime import Runtime
from sqltide.server import ServerThread
from sqltide.settings import Settings
from sqltide.store.event_records import DeliveryRecord


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    """The default guard: an explicit empty allow-list beats conftest's environment."""
    return make_settings(tmp_path, store=store_url, webhook_allowed_networks="")


@pytest.fixture
def http(server: ServerThread, api_key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def webhook_rule(url: str, **target: Any) -> dict[str, Any]:
    return {
        "event_pattern": {"source": ["shop"]},
        "targets": [{"id": "hook", "kind": "webhook", "url": url, **target}],
    }


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


# -- create time ---------------------------------------------------------------------------------
REFUSED = [
    ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
    ("http://10.0.0.7/hook", "10.0.0.7 is a private"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://[::1]:9/hook", "::1 is a loopback address"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata address"),
    ("http://2130706433/", "2130706433 resolves to 127.0.0.1, a loopback address"),
    ("http://0x7f.1:9/", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
    ("http://localhost:9/hook", "localhost resolves to 127.0.0.1, a loopback address"),
    ("http://metadata.google.internal/", "metadata.google.internal is a cloud metadata service"),
]


@pytest.mark.parametrize(("url", "message"), REFUSED)
def test_a_webhook_target_to_a_refused_address_is_422(
    http: httpx.Client, url: str, message: str
) -> None:
    error = error_of(http.put("/v1/rules/hook", json=webhook_rule(url)))
    assert error["code"] == "invalid_rule"
    assert error["details"]["path"] == "hook.targets[0].url"
    assert message in error["message"]
    assert http.get("/v1/rules/hook").status_code == 404


@pytest.mark.parametrize(("url", "message"), REFUSED[:3])
def test_a_webhook_subscription_to_a_refused_address_is_422(
    http: httpx.Client, url: str, message: str
) -> None:
    for protocol in ("webhook", "https"):
        topic = {"subscriptions": [{"protocol": protocol, "endpoint": url}]}
        error = error_of(http.put("/v1/topics/alerts", json=topic))
        assert error["details"]["path"] == "alerts.subscriptions[0].endpoint"
        assert message in error["message"]
    assert http.get("/v1/topics/alerts").status_code == 404


def test_a_global_address_is_accepted(http: httpx.Client) -> None:
    # created only: nothing is delivered, since no event is put
    r = http.put("/v1/rules/hook", json=webhook_rule("https://93.184.216.34/hook"))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("headers", "path", "message"),
    [
        ({"X-A": "1\r\nX-Injected: 1"}, "hook.targets[0].headers.X-A", "line break"),
        ({"X-A": "1\nX-Injected: 1"}, "hook.targets[0].headers.X-A", "line break"),
        ({"X-A": "1\x00"}, "hook.targets[0].headers.X-A", "control character"),
        ({"Bad Name": "1"}, "hook.targets[0].headers.Bad Name", "not a header name"),
        ({"Host": "internal.example"}, "hook.targets[0].headers.Host", "set by sqltide"),
        ({"X-A": 1}, "hook.targets[0].headers.X-A", "must be a string"),
        (["X-A"], "hook.targets[0].headers", "a mapping"),
    ],
)
def test_a_bad_webhook_header_is_422(
    http: httpx.Client, headers: Any, path: str, message: str
) -> None:
    rule = webhook_rule("https://93.184.216.34/hook", headers=headers)
    error = error_of(http.put("/v1/rules/hook", json=rule))
    assert error["details"]["path"] == path
    assert message in error["message"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "ops@example.com\r\nBcc: everyone@example.com",
        "ops@example.com\nBcc: everyone@example.com",
        "ops@example.com\u2028Bcc: everyone@example.com",
        "Ops <ops@example.com>",
        "a@example.com, b@example.com",
    ],
)
def test_an_email_endpoint_that_would_inject_headers_is_422(
    http: httpx.Client, endpoint: str
) -> None:
    topic = {"subscriptions": [{"protocol": "email", "endpoint": endpoint}]}
    error = error_of(http.put("/v1/topics/alerts", json=topic))
    assert error["details"]["path"] == "alerts.subscriptions[0].endpoint"
    ok = {"subscriptions": [{"protocol": "email", "endpoint": "ops@example.com"}]}
    assert http.put("/v1/topics/alerts", json=ok).status_code == 201


# -- delivery time -------------------------------------------------------------------------------
def build(tmp_path: Path, store_url: str, **overrides: Any) -> Runtime:
    """A runtime on the test's store (not started: the test drives its bus by hand)."""
    return Runtime.build(make_settings(tmp_path, store=store_url, **overrides))


def put_event(rt: Runtime) -> None:
    assert rt.events is not None
    (result,) = rt.events.put_events("alice", [{"source": "shop", "detail_type": "Order"}])
    assert "event_id" in result


def deliver_all(rt: Runtime) -> list[DeliveryRecord]:
    """Route the events, then run deliveries until none is due; the deliveries, oldest first."""
    assert rt.bus is not None
    rt.bus.route_once()
    while rt.bus.deliver_once():
        pass
    return sorted(rt.store.list_deliveries("alice"), key=lambda d: d.created_at)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_allow_list_lets_a_delivery_through(
    tmp_path: Path, store_url: str, receiver: Receiver, host: str
) -> None:
    rt = build(tmp_path, store_url)  # conftest's allow-list: 127.0.0.1 and ::1
    try:
        assert rt.events is not None
        url = receiver.url.replace("127.0.0.1", host)
        rt.events.put_rule("alice", {"name": "hook", **webhook_rule(url)})
        put_event(rt)
        (delivery,) = deliver_all(rt)
        assert delivery.status == "DELIVERED", delivery.last_error
        assert len(receiver.requests) == 1
    finally:
        rt.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_a_refused_delivery_is_dead_lettered_and_sends_nothing(
    tmp_path: Path, store_url: str, receiver: Receiver, host: str
) -> None:
    """Created while the allow-list held the address; delivered after it was taken away
    (the same as a name whose DNS answer changed to a refused address)."""
    creator = build(tmp_path, store_url)
    try:
        assert creator.events is not None
        url = receiver.url.replace("127.0.0.1", host)
        creator.events.put_rule("alice", {"name": "hook", **webhook_rule(url)})
        put_event(creator)
    finally:
        creator.stop()
    deliverer = build(tmp_path, store_url, webhook_allowed_networks="")
    try:
        deliveries = deliver_all(deliverer)
    finally:
        deliverer.stop()
    hook = next(d for d in deliveries if d.target_id == "hook")
    assert hook.status == "DEAD"
    assert hook.attempts == 1  # not retried
    assert hook.last_error is not None
    assert hook.last_error["code"] == "target_forbidden"
    assert hook.last_error["dead_reason"] == "target_forbidden"
    assert "loopback address" in hook.last_error["message"]
    assert receiver.requests == []


def test_a_stored_header_with_a_line_break_is_refused_at_delivery(
    tmp_path: Path, store_url: str, receiver: Receiver
) -> None:
    """A target stored before headers were checked: refused by the sender, nothing sent."""
    rt = build(tmp_path, store_url)
    try:
        assert rt.events is not None
        rule, _ = rt.events.put_rule("alice", {"name": "hook", **webhook_rule(receiver.url)})
        target = {**rule.targets[0], "headers": {"X-A": "1\r\nX-Injected: 1"}}
        rt.store.upsert_rule(dataclasses.replace(rule, targets=[target]))
        put_event(rt)
        hook = next(d for d in deliver_all(rt) if d.target_id == "hook")
    finally:
        rt.stop()
    assert hook.status == "DEAD"
    assert hook.last_error is not None
    assert hook.last_error["dead_reason"] == "webhook_invalid_header"
    assert receiver.requests == []


def test_a_stored_email_endpoint_with_a_line_break_is_refused_at_delivery(
    tmp_path: Path, store_url: str
) -> None:
    # the check comes before any connection: nothing listens at this SMTP address
    smtp = "smtp://127.0.0.1:9?from=sqltide@example.com&security=none"
    rt = build(tmp_path, store_url, smtp_url=smtp)
    try:
        assert rt.events is not None
        topic, _ = rt.events.put_topic(
            "alice",
            {"name": "alerts", "subscriptions": [{"protocol": "email", "endpoint": "a@x.com"}]},
        )
        bad = {**topic.subscriptions[0], "endpoint": "a@x.com\r\nBcc: everyone@example.com"}
        rt.store.upsert_topic(dataclasses.replace(topic, subscriptions=[bad]))
        rule = {
            "name": "mail",
            "event_pattern": {"source": ["shop"]},
            "targets": [{"id": "mail", "kind": "topic", "topic": "alerts"}],
        }
        rt.events.put_rule("alice", rule)
        put_event(rt)
        deliveries = deliver_all(rt)
    finally:
        rt.stop()
    (email,) = [d for d in deliveries if d.target.get("kind") == "subscription"]
    assert email.status == "DEAD"
    assert email.last_error is not None
    assert email.last_error["dead_reason"] == "email_invalid_address"
