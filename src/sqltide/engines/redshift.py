"""Amazon Redshift warehouses, through the Redshift Data API (``redshift-data://``).

::

    redshift-data://<cluster-identifier>/<database>?region=us-east-1
    redshift-data://<workgroup-name>/<database>?workgroup=true&region=us-east-1
    redshift-data://KEY_ID:SECRET@<cluster-identifier>/<database>?region=...&db_user=etl

The host names a provisioned cluster, or with ``workgroup=true`` a Redshift Serverless
workgroup. Query parameters:

- ``region``: the AWS region (else the AWS chain's: ``AWS_REGION``, the profile);
- ``workgroup``: ``true`` when the host is a serverless workgroup (default ``false``);
- ``db_user``: the database user for temporary credentials (a provisioned cluster only);
- ``secret_arn``: a Secrets Manager secret holding the database credentials instead;
- ``endpoint_url``: another Data API endpoint (a VPC endpoint, or any server speaking the
  protocol, such as another sqltide: that is how sqltide's tests run this engine);
- ``profile``: an AWS profile of ``~/.aws``. AWS credentials come from the URL's user and
  password (percent-encoded access key id and secret access key), else the usual AWS chain
  (environment, profile, container or instance role);
- ``session_keep_alive``: seconds an idle Data API session (a transaction's) stays open,
  default 300 (1-86400);
- ``wait``: seconds each ``DescribeStatement`` long-polls (``WaitTimeSeconds``, 1-30, default
  20; ``0`` polls with backoff instead). botocore releases without ``WaitTimeSeconds`` poll;
- ``timeout``: seconds a statement may run before the engine cancels it (default 86700: the
  Data API's own limit is 24 hours).

Install the extra first: ``pip install 'sqltide[redshift]'`` (boto3).

:class:`RedshiftEngine` holds the settings, the boto3 client and the catalog calls; the rest
lives beside it: ``rs_connection.py`` (running statements, results, transactions in Data API
sessions, cancelling), ``rs_types.py`` (column types to Arrow), ``rs_errors.py`` (Redshift's
messages and AWS's exceptions as SQLSTATEs), ``rs_access.py`` (read-only principals and
database users).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ConfigError, EngineError
from ..urls import redact_url
from .base import FULL_ACCESS, Access, ColumnMeta, Engine, TableInfo
from .rs_connection import RedshiftConnection
from .rs_errors import aws_error, botocore_error
from .rs_types import column_meta

__all__ = ["RedshiftConnection", "RedshiftEngine", "RedshiftSettings"]

logger = logging.getLogger(__name__)

_PARAMS = (
    "region",
    "workgroup",
    "db_user",
    "secret_arn",
    "endpoint_url",
    "profile",
    "session_keep_alive",
    "wait",
    "timeout",
)
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")
#: The Data API's own limit on a statement is 24 hours; the engine gives up a little later.
_DEFAULT_TIMEOUT = 86_700.0


@dataclass(frozen=True, slots=True)
class RedshiftSettings:
    """What a ``redshift-data://`` URL says."""

    identifier: str
    database: str
    workgroup: bool = False
    region: str | None = None
    db_user: str | None = None
    secret_arn: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_keep_alive: int = 300
    wait: int = 20
    timeout: float = _DEFAULT_TIMEOUT


