"""Unit tests of the client's event bus methods (events, rules, topics, deliveries) against a
fake API on ``httpx.MockTransport``: the requests they make and how they read the answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sqltide.client import (
    AsyncClient,
    Client,
    PayloadTooLarge,
    SqltideError,
    UnprocessableEntity,
)

BASE = "http://sqltide.test"
T0 = "2026-11-23T18:30:00Z"

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("SQLTIDE_URL", "SQLTIDE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SQLTIDE_HOME", str(tmp_path / "no-home"))


class FakeApi:
    """Answers each request with ``answer(request)`` and records every request."""

    def __init__(self, answer: Handler):
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, n: int = -1) -> Any:
        return json.loads(self.requests[n].content)


def error(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "details": details}}
    )


def fixed(body: Any, status: int = 200) -> FakeApi:
    return FakeApi(lambda request: httpx.Response(status, json=body))


def client_for(api: FakeApi) -> Client:
    return Client(BASE, "secret", transport=httpx.MockTransport(api))


def async_client_for(api: FakeApi) -> AsyncClient:
    return AsyncClient(BASE, "secret", transport=httpx.MockTransport(api))


def event(n: int) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"ev-{n}",
        "detail-type": "Order Placed",
        "source": "shop",
        "account": "000000000000",
        "time": T0,
        "region": "local",
        "resources": [],
        "detail": {"order": n},
    }


RULE = {
    "name": "nightly",
    "description": None,
    "state": "ENABLED",
    "event_pattern": None,
    "schedule": "cron(0 11 ? * MON-FRI *)",
    "timezone": "Europe/Berlin",
    "missed_policy": "skip",
    "missed_window_seconds": None,
    "targets": [{"id": "t", "kind": "event", "source": "cron"}],
    "last_fired_at": None,
    "created_at": T0,
    "updated_at": T0,
}
TOPIC = {
    "name": "ops",
    "display_name": "Ops",
    "subscriptions": [{"id": "0", "protocol": "email", "endpoint": "ops@example.com"}],
    "created_at": T0,
    "updated_at": T0,
}
DEAD = {
    "id": "d-1",
    "event_id": "ev-1",
    "rule": "nightly",
    "target": "t",
    "status": "DEAD",
    "attempts": 3,
    "next_attempt_at": None,
    "last_error": {"code": "http_404", "message": "404", "attempt": 3, "dead_reason": "http_404"},
    "payload": {},
    "created_at": T0,
    "updated_at": T0,
    "delivered_at": None,
}


# -- events ------------------------------------------------------------------------------------


def test_put_events_sends_the_entries_and_returns_every_result_without_raising() -> None:
    results = [
        {"event_id": "ev-1"},
        {"error_code": "validation_error", "error_message": "entries[1].source: ..."},
    ]
    api = fixed({"failed_entry_count": 1, "entries": results})
    entries = [
        {"source": "shop", "detail_type": "Order Placed", "detail": {"order": 1}},
        {"source": "", "detail_type": "Order Placed"},
    ]
    with client_for(api) as client:
        assert client.put_events(entries) == results
    assert (api.last.method, api.last.url.path) == ("POST", "/v1/events")
    assert api.last.headers["Authorization"] == "Bearer secret"
    assert api.body() == {"entries": entries}


def test_put_events_refuses_a_single_entry_given_as_a_mapping() -> None:
    api = fixed({})
    with client_for(api) as client, pytest.raises(TypeError, match="put_event"):
        client.put_events({"source": "shop", "detail_type": "x"})  # type: ignore[arg-type]
    assert api.requests == []


def test_put_event_sends_one_entry_and_returns_its_id() -> None:
    api = fixed({"failed_entry_count": 0, "entries": [{"event_id": "ev-9"}]})
    at = datetime(2026, 11, 23, 19, 30, tzinfo=UTC)
    with client_for(api) as client:
        assert client.put_event("shop", "Order Placed") == "ev-9"
        assert (
            client.put_event("shop", "Order Placed", {"order": 42}, resources=["arn:x"], time=at)
            == "ev-9"
        )
        client.put_event("shop", "Order Placed", time="2026-11-23T19:30:00+01:00")
    # left out keys take the server's defaults (an empty detail, no resources, now)
    assert api.body(0) == {"entries": [{"source": "shop", "detail_type": "Order Placed"}]}
    assert api.body(1) == {
        "entries": [
            {
                "source": "shop",
                "detail_type": "Order Placed",
                "detail": {"order": 42},
                "resources": ["arn:x"],
                "time": "2026-11-23T19:30:00.000000Z",
            }
        ]
    }
    assert api.body(2)["entries"][0]["time"] == "2026-11-23T19:30:00+01:00"


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("validation_error", UnprocessableEntity),
        ("payload_too_large", PayloadTooLarge),
        ("something_new", SqltideError),
    ],
)
def test_put_event_raises_the_entrys_error_as_its_class(code: str, cls: type[SqltideError]) -> None:
    message = "entries[0].detail: must be a JSON object"
    api = fixed(
        {"failed_entry_count": 1, "entries": [{"error_code": code, "error_message": message}]}
    )
    with client_for(api) as client, pytest.raises(cls) as caught:
        client.put_event("shop", "Order Placed", {"order": 1})
    assert type(caught.value) is cls
    assert caught.value.code == code
    assert caught.value.message == message


def test_put_event_raises_an_error_answer_of_the_whole_request() -> None:
    api = FakeApi(lambda r: error(401, "unauthorized", "Missing or invalid API key."))
    with client_for(api) as client, pytest.raises(SqltideError) as caught:
        client.put_event("shop", "Order Placed")
    assert caught.value.code == "unauthorized"
    assert caught.value.http_status == 401


def paged_events(pages: list[list[dict[str, Any]]]) -> FakeApi:
    """Pages of the archive, chained by next_token ``p1``, ``p2``, ..."""

    def answer(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("next_token")
        n = int(token[1:]) if token else 0
        next_token = f"p{n + 1}" if n + 1 < len(pages) else None
        return httpx.Response(200, json={"events": pages[n], "next_token": next_token})

    return FakeApi(answer)


def test_events_follows_next_token_across_pages() -> None:
    api = paged_events([[event(1), event(2)], [event(3)], [event(4)]])
    start = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    with client_for(api) as client:
        events = list(client.events(start, "2026-11-24T00:00:00Z", max_results=2))
    assert [e["id"] for e in events] == ["ev-1", "ev-2", "ev-3", "ev-4"]
    assert [r.url.path for r in api.requests] == ["/v1/events"] * 3
    params = [dict(r.url.params) for r in api.requests]
    base = {
        "start": "2026-11-23T18:00:00.000000Z",
        "end": "2026-11-24T00:00:00Z",
        "max_results": "2",
    }
    assert params == [base, {**base, "next_token": "p1"}, {**base, "next_token": "p2"}]


def test_events_is_lazy_and_sends_no_empty_parameters() -> None:
    api = paged_events([[event(1)], [event(2)]])
    with client_for(api) as client:
        events = client.events()
        assert api.requests == []
        assert next(events)["id"] == "ev-1"
        assert len(api.requests) == 1
    assert dict(api.requests[0].url.params) == {}


def test_events_of_an_empty_archive() -> None:
    api = fixed({"events": [], "next_token": None})
    with client_for(api) as client:
        assert list(client.events()) == []


# -- rules -------------------------------------------------------------------------------------


def test_put_rule_sends_the_rule_without_unset_fields() -> None:
    api = fixed(RULE, status=201)
    targets = [{"id": "t", "kind": "event", "source": "cron"}]
    with client_for(api) as client:
        rule = client.put_rule(
            "nightly",
            schedule="cron(0 11 ? * MON-FRI *)",
            timezone="Europe/Berlin",
            targets=targets,
        )
    assert rule == RULE
    assert (api.last.method, api.last.url.path) == ("PUT", "/v1/rules/nightly")
    assert api.body() == {
        "schedule": "cron(0 11 ? * MON-FRI *)",
        "timezone": "Europe/Berlin",
        "state": "ENABLED",
        "targets": targets,
    }


def test_put_rule_with_a_pattern_and_every_setting() -> None:
    api = fixed(RULE)
    pattern = {"source": ["aws.redshift-data"], "detail": {"state": ["FAILED"]}}
    with client_for(api) as client:
        client.put_rule(
            "on failure/1",
            event_pattern=pattern,
            targets=[{"kind": "topic", "topic": "ops"}],
            state="DISABLED",
            description="tell ops",
            missed_policy="latest",
            missed_window_seconds=600,
        )
    # the name is one path segment, escaped
    assert api.last.url.raw_path == b"/v1/rules/on%20failure%2F1"
    assert api.body() == {
        "event_pattern": pattern,
        "targets": [{"kind": "topic", "topic": "ops"}],
        "state": "DISABLED",
        "timezone": "UTC",
        "description": "tell ops",
        "missed_policy": "latest",
        "missed_window_seconds": 600,
    }


def test_put_rule_raises_invalid_rule_with_its_path() -> None:
    api = FakeApi(
        lambda r: error(
            422,
            "invalid_rule",
            "nightly.schedule: Invalid schedule",
            path="nightly.schedule",
            reason="cron needs ? in day-of-month or day-of-week",
        )
    )
    with client_for(api) as client, pytest.raises(SqltideError) as caught:
        client.put_rule("nightly", schedule="cron(0 11 * * MON-FRI *)", targets=[])
    assert caught.value.code == "invalid_rule"
    assert caught.value.http_status == 422
    assert caught.value.details["path"] == "nightly.schedule"


def test_rule_rules_and_delete_rule() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.url.path == "/v1/rules":
            return httpx.Response(200, json={"rules": [RULE]})
        return httpx.Response(200, json=RULE)

    api = FakeApi(answer)
    with client_for(api) as client:
        assert client.rule("nightly") == RULE
        assert client.rules() == [RULE]
        assert client.delete_rule("nightly") is None
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("GET", "/v1/rules/nightly"),
        ("GET", "/v1/rules"),
        ("DELETE", "/v1/rules/nightly"),
    ]


def test_delete_rule_of_an_unknown_rule_raises() -> None:
    api = FakeApi(lambda r: error(404, "rule_not_found", "No rule with this name.", name="x"))
    with client_for(api) as client, pytest.raises(SqltideError) as caught:
        client.delete_rule("x")
    assert (caught.value.code, caught.value.http_status) == ("rule_not_found", 404)


# -- topics ------------------------------------------------------------------------------------


def test_topic_methods() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.url.path == "/v1/topics":
            return httpx.Response(200, json={"topics": [TOPIC]})
        return httpx.Response(200, json=TOPIC)

    api = FakeApi(answer)
    subs = [{"protocol": "email", "endpoint": "ops@example.com"}]
    with client_for(api) as client:
        assert client.put_topic("ops", subs, display_name="Ops") == TOPIC
        client.put_topic("ops", subs)
        assert client.topic("ops") == TOPIC
        assert client.topics() == [TOPIC]
        client.delete_topic("ops")
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("PUT", "/v1/topics/ops"),
        ("PUT", "/v1/topics/ops"),
        ("GET", "/v1/topics/ops"),
        ("GET", "/v1/topics"),
        ("DELETE", "/v1/topics/ops"),
    ]
    assert api.body(0) == {"subscriptions": subs, "display_name": "Ops"}
    assert api.body(1) == {"subscriptions": subs}


# -- deliveries --------------------------------------------------------------------------------


def test_deliveries_dead_letters_and_redrive() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={**DEAD, "status": "PENDING"})
        return httpx.Response(200, json={"deliveries": [DEAD]})

    api = FakeApi(answer)
    with client_for(api) as client:
        assert client.deliveries() == [DEAD]
        assert client.deliveries("PENDING", max_results=5) == [DEAD]
        assert client.dead_letters() == [DEAD]
        assert client.dead_letters(max_results=10) == [DEAD]
        assert client.redrive("d-1")["status"] == "PENDING"
    assert [(r.method, r.url.path, dict(r.url.params)) for r in api.requests] == [
        ("GET", "/v1/deliveries", {}),
        ("GET", "/v1/deliveries", {"status": "PENDING", "max_results": "5"}),
        ("GET", "/v1/deliveries", {"status": "DEAD"}),
        ("GET", "/v1/deliveries", {"status": "DEAD", "max_results": "10"}),
        ("POST", "/v1/deliveries/d-1/redrive", {}),
    ]


def test_redrive_of_an_unknown_delivery_raises() -> None:
    api = FakeApi(lambda r: error(404, "delivery_not_found", "No dead letter.", id="nope"))
    with client_for(api) as client, pytest.raises(SqltideError) as caught:
        client.redrive("nope")
    assert caught.value.code == "delivery_not_found"


# -- the async client: the same requests, awaited ------------------------------------------


def test_async_client_has_the_same_event_methods() -> None:
    names = [
        "put_events",
        "put_event",
        "events",
        "put_rule",
        "rule",
        "rules",
        "delete_rule",
        "put_topic",
        "topic",
        "topics",
        "delete_topic",
        "deliveries",
        "dead_letters",
        "redrive",
    ]
    for name in names:
        assert callable(getattr(Client, name)) and callable(getattr(AsyncClient, name)), name


def test_async_events_follows_next_token() -> None:
    api = paged_events([[event(1)], [event(2), event(3)]])

    async def main() -> list[dict[str, Any]]:
        async with async_client_for(api) as client:
            return [e async for e in client.events(max_results=2)]

    assert [e["id"] for e in asyncio.run(main())] == ["ev-1", "ev-2", "ev-3"]
    assert [dict(r.url.params) for r in api.requests] == [
        {"max_results": "2"},
        {"max_results": "2", "next_token": "p1"},
    ]


def test_async_put_event_and_put_events() -> None:
    failed = {"error_code": "validation_error", "error_message": "entries[0].source: ..."}
    api = fixed({"failed_entry_count": 1, "entries": [failed]})

    async def main() -> list[dict[str, Any]]:
        async with async_client_for(api) as client:
            results = await client.put_events([{"source": "", "detail_type": "x"}])
            with pytest.raises(UnprocessableEntity):
                await client.put_event("", "x", {"a": 1})
            return results

    assert asyncio.run(main()) == [failed]
    assert api.body(1) == {"entries": [{"source": "", "detail_type": "x", "detail": {"a": 1}}]}


def test_async_rules_topics_and_deliveries() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "DELETE":
            return httpx.Response(204)
        if path == "/v1/rules":
            return httpx.Response(200, json={"rules": [RULE]})
        if path.startswith("/v1/rules/"):
            return httpx.Response(200, json=RULE)
        if path == "/v1/topics":
            return httpx.Response(200, json={"topics": [TOPIC]})
        if path.startswith("/v1/topics/"):
            return httpx.Response(200, json=TOPIC)
        if path == "/v1/deliveries":
            return httpx.Response(200, json={"deliveries": [DEAD]})
        return httpx.Response(200, json={**DEAD, "status": "PENDING"})

    api = FakeApi(answer)

    async def main() -> None:
        async with async_client_for(api) as client:
            assert await client.put_rule("nightly", schedule="rate(1 day)", targets=[]) == RULE
            assert await client.rule("nightly") == RULE
            assert await client.rules() == [RULE]
            await client.delete_rule("nightly")
            assert await client.put_topic("ops", []) == TOPIC
            assert await client.topic("ops") == TOPIC
            assert await client.topics() == [TOPIC]
            await client.delete_topic("ops")
            assert await client.deliveries("DELIVERED") == [DEAD]
            assert await client.dead_letters() == [DEAD]
            assert (await client.redrive("d-1"))["status"] == "PENDING"

    asyncio.run(main())
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("PUT", "/v1/rules/nightly"),
        ("GET", "/v1/rules/nightly"),
        ("GET", "/v1/rules"),
        ("DELETE", "/v1/rules/nightly"),
        ("PUT", "/v1/topics/ops"),
        ("GET", "/v1/topics/ops"),
        ("GET", "/v1/topics"),
        ("DELETE", "/v1/topics/ops"),
        ("GET", "/v1/deliveries"),
        ("GET", "/v1/deliveries"),
        ("POST", "/v1/deliveries/d-1/redrive"),
    ]
    assert api.body(0) == {
        "schedule": "rate(1 day)",
        "targets": [],
        "state": "ENABLED",
        "timezone": "UTC",
    }
    assert dict(api.requests[9].url.params) == {"status": "DEAD"}


def test_async_delete_of_an_unknown_topic_raises() -> None:
    api = FakeApi(lambda r: error(404, "topic_not_found", "No topic with this name."))

    async def main() -> None:
        async with async_client_for(api) as client:
            await client.delete_topic("x")

    with pytest.raises(SqltideError) as caught:
        asyncio.run(main())
    assert caught.value.code == "topic_not_found"
