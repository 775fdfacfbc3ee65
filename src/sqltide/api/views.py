"""Records as the API shows them (docs/api.md, "The statement description")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..statements.service import StatementView
from ..store import StatementRecord
from .responses import renderable


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """Epoch seconds of an ISO 8601 time; ValueError for anything else (including a time
    that is out of range once its offset is applied, such as 9999-12-31T23:59-14:00)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    except OverflowError as exc:
        raise ValueError(f"{text!r} is out of range") from exc


def _duration_ns(rec: StatementRecord) -> int | None:
    if rec.started_at is None:
        return None
    end = rec.ended_at if rec.ended_at is not None else rec.updated_at
    return max(0, round((end - rec.started_at) * 1e9))


def sub_statement_dict(rec: StatementRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "status": rec.status.value,
        "query_string": rec.query_string,
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
        "started_at": iso(rec.started_at),
        "ended_at": iso(rec.ended_at),
        "duration_ns": _duration_ns(rec),
        "result_rows": rec.result_rows,
        "result_size": rec.result_size,
        "has_result_set": rec.has_result_set,
        "error": rec.error,
    }


def statement_dict(
    rec: StatementRecord,
    subs: tuple[StatementRecord, ...] | None = None,
    retention_seconds: float = 0.0,
) -> dict[str, Any]:
    out = {
        **sub_statement_dict(rec),
        "statement_name": rec.statement_name,
        "query_strings": rec.query_strings,
        "is_batch": rec.is_batch,
        "batch_mode": rec.batch_mode,
        "warehouse": rec.warehouse,
        "parameters": rec.parameters,
        "principal": rec.principal,
        "client_token": rec.client_token,
        "with_event": rec.with_event,
        "session_id": rec.session_id,
        "result_expires_at": (
            iso(rec.ended_at + retention_seconds)
            if rec.ended_at is not None and rec.has_result_set and not rec.result_expired
            else None
        ),
    }
    if subs is not None and rec.is_batch:
        out["sub_statements"] = [sub_statement_dict(s) for s in subs]
    return out


def view_dict(view: StatementView) -> dict[str, Any]:
    rec = view.record
    if rec.parent_id is not None:  # a sub-statement described on its own
        out = {**sub_statement_dict(rec), "batch_id": rec.parent_id}
    else:
        out = statement_dict(rec, view.sub_statements, view.retention_seconds)
    return renderable(out, kind="statement", ident=rec.id)