def _number(name: str, value: str, low: float, high: float, warehouse: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not low <= number <= high:
        raise ConfigError(
            f"warehouse {warehouse!r}: {name} must be a number from {low:g} to {high:g}, "
            f"not {value!r}"
        )
    return number


def parse_url(url: str, warehouse: str) -> RedshiftSettings:
    """The settings a ``redshift-data://`` URL gives; a clear :class:`ConfigError` if bad."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        user, password = parts.username, parts.password
    except ValueError as exc:
        raise ConfigError(f"warehouse {warehouse!r}: not a valid URL {shown}: {exc}") from exc
    database = unquote(parts.path.lstrip("/"))
    if not host or not database or "/" in database:
        raise ConfigError(
            f"warehouse {warehouse!r}: expected redshift-data://<cluster-or-workgroup>/"
            f"<database>?region=..., not {shown}"
        )
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _PARAMS:
            raise ConfigError(
                f"warehouse {warehouse!r}: unknown parameter {key!r} in {shown}; "
                f"known: {', '.join(_PARAMS)}"
            )
        query[key] = value
    flag = query.get("workgroup", "false").strip().lower()
    if flag not in _TRUE + _FALSE:
        raise ConfigError(f"warehouse {warehouse!r}: workgroup must be true or false, not {flag!r}")
    workgroup = flag in _TRUE
    db_user, secret_arn = query.get("db_user") or None, query.get("secret_arn") or None
    if db_user and secret_arn:
        raise ConfigError(
            f"warehouse {warehouse!r}: give db_user (temporary credentials) or secret_arn "
            "(a Secrets Manager secret), not both"
        )
    if db_user and workgroup:
        raise ConfigError(
            f"warehouse {warehouse!r}: db_user is for provisioned clusters; a serverless "
            "workgroup takes its database user from the IAM identity (or use secret_arn)"
        )
    endpoint = query.get("endpoint_url") or None
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigError(
            f"warehouse {warehouse!r}: endpoint_url must be an http:// or https:// URL"
        )
    if (user is None) != (password is None):
        raise ConfigError(
            f"warehouse {warehouse!r}: give both the access key id and the secret access key "
            "in the URL (redshift-data://KEY_ID:SECRET@...), or neither"
        )
    return RedshiftSettings(
        identifier=host,
        database=database,
        workgroup=workgroup,
        region=query.get("region") or None,
        db_user=db_user,
        secret_arn=secret_arn,
        endpoint_url=endpoint,
        profile=query.get("profile") or None,
        access_key_id=unquote(user) if user is not None else None,
        secret_access_key=unquote(password) if password is not None else None,
        session_keep_alive=int(
            _number(
                "session_keep_alive", query.get("session_keep_alive", "300"), 1, 86400, warehouse
            )
        ),
        wait=int(_number("wait", query.get("wait", "20"), 0, 30, warehouse)),
        timeout=_number("timeout", query.get("timeout", str(_DEFAULT_TIMEOUT)), 1, 1e9, warehouse),
    )


def _aws_modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    """boto3, botocore.config and botocore.exceptions (the optional ``redshift`` extra)."""
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError as exc:
        raise ConfigError(
            "redshift-data:// warehouses need boto3: pip install 'sqltide[redshift]'"
        ) from exc
    return boto3, botocore.config, botocore.exceptions


class RedshiftEngine(Engine):
    """An Amazon Redshift cluster or serverless workgroup, reached through the Data API.

    Every worker process may serve it (``exclusive = False``): nothing is held but a boto3
    client, which is safe to share between threads.
    """

    scheme = "redshift-data"
    exclusive = False
    sql_dialect = "redshift"

    def __init__(self, name: str, url: str, batch_rows: int = 16_384):
        super().__init__(name, url)  # drops ?dialect=: use self.url from here on
        self.batch_rows = batch_rows
        self.settings = parse_url(self.url, name)
        boto3, config, exceptions = _aws_modules()
        self._boto3 = boto3
        self._config_module = config
        self._client_error: type[Exception] = exceptions.ClientError
        self._botocore_error: type[Exception] = exceptions.BotoCoreError
        self._client: Any = None
        self._client_lock = threading.Lock()
        #: Whether the installed botocore's DescribeStatement takes WaitTimeSeconds.
        self.can_wait = False

    # -- the client ----------------------------------------------------------------------

    def display(self) -> str:
        """Where the warehouse is, for messages (no credentials)."""
        s = self.settings
        kind = "workgroup" if s.workgroup else "cluster"
        where = f" at {s.endpoint_url}" if s.endpoint_url else ""
        return f"Redshift {kind} {s.identifier!r}, database {s.database!r}{where}"

    @property
    def client(self) -> Any:
        """The boto3 ``redshift-data`` client (made on first use, then shared)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        s = self.settings
        config = self._config_module.Config(
            # Standard retries cover throttling and dropped connections; ExecuteStatement is
            # safe to retry because botocore sends the same ClientToken each time.
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=10,
            read_timeout=max(s.wait, 1) + 30,  # a long-poll answers after up to `wait` s
            max_pool_connections=64,
            user_agent_extra="sqltide",
        )
        try:
            session = self._boto3.session.Session(
                aws_access_key_id=s.access_key_id,
                aws_secret_access_key=s.secret_access_key,
                region_name=s.region,
                profile_name=s.profile,
            )
            client = session.client("redshift-data", endpoint_url=s.endpoint_url, config=config)
        except Exception as exc:  # no region, an unknown profile, a bad endpoint
            raise ConfigError(
                f"warehouse {self.name!r}: cannot make a Data API client for {self.display()}: "
                f"{exc} (set ?region= or AWS_REGION, or check ?profile=)"
            ) from exc
        operation = client.meta.service_model.operation_model("DescribeStatement")
        self.can_wait = s.wait > 0 and "WaitTimeSeconds" in operation.input_shape.members
        return client

    def call(self, operation: str, *, in_session: bool = False, **kwargs: Any) -> dict[str, Any]:
        """One Data API call (``execute_statement``...); AWS's errors as ``EngineError``."""
        client = self.client
        try:
            answer: dict[str, Any] = getattr(client, operation)(**kwargs)
        except self._client_error as exc:
            error = getattr(exc, "response", {}).get("Error", {})
            name = str(error.get("Code") or type(exc).__name__)
            raise aws_error(
                name, str(error.get("Message") or ""), self.name, in_session=in_session
            ) from exc
        except self._botocore_error as exc:
            raise botocore_error(exc, self.name) from exc
        return answer

    def open(self) -> None:
        # Nothing to connect to: the Data API is called per statement. Making the client now
        # reports a missing region or profile at start-up.
        self.client  # noqa: B018

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- connections ---------------------------------------------------------------------

    def db_user(self, access: Access) -> str | None:
        """The ``DbUser`` statements of ``access`` run as (see ``rs_access.py``)."""
        if access.db_role is None:
            return self.settings.db_user
        if self.settings.secret_arn or self.settings.workgroup:
            how = "a Secrets Manager secret" if self.settings.secret_arn else "a workgroup"
            raise EngineError(
                f"cannot run as database user {access.db_role!r} on warehouse {self.name!r}: "
                f"it reaches Redshift through {how}, which fixes the user; Redshift has no "
                "SET ROLE. Grant without db_role, or use a cluster with IAM credentials",
                sqlstate="42501",
                code="permission_denied",
            )
        return access.db_role

    def location(self, db_user: str | None, database: str | None = None) -> dict[str, Any]:
        """The members that say where a Data API call runs and as whom."""
        s = self.settings
        out: dict[str, Any] = {
            "WorkgroupName" if s.workgroup else "ClusterIdentifier": s.identifier,
            "Database": database or s.database,
        }
        if s.secret_arn:
            out["SecretArn"] = s.secret_arn
        elif db_user:
            out["DbUser"] = db_user
        return out

    def connect(self, access: Access = FULL_ACCESS) -> RedshiftConnection:
        return RedshiftConnection(self, access, self.db_user(access))

    # -- catalog ----------------------------------------------------------------------------

    def _pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
        request: dict[str, Any] = dict(kwargs)
        while True:
            answer = self.call(operation, **request)
            yield from answer.get(key) or []
            token = answer.get("NextToken")
            if not token:
                return
            request["NextToken"] = token

    def _scope(self, access: Access, database: str | None) -> dict[str, Any]:
        """Where a catalog call connects (the URL's database) and which database it lists."""
        out = self.location(self.db_user(access))
        if database and database != self.settings.database:
            out["ConnectedDatabase"] = self.settings.database
            out["Database"] = database
        return out

    def list_databases(self, *, access: Access = FULL_ACCESS) -> list[str]:
        names = self._pages("list_databases", "Databases", **self.location(self.db_user(access)))
        return sorted(set(names))

    def list_schemas(
        self, database: str | None, pattern: str | None, *, access: Access = FULL_ACCESS
    ) -> list[str]:
        extra = {"SchemaPattern": pattern} if pattern else {}
        return sorted(
            set(self._pages("list_schemas", "Schemas", **self._scope(access, database), **extra))
        )

    def list_tables(
        self,
        database: str | None,
        schema_pattern: str | None,
        table_pattern: str | None,
        *,
        access: Access = FULL_ACCESS,
    ) -> list[TableInfo]:
        extra: dict[str, str] = {}
        if schema_pattern:
            extra["SchemaPattern"] = schema_pattern
        if table_pattern:
            extra["TablePattern"] = table_pattern
        db = database or self.settings.database
        found = [
            TableInfo(
                name=str(t.get("name", "")),
                schema=str(t.get("schema", "")),
                type=str(t.get("type", "TABLE")),
                database=db,
            )
            for t in self._pages("list_tables", "Tables", **self._scope(access, database), **extra)
        ]
        return sorted(found, key=lambda t: (t.schema, t.name))

    def describe_table(
        self, database: str | None, schema: str, table: str, *, access: Access = FULL_ACCESS
    ) -> list[ColumnMeta]:
        columns = self._pages(
            "describe_table",
            "ColumnList",
            **self._scope(access, database),
            Schema=schema,
            Table=table,
        )
        return [column_meta(c) for c in columns]
