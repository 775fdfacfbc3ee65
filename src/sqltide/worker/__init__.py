"""The only place that claims and runs work."""

from __future__ import annotations

from .runner import Worker

__all__ = ["Worker"]
