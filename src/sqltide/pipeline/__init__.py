"""Pipeline files: topics and rules in one declarative file, applied idempotently.

A pipeline file (YAML or JSON; format in ``docs/pipelines.md``) says which topics and rules
should exist. Applying it works like ``kubectl apply`` or ``terraform apply``:

    pipeline = load_pipeline("elt.yaml")          # every problem at once, with its place
    with Remote(url, api_key) as remote:
        the_plan = plan(pipeline, remote)         # compare with what the server has
        print(render_plan(the_plan))              # + create / ~ update / = unchanged / - delete
        result = apply(the_plan, remote)          # topics, then rules, deletes last

:func:`load_pipeline` checks everything it can locally (with the server's own validators for
event patterns, schedules, target inputs and filter policies) and raises one
:class:`PipelineError` listing every problem with its place (``file:line:column`` and the
path, e.g. ``rules.nightly-elt.targets[0].kind``). :func:`plan` adds the checks that need the
server (topics and warehouses a target names). Nothing is applied when there is any problem.
:func:`apply` stops at the first error the server answers and reports what it applied before.

The server never shows secrets (webhook target and subscription ``secret`` come back as
``***``), so a change of a secret alone is not seen as a change.

The package, in the order a file goes through it: :mod:`.problems` (problems and their
places), :mod:`.reading` (YAML and JSON), :mod:`.substitute` (``${VAR}``), :mod:`.model`
(the file's keys and the checked :class:`Pipeline`), :mod:`.checks` (every local check),
:mod:`.loading` (:func:`load_pipeline`), :mod:`.remote` (:class:`Remote`), :mod:`.plans`
(:func:`plan`, :func:`render_plan`, :func:`apply`) and :mod:`.cli` (``sqltide apply``).
"""

from __future__ import annotations

from .cli import cli_apply
from .loading import load_pipeline
from .model import Pipeline
from .plans import Change, Plan, Result, apply, plan, render_plan
from .problems import PipelineError, Problem
from .remote import Remote

__all__ = [
    "Change",
    "Pipeline",
    "PipelineError",
    "Plan",
    "Problem",
    "Remote",
    "Result",
    "apply",
    "cli_apply",
    "load_pipeline",
    "plan",
    "render_plan",
]
