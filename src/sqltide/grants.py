"""Warehouse grants: which principal may use which warehouse, and how.

A principal may use a warehouse when

1. the caller's API key is an admin key: every warehouse, ``read_write``, as the warehouse
   URL's own user (grants are not consulted);
2. it holds a grant for the warehouse (``sqltide grants add``, ``PUT /v1/grants/...``): with
   the grant's access (``read_write`` or ``read_only``) and database role;
3. the operator lists the warehouse in ``SQLTIDE_DEFAULT_GRANTS`` (every principal, no role).

Otherwise the warehouse answers exactly as one that does not exist (404 ``not_found``, the
message naming only the warehouses the caller may use), so a principal learns nothing about
warehouses it has no business with. Grants are read from the store on every request, so a
revoked grant stops new statements at once; statements already accepted keep the access they
recorded (``StatementRecord.access``: cancel them if that matters).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection

from . import errors
from .store import GrantRecord, Store

READ_WRITE = "read_write"
READ_ONLY = "read_only"
ACCESS_LEVELS = (READ_WRITE, READ_ONLY)
# A PostgreSQL role name as sqltide accepts it: plain enough to pass through a URL's user
# part and a quoted identifier unchanged (63 bytes is PostgreSQL's limit on names).
_DB_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.-]{0,62}$")


def parse_default_grants(text: str) -> dict[str, str]:
    """``SQLTIDE_DEFAULT_GRANTS`` (``default,lake:read_only``) as ``{warehouse: access}``."""
    out: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, access = part.partition(":")
        name, access = name.strip(), (access.strip() or READ_WRITE)
        if not name or access not in ACCESS_LEVELS:
            raise ValueError(
                f"{part!r} is not a default grant: write a warehouse name, optionally followed "
                f"by :read_only or :read_write (e.g. default,lake:read_only)"
            )
        out[name] = access
    return out


def check_grant(access: str, db_role: str | None) -> None:
    """Refuse an access level or role name that is not valid (``UnprocessableEntity``)."""
    if access not in ACCESS_LEVELS:
        raise errors.UnprocessableEntity(
            f"access must be {' or '.join(ACCESS_LEVELS)}, not {access!r}",
            details={"access": access},
        )
    if db_role is not None and not _DB_ROLE.match(db_role):
        raise errors.UnprocessableEntity(
            "db_role must be a plain PostgreSQL role name: a letter or _, then letters, digits "
            "and _ $ . - (at most 63 characters)",
            details={"db_role": db_role},
        )


class Grants:
    """Answers "may this principal use this warehouse, and how?" for the services."""

    def __init__(
        self,
        store: Store,
        warehouses: Collection[str],
        defaults: str = "",
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.warehouses = list(warehouses)
        self.defaults = parse_default_grants(defaults)
        unknown = sorted(set(self.defaults) - set(self.warehouses))
        if unknown:
            raise errors.ConfigError(
                f"SQLTIDE_DEFAULT_GRANTS names unknown warehouse(s) {', '.join(unknown)}; "
                f"configured: {', '.join(self.warehouses)}"
            )
        self.clock = clock

    def lookup(self, principal: str, warehouse: str, *, is_admin: bool) -> GrantRecord | None:
        """What ``principal`` may do on ``warehouse`` (None: nothing, or no such warehouse)."""
        if warehouse not in self.warehouses:
            return None
        if is_admin:
            return GrantRecord(principal, warehouse, READ_WRITE, 0.0)
        grant = self.store.get_grant(principal, warehouse)
        if grant is not None:
            return grant
        access = self.defaults.get(warehouse)
        return None if access is None else GrantRecord(principal, warehouse, access, 0.0)

    def require(self, principal: str, warehouse: str, *, is_admin: bool) -> GrantRecord:
        """:meth:`lookup`, raising the same 404 for an ungranted and an unknown warehouse."""
        grant = self.lookup(principal, warehouse, is_admin=is_admin)
        if grant is None:
            raise self.not_found(principal, warehouse, is_admin=is_admin)
        return grant

    def visible(self, principal: str, *, is_admin: bool) -> list[GrantRecord]:
        """The warehouses ``principal`` may use, in configuration order."""
        if is_admin:
            return [GrantRecord(principal, w, READ_WRITE, 0.0) for w in self.warehouses]
        own = {g.warehouse: g for g in self.store.list_grants(principal)}
        out = []
        for name in self.warehouses:
            if name in own:
                out.append(own[name])
            elif name in self.defaults:
                out.append(GrantRecord(principal, name, self.defaults[name], 0.0))
        return out

    def not_found(self, principal: str, warehouse: str, *, is_admin: bool) -> errors.NotFound:
        names = [g.warehouse for g in self.visible(principal, is_admin=is_admin)]
        yours = ", ".join(names) if names else "none yet (an operator grants them)"
        return errors.NotFound(
            f"no warehouse named {warehouse!r} that you may use; yours: {yours}",
            details={"warehouse": warehouse},
        )

    def principal_is_admin(self, principal: str) -> bool:
        """Whether ``principal`` holds an active admin key (for work done without a key at
        hand: a rule's SQL target runs as its owner's principal)."""
        return self.store.has_admin_key(principal)

    def grant(
        self, principal: str, warehouse: str, access: str = READ_WRITE, db_role: str | None = None
    ) -> tuple[GrantRecord, bool]:
        """Record (or change) a grant of a configured warehouse; ``(grant, created)``."""
        from .keys import check_principal  # keys imports this module

        check_principal(principal)
        check_grant(access, db_role)
        if warehouse not in self.warehouses:
            raise errors.NotFound(
                f"no warehouse named {warehouse!r}; configured: {', '.join(self.warehouses)}",
                details={"warehouse": warehouse},
            )
        record = GrantRecord(principal, warehouse, access, self.clock(), db_role)
        created = self.store.upsert_grant(record)
        stored = self.store.get_grant(principal, warehouse)
        return (stored or record), created
