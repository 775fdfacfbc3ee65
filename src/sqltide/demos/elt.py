"""``sqltide demo``: the NYC taxi ELT pipeline (seed 000), end to end, on one machine.

AWS's sample needs EventBridge, two Lambda functions, the Redshift Data API and SNS. Here it
is one embedded sqltide and the pipeline file of ``examples/nyc-taxi-elt``:

1. generate a file of synthetic 2015 yellow-cab trips (the sample's S3 prefix);
2. start a mail catcher: a real SMTP server on loopback that keeps each message as a file;
3. start sqltide (DuckDB + SQLite + a folder, or PostgreSQL when asked) and create the
   warehouse objects (the sample's setup Lambda);
4. apply the pipeline file, with its weekday-11:00 schedule replaced by "a few seconds from
   now" (``ELT_SCHEDULE``), as a user would to try it;
5. print every hand-off as it happens (schedule fired, statement submitted, started,
   finished, status event, rule matched, topic, e-mail sent, e-mail received), show the mail
   and the monthly aggregate the run refreshed.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..client import Client
from ..files import private_dir
from ..keys import create_key
from ..notify.catcher import CaughtMail, MailCatcher
from ..pipeline import Remote, apply, load_pipeline, plan, render_plan
from ..runtime import Runtime
from ..server import ServerThread
from ..settings import Settings
from ..statements.script import split_script
from ..urls import redact_url
from .handoffs import Handoff, HandoffWatcher, sort_key
from .steps import Steps

#: Who runs the ELT: the completion rule matches this principal, as the sample's rule
#: matches its Lambda's assumed-role session.
ELT_PRINCIPAL = "arn:aws:sts::000000000000:assumed-role/elt-role/nyc-taxi-elt"
MAIL_TO = "data-team@example.com"
MARKER = ".sqltide-demo"
STYLES = {
    "schedule": "magenta",
    "rule": "cyan",
    "statement": "green",
    "event": "yellow",
    "topic": "blue",
    "mail": "bold green",
    "retry": "red",
    "dead": "bold red",
}


def example_dir() -> Path:
    """``examples/nyc-taxi-elt``: inside the installed package (a wheel), or the checkout."""
    here = Path(__file__).resolve()
    for candidate in (
        here.parents[1] / "_examples" / "nyc-taxi-elt",
        here.parents[3] / "examples" / "nyc-taxi-elt",
    ):
        if (candidate / "pipeline.yaml").is_file():
            return candidate
    raise FileNotFoundError("the nyc-taxi-elt example is not installed with this sqltide")


def load_generator(example: Path) -> ModuleType:
    """The example's trip generator (``generate.py``), imported from its file."""
    spec = importlib.util.spec_from_file_location("nyc_taxi_generate", example / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


class EltDemo(Steps):
    def __init__(
        self,
        console: Console,
        *,
        rows: int,
        home: Path,
        store: str = "",
        warehouse: str = "",
        timeout: float = 300.0,
    ):
        super().__init__(console)
        self.rows = rows
        self.home = home
        self.store = store
        self.warehouse = warehouse
        self.on_postgres = warehouse.startswith(("postgresql:", "postgres:"))
        self.timeout = timeout
        self.example = example_dir()
        self.flavour = "postgres" if self.on_postgres else "duckdb"
        self.mail: queue.Queue[CaughtMail] = queue.Queue()

    # -- output ------------------------------------------------------------------------------
    def handoff(self, h: Handoff, origin: datetime) -> None:
        offset = (h.at - origin).total_seconds()
        style = STYLES.get(h.kind, "white")
        self.console.print(
            f"  [dim]{h.at:%H:%M:%S}.{h.at.microsecond // 1000:03d} (+{offset:.3f}s)[/] "
            f"[{style}]{h.kind:<9}[/] {h.text}",
            highlight=False,
        )

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> int:
        with ExitStack() as stack:
            data = self.generate(stack)
            catcher = stack.enter_context(MailCatcher(self.home / "mail", on_mail=self.mail.put))
            settings = Settings(
                home=self.home,
                store=self.store,
                warehouse=self.warehouse,
                smtp_url=catcher.smtp_url("sqltide@localhost"),
                # DuckDB's SQL sees no files but these: the generated trips' folder alone.
                warehouse_allowed_dirs=[data.parent],
            )
            runtime = Runtime.build(settings)
            _, key = create_key(
                runtime.store,
                ELT_PRINCIPAL,
                name="nyc-taxi-elt demo",
                warehouses=list(runtime.engines),
            )
            server = stack.enter_context(ServerThread(runtime))
            client = stack.enter_context(Client(server.url, key))
            self.console.print(
                f"  mail catcher (a real SMTP server) on 127.0.0.1:{catcher.port}, "
                f"keeping mail in {catcher.folder}"
            )
            self.console.print(f"  sqltide on {server.url} (API docs: {server.url}/docs)")
            self.console.print(f"  warehouse {redact_url(settings.warehouse_urls['default'])}")
            self.console.print(f"  state     {redact_url(settings.store_url)}")
            self.setup(client)
            self.apply(server.url, key, data)
            self.follow(client)
            self.show_result(client)
        return 0 if self.ok else 1

    def generate(self, stack: ExitStack) -> Path:
        self.step(f"1. Generate {self.rows:,} NYC yellow-taxi trips of 2015 (the raw data)")
        if self.on_postgres:
            # COPY runs in the PostgreSQL server: it needs a file its own user can read.
            folder = Path(tempfile.mkdtemp(prefix="sqltide-taxi-"))
            folder.chmod(0o755)
            stack.callback(shutil.rmtree, folder, True)
        else:
            folder = self.home / "data"
        out = folder / "nyc_yellow_taxi_raw.psv"
        generator = load_generator(self.example)
        started = time.monotonic()
        with Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} rows"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        ) as progress:
            task = progress.add_task("generating", total=self.rows)
            written = generator.generate_trips(
                out, self.rows, progress=lambda n: progress.update(task, completed=n)
            )
        if self.on_postgres:
            out.chmod(0o644)
        size = out.stat().st_size
        self.console.print(
            f"  {written:,} trips, {size / 1e6:.1f} MB, pipe-delimited, in "
            f"{time.monotonic() - started:.1f}s: {out}"
        )
        self.check(written == self.rows, "every row written")
        return out

    def setup(self, client: Client) -> None:
        sql_file = self.example / "sql" / self.flavour / "setup.sql"
        self.step(f"2. Create the warehouse objects ({sql_file.relative_to(self.example)})")
        statements = split_script(sql_file.read_text())
        st = client.wait(client.batch(statements, statement_name="nyc-taxi-setup").id, timeout=120)
        for sql in statements:
            code = [ln for ln in sql.splitlines() if ln.strip() and not ln.startswith("--")]
            first = code[0] if code else sql
            self.console.print(f"  {first.strip()} ...")
        self.check(st.status == "FINISHED", f"setup batch {st.status} {st.error or ''}")

    def apply(self, url: str, key: str, data: Path) -> None:
        pipeline_file = self.example / "pipeline.yaml"
        self.step("3. Apply the pipeline file (examples/nyc-taxi-elt/pipeline.yaml)")
        environ = {
            **os.environ,
            "TAXI_DATA": str(data),
            "ELT_SQL": f"sql/{self.flavour}/elt.sql",
            "ELT_PRINCIPAL": ELT_PRINCIPAL,
            "ELT_MAIL_TO": MAIL_TO,
        }
        environ.pop("ELT_WAREHOUSE", None)
        nominal = load_pipeline(pipeline_file, environ={**environ, "ELT_SCHEDULE": ""})
        nominal_schedule = nominal.rules["nyc-taxi-elt-schedule"]["schedule"]
        with Remote(url, key) as remote:
            for attempt in range(3):
                # A few seconds ahead, whole seconds (at() has no fractions).
                fire_at = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
                schedule = f"at({fire_at:%Y-%m-%dT%H:%M:%S})"
                if attempt == 0:
                    self.console.print(
                        f"  The file runs the ELT on [bold]{nominal_schedule}[/]; to run it now "
                        f"the demo sets ELT_SCHEDULE={schedule} (UTC)."
                    )
                else:
                    self.console.print(f"  Applying took too long; ELT_SCHEDULE={schedule} now.")
                pipeline = load_pipeline(
                    pipeline_file, environ={**environ, "ELT_SCHEDULE": schedule}
                )
                the_plan = plan(pipeline, remote)
                for line in render_plan(the_plan).splitlines():
                    self.console.print(f"  {line}", highlight=False)
                result = apply(the_plan, remote)
                # An at() that passed before its rule was saved fires late (or, past the
                # grace, not at all): then try a later one.
                if not result.ok or datetime.now(UTC) < fire_at - timedelta(seconds=0.5):
                    break
        self.check(result.ok, f"applied: {the_plan.summary()}")
        self.fire_at = fire_at

    def follow(self, client: Client) -> None:
        self.step("4. The pipeline runs: each hand-off as it happens")
        origin = self.fire_at
        watcher = HandoffWatcher(
            client, since=origin - timedelta(seconds=1), statement_prefix="nyc-taxi-elt"
        )
        self.console.print(f"  waiting for the schedule to fire at {origin:%H:%M:%S} UTC ...")
        deadline = time.monotonic() + self.timeout
        caught: CaughtMail | None = None
        delivered_mail = False
        while time.monotonic() < deadline and not (caught and delivered_mail):
            # The mail first, then the records: whatever led to a mail that arrived is
            # recorded already, so one sorted list puts every hand-off in its place.
            arrived = self._arrived_mail()
            found = watcher.poll()
            if arrived is not None:
                caught = arrived
                found.append(
                    Handoff(
                        datetime.fromtimestamp(arrived.path.stat().st_mtime, UTC),
                        "mail",
                        f"the mail catcher received {arrived.subject!r} for "
                        f"{', '.join(arrived.recipients)}: {arrived.path}",
                    )
                )
            for h in sorted(found, key=sort_key):
                self.handoff(h, origin)
                delivered_mail = delivered_mail or (h.kind == "topic" and not h.failed)
            time.sleep(0.05)  # polling the API between looks, for a demo
        self.check(caught is not None, "the e-mail arrived")
        finished = [st for st in watcher.statements.values() if st.status == "FINISHED"]
        self.check(bool(finished), "the ELT statement FINISHED")
        if caught is not None:
            self.console.print(
                Panel(
                    f"From: {caught.message['From']}\nTo: {caught.message['To']}\n"
                    f"Subject: {caught.subject}\n\n{caught.text.strip()}",
                    title=str(caught.path),
                    expand=False,
                )
            )
        self.mail_file = caught.path if caught else None

    def _arrived_mail(self) -> CaughtMail | None:
        try:
            return self.mail.get_nowait()
        except queue.Empty:
            return None

    def show_result(self, client: Client) -> None:
        self.step("5. What the ELT refreshed: nyc_yellow_taxi_volume_analysis")
        st = client.wait(
            client.execute(
                "SELECT pickup_month, avg_distance, avg_fare, total_trips, "
                "total_fare_per_month FROM nyc_yellow_taxi_volume_analysis ORDER BY 1",
                statement_name="nyc-taxi-report",
            ).id,
            timeout=60,
        )
        table = Table("month", "avg distance", "avg fare", "trips", "fares", header_style="bold")
        total = 0
        for month, distance, fare, trips, fares in client.rows(st.id):
            total += int(trips)
            table.add_row(
                str(month)[:7], f"{distance}", f"{fare}", f"{trips:,}", f"{float(fares):,.2f}"
            )
        self.console.print(table)
        self.check(total == self.rows, f"{total:,} trips in the aggregate, as generated")


