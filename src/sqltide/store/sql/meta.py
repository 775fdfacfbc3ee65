"""The store's meta values, written once for both dialects."""

from __future__ import annotations

from ..interfaces.meta import MetaStore
from .base import SqlHooks, Tx


class MetaMixin(SqlHooks, MetaStore):
    """Meta values (:class:`~sqltide.store.interfaces.meta.MetaStore`); a store adds its
    connections, migrations and closing."""

    def get_or_set_meta(self, key: str, value: str) -> str:
        def run(tx: Tx) -> str:
            tx.execute(
                "INSERT INTO sqltide_meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (key, value),
            )
            row = tx.one("SELECT value FROM sqltide_meta WHERE key = ?", (key,))
            assert row is not None
            return str(row["value"])

        return self._tx("get_or_set_meta", run)
