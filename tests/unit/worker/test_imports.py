"""``worker/`` is the runtime layer: services plug their work into it, so it imports none of
them (faces → services → worker → backends; an arrow pointing up would make a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import sqltide.worker

#: Packages above the worker: it may import none of them.
SERVICES_AND_FACES = {"statements", "events", "notify", "pipeline", "api", "client", "demos"}
#: Modules of the package root that are faces or wiring, not backends.
ABOVE = {"runtime", "server", "cli", "cli_bus", "cli_common", "cli_grants", "keys", "grants"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module under sqltide) of every import of a worker module."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:  # relative: from the worker package, level 1 is sqltide.worker itself
                parts = ["sqltide", "worker"][: 3 - node.level]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.append((node.lineno, base))
            if node.module is None or base in ("sqltide",):
                out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def test_worker_imports_no_service_or_face() -> None:
    root = Path(sqltide.worker.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert files
    bad = []
    for path in files:
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] != "sqltide" or len(parts) < 2:
                continue
            if parts[1] in SERVICES_AND_FACES | ABOVE:
                bad.append(f"{path.name}:{line} imports {module}")
    assert not bad, "worker/ must not import upward:\n" + "\n".join(bad)


def test_the_check_sees_a_relative_import_upward(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from ..statements.jobs import StatementJobs\nfrom .. import events\n")
    assert [m for _, m in _imports(sample)] == [
        "sqltide.statements.jobs",
        "sqltide",
        "sqltide.events",
    ]
