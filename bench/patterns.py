"""Event pattern matching benchmark (not a test). Run: ``python bench/patterns.py [--save]``.

100 compiled patterns of every kind (exact, prefix, suffix, equals-ignore-case, wildcard,
anything-but, numeric, cidr, exists, ``$or``, arrays of objects) are matched against 10,000
generated EventBridge events, every event through every rule, as a router without an index
would. Prints events/s through all 100 rules (target >= 2,000) and single-rule matches/s of a
simple pattern (target >= 50,000). ``--save`` also writes ``bench/out/patterns.json``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from sqltide.events.patterns import Pattern, compile_pattern

SOURCES = ["aws.redshift-data", "aws.ec2", "aws.s3", "sqltide.app", "my.orders", "aws.autoscaling"]
DETAIL_TYPES = [
    "Redshift Data Statement Status Change",
    "EC2 Instance State-change Notification",
    "Object Created",
    "Order Placed",
]
STATES = ["FINISHED", "FAILED", "ABORTED", "running", "stopped", "initializing"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1"]


def make_patterns(rng: random.Random, n: int = 100) -> list[dict[str, Any]]:
    """``n`` patterns cycling through the operator kinds, with random operands."""
    kinds: list[Callable[[], dict[str, Any]]] = [
        lambda: {"source": [rng.choice(SOURCES)], "detail": {"state": rng.sample(STATES, 2)}},
        lambda: {"source": [rng.choice(SOURCES)], "detail-type": [rng.choice(DETAIL_TYPES)]},
        lambda: {"region": [{"prefix": rng.choice(["us-", "eu-", "ap-"])}]},
        lambda: {"detail": {"key": [{"suffix": rng.choice([".png", ".csv", ".parquet"])}]}},
        lambda: {"detail-type": [{"equals-ignore-case": rng.choice(DETAIL_TYPES).upper()}]},
        lambda: {"detail": {"key": [{"wildcard": f"data/{rng.randint(0, 9)}*/part-*.csv"}]}},
        lambda: {
            "source": [{"anything-but": {"prefix": "aws."}}],
            "detail": {"rows": [{"exists": True}]},
        },
        lambda: {"detail": {"rows": [{"numeric": [">", rng.randint(0, 500), "<=", 1000]}]}},
        lambda: {"detail": {"ip": [{"cidr": f"10.{rng.randint(0, 3)}.0.0/16"}]}},
        lambda: {
            "source": [rng.choice(SOURCES)],
            "$or": [
                {"detail": {"state": ["FAILED"]}},
                {"detail": {"rows": [{"numeric": ["=", 0]}]}},
            ],
        },
        lambda: {
            "detail": {
                "items": {"sku": [f"sku-{rng.randint(0, 20)}"], "qty": [{"numeric": [">=", 2]}]}
            }
        },
        lambda: {
            "resources": [{"prefix": "arn:aws:redshift:"}],
            "detail": {"principal": [{"wildcard": "arn:aws:sts::*:assumed-role/*"}]},
        },
        lambda: {
            "detail": {
                "error": [{"exists": False}],
                "state": [{"anything-but": ["FAILED", "ABORTED"]}],
            }
        },
    ]
    return [kinds[i % len(kinds)]() for i in range(n)]


def make_events(rng: random.Random, n: int = 10_000) -> list[dict[str, Any]]:
    """``n`` EventBridge envelopes with varied details (parsed JSON, as the router sees them)."""
    events = []
    for i in range(n):
        detail: dict[str, Any] = {
            "statementId": f"s-{i}",
            "state": rng.choice(STATES),
            "rows": rng.randint(0, 1000),
            "principal": rng.choice(
                [
                    "arn:aws:sts::123456789012:assumed-role/EtlRole/etl",
                    "arn:aws:iam::123456789012:user/alice",
                ]
            ),
            "key": f"data/{rng.randint(0, 99)}/part-{i}.{rng.choice(['csv', 'png', 'parquet'])}",
            "ip": f"10.{rng.randint(0, 7)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "items": [
                {"sku": f"sku-{rng.randint(0, 30)}", "qty": rng.randint(1, 5)}
                for _ in range(rng.randint(0, 3))
            ],
        }
        if rng.random() < 0.2:
            detail["error"] = "boom"
        events.append(
            {
                "version": "0",
                "id": f"e-{i}",
                "detail-type": rng.choice(DETAIL_TYPES),
                "source": rng.choice(SOURCES),
                "account": "000000000000",
                "time": "2026-01-01T00:00:00Z",
                "region": rng.choice(REGIONS),
                "resources": [
                    f"arn:aws:redshift:us-east-1:000000000000:cluster:c{rng.randint(0, 3)}"
                ],
                "detail": detail,
            }
        )
    return events


def through_all(patterns: list[Pattern], events: list[dict[str, Any]]) -> tuple[float, int]:
    """Seconds to match every event against every pattern, and how many matches there were."""
    matchers = [p.matches for p in patterns]
    hits = 0
    started = time.perf_counter()
    for event in events:
        for match in matchers:
            if match(event):
                hits += 1
    return time.perf_counter() - started, hits


def main(argv: list[str]) -> None:
    rng = random.Random(20260101)
    sources = make_patterns(rng)
    events = make_events(rng)
    started = time.perf_counter()
    patterns = [compile_pattern(p) for p in sources]
    compile_s = time.perf_counter() - started
    through_all(patterns, events[:500])  # warm up
    runs = [through_all(patterns, events) for _ in range(3)]
    seconds = min(r[0] for r in runs)
    hits = runs[0][1]

    simple = compile_pattern(
        {"source": ["aws.redshift-data"], "detail": {"state": ["FINISHED", "FAILED"]}}
    )
    single_seconds, _ = through_all([simple] * 10, events)

    out = {
        "target": ">= 2,000 events/s through 100 rules; >= 50,000 single-rule matches/s",
        "patterns": len(patterns),
        "events": len(events),
        "compile_ms_per_pattern": round(compile_s / len(patterns) * 1000, 3),
        "events_per_s_through_all_rules": round(len(events) / seconds),
        "matches_per_s": round(len(events) * len(patterns) / seconds),
        "matched_pairs": hits,
        "single_simple_rule_matches_per_s": round(len(events) * 10 / single_seconds),
    }
    if "--save" in argv:
        from _common import machine, report

        report("patterns", {"machine": machine(), "patterns": out})
    else:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
