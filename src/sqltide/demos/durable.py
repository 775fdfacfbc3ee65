"""``sqltide demo durable``: seed 001 (a Redshift batch polled by a durable Lambda) end to end.

The seed's handler, ``examples/durable-batch/redshift_batch_executor.py`` with only its
imports changed, submits ``query.sql`` with ``BatchExecuteStatement`` in one step, then polls
``DescribeStatement`` with a durable 10 s wait between polls. On AWS the query runs in
Redshift while the Lambda comes and goes; here two sqltide processes share one store
(SQLite) and play the two parts:

- the *warehouse*: a sqltide server in this process, hosting the DuckDB warehouse and
  answering the Data API (Redshift's part). It stays up throughout;
- the *worker*: ``sqltide serve --workflows redshift_batch_executor.py`` in a subprocess, whose
  boto3 client is pointed at the warehouse's Data API (the Lambda's part). Its statement
  worker hosts only an empty in-memory warehouse of its own, because one DuckDB file is hosted
  by one process.

The demo generates orders, creates the tables, makes ``orders`` slow on purpose (a view that
sleeps 25 s, so the batch runs across several polls), starts the execution, prints each
operation as the store records it, SIGKILLs the worker during the second wait while the batch
is still running, restarts it, and shows the execution resume without submitting the batch
again. It ends with the refreshed mart and the execution's timeline.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from ..cli_timeline import Timeline
from ..client import Client
from ..client.models import Execution, ExecutionHistory, Statement
from ..files import private_dir
from ..keys import AwsCredentials, create_key
from ..runtime import Runtime
from ..server import ServerThread, free_port
from ..settings import Settings
from ..statements.script import split_script
from .executions import Follower
from .steps import Steps

WORKFLOW = "lambda_handler"
#: Who the worker's Data API calls and the execution belong to (the seed's Lambda function).
ETL_PRINCIPAL = "redshift-batch-executor"
SETUP_PRINCIPAL = "durable-demo-setup"
#: The warehouse's Data API names (the handler's WORKGROUP_NAME and DATABASE_NAME).
WORKGROUP = "default"
DATABASE = "dev"
#: The worker's own warehouse: in memory, empty, never used; see the module docstring.
WORKER_WAREHOUSE = "worker-local"
#: How far into the second wait the worker is killed.
KILL_INTO_WAIT_SECONDS = 2.0
#: How long a started worker may take to answer ``/health``.
HEALTH_TIMEOUT = 30.0
MISSING_EXTRA = (
    "sqltide demo durable runs seed 001's handler, which imports boto3 and sqlparse; "
    "{missing} {verb} not installed here. Install them with:\n\n"
    "    pip install 'sqltide[demo]'        (in a clone of the repository: pip install -e '.[demo]')\n"
)


def example_dir() -> Path:
    """``examples/durable-batch``: inside the installed package (a wheel), or the checkout."""
    here = Path(__file__).resolve()
    for candidate in (
        here.parents[1] / "_examples" / "durable-batch",
        here.parents[3] / "examples" / "durable-batch",
    ):
        if (candidate / "redshift_batch_executor.py").is_file():
            return candidate
    raise FileNotFoundError("the durable-batch example is not installed with this sqltide")


def missing_modules() -> list[str]:
    """What the seed's handler imports that this Python lacks."""
    return [name for name in ("boto3", "sqlparse") if importlib.util.find_spec(name) is None]


