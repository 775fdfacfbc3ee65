"""All settings, read from the environment under the ``SQLTIDE_`` prefix, in one place."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .paths import DEFAULT_HOME, credentials_file


class Settings(BaseSettings):
    """sqltide's configuration.

    Every field can be set as an environment variable: ``home`` is ``SQLTIDE_HOME``,
    ``store`` is ``SQLTIDE_STORE`` and so on. Backends are chosen by URL; an empty URL means
    the embedded default under ``home``.
    """

    model_config = SettingsConfigDict(env_prefix="SQLTIDE_", extra="ignore")

    #: Data directory for the embedded defaults (state, warehouse, files).
    home: Path = DEFAULT_HOME
    #: State store URL: ``sqlite:///path.db`` (default ``<home>/state.db``).
    store: str = ""
    #: File storage URL: ``file:///path`` (default ``<home>/files``).
    storage: str = ""
    #: URL of the default warehouse, named ``default``: ``duckdb:///path.db``
    #: (default ``<home>/warehouse.duckdb``) or ``duckdb:///:memory:``.
    warehouse: str = ""
    #: More named warehouses as a JSON object ``{"name": "url"}``.
    warehouses: dict[str, str] = Field(default_factory=dict)
    #: Warehouses this process's worker runs statements for, comma-separated (default: all).
    #: An embedded DuckDB warehouse must be hosted by exactly one worker process.
    worker_warehouses: str = ""
    #: Folders SQL on the DuckDB warehouses may read and write files in (``COPY``,
    #: ``read_csv``, ...), comma-separated or a JSON list; none by default. Refused at start-up
    #: if one is, holds or is inside sqltide's own files (state database, credentials, result
    #: storage, warehouse files).
    warehouse_allowed_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    #: DuckDB extensions loaded when a DuckDB warehouse opens, before its configuration is
    #: locked (names, comma-separated or a JSON list). They must be built in or installed
    #: already: SQL can neither install nor load extensions itself.
    warehouse_extensions: Annotated[list[str], NoDecode] = Field(default_factory=list)

    #: SMTP server for e-mail subscriptions:
    #: ``smtp://user:password@host:587?security=starttls&from=sqltide@example.com``.
    smtp_url: str = ""

    #: Let webhooks reach loopback, link-local and private addresses (never cloud metadata
    #: ones); by default they reach global addresses only (see docs/security.md).
    webhook_allow_private: bool = False
    #: Networks (``10.1.0.0/16``, ``127.0.0.1``) and host names (``hooks.internal``,
    #: ``*.corp.example``), comma-separated, that webhooks may reach even though private.
    webhook_allowed_networks: str = ""

    host: str = "127.0.0.1"
    port: int = 8765
    #: Authentication is on unless this is set (for local experiments only).
    no_auth: bool = False
    #: Warehouses every principal may use without a grant of its own, comma-separated;
    #: ``name:read_only`` for read-only use (``default,lake:read_only``). Empty by default: a
    #: new principal can use nothing until granted (``sqltide grants add``).
    default_grants: str = ""
    #: The AWS account id in the ARNs Data API callers appear as
    #: (``arn:aws:iam::<account>:user/<principal>``, unless their key names its own ARN).
    aws_account_id: str = Field(default="000000000000", pattern=r"^\d{12}$")
    #: The Data API's cluster identifiers and workgroup names, as a JSON object
    #: ``{"name": "warehouse"}``; a key ``"name/database"`` maps one database of a cluster or
    #: workgroup (docs/data-api.md, "Warehouse map"). Every warehouse is also reachable under
    #: its own name, unless the map gives that name to another.
    data_api_warehouses: dict[str, str] = Field(default_factory=dict)
    #: The database name a Data API caller may give for a warehouse that holds one database
    #: (DuckDB), besides the database's own name: Redshift's default, ``dev``.
    data_api_default_database: str = "dev"

    #: How many statements one worker runs at once.
    worker_concurrency: int = Field(default=8, ge=1, le=256)
    #: How long a worker's claim on a statement lasts without a heartbeat.
    lease_seconds: float = Field(default=30.0, gt=0)
    #: How often a worker renews its leases and checks for cancel requests.
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    #: On a graceful stop, how long running statements may take before they are interrupted.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    #: How long results are kept after a statement ends.
    result_retention_seconds: float = Field(default=24 * 3600, gt=0)
    #: How long a finished statement's record is kept (describe, list, client tokens); at
    #: least as long as its result. Its result goes first, after ``result_retention_seconds``.
    statement_retention_seconds: float = Field(default=7 * 86_400, gt=0)
    #: How often the event router and the deliverer look for work nobody told them about
    #: (wake-ups normally reach them at once).
    bus_poll_seconds: float = Field(default=5.0, gt=0)
    #: Deliveries one process runs at once.
    delivery_concurrency: int = Field(default=4, ge=1, le=64)
    #: How long routed events stay in the archive (and can be replayed).
    event_retention_seconds: float = Field(default=7 * 86_400, gt=0)
    #: How long delivered deliveries are kept (``GET /v1/deliveries``).
    delivery_retention_seconds: float = Field(default=7 * 86_400, gt=0)
    #: How long dead letters are kept for inspection and redrive (SQS's longest is 14 days).
    dead_letter_retention_seconds: float = Field(default=14 * 86_400, gt=0)
    #: How often expired results, old records and idle sessions are swept.
    sweep_interval_seconds: float = Field(default=60.0, gt=0)

    #: Workflow modules to load: dotted module names, ``.py`` files or folders of them,
    #: comma-separated or a JSON list (``sqltide serve --workflows`` adds more). Every process
    #: that starts executions (the API) or runs them (workers) must load them.
    workflows: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Workflow replays one worker process runs at once.
    workflow_concurrency: int = Field(default=16, ge=1, le=256)
    #: An execution's timeout when its start names none (at most 366 days, as on AWS).
    workflow_timeout_seconds: float = Field(default=86_400.0, gt=0, le=366 * 86_400)
    #: How long an ended execution (its operations and history) is kept (AWS: 14 days).
    workflow_retention_days: float = Field(default=14.0, gt=0, le=3660)
    #: Largest execution input, callback result or error (compact JSON, UTF-8 bytes); AWS's
    #: payload limit is 256 KiB.
    workflow_max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    #: How often a worker looks for due executions nobody announced (a wake-up lost between
    #: processes); timers and wake-ups reach it at once otherwise.
    workflow_poll_seconds: float = Field(default=5.0, gt=0)

    #: Longest long-poll a describe may ask for.
    max_wait_seconds: float = Field(default=30.0, ge=0)
    #: Most requests waiting on long-polls at once in one process.
    max_waiters: int = Field(default=10_000, ge=1)
    #: Most unfinished statements one principal may have.
    max_active_statements_per_principal: int = Field(default=500, ge=1)

    max_sql_bytes: int = Field(default=100 * 1024, ge=1)
    max_batch_statements: int = Field(default=40, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_session_keep_alive_seconds: int = Field(default=86_400, ge=0)
    #: Deepest nesting of a JSON value a user gives (event detail, pattern, target input…).
    #: At most 100: orjson stops at 255 and the bus wraps values a few levels deeper.
    max_json_depth: int = Field(default=64, ge=1, le=100)
    #: Largest value of one statement parameter (UTF-8 bytes), and of all of them together.
    max_parameter_bytes: int = Field(default=64 * 1024, ge=1)
    max_parameters_bytes: int = Field(default=256 * 1024, ge=1)

    #: How long a client may take to send a request's headers (slowloris guard).
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    #: How long a client may leave a request body stalled between two pieces of it.
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)
    #: How long an idle keep-alive connection stays open. Longer than clients' own idle
    #: expiry (httpx: 5 s) so a client never sends on a connection the server is closing.
    http_keep_alive_seconds: float = Field(default=75.0, gt=0)
    #: Most open connections from one client address (0: no limit). Behind a reverse proxy
    #: every client has the proxy's address: raise it or set 0 there.
    http_max_connections_per_client: int = Field(default=64, ge=0)
    #: FastAPI's native OpenTelemetry: traces, metrics and logs of every request through the
    #: globally configured providers. Off by default, since even with no provider configured
    #: it looks for one on every request (about 10 µs each).
    opentelemetry: bool = False

    #: Bounds on one page of a result.
    page_max_rows: int = Field(default=10_000, ge=1)
    page_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    #: Bounds on one page in Arrow format (no conversion, so pages may be larger).
    arrow_page_max_rows: int = Field(default=1_000_000, ge=1)
    arrow_page_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    #: Rows per record batch read from the engine, and bounds on one result chunk file.
    result_batch_rows: int = Field(default=16_384, ge=1)
    result_chunk_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    #: Results smaller than this are kept in the state store instead of a file.
    result_inline_bytes: int = Field(default=64 * 1024, ge=0)

    @model_validator(mode="after")
    def _records_outlive_results(self) -> Settings:
        if self.statement_retention_seconds < self.result_retention_seconds:
            raise ValueError(
                "statement_retention_seconds must be at least result_retention_seconds "
                f"({self.statement_retention_seconds:g} < {self.result_retention_seconds:g}): "
                "a result cannot outlive its statement"
            )
        return self

    @field_validator("warehouses", "data_api_warehouses", mode="before")
    @classmethod
    def _parse_warehouses(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _check_allowed_networks(cls, value: str) -> str:
        if value.strip():  # a typo here would silently refuse the intended webhooks
            from .notify.netguard import parse_allow_list

            parse_allow_list(value)
        return value

    @field_validator("warehouse_allowed_dirs", "warehouse_extensions", "workflows", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError as exc:
                    raise ValueError(
                        f"not a JSON list ({exc}); or give the values comma-separated"
                    ) from None
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("warehouse_allowed_dirs")
    @classmethod
    def _expand_dirs(cls, value: list[Path]) -> list[Path]:
        return [p.expanduser() for p in value]

    @field_validator("warehouse_extensions")
    @classmethod
    def _extension_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_]+", name):
                raise ValueError(f"{name!r} is not a DuckDB extension name (letters, digits, _)")
        return value

    @field_validator("default_grants")
    @classmethod
    def _check_default_grants(cls, value: str) -> str:
        from .grants import parse_default_grants

        parse_default_grants(value)  # a typo here would silently grant nothing
        return value

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def credentials_path(self) -> Path:
        """The admin key `sqltide serve` made first, for the CLI on this machine."""
        return credentials_file(self.home_dir)

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{self.home_dir / 'state.db'}"

    @property
    def storage_url(self) -> str:
        return self.storage or f"file:///{self.home_dir / 'files'}"

    @property
    def workflow_retention_seconds(self) -> float:
        return self.workflow_retention_days * 86_400.0

    @property
    def hosted_warehouses(self) -> list[str]:
        names = [n.strip() for n in self.worker_warehouses.split(",") if n.strip()]
        return names or list(self.warehouse_urls)

    @property
    def warehouse_urls(self) -> dict[str, str]:
        urls = {"default": self.warehouse or f"duckdb:///{self.home_dir / 'warehouse.duckdb'}"}
        urls.update(self.warehouses)
        return urls


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with a clear :class:`ConfigError` for bad values."""
    import re

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from .errors import ConfigError

    try:
        return Settings(**overrides)
    except SettingsError as exc:  # a value that is not even JSON where JSON is expected
        m = re.search(r'field "(\w+)"', str(exc))
        name = f"SQLTIDE_{m.group(1).upper()}" if m else "a SQLTIDE_ variable"
        raise ConfigError(f"invalid configuration: {name} is not valid JSON") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"SQLTIDE_{'_'.join(str(x) for x in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
