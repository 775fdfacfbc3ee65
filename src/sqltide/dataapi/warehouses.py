"""The warehouse map: which sqltide warehouse a ``ClusterIdentifier`` or ``WorkgroupName`` names,
and which database names it answers to.

``SQLTIDE_DATA_API_WAREHOUSES`` (a JSON object) maps names to warehouses:

- ``{"analytics": "pg"}``: cluster identifier or workgroup name ``analytics`` is warehouse ``pg``;
- ``{"analytics/sales": "pg_sales"}``: database ``sales`` of ``analytics`` is warehouse
  ``pg_sales`` (a second warehouse URL on the same server, another ``dbname``): how a caller
  picks one of several databases of a PostgreSQL server, each with its own grants.

Every warehouse is reachable under its own name as well (``default`` is a cluster identifier
and a workgroup name), unless the map gives that name to another warehouse. A name must fit
the model's patterns to be sent at all (lower case letters, digits and hyphens): a warehouse
named otherwise needs an entry in the map.

The ``Database`` a caller gives must be one the warehouse holds: its URL's database (the file
stem of a DuckDB file, ``memory`` for ``duckdb:///:memory:``, the ``dbname`` of a PostgreSQL
URL, the database of a ``redshift-data://`` URL), or, for a warehouse that holds a single
database (DuckDB), ``SQLTIDE_DATA_API_DEFAULT_DATABASE`` (``dev``, Redshift's default).
No ``Database`` means the warehouse's own.

An unknown name answers as AWS answers a cluster or workgroup it does not know in the region:
``ValidationException`` "Redshift endpoint doesn't exist in this region." (the Data API checks
the endpoint as part of the request's validation, before any statement exists, so it is not a
``ResourceNotFoundException``; that one is for statement and session ids). A warehouse the
caller is not granted answers exactly the same, so its existence is not leaked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..engines import Engine
from ..errors import ConfigError, DataApiError
from ..grants import Grants
from ..store import GrantRecord
from .shapes import CLUSTER_IDENTIFIER, WORKGROUP_NAME

#: AWS's words for a cluster or workgroup it does not know.
NO_ENDPOINT = "Redshift endpoint doesn't exist in this region."
#: Engines whose warehouse holds exactly one database (any other name is refused).
_SINGLE_DATABASE = frozenset({"duckdb"})


@dataclass(frozen=True, slots=True)
class Target:
    """Where a Data API call runs: the warehouse, and the names the caller used."""

    warehouse: str
    #: The database as the caller named it, or the warehouse's own when it named none.
    database: str
    cluster: str | None = None
    workgroup: str | None = None
    grant: GrantRecord | None = None


def validation(message: str) -> DataApiError:
    return DataApiError(message, details={"aws_type": "ValidationException"})


def database_of(engine: Engine) -> str:
    """The database a warehouse's URL names (what a caller's ``Database`` must match)."""
    if engine.scheme == "duckdb":
        path = str(getattr(engine, "path", "") or "")
        if not path or path == ":memory:":
            return "memory"
        return PurePosixPath(path).stem
    parts = urlsplit(engine.url)
    name = unquote(parts.path.lstrip("/"))
    if not name:
        query = parse_qs(parts.query)
        name = (query.get("dbname") or [""])[0] or unquote(parts.username or "")
    return name


class WarehouseMap:
    """Names of the Data API → sqltide warehouses (built once per app, from the settings)."""

    def __init__(
        self,
        engines: Mapping[str, Engine],
        mapping: Mapping[str, str],
        default_database: str = "dev",
    ):
        self.engines = dict(engines)
        self.default_database = default_database
        self._names: dict[str, str] = {name: name for name in self.engines}
        self._by_database: dict[tuple[str, str], str] = {}
        for key, warehouse in mapping.items():
            if warehouse not in self.engines:
                raise ConfigError(
                    f"SQLTIDE_DATA_API_WAREHOUSES maps {key!r} to unknown warehouse "
                    f"{warehouse!r}; configured: {', '.join(self.engines)}"
                )
            name, slash, database = key.partition("/")
            if not _addressable(name):
                raise ConfigError(
                    f"SQLTIDE_DATA_API_WAREHOUSES: {name!r} can be neither a cluster identifier "
                    "nor a workgroup name (lower case letters, digits and hyphens, starting "
                    "with a letter)"
                )
            if slash:
                if not database:
                    raise ConfigError(f"SQLTIDE_DATA_API_WAREHOUSES: {key!r} names no database")
                self._by_database[(name, database)] = warehouse
            else:
                self._names[name] = warehouse
        self._databases = {name: database_of(engine) for name, engine in self.engines.items()}

    @classmethod
    def from_runtime(cls, runtime: Any) -> WarehouseMap:
        settings = runtime.settings
        return cls(
            runtime.engines, settings.data_api_warehouses, settings.data_api_default_database
        )

    def databases(self, warehouse: str) -> list[str]:
        """The database names ``warehouse`` answers to."""
        own = self._databases[warehouse]
        names = [own]
        if self.engines[warehouse].scheme in _SINGLE_DATABASE and self.default_database != own:
            names.append(self.default_database)
        return names

    def own_database(self, warehouse: str) -> str:
        return self._databases[warehouse]

    def names_for(self, warehouse: str) -> list[str]:
        """The cluster/workgroup names that reach ``warehouse`` (for messages and listings)."""
        return sorted(
            {n for n, w in self._names.items() if w == warehouse}
            | {n for (n, _), w in self._by_database.items() if w == warehouse}
        )

    def lookup(self, name: str, database: str | None) -> str | None:
        """The warehouse a cluster/workgroup ``name`` (with the caller's ``database``) names;
        None when nothing by that name exists."""
        if database is not None and (name, database) in self._by_database:
            return self._by_database[(name, database)]
        return self._names.get(name)

    def per_database(self, name: str) -> dict[str, str]:
        """``{database: warehouse}`` of the ``"name/database"`` entries for ``name``."""
        return {d: w for (n, d), w in self._by_database.items() if n == name}

    def check_database(self, name: str, warehouse: str, database: str | None) -> str:
        """The database a call on ``warehouse`` (reached as ``name``) runs in; raises
        ``ValidationException`` for one the warehouse does not hold."""
        if database is None or (name, database) in self._by_database:
            return database or self._databases[warehouse]
        accepted = self.databases(warehouse)
        if database not in accepted:
            raise validation(
                f"Database {database!r} does not exist on {name!r} (sqltide warehouse "
                f"{warehouse!r} holds {', '.join(repr(a) for a in accepted)}). To reach another "
                "database of the same server, configure a warehouse for it and map it in "
                f'SQLTIDE_DATA_API_WAREHOUSES as {{"{name}/{database}": "<warehouse>"}}'
            )
        return database


def _addressable(name: str) -> bool:
    assert CLUSTER_IDENTIFIER._regex is not None and WORKGROUP_NAME._regex is not None
    return bool(CLUSTER_IDENTIFIER._regex.fullmatch(name) or WORKGROUP_NAME._regex.fullmatch(name))


def resolve(
    wmap: WarehouseMap,
    grants: Grants,
    principal: str,
    *,
    is_admin: bool,
    cluster: str | None,
    workgroup: str | None,
    database: str | None,
) -> Target:
    """The target of a call naming ``cluster`` xor ``workgroup`` (blocking: it may read the
    caller's grant from the store; call it off the loop, or via ``api.calls.read``).

    Raises ``ValidationException`` for both or neither name, an unknown name, a name the
    caller is not granted, or a database the warehouse does not hold.
    """
    if cluster is not None and workgroup is not None:
        raise validation(
            "ClusterIdentifier and WorkgroupName cannot both be specified; give one of them."
        )
    name = cluster if cluster is not None else workgroup
    if name is None:
        # AWS's own words (as boto/boto3#3336 quotes them).
        raise validation("Either ClusterIdentifier or WorkgroupName needs to be specified.")
    warehouse = wmap.lookup(name, database)
    grant = None
    if warehouse is not None:
        grant = grants.lookup(principal, warehouse, is_admin=is_admin)
    if warehouse is None or grant is None:
        # A name whose databases are mapped one by one: say which of them the caller may use.
        granted = [
            db
            for db, wh in sorted(wmap.per_database(name).items())
            if grants.lookup(principal, wh, is_admin=is_admin) is not None
        ]
        if granted:
            raise validation(
                f"Database {database!r} does not exist on {name!r}; its databases: "
                f"{', '.join(granted)}"
                if database is not None
                else f"Database is required for {name!r}; its databases: {', '.join(granted)}"
            )
        raise validation(NO_ENDPOINT)
    return Target(
        warehouse, wmap.check_database(name, warehouse, database), cluster, workgroup, grant
    )


def warehouse_map(runtime: Any) -> WarehouseMap:
    """The runtime's warehouse map, built from its settings on first use and kept."""
    wmap = runtime.__dict__.get("_data_api_warehouses")
    if wmap is None:
        wmap = runtime.__dict__["_data_api_warehouses"] = WarehouseMap.from_runtime(runtime)
    return wmap  # type: ignore[no-any-return]
