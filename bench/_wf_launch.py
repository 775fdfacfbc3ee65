"""``python -m _wf_launch serve ...``: ``sqltide serve`` with its store calls counted.

Used by ``bench/workflows.py`` to count the store transactions of an idle worker on SQLite,
where no server keeps statistics. It wraps the store's two entry points (``_tx``: one
transaction; ``_rows``: one read) with a counter, in all and by the call's name, and writes
the counts as JSON to the file named by ``SQLTIDE_BENCH_COUNTS`` every half second, with the
CPU time of the process's threads by name. Nothing else of the process changes.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import Any


def _install(path: str) -> None:
    from sqltide.store.sql import SqlStore

    counts: dict[str, Any] = {"tx": 0, "rows": 0, "by_name": {}}
    by_name: dict[str, int] = counts["by_name"]
    lock = threading.Lock()

    def counted(kind: str, fn: Any) -> Any:
        def wrapper(self: Any, name: str, *args: Any, **kw: Any) -> Any:
            with lock:
                counts[kind] += 1
                by_name[name] = by_name.get(name, 0) + 1
            return fn(self, name, *args, **kw)

        return wrapper

    # The concrete stores define both; wrap them where they are defined.
    from sqltide.store.postgres import PostgresStore
    from sqltide.store.sqlite import SQLiteStore

    for cls in (SQLiteStore, PostgresStore):
        cls._tx = counted("tx", cls._tx)  # type: ignore[method-assign]
        cls._rows = counted("rows", cls._rows)  # type: ignore[method-assign]
    assert SqlStore  # the mixins call self._tx / self._rows: the wrapped ones

    tick = os.sysconf("SC_CLK_TCK")

    def thread_cpu() -> dict[str, float]:
        """CPU seconds of this process's threads, summed by name (``sqltide-workflows_3``
        counts as ``sqltide-workflows``), from ``/proc``."""
        out: dict[str, float] = {}
        for t in threading.enumerate():
            try:
                with open(f"/proc/self/task/{t.native_id}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            group = re.sub(r"[_-]\d+$", "", t.name)
            out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        return out

    def dump() -> None:
        while True:
            cpu = thread_cpu()
            with lock:
                text = json.dumps({**counts, "threads": cpu, "at": time.time()})
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, path)
            time.sleep(0.5)

    threading.Thread(target=dump, name="bench-counts", daemon=True).start()


if __name__ == "__main__":
    target = os.environ.get("SQLTIDE_BENCH_COUNTS")
    if target:
        _install(target)
    from sqltide.cli import main

    main()
