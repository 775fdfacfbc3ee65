"""``sqltide demo durable`` as a user runs it: seed 001's handler as a durable workflow, its
worker SIGKILLed in the middle of the waits and restarted.

The end-to-end test runs the installed command in a new process with a temporary
``SQLTIDE_HOME`` and ``HOME``, and then checks the demo's claims on what it left behind (its
``--home`` is kept): the store's statements, execution, operations and history, and the DuckDB
warehouse's mart against the generated orders. It takes about 35 s, most of it the handler's
real 10 s waits (three of them), so it is marked ``slow``; it stays in the default run.
"""

from __future__ import annotations

import ast
import csv
import os
import re
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlparse
from test_demo import UUID, assert_clean_failure, flat, run_demo, user_env

from sqltide.store import ExecutionStatus, StatementFilter, StatementStatus, store_from_url

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "durable-batch"
PRINCIPAL = "redshift-batch-executor"


def expected_mart(orders_csv: Path) -> dict[int, tuple[int, Decimal, str]]:
    """``customer_id -> (orders, amount, last order date)``, computed from the CSV file."""
    orders: dict[int, set[int]] = defaultdict(set)
    amount: dict[int, Decimal] = defaultdict(Decimal)
    last: dict[int, str] = {}
    with orders_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            customer = int(row["customer_id"])
            orders[customer].add(int(row["order_id"]))
            amount[customer] += int(row["quantity"]) * Decimal(row["unit_price"])
            last[customer] = max(last.get(customer, ""), row["order_date"])
    return {c: (len(orders[c]), amount[c], last[c]) for c in orders}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by a parent that is gone) is not running either
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_durable_demo_survives_a_killed_worker_without_submitting_again(
    tmp_path: Path,
) -> None:
    env = user_env(tmp_path)
    home = tmp_path / "durable-home"
    done = run_demo(tmp_path, env, "durable", "--home", str(home), "--rows", "2000")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "Traceback" not in out and "UNEXPECTED" not in out, out
    text = flat(out)
    assert "Demo finished: every check went as expected" in text, out

    # the operations, printed as they happen, in the order they happen
    worker = r"\S+:(\d+):[0-9a-f]+"  # a worker's owner id: host:pid:random
    steps = [
        r"execution started \(status RUNNING\)",
        rf"replay replay 1 by worker {worker}: runs the handler from the top",
        rf"step execute_batch_query #1 SUCCEEDED \(attempt 1\): batch submitted, statement {UUID}",
        # (the warehouse may not have picked the batch up yet at the first poll)
        r"step check_query_status #2 SUCCEEDED \(attempt 1\): DescribeStatement says "
        r"(SUBMITTED|PICKED|STARTED)",
        r"wait wait #3 started: 10 s, wakes at",
        r"replay suspended until \d\d:\d\d:\d\d: no thread, no lease, no process held",
        r"wait wait #5 started: 10 s",
        rf"worker SIGKILL worker pid (\d+) \(exit -9\) while the execution waits; the batch "
        rf"{UUID} is STARTED in the warehouse",
        r"worker worker restarted: pid (\d+)",
        rf"replay replay \d by worker {worker}",
        r"DescribeStatement says FINISHED",
        r"execution SUCCEEDED",
    ]
    found, at = [], 0
    for step in steps:  # each after the one before
        match = re.compile(step).search(text, at)
        assert match, (step, out)
        found.append(match)
        at = match.end()
    first_pid, killed_pid = found[1].group(1), found[7].group(1)
    restarted_pid, resumed_by = found[8].group(1), found[9].group(1)
    assert first_pid == killed_pid != restarted_pid == resumed_by, out
    # the batch is submitted once: no second submission, by either worker
    assert len(re.findall(r"execute_batch_query #\d+ SUCCEEDED", text)) == 1, out
    for pid in (killed_pid, restarted_pid):
        assert not alive(int(pid)), f"worker {pid} left running"

    # what the demo says about it: its checks, the mart, the timeline
    assert f"ok 1 statement of {PRINCIPAL} in /v1/statements" in text, out
    assert "ok 250 customers, 2,000 orders in the mart" in text, out
    history = re.search(rf"7\. sqltide workflows history ({UUID})", text)
    assert history, out
    assert re.search(r"SUCCEEDED step execute_batch_query #1", text), out
    assert '"statusCode":200' in text.replace(" ", ""), out

    # the store agrees: one statement of the handler's key, the seed's two statements as one
    # batch through the Data API, finished; the execution, its operations and its replays
    store = store_from_url(f"sqlite:///{home / 'state.db'}")
    try:
        statements = store.list_statements(StatementFilter(principal=PRINCIPAL))
        assert len(statements) == 1, statements
        [batch] = statements
        seed_sql = [s.strip() for s in sqlparse.split((EXAMPLE / "query.sql").read_text())]
        assert batch.is_batch and batch.query_strings == seed_sql
        assert batch.status is StatementStatus.FINISHED, batch.error
        origin = batch.origin or {}
        assert (origin.get("workgroup"), origin.get("database")) == ("default", "dev"), origin
        assert batch.started_at is not None and batch.ended_at is not None
        assert batch.ended_at - batch.started_at >= 25.0  # the slow view: 25 s of sleep

        execution = store.get_execution(history.group(1))
        assert execution is not None and execution.status is ExecutionStatus.SUCCEEDED
        assert execution.principal == PRINCIPAL
        ops = store.get_operations(execution.id)
        names = [op.name for op in ops if op.type.value == "STEP"]
        assert names.count("execute_batch_query") == 1
        assert names[0] == "execute_batch_query"
        assert set(names[1:]) == {"check_query_status"}
        waits = [op for op in ops if op.type.value == "WAIT"]
        assert len(waits) >= 2 and len(names) == len(waits) + 2
        events = store.get_history(execution.id)
        owners = [e.details["owner"] for e in events if e.event == "resumed" and e.details]
        pids = [owner.split(":")[-2] for owner in owners]
        assert pids[0] == killed_pid and pids[-1] == restarted_pid, owners
        killed_at = max(
            e.at for e in events if e.event == "resumed" and killed_pid in str(e.details)
        )
        submitted = [e for e in events if e.event == "succeeded" and e.operation_id == "1"]
        assert len(submitted) == 1 and submitted[0].at <= killed_at
        # the batch ran across the kill: it started before the last replay of the first
        # worker and ended after the first replay of the second
        resumed_again = min(
            e.at for e in events if e.event == "resumed" and restarted_pid in str(e.details)
        )
        assert batch.started_at <= killed_at and batch.ended_at > resumed_again
    finally:
        store.close()

    # the warehouse's mart is the seed's refresh of the generated orders
    expected = expected_mart(home / "data" / "orders.csv")
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT customer_id, total_orders, total_amount, CAST(last_order_date AS VARCHAR) "
            "FROM public.mart_customer_summary"
        ).fetchall()
    finally:
        con.close()
    assert {c: (n, a, d) for c, n, a, d in rows} == expected
    assert len(expected) == 250 and sum(n for n, _, _ in expected.values()) == 2000


