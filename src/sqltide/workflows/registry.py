"""Which workflows this process can run: loaded from modules and files by name.

``sqltide serve --workflows PATH_OR_MODULE`` (repeatable; setting ``SQLTIDE_WORKFLOWS``) hands
its values to :meth:`Registry.load`, which imports each (a dotted module name, a ``.py`` file,
or a folder of them) and collects every function marked by ``@durable_execution``, under its
``__name__`` or the name given by ``@workflow(name=...)``. A module that fails to import is a
:class:`LoadProblem` (which module, the traceback): it is reported, not raised, and its
executions are simply not claimed here. Two different functions under one name are a start-up
error (:class:`~sqltide.errors.ConfigError`).

A handler decorated by the AWS SDK's own ``@durable_execution`` (``aws_durable_execution_sdk_python``,
imports unchanged) is collected too, under its function's name, as a workflow of kind ``aws``:
the job kind invokes it as Lambda would (``sqltide.lambda_durable``) instead of replaying it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ConfigError
from .decorators import workflow_mark

#: A workflow's name appears in URLs (``/v1/workflows/{name}/executions``).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
#: The module of the AWS SDK's ``@durable_execution`` wrapper.
AWS_SDK_EXECUTION = "aws_durable_execution_sdk_python.execution"


def is_aws_handler(obj: Any) -> bool:
    """Whether ``obj`` is a handler wrapped by the AWS SDK's ``@durable_execution`` (the
    wrapper that function makes: it lives in the SDK's module and wraps the user's function)."""
    scope = getattr(obj, "__globals__", None)
    return (
        isinstance(scope, dict)
        and scope.get("__name__") == AWS_SDK_EXECUTION
        and callable(getattr(obj, "__wrapped__", None))
    )


@dataclass(frozen=True)
class Workflow:
    """A loaded workflow: its name, its function and where it was defined."""

    name: str
    fn: Callable[..., Any]
    module: str
    qualname: str
    #: ``sqltide`` (replayed by ``workflows.replay``) or ``aws`` (an unchanged AWS SDK handler,
    #: invoked by ``sqltide.lambda_durable``).
    kind: str = "sqltide"

    @property
    def origin(self) -> str:
        return f"{self.module}:{self.qualname}"


@dataclass(frozen=True)
class LoadProblem:
    """A module or file that could not be loaded, and why."""

    source: str
    module: str | None
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        where = f" (module {self.module})" if self.module and self.module != self.source else ""
        return f"{self.source}{where}: {self.message}"


class Registry:
    """Workflows by name (thread-safe to read once loaded)."""

    def __init__(self) -> None:
        self._workflows: dict[str, Workflow] = {}

    # -- reading -------------------------------------------------------------------------------
    def get(self, name: str) -> Workflow | None:
        return self._workflows.get(name)

    def names(self) -> list[str]:
        return sorted(self._workflows)

    def __contains__(self, name: object) -> bool:
        return name in self._workflows

    def __len__(self) -> int:
        return len(self._workflows)

    # -- loading -------------------------------------------------------------------------------
    def add(self, fn: Callable[..., Any], name: str | None = None) -> Workflow:
        """Register ``fn`` under ``name`` (its mark's name, else its ``__name__``)."""
        mark = workflow_mark(fn)
        chosen: str = name or (mark.name if mark else None) or getattr(fn, "__name__", "") or ""
        if not NAME.match(chosen):
            raise ConfigError(
                f"{chosen!r} cannot name a workflow: use letters, digits, '_', '.', '-' "
                "(at most 128, starting with a letter or digit)",
                details={"workflow": chosen},
            )
        wf = Workflow(
            chosen,
            fn,
            getattr(fn, "__module__", "?") or "?",
            getattr(fn, "__qualname__", repr(fn)),
            "aws" if is_aws_handler(fn) else "sqltide",
        )
        existing = self._workflows.get(chosen)
        if existing is not None and existing.fn is not fn:
            raise ConfigError(
                f"two workflows are named {chosen!r}: {existing.origin} and {wf.origin}; rename "
                "one with @workflow(name=...)",
                details={"workflow": chosen, "origins": [existing.origin, wf.origin]},
            )
        self._workflows[chosen] = wf
        return wf

    def add_module(self, module: ModuleType) -> list[Workflow]:
        """Register every workflow function found in ``module``'s namespace."""
        found: list[Workflow] = []
        seen: set[int] = set()
        for value in list(vars(module).values()):
            if id(value) in seen or not callable(value):
                continue
            if workflow_mark(value) is None and not is_aws_handler(value):
                continue
            seen.add(id(value))
            found.append(self.add(value))
        return found

    def load(self, sources: Iterable[str]) -> list[LoadProblem]:
        """Import each source (dotted module, ``.py`` file, or folder of them) and register
        its workflows; returns the sources that failed to import, without raising.

        Raises ConfigError when two different functions claim one workflow name.
        """
        problems: list[LoadProblem] = []
        for raw in sources:
            source = raw.strip()
            if not source:
                continue
            for module_name, loader in _loaders(source):
                try:
                    module = loader()
                except (Exception, SystemExit) as exc:
                    problems.append(
                        LoadProblem(
                            source,
                            module_name,
                            f"{type(exc).__name__}: {exc}",
                            traceback.format_exc(),
                        )
                    )
                    continue
                self.add_module(module)
        return problems


def _loaders(source: str) -> list[tuple[str | None, Callable[[], ModuleType]]]:
    """What to import for ``source``: (module name, loader) pairs."""
    path = Path(source).expanduser()
    looks_like_path = source.endswith(".py") or "/" in source or "\\" in source or path.is_dir()
    if not looks_like_path:
        return [(source, lambda: importlib.import_module(source))]
    if path.is_dir():
        files = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        if not files:
            return [(None, _missing(f"the folder {path} holds no .py file"))]
        return [(_module_name(f), _file_loader(f)) for f in files]
    if not path.is_file():
        return [(None, _missing(f"no such file: {path}"))]
    return [(_module_name(path), _file_loader(path))]


def _missing(message: str) -> Callable[[], ModuleType]:
    def fail() -> ModuleType:
        raise FileNotFoundError(message)

    return fail


def _module_name(path: Path) -> str:
    """A module name of its own for a file, so two ``handler.py`` never clash."""
    digest = hashlib.sha1(str(path.resolve()).encode(), usedforsecurity=False).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    return f"sqltide_workflows_{stem}_{digest}"


def _file_loader(path: Path) -> Callable[[], ModuleType]:
    def load() -> ModuleType:
        name = _module_name(path)
        if name in sys.modules:
            return sys.modules[name]
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            # Its neighbours import as they do when the file runs as a script.
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module

    return load