def load_generator(example: Path) -> ModuleType:
    """The example's order generator (``generate.py``), imported from its file."""
    spec = importlib.util.spec_from_file_location("durable_batch_generate", example / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # NamedTuple looks its module up while it loads
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


# -- the worker process ----------------------------------------------------------------------
class WorkerProcess:
    """``sqltide serve --workflows HANDLER``, started again after a kill (on a free port each
    time: nothing needs its URL once the execution has started)."""

    def __init__(self, handler: Path, env: dict[str, str], logs: Path):
        self.handler = handler
        self.port = free_port()
        self.env = env
        self.logs = logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None
        self.starts = 0

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "sqltide.cli",
            "serve",
            "--port",
            str(self.port),
            "--workflows",
            str(self.handler),
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.starts:
            self.port = free_port()
        self.starts += 1
        self.log = self.logs / f"worker-{self.starts}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the worker exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not answer in {HEALTH_TIMEOUT} s")
            time.sleep(0.05)  # waiting on a condition with a deadline

    def kill(self) -> int:
        """SIGKILL: no shutdown, no cleanup, as a crash or an OOM kill ends a process."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log is not None else ""

    def loaded(self) -> list[str]:
        """The workflows it says it loaded (``workflows: a, b`` in its start-up lines)."""
        for line in self.output().splitlines():
            if line.strip().startswith("workflows:"):
                return [n.strip() for n in line.split(":", 1)[1].split(",") if n.strip()]
        return []


# -- the demo --------------------------------------------------------------------------------
class DurableDemo(Steps):
    def __init__(self, console: Console, *, home: Path, orders: int, timeout: float):
        super().__init__(console)
        self.home = home
        self.orders = orders
        self.customers = max(1, min(orders, orders // 8 or 1))
        self.timeout = timeout
        self.example = example_dir()
        self.handler = self.example / "redshift_batch_executor.py"
        self.status_at_kill: str | None = None
        self.killed_at: datetime | None = None
        self.kill_code: int | None = None

    # -- settings shared by both processes ----------------------------------------------------
    def shared(self) -> dict[str, str]:
        """The one store, storage and warehouse file both processes name (given explicitly,
        so nothing of the caller's SQLTIDE_* settings leaks in)."""
        return {
            "SQLTIDE_HOME": str(self.home),
            "SQLTIDE_STORE": f"sqlite:///{self.home / 'state.db'}",
            "SQLTIDE_STORAGE": f"file:///{self.home / 'files'}",
            "SQLTIDE_WAREHOUSE": f"duckdb:///{self.home / 'warehouse.duckdb'}",
        }

    def worker_env(self, data_api: str, aws: AwsCredentials) -> dict[str, str]:
        # Nothing of the caller's sqltide or AWS configuration: the handler's boto3 must find
        # exactly these credentials, this region and this endpoint.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SQLTIDE_", "AWS_", "BOTO_"))
        }
        env.update(self.shared())
        env.update(
            {
                # the worker hosts no statement of the DuckDB warehouse: the warehouse does
                "SQLTIDE_WAREHOUSES": f'{{"{WORKER_WAREHOUSE}": "duckdb:///:memory:"}}',
                "SQLTIDE_WORKER_WAREHOUSES": WORKER_WAREHOUSE,
                "AWS_ENDPOINT_URL_REDSHIFT_DATA": data_api,
                "AWS_ACCESS_KEY_ID": aws.access_key_id,
                "AWS_SECRET_ACCESS_KEY": aws.secret_access_key,
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "WORKGROUP_NAME": WORKGROUP,
                "DATABASE_NAME": DATABASE,
                "PYTHONUNBUFFERED": "1",
                "COLUMNS": "120",
            }
        )
        return env

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> int:
        with ExitStack() as stack:
            data = self.generate()
            shared = self.shared()
            settings = Settings(
                home=self.home,
                store=shared["SQLTIDE_STORE"],
                storage=shared["SQLTIDE_STORAGE"],
                warehouse=shared["SQLTIDE_WAREHOUSE"],
                warehouses={},
                worker_warehouses="",
                workflows=[],
                # DuckDB's SQL sees no files but these: the generated orders' folder alone.
                warehouse_allowed_dirs=[data.parent],
            )
            runtime = Runtime.build(settings)
            _, setup_key = create_key(
                runtime.store, SETUP_PRINCIPAL, name="durable demo setup", warehouses=["default"]
            )
            _, etl_key, aws = create_key(
                runtime.store,
                ETL_PRINCIPAL,
                name="durable demo: the handler's Data API calls",
                warehouses=["default"],
                aws=True,
            )
            warehouse = stack.enter_context(ServerThread(runtime))
            setup = stack.enter_context(Client(warehouse.url, setup_key))
            watch = stack.enter_context(Client(warehouse.url, etl_key))
            self.setup(setup, data)
            worker = WorkerProcess(self.handler, self.worker_env(warehouse.url, aws), self.home)
            stack.callback(worker.close)
            self.start_servers(warehouse.url, worker, aws)
            if not self.ok:
                return 1
            with Client(worker.url, etl_key) as starter:
                execution = self.start_execution(starter)
            history = self.follow(watch, worker, execution)
            self.verify(watch, history)
            self.show_mart(setup)
            self.show_timeline(watch, execution.id)
        return 0 if self.ok else 1

    def generate(self) -> Path:
        self.step(f"1. Generate {self.orders:,} orders (examples/durable-batch/generate.py)")
        generator = load_generator(self.example)
        out = self.home / "data" / "orders.csv"
        lines = generator.write_orders(out, self.orders, self.customers, seed=1)
        self.lines = lines
        self.console.print(
            f"  {self.orders:,} orders of {self.customers:,} customers, {lines:,} order lines: "
            f"{out}"
        )
        return out

    def setup(self, client: Client, data: Path) -> None:
        self.step("2. Create the tables, load the orders, make the query slow on purpose")
        ddl = split_script((self.example / "sql" / "duckdb" / "setup.sql").read_text())
        load = f"COPY orders FROM '{data}' (HEADER)"
        st = client.wait(
            client.batch([*ddl, load], statement_name="durable-demo-setup").id, timeout=60
        )
        for sql in [*ddl, load]:
            first = next(ln for ln in sql.splitlines() if ln.strip() and not ln.startswith("--"))
            self.console.print(f"  {first.strip()} ...", highlight=False)
        self.check(st.status == "FINISHED", f"tables created, orders loaded ({st.status})")
        loaded = self.scalar(client, "SELECT count(*) FROM orders")
        self.check(loaded == self.lines, f"{loaded:,} order lines in orders")

        slow = self.example / "sql" / "duckdb" / "slow_orders.sql"
        self.console.print(
            "\n  On Redshift this refresh is a query that runs past a Lambda's 15 minutes. Here "
            "it would take milliseconds,\n  so [bold]orders[/] becomes a view that sleeps 25 s "
            "(DuckDB's sleep_ms) before it returns the same rows\n  (examples/durable-batch/"
            "sql/duckdb/slow_orders.sql): the batch really runs for 25 s, across several 10 s "
            "waits."
        )
        st = client.wait(
            client.batch(split_script(slow.read_text()), statement_name="durable-demo-slow").id,
            timeout=60,
        )
        self.check(st.status == "FINISHED", f"orders is now a slow view ({st.status})")

    def start_servers(self, warehouse_url: str, worker: WorkerProcess, aws: AwsCredentials) -> None:
        self.step("3. The warehouse (Redshift's part) and the worker (Lambda's part)")
        self.console.print(
            f"  warehouse: sqltide in this process on {warehouse_url}: DuckDB, the Data API, "
            "the store (SQLite)",
            highlight=False,
        )
        self.console.print(
            f"  worker:    sqltide serve --workflows {self.handler}\n"
            f"             on {worker.url}, same store; its boto3 client gets:",
            highlight=False,
        )
        for name in (
            "AWS_ENDPOINT_URL_REDSHIFT_DATA",
            "AWS_ACCESS_KEY_ID",
            "WORKGROUP_NAME",
            "DATABASE_NAME",
        ):
            self.console.print(f"               {name}={worker.env[name]}", highlight=False)
        self.console.print(
            "               AWS_SECRET_ACCESS_KEY=… (a key made for the demo: "
            f"sqltide keys create {ETL_PRINCIPAL} --aws)",
            highlight=False,
        )
        self.console.print(
            "  The batch runs in the warehouse, not in the worker: killing the worker leaves it "
            "running, as a Lambda\n  that dies leaves its Redshift query running. (Its statement "
            f"worker hosts only an empty in-memory\n  warehouse of its own, {WORKER_WAREHOUSE}: "
            "one DuckDB file is hosted by one process.)",
            highlight=False,
        )
        if not self.start_worker(worker):
            return
        assert worker.proc is not None
        self.console.print(f"  worker pid {worker.proc.pid}, log {worker.log}", highlight=False)
        loaded = worker.loaded()
        self.check(loaded == [WORKFLOW], f"the worker loaded workflow {', '.join(loaded) or '-'}")

    def start_execution(self, client: Client) -> Execution:
        self.step(f"4. Start {WORKFLOW} and follow its operations as the store records them")
        execution = client.start_execution(WORKFLOW, {}, name="durable-demo")
        self.console.print(
            f"  POST {client.base_url}/v1/workflows/{WORKFLOW}/executions -> {execution.id}",
            highlight=False,
        )
        return execution

    def follow(
        self, client: Client, worker: WorkerProcess, execution: Execution
    ) -> ExecutionHistory:
        follower = Follower(self.console, execution.created_at)
        self.follower = follower
        deadline = time.monotonic() + self.timeout
        history = client.execution_history(execution.id)
        killed = False
        while time.monotonic() < deadline:
            history = client.execution_history(execution.id)
            follower.show(history)
            if history.execution.is_terminal:
                break
            if not killed and self.time_to_kill(history):
                self.kill_and_restart(client, worker, follower)
                killed = True
                if not self.ok:
                    break
            time.sleep(0.1)  # reading the history again, for a demo
        self.check(
            killed and self.kill_code == -signal.SIGKILL,
            "the worker was killed (SIGKILL) during a wait, and restarted",
        )
        self.check(
            history.execution.status == "SUCCEEDED",
            f"the execution ended {history.execution.status}",
        )
        return history

    def time_to_kill(self, history: ExecutionHistory) -> bool:
        """During the second wait, a little after it began (the execution is suspended)."""
        waits = [op for op in history.operations if op.type == "WAIT"]
        if len(waits) < 2 or waits[1].status != "STARTED" or waits[1].started_at is None:
            return False
        if not history.events or history.events[-1].event != "suspended":
            return False  # replaying: kill between replays, not during one
        into = (datetime.now(UTC) - waits[1].started_at).total_seconds()
        return into >= KILL_INTO_WAIT_SECONDS

    def kill_and_restart(self, client: Client, worker: WorkerProcess, follower: Follower) -> None:
        assert worker.proc is not None
        pid = worker.proc.pid
        batch = self.batch_statement(client)
        self.status_at_kill = batch.status if batch is not None else None
        code = self.kill_code = worker.kill()
        self.killed_at = datetime.now(UTC)
        follower.say(
            self.killed_at,
            "worker",
            f"SIGKILL worker pid {pid} (exit {code}) while the execution waits; the batch "
            f"{batch.id if batch else '?'} is {self.status_at_kill} in the warehouse",
        )
        if not self.start_worker(worker):
            return
        assert worker.proc is not None
        follower.say(
            datetime.now(UTC),
            "worker",
            f"worker restarted: pid {worker.proc.pid} (same handler, same store), log {worker.log}",
        )

    def start_worker(self, worker: WorkerProcess) -> bool:
        try:
            worker.start()
        except (RuntimeError, TimeoutError) as exc:
            self.check(False, f"the worker did not start: {exc}")
            return False
        return True

    def batch_statement(self, client: Client) -> Statement | None:
        found = list(client.list(max_results=100))
        return found[0] if found else None

    def verify(self, client: Client, history: ExecutionHistory) -> None:
        self.step("5. What happened")
        ex = history.execution
        statements = list(client.list(max_results=100))
        batch = statements[0] if statements else None
        self.check(
            len(statements) == 1,
            f"{len(statements)} statement of {ETL_PRINCIPAL} in /v1/statements: the batch was "
            "submitted once",
        )
        seed_sql = split_script((self.example / "query.sql").read_text())
        if batch is not None:
            subs = len(batch.query_strings or ())
            self.check(
                batch.is_batch and subs == len(seed_sql) and batch.status == "FINISHED",
                f"statement {batch.id}: a batch of {subs} (query.sql's DELETE and INSERT), "
                f"{batch.status} in {(batch.duration_ns or 0) / 1e9:.1f}s",
            )
        submits = [op for op in history.operations if op.name == "execute_batch_query"]
        ran = [
            ev.at
            for ev in history.events
            if ev.event == "succeeded" and submits and ev.operation_id == submits[0].id
        ]
        self.check(
            len(submits) == 1 and submits[0].attempt == 1 and len(ran) == 1,
            "execute_batch_query ran once (one operation, attempt 1, one checkpoint), "
            + ("before the kill" if ran and self.killed_at and ran[0] < self.killed_at else "?"),
        )
        waits = [op for op in history.operations if op.type == "WAIT"]
        polls = self.follower.polls
        self.check(
            self.status_at_kill in ("SUBMITTED", "PICKED", "STARTED"),
            f"the batch was still running when the worker died ({self.status_at_kill})",
        )
        after = [status for at, status in polls if self.killed_at and at > self.killed_at]
        self.check(
            bool(after) and after[-1] == "FINISHED",
            f"the restarted worker went on polling: {' -> '.join(after) or 'no poll'}",
        )
        owners = self.follower.owners
        self.check(
            len(owners) >= 2,
            f"{ex.replays} replays by {len(owners)} worker processes, {len(waits)} waits of 10 s",
        )
        body = (ex.result or {}).get("body", {}) if isinstance(ex.result, dict) else {}
        self.check(
            batch is not None
            and body.get("query_id") == batch.id
            and body.get("status") == "FINISHED",
            f"the handler returned statusCode {(ex.result or {}).get('statusCode')}, "
            f"query_id {body.get('query_id')}, status {body.get('status')}",
        )

    def show_mart(self, client: Client) -> None:
        self.step("6. The refreshed mart: public.mart_customer_summary")
        st = client.wait(
            client.execute(
                "SELECT customer_id, total_orders, total_amount, last_order_date, updated_at "
                "FROM public.mart_customer_summary ORDER BY total_amount DESC, customer_id "
                "LIMIT 10",
                statement_name="durable-demo-mart",
            ).id,
            timeout=60,
        )
        table = Table(
            "customer", "orders", "amount", "last order", "updated at", header_style="bold"
        )
        for customer, orders, amount, last, updated in client.rows(st.id):
            when = str(updated).replace("T", " ")[:19]  # the transaction's start, to the second
            table.add_row(str(customer), f"{orders:,}", str(amount), str(last), when)
        self.console.print(table)
        customers, orders = self.row(
            client, "SELECT count(*), sum(total_orders) FROM public.mart_customer_summary"
        )
        self.check(
            customers == self.customers and orders == self.orders,
            f"{customers:,} customers, {orders:,} orders in the mart (the top 10 above), "
            "as generated",
        )

    def show_timeline(self, client: Client, execution_id: str) -> None:
        self.step(f"7. sqltide workflows history {execution_id}")
        history = client.execution_history(execution_id)
        self.console.print(Timeline(history, datetime.now(UTC), results=True).render())

    # -- small queries ------------------------------------------------------------------------
    def row(self, client: Client, sql: str) -> list[Any]:
        st = client.wait(client.execute(sql).id, timeout=60)
        return list(next(iter(client.rows(st.id))))

    def scalar(self, client: Client, sql: str) -> Any:
        return self.row(client, sql)[0]