def test_without_boto3_it_says_what_to_install(tmp_path: Path) -> None:
    # as if boto3 were not installed: importing it fails
    code = (
        "import sys; sys.modules['boto3'] = None; "
        "from sqltide.cli import main; sys.argv = ['sqltide', 'demo', 'durable']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=user_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    err = flat(done.stderr)
    assert "boto3 is not installed" in err, done.stderr
    assert "pip install 'sqltide[demo]'" in err, done.stderr
    assert not (tmp_path / "sqltide-home").exists()


def test_a_home_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    done = run_demo(tmp_path, user_env(tmp_path), "durable", "--home", str(precious))
    out = flat(assert_clean_failure(done))
    assert "is not empty" in out, out
    assert (precious / "keep.txt").read_text() == "mine"
    assert [p.name for p in precious.iterdir()] == ["keep.txt"]


def test_the_example_handler_is_the_seeds_with_its_imports_changed() -> None:
    """The same program as the copy the unit tests run (tests/unit/workflows/seed_001), which
    holds the seed's text with its imports swapped; only layout and comments may differ."""
    example = (EXAMPLE / "redshift_batch_executor.py").read_text()
    restored = (REPO / "tests/unit/workflows/seed_001/redshift_batch_executor.py").read_text()
    assert ast.dump(ast.parse(example)) == ast.dump(ast.parse(restored))
    assert "aws_durable_execution_sdk_python" not in example
    assert (EXAMPLE / "query.sql").read_text() == (
        REPO / "tests/unit/workflows/seed_001/query.sql"
    ).read_text()
