"""Wiring: settings in, a running sqltide out (store, storage, warehouses, services, worker)."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .engines import Engine, engine_from_url
from .engines.sandbox import allowed_dirs
from .errors import ConfigError
from .events.bus import Bus
from .events.scheduler import Scheduler
from .events.service import EventService
from .events.targets import TargetRunner
from .files import private_dir, tighten
from .grants import Grants
from .lambda_durable.invoker import runners as aws_runners
from .lambda_durable.tokens import token_key
from .notify.netguard import NetworkGuard
from .settings import Settings
from .statements.jobs import StatementJobs
from .statements.service import StatementService
from .storage import Storage, storage_from_url
from .store import Store, store_from_url
from .store.wakeups import Notifier
from .worker import WorkLoop
from .workflows.jobs import ExecutionJobs
from .workflows.registry import LoadProblem, Registry
from .workflows.service import WorkflowService

logger = logging.getLogger(__name__)

#: What each role runs: ``all`` everything; ``api`` the HTTP API only; ``worker`` statements,
#: event routing, deliveries and workflow executions; ``scheduler`` schedule firings (one is
#: enough, more are safe).
ROLES = ("all", "api", "worker", "scheduler")


@dataclass
class Runtime:
    """Everything one sqltide process runs, built from :class:`Settings` by :meth:`build`."""

    settings: Settings
    store: Store
    storage: Storage
    notifier: Notifier
    engines: dict[str, Engine]
    statements: StatementService
    #: Workflow executions: start, describe, list, history, stop, callbacks.
    workflows: WorkflowService
    events: EventService | None = None
    worker: StatementJobs | None = None
    bus: Bus | None = None
    scheduler: Scheduler | None = None
    #: The workflow job kind, in the roles that run executions (``all``, ``worker``).
    executions: ExecutionJobs | None = None
    #: Workflow modules that failed to import at start (logged; their executions wait).
    workflow_problems: list[LoadProblem] = field(default_factory=list)
    role: str = "all"
    loop: WorkLoop | None = None
    clock: Callable[[], float] = time.time
    _started: bool = field(default=False, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def build(
        cls, settings: Settings, *, role: str = "all", clock: Callable[[], float] = time.time
    ) -> Runtime:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        sandbox_dirs = allowed_dirs(settings)  # before anything is made: a refusal is cheap
        # Workflow code too (two workflows with one name stop start-up). A scheduler runs no
        # workflow and starts none: it imports none.
        registry, problems = load_workflows(settings.workflows if role != "scheduler" else [])
        # Owner-only, as is everything sqltide makes under it (see files.py).
        private_dir(settings.home_dir)
        tighten(settings.credentials_path)  # left looser by hand or an older sqltide
        store = store_from_url(settings.store_url)
        store.migrate()
        store.result_retention_seconds = settings.result_retention_seconds
        store.execution_retention_seconds = settings.workflow_retention_seconds
        secret = bytes.fromhex(store.get_or_set_meta("secret", secrets.token_hex(32)))
        storage = storage_from_url(settings.storage_url, secret)
        notifier = Notifier(settings.max_waiters)
        notifier.transport = store.make_transport(notifier)  # other processes, if the store can
        engines: dict[str, Engine] = {}
        for name, url in settings.warehouse_urls.items():
            engine = engine_from_url(name, url)
            if hasattr(engine, "batch_rows"):
                engine.batch_rows = settings.result_batch_rows
            if hasattr(engine, "confine"):  # embedded: its SQL runs in sqltide's process
                engine.confine(sandbox_dirs, tuple(settings.warehouse_extensions))
            engines[name] = engine
        grants = Grants(store, list(engines), settings.default_grants, clock=clock)
        statements = StatementService(
            store, storage, notifier, settings, list(engines), secret, clock=clock, grants=grants
        )
        loop = WorkLoop(
            notifier,
            heartbeat_seconds=settings.heartbeat_seconds,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
        )
        worker = None
        if role in ("all", "worker"):
            hosted = settings.hosted_warehouses
            unknown = sorted(set(hosted) - set(engines))
            if unknown:
                raise ConfigError(
                    f"SQLTIDE_WORKER_WAREHOUSES names unknown warehouse(s) {', '.join(unknown)}; "
                    f"configured: {', '.join(engines)}"
                )
            worker = StatementJobs(
                store,
                storage,
                notifier,
                {n: engines[n] for n in hosted},
                settings,
                clock=clock,
                owner=loop.owner,
            )
            loop.register(worker)
        guard = NetworkGuard.from_settings(settings)  # where webhooks may go
        events = EventService(
            store,
            notifier,
            list(engines),
            clock=clock,
            max_json_depth=settings.max_json_depth,
            guard=guard,
            grants=grants,
            cursors=statements.cursors,  # one secret signs every list's cursors
        )
        workflows = WorkflowService(
            store, notifier, registry, settings, cursors=statements.cursors, clock=clock
        )
        bus = None
        if worker is not None:
            runner = TargetRunner(
                store,
                notifier,
                statements,
                smtp_url=settings.smtp_url,
                clock=clock,
                guard=guard,
                workflows=workflows,  # workflow targets start executions as the rule's owner
            )
            bus = Bus(
                store,
                notifier,
                runner,
                owner=loop.owner,
                lease_seconds=settings.lease_seconds,
                poll_seconds=settings.bus_poll_seconds,
                concurrency=settings.delivery_concurrency,
                clock=clock,
            )
            for kind in bus.kinds():
                loop.register(kind)
        executions = None
        if role in ("all", "worker") and settings.workflows:
            executions = ExecutionJobs(
                store, notifier, registry, workflows, settings, clock=clock, owner=loop.owner
            )
            # Unchanged AWS SDK handlers are invoked as Lambda would, not replayed.
            executions.runners = aws_runners(token_key(secret), settings.aws_account_id)
            loop.register(executions)
        scheduler = None
        if role in ("all", "scheduler"):
            scheduler = Scheduler(store, notifier, clock=clock)
            loop.register(scheduler)
        return cls(
            settings=settings,
            store=store,
            storage=storage,
            notifier=notifier,
            engines=engines,
            statements=statements,
            events=events,
            worker=worker,
            bus=bus,
            scheduler=scheduler,
            workflows=workflows,
            executions=executions,
            workflow_problems=problems,
            role=role,
            loop=loop,
            clock=clock,
        )

    def start(self) -> None:
        """Open the warehouses this process hosts and start the worker."""
        if self._started:
            return
        if self._stopped:
            raise RuntimeError("a stopped runtime cannot start again; build a new one")
        opened: list[Engine] = []
        try:
            hosted = self.worker.engines if self.worker is not None else {}
            for name, engine in self.engines.items():
                # An embedded (exclusive) warehouse is opened only by the worker hosting it;
                # shared ones are opened everywhere (the API reads their catalog).
                if name in hosted or not engine.exclusive:
                    engine.open()
                    opened.append(engine)
        except Exception:
            for engine in opened:
                engine.close()
            raise
        if self.loop is not None:
            self.loop.start()
        self._started = True

    def stop(self) -> None:
        """Stop what runs and release the warehouses, the wake-up transport and the store.

        Also what a runtime built but never started must do to let go of its connections
        (a PostgreSQL store's pool and listener); calling it again does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        if self.loop is not None:
            self.loop.stop()
        for engine in self.engines.values():
            engine.close()
        self.notifier.close()
        self.store.close()
        self._started = False

    def __enter__(self) -> Runtime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_workflows(sources: list[str]) -> tuple[Registry, list[LoadProblem]]:
    """Import the workflow modules; a module that fails is logged with its traceback and its
    workflows are not loaded here (their executions wait for a worker that loads them).

    Two workflows with one name stop start-up (``ConfigError``).
    """
    registry = Registry()
    problems = registry.load(sources) if sources else []
    for problem in problems:
        logger.error(
            "workflow module %s failed to import; its executions wait for a worker that loads "
            "it:\n%s",
            problem,
            problem.traceback.rstrip() or problem.message,
        )
    if sources:
        logger.info("workflows loaded: %s", ", ".join(registry.names()) or "none")
    return registry, problems
