"""``/v1/events``, ``/v1/rules``, ``/v1/topics``, ``/v1/deliveries``: the event bus's faces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from .. import errors
from ..events.models import (
    DeliveryListOut,
    DeliveryOut,
    DeliveryStatus,
    EventListOut,
    PutEventsBody,
    PutEventsOut,
    ReplayBody,
    ReplayOut,
    RuleBody,
    RuleListOut,
    RuleOut,
    TopicBody,
    TopicListOut,
    TopicOut,
)
from ..events.service import EventService
from ..store.event_records import DeliveryRecord, RuleRecord, TopicRecord
from .auth import Caller, caller
from .calls import off_loop, read
from .responses import JSONResponse, items_fragment, renderable
from .schemas import ERROR_RESPONSES, described
from .views import iso, parse_iso

router = APIRouter(tags=["events"], responses=ERROR_RESPONSES)
CallerDep = Annotated[Caller, Depends(caller)]
# Bodies are taken as raw JSON and judged by the service with their model (so problems keep
# sqltide's codes and words); /openapi.json describes them as the model.
PutEventsJson = Annotated[dict[str, Any], Body(), described(PutEventsBody)]
ReplayJson = Annotated[dict[str, Any], Body(), described(ReplayBody)]
RuleJson = Annotated[dict[str, Any], Body(), described(RuleBody)]
TopicJson = Annotated[dict[str, Any], Body(), described(TopicBody)]
_STATUSES = tuple(DeliveryStatus)


def _events(request: Request) -> EventService:
    service = request.app.state.runtime.events
    assert service is not None
    return service


async def _rules_changed(request: Request, principal: str) -> None:
    """Tell the schedulers and routers (a ``NOTIFY`` on PostgreSQL: never on the loop)."""
    await off_loop(request.app.state.runtime.notifier.publish, "rules", principal)


def rule_dict(rule: RuleRecord) -> dict[str, Any]:
    return {
        "name": rule.name,
        "description": rule.description,
        "state": rule.state,
        "event_pattern": rule.event_pattern,
        "schedule": rule.schedule,
        "timezone": rule.timezone,
        "missed_policy": rule.missed_policy,
        "missed_window_seconds": rule.missed_window_seconds,
        "targets": [_public_target(t) for t in rule.targets],
        "last_fired_at": iso(rule.last_fired_at),
        "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
    }


def _public_target(target: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in target.items() if not k.startswith("_")}
    if out.get("secret"):
        out["secret"] = "***"
    return out


def topic_dict(topic: TopicRecord) -> dict[str, Any]:
    return {
        "name": topic.name,
        "display_name": topic.display_name,
        "subscriptions": [_public_target(s) for s in topic.subscriptions],
        "created_at": iso(topic.created_at),
        "updated_at": iso(topic.updated_at),
    }


def delivery_dict(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "rule": d.rule_name,
        "target": d.target_id,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": iso(d.next_attempt_at) if d.status == DeliveryStatus.PENDING else None,
        "last_error": d.last_error,
        "payload": d.payload,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
        "delivered_at": iso(d.delivered_at),
    }


# -- events ----------------------------------------------------------------------------------
@router.post(
    "/v1/events",
    summary="Put events (1 to 10), like EventBridge's PutEvents",
    response_model=PutEventsOut,
)
async def put_events(request: Request, who: CallerDep, body: PutEventsJson) -> JSONResponse:
    entries = body.get("entries")
    if not isinstance(entries, list):
        raise errors.UnprocessableEntity("body needs entries: a list of 1 to 10 events")
    results = await off_loop(_events(request).put_events, who.principal, entries)
    failed = sum(1 for r in results if "error_code" in r)
    return JSONResponse({"failed_entry_count": failed, "entries": results})


@router.get("/v1/events", summary="The event archive, oldest first", response_model=EventListOut)
async def list_events(
    request: Request,
    who: CallerDep,
    start: str | None = None,
    end: str | None = None,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 100,
    next_token: str | None = None,
) -> JSONResponse:
    try:
        t0 = parse_iso(start) if start else None
        t1 = parse_iso(end) if end else None
    except ValueError as exc:
        raise errors.UnprocessableEntity(f"start/end must be ISO 8601 times: {exc}") from exc
    cursors = _events(request).cursors
    after = cursors.decode(who.principal, "events", next_token) if next_token else None
    found = await off_loop(
        lambda: _events(request).list_events(
            who.principal, start=t0, end=t1, limit=max_results + 1, after=after
        ),
    )
    token = None
    if len(found) > max_results:
        found = found[:max_results]
        token = cursors.encode(who.principal, "events", found[-1].time, found[-1].id)
    return JSONResponse(
        {"events": items_fragment([e.body for e in found], kind="event"), "next_token": token}
    )


@router.post(
    "/v1/events/replay",
    summary="Put archived events of a time range on the bus again",
    response_model=ReplayOut,
)
async def replay(request: Request, who: CallerDep, body: ReplayJson) -> JSONResponse:
    try:
        start = parse_iso(str(body["start"]))
        end = parse_iso(str(body["end"]))
    except (KeyError, ValueError) as exc:
        raise errors.UnprocessableEntity("replay needs start and end, ISO 8601 times") from exc
    name, count = await off_loop(
        lambda: _events(request).replay(who.principal, start=start, end=end, name=body.get("name"))
    )
    return JSONResponse({"name": name, "events": count})


# -- rules -----------------------------------------------------------------------------------
@router.put(
    "/v1/rules/{name}",
    summary="Create or replace a rule",
    response_model=RuleOut,
    responses={201: {"model": RuleOut, "description": "Created"}},
)
async def put_rule(name: str, request: Request, who: CallerDep, body: RuleJson) -> JSONResponse:
    spec = {**body, "name": name}
    rule, created = await off_loop(_events(request).put_rule, who.principal, spec)
    await _rules_changed(request, who.principal)
    return JSONResponse(rule_dict(rule), status_code=201 if created else 200)


@router.get("/v1/rules", summary="List your rules", response_model=RuleListOut)
async def list_rules(request: Request, who: CallerDep) -> JSONResponse:
    rules = await off_loop(_events(request).list_rules, who.principal)
    return JSONResponse(
        {"rules": items_fragment([rule_dict(r) for r in rules], kind="rule", id_key="name")}
    )


@router.get("/v1/rules/{name}", summary="Describe a rule", response_model=RuleOut)
async def get_rule(name: str, request: Request, who: CallerDep) -> JSONResponse:
    rule = await read(request, _events(request).get_rule, who.principal, name)
    return JSONResponse(renderable(rule_dict(rule), kind="rule", ident=name))


@router.delete("/v1/rules/{name}", status_code=204, summary="Delete a rule")
async def delete_rule(name: str, request: Request, who: CallerDep) -> None:
    await off_loop(_events(request).delete_rule, who.principal, name)
    await _rules_changed(request, who.principal)


# -- topics ----------------------------------------------------------------------------------
@router.put(
    "/v1/topics/{name}",
    summary="Create or replace a topic and its subscriptions",
    response_model=TopicOut,
    responses={201: {"model": TopicOut, "description": "Created"}},
)
async def put_topic(name: str, request: Request, who: CallerDep, body: TopicJson) -> JSONResponse:
    topic, created = await off_loop(
        _events(request).put_topic, who.principal, {**body, "name": name}
    )
    return JSONResponse(topic_dict(topic), status_code=201 if created else 200)


@router.get("/v1/topics", summary="List your topics", response_model=TopicListOut)
async def list_topics(request: Request, who: CallerDep) -> JSONResponse:
    topics = await off_loop(_events(request).list_topics, who.principal)
    return JSONResponse(
        {"topics": items_fragment([topic_dict(t) for t in topics], kind="topic", id_key="name")}
    )


@router.get("/v1/topics/{name}", summary="Describe a topic", response_model=TopicOut)
async def get_topic(name: str, request: Request, who: CallerDep) -> JSONResponse:
    topic = await read(request, _events(request).get_topic, who.principal, name)
    return JSONResponse(renderable(topic_dict(topic), kind="topic", ident=name))


@router.delete("/v1/topics/{name}", status_code=204, summary="Delete a topic")
async def delete_topic(name: str, request: Request, who: CallerDep) -> None:
    await off_loop(_events(request).delete_topic, who.principal, name)


# -- deliveries ------------------------------------------------------------------------------
@router.get(
    "/v1/deliveries",
    summary="Deliveries, newest first (status=DEAD: dead letters)",
    response_model=DeliveryListOut,
)
async def list_deliveries(
    request: Request,
    who: CallerDep,
    status: Annotated[
        str | None, Query(json_schema_extra={"enum": [s.value for s in _STATUSES]})
    ] = None,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    # Checked here rather than typed as the enum: an unknown status keeps today's message.
    if status is not None and status not in _STATUSES:
        names = ", ".join(s.value for s in _STATUSES[:-1])
        raise errors.UnprocessableEntity(f"status must be {names} or {_STATUSES[-1].value}")
    found = await off_loop(_events(request).list_deliveries, who.principal, status, max_results)
    return JSONResponse(
        {"deliveries": items_fragment([delivery_dict(d) for d in found], kind="delivery")}
    )


@router.post(
    "/v1/deliveries/{delivery_id}/redrive",
    summary="Send a dead letter again",
    response_model=DeliveryOut,
)
async def redrive(delivery_id: str, request: Request, who: CallerDep) -> JSONResponse:
    d = await off_loop(_events(request).redrive, who.principal, delivery_id)
    return JSONResponse(renderable(delivery_dict(d), kind="delivery", ident=d.id))