@contextmanager
def demo_home(home: Path | None) -> Iterator[Path]:
    """A temporary folder, removed afterwards; or ``home``, which must be new or empty and is
    kept (with the worker's logs)."""
    if home is None:
        with tempfile.TemporaryDirectory(prefix="sqltide-demo-durable-") as tmp:
            yield Path(tmp)
        return
    folder = home.expanduser()
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty; give --home a new or empty folder")
    private_dir(folder)  # it becomes sqltide's home: owner-only, like any home
    yield folder


def run_durable_demo(
    console: Console, *, orders: int = 3000, home: Path | None = None, timeout: float = 180.0
) -> int:
    """Run seed 001 end to end; 0 when every check passed."""
    missing = missing_modules()
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        Console(stderr=True).print(
            MISSING_EXTRA.format(missing=" and ".join(missing), verb=verb),
            style="bold red",
            markup=False,
            highlight=False,
        )
        return 1
    console.print(
        "[bold]sqltide demo durable[/]: seed 001's Redshift batch handler, imports changed, as a "
        "durable workflow; its worker killed mid-wait"
    )
    with demo_home(home) as folder:
        console.print(f"  embedded DuckDB + SQLite in {folder}", highlight=False)
        demo = DurableDemo(console, home=folder, orders=orders, timeout=timeout)
        code = demo.run()
    if code == 0:
        console.print("\n[bold green]Demo finished: every check went as expected.[/]")
        console.print(
            "Run it yourself: examples/durable-batch/README.md (sqltide serve --workflows "
            "examples/durable-batch/redshift_batch_executor.py)."
        )
    else:
        console.print("\n[bold red]Demo finished with unexpected results (see above).[/]")
    return code
