"""Rules and schedules start workflows: the ``workflow`` target kind in a real runtime, with a
workflow module loaded from the test's folder (as ``sqltide serve --workflows`` does), on
SQLite and on PostgreSQL.

Each test puts real rules and events through the event service (or the HTTP API), lets the
runtime's bus deliver them, and waits for the executions with the service's own long-poll.
"""

from __future__ import annotations

import asyncio
import io
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conftest import make_settings
from helpers import wait_for
from sqltide.client import Client
from sqltide.events import bus as bus_module
from sqltide.events.bus import delivery_id
from sqltide.events.scheduler import SCHEDULE_DETAIL_TYPE, Scheduler, rule_arn
from sqltide.events.service import EventService
from sqltide.pipeline import cli_apply
from sqltide.runtime import Runtime
from sqltide.server import ServerThread
from sqltide.settings import Settings
from sqltide.store import ExecutionFilter, ExecutionRecord, ExecutionStatus
from sqltide.store.event_records import DeliveryStatus, EventRecord

P = "alice"

FLOWS = """
from sqltide.workflows import DurableContext, durable_execution


@durable_execution
def on_event(event, context: DurableContext):
    seen = context.step(lambda _: event, name="seen")
    return {"input": seen}
"""


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_module, "BACKOFF_BASE_SECONDS", 0.01)
    monkeypatch.setattr(bus_module, "BACKOFF_CAP_SECONDS", 0.05)


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    """The conftest's settings with the workflow module loaded (so ``runtime``, ``server``,
    ``api_key`` and ``client`` all run it); payloads limited to 4 KiB."""
    module = tmp_path / "flows.py"
    module.write_text(textwrap.dedent(FLOWS))
    return make_settings(
        tmp_path, store=store_url, workflows=[str(module)], workflow_max_payload_bytes=4096
    )


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    runtime.start()
    return runtime


def put_rule(rt: Runtime, name: str, targets: list[dict[str, Any]], **rule: Any) -> None:
    assert rt.events is not None
    rt.events.put_rule(P, {"name": name, "targets": targets, **rule})
    rt.notifier.publish("rules", P)  # as the API does: the bus reads the new rule at once


def put_event(rt: Runtime, detail: dict[str, Any], source: str = "shop") -> EventRecord:
    assert rt.events is not None
    [result] = rt.events.put_events(
        P, [{"source": source, "detail_type": "Order", "detail": detail}]
    )
    [event] = [e for e in rt.store.list_events(P, limit=100) if e.id == result["event_id"]]
    return event


def executions(rt: Runtime, workflow: str = "on_event") -> list[ExecutionRecord]:
    found, _ = rt.workflows.list(P, ExecutionFilter(workflow=workflow), max_results=100)
    return found


def started(rt: Runtime, count: int, workflow: str = "on_event") -> list[ExecutionRecord]:
    """The workflow's executions once there are ``count``, oldest first."""
    found = wait_for(
        f"{count} execution(s) of {workflow}",
        lambda: (lambda ex: ex if len(ex) >= count else None)(executions(rt, workflow)),
        timeout=15,
    )
    assert isinstance(found, list) and len(found) == count, found
    return sorted(found, key=lambda e: (e.created_at, e.name))


def ended(rt: Runtime, execution_id: str, timeout: float = 15.0) -> ExecutionRecord:
    """The execution once it has ended (waited for with the service's own long-poll)."""
    deadline = time.monotonic() + timeout

    async def poll() -> ExecutionRecord:
        while True:
            rec = await rt.workflows.describe_wait(P, execution_id, 5.0)
            if rec.status.is_terminal or time.monotonic() > deadline:
                return rec

    rec = asyncio.run(poll())
    assert rec.status.is_terminal, f"{execution_id} still {rec.status} after {timeout} s"
    return rec


def delivery(rt: Runtime, event: EventRecord, rule: str, target: str, status: str) -> Any:
    """The delivery of ``event`` to ``rule``'s ``target`` once it has ``status``."""

    def find() -> Any:
        d = rt.store.get_delivery(delivery_id(event.id, rule, target))
        return d if d is not None and d.status == status else None

    return wait_for(f"the delivery to {rule}/{target} {status}", find, timeout=15)


def output(rec: ExecutionRecord) -> Any:
    import json

    assert rec.result is not None
    return json.loads(rec.result)["input"]


