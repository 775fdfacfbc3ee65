"""Loading workflows from modules, files and folders; decorators; the AWS module layout."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqltide.errors import ConfigError
from sqltide.workflows import Registry, durable_execution, workflow
from sqltide.workflows.decorators import workflow_mark

GOOD = """
from sqltide.workflows import durable_execution, workflow, DurableContext

@durable_execution
def nightly(event, context: DurableContext):
    return {"ran": event}

@workflow(name="refresh-mart")
@durable_execution(boto3_client=object(), plugins=[])
def refresh(event, context):
    return "refreshed"

def helper(event, context):
    return None
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(autouse=True)
def _forget_loaded_modules() -> Iterator[None]:
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]
    sys.path[:] = path


def test_a_file_loads_its_marked_functions_under_their_names(tmp_path: Path) -> None:
    registry = Registry()
    assert registry.load([str(write(tmp_path, "flows.py", GOOD))]) == []
    assert registry.names() == ["nightly", "refresh-mart"]
    nightly = registry.get("nightly")
    assert nightly is not None and nightly.fn("x", None) == {"ran": "x"}  # still callable
    assert nightly.qualname == "nightly" and nightly.module.startswith("sqltide_workflows_flows_")
    assert "helper" not in registry and registry.get("refresh") is None
    # loading it again (the same file) is no conflict
    assert registry.load([str(tmp_path / "flows.py")]) == [] and len(registry) == 2


