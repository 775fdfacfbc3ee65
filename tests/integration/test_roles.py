"""``serve --role``: which kinds of work each role runs, and a schedule fired by a scheduler
process and delivered by a separate worker process over one store."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import make_settings
from helpers import Receiver, wait_for
from sqltide.runtime import ROLES, Runtime

#: The kinds each role registers in its work loop (statements, routing, deliveries, firings).
KINDS = {
    "all": {"statements", "router", "deliver", "scheduler"},
    "api": set(),
    "worker": {"statements", "router", "deliver"},
    "scheduler": {"scheduler"},
}


def test_every_role_is_described() -> None:
    assert set(ROLES) == set(KINDS)


def _loop_threads() -> set[str]:
    return {
        t.name
        for t in threading.enumerate()
        if t.name.startswith(("sqltide-claim-", "sqltide-scheduler", "sqltide-heartbeat"))
    }


@pytest.mark.parametrize("role", ROLES)
def test_each_role_runs_only_its_kinds(tmp_path: Path, store_url: str, role: str) -> None:
    before = _loop_threads()
    rt = Runtime.build(make_settings(tmp_path, store=store_url), role=role)
    try:
        assert rt.loop is not None
        assert {kind.name for kind in rt.loop.kinds} == KINDS[role]
        assert (rt.worker is not None) == ("statements" in KINDS[role])
        assert (rt.bus is not None) == ("router" in KINDS[role])
        assert (rt.scheduler is not None) == ("scheduler" in KINDS[role])
        rt.start()
        threads = _loop_threads() - before
        claims = {name.removeprefix("sqltide-claim-") for name in threads}
        assert claims - {"sqltide-scheduler", "sqltide-heartbeat"} == KINDS[role] - {"scheduler"}
        assert ("sqltide-scheduler" in threads) == ("scheduler" in KINDS[role])
        # leases to renew only where leased work runs
        assert ("sqltide-heartbeat" in threads) == bool(KINDS[role] - {"scheduler"})
    finally:
        rt.stop()
    wait_for("the loop's threads to end", lambda: not (_loop_threads() - before))


def test_a_scheduler_fires_and_a_separate_worker_delivers(tmp_path: Path, store_url: str) -> None:
    """Two runtimes over one store, as two processes would be: the firing is recorded by the
    scheduler alone and routed and delivered by the worker alone (found by its poll, as the
    embedded store sends no wake-ups between runtimes)."""
    fast = {"bus_poll_seconds": 0.1, "store": store_url}
    scheduler = Runtime.build(make_settings(tmp_path / "s", **fast), role="scheduler")
    worker = Runtime.build(make_settings(tmp_path / "w", **fast), role="worker")
    receiver = Receiver()
    try:
        scheduler.start()
        worker.start()
        assert scheduler.events is not None
        fire = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        target = {"id": "hook", "kind": "webhook", "url": receiver.url}
        scheduler.events.put_rule(
            "alice",
            {"name": "soon", "schedule": f"at({fire:%Y-%m-%dT%H:%M:%S})", "targets": [target]},
        )
        scheduler.notifier.publish("rules", "alice")  # tick at once, not at the 30 s re-read
        wait_for("the schedule's webhook", lambda: len(receiver.requests) == 1, timeout=10)
        body = json.loads(receiver.requests[0]["body"])
        assert body["detail-type"] == "Scheduled Event"
        wait_for(
            "the delivery to be recorded",
            lambda: [d.status for d in worker.store.list_deliveries("alice")] == ["DELIVERED"],
        )
    finally:
        receiver.close()
        worker.stop()
        scheduler.stop()