# -- an event starts a workflow ------------------------------------------------------------------
def test_an_event_starts_the_workflow_with_the_event_as_input(rt: Runtime) -> None:
    put_rule(
        rt,
        "orders",
        [{"id": "start", "kind": "workflow", "workflow": "on_event"}],
        event_pattern={"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}},
    )
    put_event(rt, {"order": 1, "total": 5})  # does not match: starts nothing
    event = put_event(rt, {"order": 2, "total": 250})
    [ex] = started(rt, 1)
    assert ex.name == f"rule:orders:start:{event.id}"
    assert ex.principal == P
    done = ended(rt, ex.id)
    assert done.status is ExecutionStatus.SUCCEEDED
    assert output(done) == event.body  # the whole event, as EventBridge hands it on
    assert output(done)["detail"] == {"order": 2, "total": 250}
    d = delivery(rt, event, "orders", "start", DeliveryStatus.DELIVERED)
    assert d.attempts == 1 and d.last_error is None  # delivered at the first attempt
    assert len(executions(rt)) == 1  # the event that did not match started nothing


def test_a_redelivered_event_starts_one_execution(rt: Runtime) -> None:
    """The target runs by hand twice (a worker that started the execution and died before it
    marked the delivery done, then another that tried again), and the bus delivers it too:
    one execution, and every delivery succeeds."""
    put_rule(
        rt,
        "orders",
        [{"id": "start", "kind": "workflow", "workflow": "on_event"}],
        event_pattern={"source": ["shop"]},
    )
    event = put_event(rt, {"order": 3})
    assert rt.bus is not None
    [d] = rt.bus.deliveries_for(event, time.time())  # the delivery the router makes
    rt.bus.targets.run(d)
    rt.bus.targets.run(d)  # no error: the start gives back the same execution
    delivered = delivery(rt, event, "orders", "start", DeliveryStatus.DELIVERED)
    assert delivered.id == d.id
    [ex] = started(rt, 1)
    assert ended(rt, ex.id).status is ExecutionStatus.SUCCEEDED
    rt.bus.targets.run(delivered)  # once more, after the end: still the same execution
    assert [e.id for e in executions(rt)] == [ex.id]
    assert rt.store.list_deliveries(P, status=DeliveryStatus.DEAD) == []


def test_input_shaping_each_target_its_own_execution(rt: Runtime) -> None:
    """An input transformer, an input path and a constant: three targets of one rule naming
    one workflow start three executions (the target's id is in the name), each with its
    input shaped as the other target kinds shape theirs."""
    transformer = {
        "input_paths_map": {"order": "$.detail.order", "who": "$.detail.customer.name"},
        "input_template": '{"order": <order>, "greeting": "hello <who>", '
        '"rule": "<aws.events.rule-name>"}',
    }
    put_rule(
        rt,
        "shaped",
        [
            {
                "id": "tpl",
                "kind": "workflow",
                "workflow": "on_event",
                "input_transformer": transformer,
            },
            {"id": "path", "kind": "workflow", "workflow": "on_event", "input_path": "$.detail"},
            {"id": "const", "kind": "workflow", "workflow": "on_event", "input": "go"},
        ],
        event_pattern={"source": ["shop"]},
    )
    event = put_event(rt, {"order": 7, "customer": {"name": "Ada"}})
    by_name = {e.name: e for e in started(rt, 3)}
    assert set(by_name) == {f"rule:shaped:{t}:{event.id}" for t in ("tpl", "path", "const")}
    results = {name.split(":")[2]: output(ended(rt, ex.id)) for name, ex in sorted(by_name.items())}
    assert results == {
        "tpl": {"order": 7, "greeting": "hello Ada", "rule": "shaped"},
        "path": {"order": 7, "customer": {"name": "Ada"}},
        "const": "go",
    }


def test_a_target_timeout_becomes_the_execution_timeout(rt: Runtime) -> None:
    put_rule(
        rt,
        "timed",
        [{"kind": "workflow", "workflow": "on_event", "timeout_seconds": 600}],
        event_pattern={"source": ["shop"]},
    )
    put_event(rt, {})
    [ex] = started(rt, 1)
    assert ex.timeout_at is not None
    assert ex.timeout_at - ex.created_at == pytest.approx(600, abs=1)


# -- a schedule starts a workflow ----------------------------------------------------------------
class Clock:
    def __init__(self, t: datetime):
        self.now = t.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, t: datetime) -> None:
        self.now = t.timestamp()


@pytest.fixture
def worker(settings: Settings) -> Iterator[Runtime]:
    """A worker (bus and workflows, no scheduler of its own: the test ticks one by hand)."""
    rt = Runtime.build(settings, role="worker")
    rt.start()
    yield rt
    rt.stop()