def test_modules_by_dotted_name_and_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "acme_flows"
    pkg.mkdir()
    write(pkg, "__init__.py", "")
    write(pkg, "billing.py", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    assert registry.load(["acme_flows.billing", " "]) == []
    assert registry.get("nightly").module == "acme_flows.billing"  # type: ignore[union-attr]
    folder = tmp_path / "more"
    folder.mkdir()
    write(
        folder,
        "a.py",
        "from sqltide.workflows import durable_execution\n"
        "@durable_execution\ndef alpha(e, c):\n    return 1\n",
    )
    write(
        folder,
        "b.py",
        "import helper_mod\nfrom sqltide.workflows import durable_execution\n"
        "@durable_execution\ndef beta(e, c):\n    return helper_mod.VALUE\n",
    )
    write(folder, "helper_mod.py", "VALUE = 2\n")  # a neighbour imports as in a script
    write(folder, "_private.py", "raise RuntimeError('never imported')\n")
    other = Registry()
    assert other.load([str(folder)]) == []
    assert other.names() == ["alpha", "beta"]
    assert other.get("beta").fn(None, None) == 2  # type: ignore[union-attr]


def test_modules_that_fail_to_import_are_reported_not_raised(tmp_path: Path) -> None:
    broken = write(tmp_path, "broken.py", "import os\nraise RuntimeError('no credentials')\n")
    syntax = write(tmp_path, "syntax.py", "def oops(:\n")
    good = write(tmp_path, "good.py", GOOD)
    registry = Registry()
    problems = registry.load(
        [str(broken), str(syntax), "no_such_module_xyz", str(tmp_path / "missing.py"), str(good)]
    )
    assert registry.names() == ["nightly", "refresh-mart"]  # the good one still loads
    by_source = {p.source: p for p in problems}
    assert set(by_source) == {
        str(broken),
        str(syntax),
        "no_such_module_xyz",
        str(tmp_path / "missing.py"),
    }
    assert by_source[str(broken)].message == "RuntimeError: no credentials"
    assert "broken.py" in by_source[str(broken)].traceback
    assert by_source[str(broken)].module.startswith("sqltide_workflows_broken_")  # type: ignore[union-attr]
    assert by_source[str(syntax)].message.startswith("SyntaxError")
    assert by_source["no_such_module_xyz"].message.startswith("ModuleNotFoundError")
    assert "no such file" in by_source[str(tmp_path / "missing.py")].message
    assert "broken.py" in str(by_source[str(broken)])
    assert not [m for m in sys.modules if m.startswith("sqltide_workflows_broken_")]


def test_two_workflows_with_one_name_are_refused(tmp_path: Path) -> None:
    one = write(tmp_path, "one.py", GOOD)
    sub = tmp_path / "sub"
    sub.mkdir()
    two = write(sub, "two.py", GOOD.replace('"refresh-mart"', '"other-name"'))
    registry = Registry()
    assert registry.load([str(one)]) == []
    with pytest.raises(ConfigError) as caught:
        registry.load([str(two)])
    assert "two workflows are named 'nightly'" in caught.value.message
    assert len(caught.value.details["origins"]) == 2


def test_workflow_names_must_fit_in_a_url() -> None:
    @workflow(name="has space")
    def flow(event: object, context: object) -> None:
        return None

    with pytest.raises(ConfigError, match="cannot name a workflow"):
        Registry().add(flow)
    with pytest.raises(TypeError):
        workflow(name="  ")


def test_durable_execution_marks_and_keeps_the_function() -> None:
    def plain(event: object, context: object) -> str:
        return "called"

    assert durable_execution(plain) is plain
    assert workflow_mark(plain).name == "plain"  # type: ignore[union-attr]
    assert plain(None, None) == "called"
    renamed = workflow(name="renamed")(durable_execution(lambda e, c: 1))
    assert workflow_mark(renamed).name == "renamed"  # type: ignore[union-attr]
    # in either order
    first = durable_execution()(workflow(name="either")(lambda e, c: 2))
    assert workflow_mark(first).name == "either"  # type: ignore[union-attr]


AWS_IMPORTS = """
from sqltide.workflows import (
    BatchResult, CallbackError, ChildContextError, DurableContext, DurableExecutionsError,
    DurableOperationError, ExecutionError, InvocationError, InvokeError, ParallelBranch,
    StepContext, StepError, ValidationError, WaitForConditionError, WithRetryConfig,
    durable_execution, durable_parallel_branch, durable_step, durable_wait_for_callback,
    durable_with_child_context, with_retry, BatchCompletionError, BatchItemStatus,
    CompletionDecision, CompletionItemStatus, CompletionOutcome, CompletionStatus,
    complete_batch, continue_batch, SerDesError, RetryableSerDesError, __version__,
)
from sqltide.workflows.config import (
    CallbackConfig, ChildConfig, CompletionConfig, CompletionStatus, Duration, InvokeConfig,
    JitterStrategy, MapConfig, NestingType, ParallelBranch, ParallelConfig, StepConfig,
    StepSemantics, WaitForCallbackConfig,
)
from sqltide.workflows.context import (
    DurableContext, durable_step, durable_with_child_context, durable_parallel_branch,
    durable_wait_for_callback, StepContext,
)
from sqltide.workflows.execution import durable_execution
from sqltide.workflows.exceptions import (
    CallbackExternalError, CallbackSubmitterError, CallbackTimeoutError,
    NonDeterministicExecutionError, StepInterruptedError, SuspendExecution, TimedSuspendExecution,
)
from sqltide.workflows.retries import (
    LinearRetryStrategyConfig, RetryDecision, RetryPresets, RetryStrategyConfig,
    create_linear_retry_strategy, create_retry_strategy,
)
from sqltide.workflows.serdes import (
    ExtendedTypeSerDes, JsonSerDes, PassThroughSerDes, SerDes, SerDesContext,
)
from sqltide.workflows.types import (
    BatchResult, StepContext, WaitForCallbackContext, WaitForConditionCheckContext,
)
from sqltide.workflows.waits import (
    WaitForConditionCheckContext, WaitForConditionConfig, WaitForConditionDecision,
    WaitStrategyConfig, create_wait_strategy,
)
"""


def test_the_aws_sdk_import_paths_exist() -> None:
    exec(compile(AWS_IMPORTS, "<aws imports>", "exec"), {})
    errors = importlib.import_module("sqltide.workflows.exceptions")
    assert not issubclass(errors.SuspendExecution, Exception)
    assert issubclass(errors.StepError, errors.DurableOperationError)
    assert issubclass(errors.StepInterruptedError, errors.InvocationError)