@contextmanager
def demo_home(home: Path | None) -> Iterator[Path]:
    """The demo's folder: kept afterwards so the mail can be read; emptied at each run."""
    folder = (home or Settings().home_dir / "demo").expanduser()
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise FileExistsError(
            f"{folder} is not empty and not a demo folder; choose another with --home"
        )
    if folder.exists():
        shutil.rmtree(folder)
    private_dir(folder)  # it becomes sqltide's home: owner-only, like any home
    (folder / MARKER).write_text("made by `sqltide demo`; emptied at each run\n")
    yield folder


def run_elt_demo(
    console: Console,
    *,
    rows: int = 500_000,
    home: Path | None = None,
    store: str = "",
    warehouse: str = "",
    timeout: float = 300.0,
) -> int:
    """Run the pipeline end to end; 0 when every step went as it should."""
    console.print(
        "[bold]sqltide demo[/]: the NYC taxi ELT pipeline, end to end "
        "(schedule -> SQL -> status event -> rule -> topic -> e-mail)"
    )
    with demo_home(home) as folder:
        demo = EltDemo(
            console, rows=rows, home=folder, store=store, warehouse=warehouse, timeout=timeout
        )
        code = demo.run()
        if code == 0:
            console.print("\n[bold green]Demo finished: every hand-off went as expected.[/]")
            if demo.mail_file is not None:
                console.print(f"Read the e-mail that was sent:  cat {demo.mail_file}")
            console.print(
                "Run it for real: [bold]sqltide serve[/] with SQLTIDE_SMTP_URL set, then "
                "[bold]TAXI_DATA=... sqltide apply -f examples/nyc-taxi-elt/pipeline.yaml[/] "
                "(see examples/nyc-taxi-elt/README.md)."
            )
        else:
            console.print("\n[bold red]Demo finished with unexpected results (see above).[/]")
        return code
