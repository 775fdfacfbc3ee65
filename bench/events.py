"""Event benchmarks of issue 4 (not tests). Run: ``python bench/events.py [f] [g] [h]``.

(f) Events per second routed through 100 rules with mixed patterns (the bus's router:
    claim, match every rule, write deliveries, mark routed), SQLite store.
(g) Latency from a statement finishing to its webhook being received, through a real server
    and a real HTTP receiver on loopback (p50/p99).
(h) Firing lateness with 10,000 schedules due at the same moment: how long after the firing
    time each firing is recorded (p50/p99). The scheduler prepares a moment's firings ahead of
    it, so this is the store write; the whole tick (write, re-read, prepare the next minute)
    is reported beside it.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from _common import machine, pct, report

from sqltide.client import Client
from sqltide.events.bus import Bus
from sqltide.events.scheduler import Scheduler
from sqltide.events.service import EventService
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread
from sqltide.settings import Settings
from sqltide.store import store_from_url
from sqltide.store.event_records import EventRecord, envelope
from sqltide.store.wakeups import Notifier

P = "bench"


def mixed_pattern(i: int) -> dict:
    """100 rules of six kinds; each matches about 1 % of the generated events."""
    kinds = [
        lambda: {"source": [f"app.{i}"]},
        lambda: {"detail-type": [{"prefix": f"Order {i} "}]},
        lambda: {"detail": {"amount": [{"numeric": [">=", i * 10, "<", i * 10 + 10]}]}},
        lambda: {"source": [{"anything-but": ["app.0"]}], "detail": {"code": [f"E{i}"]}},
        lambda: {"detail": {"region": [{"wildcard": f"eu-*-{i}"}]}},
        lambda: {"$or": [{"source": [f"svc.{i}"]}, {"detail": {"tier": [f"t{i}"]}}]},
    ]
    return kinds[i % len(kinds)]()


def bench_f(n_events: int = 20_000, n_rules: int = 100) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = store_from_url(f"sqlite:///{tmp}/s.db")
        store.migrate()
        clock = time.time
        service = EventService(store, Notifier(), ["default"], clock=clock)
        for i in range(n_rules):
            service.put_rule(
                P,
                {
                    "name": f"r{i}",
                    "event_pattern": mixed_pattern(i),
                    "targets": [{"kind": "event"}],
                },
            )
        rng = random.Random(7)
        now = clock()
        events = []
        for n in range(n_events):
            detail = {
                "amount": rng.randint(0, 9999),
                "code": f"E{rng.randint(0, 999)}",
                "region": f"eu-west-{rng.randint(0, 999)}",
                "tier": f"t{rng.randint(0, 999)}",
            }
            body = envelope(
                source=rng.choice(["app", "svc"]) + f".{rng.randint(0, 999)}",
                detail_type=f"Order {rng.randint(0, 999)} Placed",
                detail=detail,
                time=now,
                event_id=f"e{n}",
            )
            events.append(
                EventRecord(
                    id=f"e{n}",
                    principal=P,
                    source=body["source"],
                    detail_type=body["detail-type"],
                    time=now,
                    body=body,
                    created_at=now + n * 1e-6,
                )
            )
        for i in range(0, n_events, 1000):
            store.put_events(events[i : i + 1000])

        class Nothing:
            def run(self, d: object) -> None: ...

            def announce_failure(self, *a: object) -> None: ...

        bus = Bus(store, Notifier(), Nothing(), owner="bench", clock=clock)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        routed = 0
        while routed < n_events:
            routed += bus.route_once(limit=500)
        elapsed = time.perf_counter() - t0
        deliveries = len(store.list_deliveries(P, limit=10_000_000))
        store.close()
    return {
        "events": n_events,
        "rules": n_rules,
        "deliveries_written": deliveries,
        "deliveries_per_event": round(deliveries / n_events, 2),
        "events_per_s": round(n_events / elapsed),
        "target": ">= 2,000 events/s through 100 rules",
    }


class _Receiver:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                rec.times[body.decode().strip('"')] = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def bench_g(n: int = 300) -> dict:
    receiver = _Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        # The receiver is on loopback, which webhooks may reach only when allowed.
        rt = Runtime.build(Settings(home=Path(tmp), webhook_allowed_networks="127.0.0.1"))
        key = create_key(rt.store, P, warehouses=["default"])[1]
        with ServerThread(rt) as srv, Client(srv.url, key) as c:
            rt.events.put_rule(  # type: ignore[union-attr]
                P,
                {
                    "name": "done",
                    "event_pattern": {"source": ["aws.redshift-data"]},
                    "targets": [
                        {
                            "kind": "webhook",
                            "url": receiver.url,
                            "input_path": "$.detail.statementId",
                        }
                    ],
                },
            )
            lat = []
            for _ in range(n):
                st = c.wait(c.execute("SELECT 1", with_event=True).id, timeout=30)
                ended = rt.store.get_statement(st.id).ended_at  # type: ignore[union-attr]
                deadline = time.monotonic() + 10
                while st.id not in receiver.times and time.monotonic() < deadline:
                    time.sleep(0.0005)
                lat.append(receiver.times[st.id] - ended)
    receiver.server.shutdown()
    return {
        "statements": n,
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "mean_ms": round(statistics.mean(lat) * 1000, 2),
        "target": "p50 <= 20 ms, p99 <= 200 ms",
    }


def bench_h(n_rules: int = 10_000) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = store_from_url(f"sqlite:///{tmp}/s.db")
        store.migrate()
        created = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
        fire_at = created + 60  # every rule fires at 00:01:00
        clock_now = [created]
        service = EventService(store, Notifier(), ["default"], clock=lambda: clock_now[0])
        for i in range(n_rules):
            service.put_rule(
                P, {"name": f"s{i}", "schedule": "rate(1 minute)", "targets": [{"kind": "event"}]}
            )
        # The creation-time firing; the tick then prepares the next minute's firings (in a
        # running scheduler, while it waits for that minute).
        sched = Scheduler(store, Notifier(), clock=lambda: clock_now[0])
        t0 = time.perf_counter()
        sched.tick()
        first_tick = time.perf_counter() - t0
        assert sched.prepared_at == fire_at
        # Measure the real time from the moment (the tick starting) until each firing is
        # recorded: the firing of the k-th rule is recorded that much after its due time.
        offsets: list[float] = []
        writes: list[float] = []
        real0 = time.perf_counter()
        original = store.record_firings

        def timed(items: list, **kw: object) -> list[bool]:  # type: ignore[type-arg]
            start = time.perf_counter()
            won = original(items, **kw)
            done = time.perf_counter()
            writes.append(done - start)
            # every firing of the tick commits together
            offsets.extend(
                done - real0 for (_, _, _, ev), ok in zip(items, won, strict=True) if ok and ev
            )
            return won

        store.record_firings = timed  # type: ignore[method-assign]
        clock_now[0] = fire_at
        real0 = time.perf_counter()
        sched.tick()
        tick = time.perf_counter() - real0
        store.close()
    return {
        "schedules": n_rules,
        "fired": len(offsets),
        "lateness_p50_ms": round(pct(offsets, 50) * 1000, 1),
        "lateness_p99_ms": round(pct(offsets, 99) * 1000, 1),
        # the store write alone (one transaction), then the whole tick: after the write it
        # re-reads the rules and prepares the next minute
        "write_ms": round(writes[0] * 1000, 1),
        "tick_ms": round(tick * 1000, 1),
        "first_tick_ms": round(first_tick * 1000, 1),
        "target": "p99 <= 200 ms",
    }


def main() -> None:
    which = sys.argv[1:] or ["f", "g", "h"]
    info = machine()
    for name in which:
        print(f"running ({name}) ...", file=sys.stderr)
        result = {"f": bench_f, "g": bench_g, "h": bench_h}[name]()
        report(f"events-{name}", {"machine": info, name: result})


if __name__ == "__main__":
    main()
