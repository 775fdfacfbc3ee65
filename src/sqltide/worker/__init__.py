"""The only place that claims and runs work: one loop, into which services plug job kinds.

It imports no service (statements, events, notify, pipeline, api): the services import it.
"""

from __future__ import annotations

from .loop import JobKind, PeriodicKind, WorkLoop, new_owner

__all__ = ["JobKind", "PeriodicKind", "WorkLoop", "new_owner"]