def test_a_schedule_starts_the_workflow_at_each_firing(worker: Runtime) -> None:
    clock = Clock(datetime(2026, 1, 1, 0, 0, tzinfo=UTC))
    # the rule made at the clock's time, as test_scheduler.py makes them
    EventService(worker.store, worker.notifier, ["default"], clock=clock).put_rule(
        P,
        {
            "name": "every-minute",
            "schedule": "rate(1 minute)",
            "targets": [{"id": "run", "kind": "workflow", "workflow": "on_event"}],
        },
    )
    scheduler = Scheduler(worker.store, worker.notifier, clock=clock)
    clock.set(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    scheduler.tick()
    first = started(worker, 1)
    clock.set(datetime(2026, 1, 1, 0, 1, 1, tzinfo=UTC))
    scheduler.tick()
    both = started(worker, 2)
    assert both[0].id == first[0].id
    inputs = [output(ended(worker, ex.id)) for ex in both]
    assert sorted(i["time"] for i in inputs) == ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"]
    for ex, event in zip(both, inputs, strict=True):
        assert event["detail-type"] == SCHEDULE_DETAIL_TYPE
        assert event["resources"] == [rule_arn("every-minute")]
        assert ex.name == f"rule:every-minute:run:{event['id']}"
    # ticking the same moment again fires nothing more, so starts nothing more
    scheduler.tick()
    assert len(executions(worker)) == 2


# -- a workflow this process did not load --------------------------------------------------------
def test_an_unloaded_workflow_ends_as_a_dead_letter_after_its_retries(rt: Runtime) -> None:
    put_rule(
        rt,
        "ghostly",
        [
            {
                "id": "start",
                "kind": "workflow",
                "workflow": "ghost",
                "retry_policy": {"maximum_retry_attempts": 2, "maximum_event_age_seconds": 3600},
            }
        ],
        event_pattern={"source": ["shop"]},
    )
    event = put_event(rt, {"order": 9})
    dead = delivery(rt, event, "ghostly", "start", DeliveryStatus.DEAD)
    assert dead.attempts == 3  # retried within the policy: a worker with the module may come
    error = dead.last_error
    assert error["code"] == "workflow_not_loaded"
    assert error["dead_reason"] == "retry_attempts_exhausted"
    assert (
        "no workflow named 'ghost' is loaded by this worker (loaded: on_event)"
        in (error["message"])
    )
    assert executions(rt, "ghost") == []
    announced = wait_for(
        "the Delivery Failed event",
        lambda: [
            e
            for e in rt.store.list_events(P, limit=100)
            if e.detail_type == "Delivery Failed" and e.body["detail"]["deliveryId"] == dead.id
        ],
    )
    assert announced[0].body["detail"]["error"]["code"] == "workflow_not_loaded"


def test_an_input_the_workflow_cannot_take_is_a_dead_letter_at_once(rt: Runtime) -> None:
    put_rule(
        rt,
        "too-big",
        [{"id": "start", "kind": "workflow", "workflow": "on_event", "input_path": "$.detail"}],
        event_pattern={"source": ["shop"]},
    )
    event = put_event(rt, {"blob": "x" * 5000})  # over the 4 KiB payload limit
    dead = delivery(rt, event, "too-big", "start", DeliveryStatus.DEAD)
    assert dead.attempts == 1  # trying again cannot help
    assert dead.last_error["code"] == "payload_too_large"
    assert dead.last_error["dead_reason"] == "payload_too_large"
    assert executions(rt) == []


# -- pipeline files ------------------------------------------------------------------------------
PIPELINE = """\
version: 1
rules:
  on-order:
    event_pattern: {source: [shop], detail-type: [Order]}
    targets:
      - id: start
        kind: workflow
        workflow: on_event
        timeout_seconds: 3600
        input_transformer:
          input_paths_map: {order: $.detail.order}
          input_template: '{"order": <order>}'
        retry_policy: {maximum_retry_attempts: 3}
"""


def test_a_pipeline_file_declares_a_workflow_target(
    tmp_path: Path, server: ServerThread, api_key: str, client: Client
) -> None:
    path = tmp_path / "orders.yaml"
    path.write_text(PIPELINE)

    def apply() -> tuple[int, str]:
        buffer = io.StringIO()
        console = Console(file=buffer, width=200, color_system=None)
        code = cli_apply(path, url=server.url, api_key=api_key, console=console)
        return code, buffer.getvalue()

    code, out = apply()
    assert code == 0, out
    assert "+ create rule on-order" in out
    [target] = client.rule("on-order")["targets"]
    assert target["kind"] == "workflow" and target["workflow"] == "on_event"
    assert target["timeout_seconds"] == 3600
    code, out = apply()  # the server's copy compares equal: nothing to do
    assert code == 0 and "Nothing to do" in out, out
    # and the rule starts the workflow
    [entry] = client.put_events(
        [{"source": "shop", "detail_type": "Order", "detail": {"order": 5}}]
    )
    rt = server.runtime
    [ex] = started(rt, 1)
    assert ex.name == f"rule:on-order:start:{entry['event_id']}"
    assert output(ended(rt, ex.id)) == {"order": 5}
    # a bad workflow target is refused before anything is applied, with its place
    path.write_text(PIPELINE.replace("workflow: on_event", "workflow: 'no good'"))
    code, out = apply()
    assert code == 1
    assert "rules.on-order.targets[0].workflow" in out and "a workflow name" in out
