from __future__ import annotations

from typing import Any

import httpx

from sqltide.events.models import (
    DeliveryListOut,
    EventListOut,
    PutEventsOut,
    ReplayOut,
    RuleListOut,
    RuleOut,
    TopicListOut,
    TopicOut,
)
from sqltide.server import ServerThread


def test_openapi_documents_every_route_and_the_error_envelope(server: ServerThread) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/statements",
        "/v1/statements/batch",
        "/v1/statements/{statement_id}",
        "/v1/statements/{statement_id}/result",
        "/v1/statements/{statement_id}/cancel",
        "/v1/catalog/tables",
        "/health",
    ):
        assert path in paths, path
    post = paths["/v1/statements"]["post"]
    assert post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "StatementOut"
    )
    assert post["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ErrorEnvelope"
    )
    assert "ExecuteBody" in spec["components"]["schemas"]


def test_docs_page_and_health_need_no_key(server: ServerThread) -> None:
    assert httpx.get(server.url + "/docs").status_code == 200
    assert httpx.get(server.url + "/health").json()["status"] == "ok"


#: The event bus's operations: (path, method) -> the model of the body it takes (or None).
EVENT_OPERATIONS: dict[tuple[str, str], str | None] = {
    ("/v1/events", "post"): "PutEventsBody",
    ("/v1/events", "get"): None,
    ("/v1/events/replay", "post"): "ReplayBody",
    ("/v1/rules", "get"): None,
    ("/v1/rules/{name}", "put"): "RuleBody",
    ("/v1/rules/{name}", "get"): None,
    ("/v1/topics", "get"): None,
    ("/v1/topics/{name}", "put"): "TopicBody",
    ("/v1/topics/{name}", "get"): None,
    ("/v1/deliveries", "get"): None,
    ("/v1/deliveries/{delivery_id}/redrive", "post"): None,
}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.removeprefix("#/components/schemas/")
    assert name in spec["components"]["schemas"], f"{ref} is not a component"
    return _resolve(spec, spec["components"]["schemas"][name])


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_every_event_operation_describes_its_body_and_its_answer(server: ServerThread) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for (path, method), body_model in EVENT_OPERATIONS.items():
        operation = spec["paths"][path][method]
        label = f"{method.upper()} {path}"
        if body_model is not None:
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body == {"$ref": f"#/components/schemas/{body_model}"}, label
            assert _resolve(spec, body)["properties"], label
        else:
            assert "requestBody" not in operation, label
        answers = [
            _resolve(spec, operation["responses"][code]["content"]["application/json"]["schema"])
            for code in operation["responses"]
            if code.startswith("2")
        ]
        assert answers and all(a.get("properties") for a in answers), label
    # every reference points at a component, so a generator (or schemathesis) can follow it
    dangling = {r for r in _refs(spec) if r.removeprefix("#/components/schemas/") not in schemas}
    assert not dangling
    # the answers' shapes, field by field as the handlers write them
    rule = schemas["RuleOut"]["properties"]
    assert set(rule) >= {"name", "state", "targets", "last_fired_at", "created_at"}
    assert set(schemas["EventOut"]["properties"]) >= {"detail-type", "source", "detail", "time"}
    assert set(schemas["DeliveryOut"]["properties"]) >= {"status", "attempts", "payload"}
    assert schemas["PutEventsOut"]["required"] == ["failed_entry_count", "entries"]
    # a target's kind is a tagged union, one model per kind
    targets = schemas["RuleBody"]["properties"]["targets"]["items"]
    assert targets["discriminator"]["propertyName"] == "kind"
    assert set(targets["discriminator"]["mapping"]) == {
        "sql",
        "topic",
        "webhook",
        "event",
        "workflow",
    }
    workflow_target = schemas["WorkflowTarget"]
    assert workflow_target["required"] == ["kind", "workflow"]
    assert {"workflow", "timeout_seconds", "input_transformer"} <= set(
        workflow_target["properties"]
    )
    assert "targets" in schemas["RuleBody"]["required"]
    assert schemas["EventEntry"]["required"] == ["source", "detail_type"]


def test_answers_match_their_described_shapes(server: ServerThread, api_key: str) -> None:
    """What the handlers write (plain dicts, rendered once) validates against the models
    /openapi.json shows, so the description cannot drift from the answers."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=server.url, headers=headers) as http:
        topic = {"subscriptions": [{"protocol": "webhook", "endpoint": "https://x.test"}]}
        assert http.put("/v1/topics/t", json=topic).status_code == 201
        TopicOut.model_validate(http.put("/v1/topics/t", json=topic).json())
        rule = {
            "event_pattern": {"source": ["app"]},
            "targets": [{"kind": "topic", "topic": "t"}, {"kind": "sql", "sql": "SELECT 1"}],
        }
        created = http.put("/v1/rules/r", json=rule)
        assert created.status_code == 201, created.text
        RuleOut.model_validate(created.json())
        put = http.post(
            "/v1/events",
            json={"entries": [{"source": "app", "detail_type": "x"}, {"source": "aws.x"}]},
        )
        PutEventsOut.model_validate(put.json(), strict=True)
        for path, model in (
            ("/v1/rules", RuleListOut),
            ("/v1/rules/r", RuleOut),
            ("/v1/topics", TopicListOut),
            ("/v1/topics/t", TopicOut),
            ("/v1/events", EventListOut),
            ("/v1/deliveries", DeliveryListOut),
        ):
            answer = http.get(path)
            assert answer.status_code == 200, (path, answer.text)
            model.model_validate(answer.json())
        replayed = http.post(
            "/v1/events/replay",
            json={"start": "2000-01-01T00:00:00Z", "end": "2999-01-01T00:00:00Z", "name": "again"},
        )
        ReplayOut.model_validate(replayed.json(), strict=True)
