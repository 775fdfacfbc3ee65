"""Following a pipeline's hand-offs through the API, to print each as it happens.

A pipeline run is a chain of records: a ``Scheduled Event``, the delivery that submitted the
statement, the statement's start and end, its status event, the delivery to the topic, the
topic's delivery to each subscriber. :class:`HandoffWatcher` polls the event archive, the
deliveries and the statements, and returns each step once, with the time its record gives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..client import Client
from ..client.models import Statement

#: The order of a run's steps, for steps whose records give the same time.
ORDER = ("schedule", "rule", "statement", "event", "topic", "retry", "dead", "mail")


@dataclass(frozen=True)
class Handoff:
    """One step: when it happened (by its record), what kind and what it says."""

    at: datetime
    kind: str  # schedule | event | rule | statement | topic | retry | dead | mail
    text: str
    failed: bool = False


def sort_key(h: Handoff) -> tuple[datetime, int]:
    """By time; steps of the same moment in the order a run makes them."""
    return (h.at, ORDER.index(h.kind))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class HandoffWatcher:
    """The steps of runs started after ``since``, each returned once by :meth:`poll`."""

    def __init__(self, client: Client, *, since: datetime, statement_prefix: str):
        self.client = client
        self.since = since
        self.statement_prefix = statement_prefix
        self._seen: set[tuple[str, ...]] = set()
        self.statements: dict[str, Statement] = {}
        self.deliveries: dict[str, dict[str, Any]] = {}

    def poll(self) -> list[Handoff]:
        # Deliveries first: a statement a delivery submitted is then in the list read after.
        deliveries = self.client.deliveries(max_results=100)
        statements = [
            st
            for st in self.client.list(name_prefix=self.statement_prefix, max_results=20)
            if st.created_at >= self.since
        ]
        events = list(self.client.events(start=self.since))
        self._note_deliveries(deliveries)
        found = self._from_statements(statements)
        found += self._from_events(events)
        found += self._from_deliveries(deliveries)
        return sorted(found, key=sort_key)

    def _once(self, *key: str) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _from_events(self, events: Iterable[dict[str, Any]]) -> list[Handoff]:
        out = []
        for e in events:
            if not self._once("event", e["id"]):
                continue
            at = parse_time(e.get("time")) or datetime.now(UTC)
            if e.get("detail-type") == "Scheduled Event":
                rule = e["resources"][0].rsplit("/", 1)[-1] if e.get("resources") else "?"
                out.append(Handoff(at, "schedule", f"rule {rule} fired: Scheduled Event {e['id']}"))
            elif e.get("source") == "aws.redshift-data":
                d = e.get("detail", {})
                st = self.statements.get(d.get("statementId", ""))
                at = st.ended_at if st is not None and st.ended_at else at
                out.append(
                    Handoff(
                        at,
                        "event",
                        f"{e['detail-type']}: state {d.get('state')}, rows {d.get('rows')}, "
                        f"principal {d.get('principal')}",
                    )
                )
            else:
                out.append(Handoff(at, "event", f"{e.get('detail-type')} from {e.get('source')}"))
        return out

    def _from_statements(self, statements: Iterable[Statement]) -> list[Handoff]:
        out = []
        for st in statements:
            self.statements[st.id] = st
            # Submitted by a rule's delivery (its id is the client token): that hand-off is
            # the statement's record, timed by its creation, so it always comes before the
            # statement's start, however the polls fall.
            d = self.deliveries.get(st.client_token or "")
            if d is not None and self._once("submitted", st.id):
                out.append(
                    Handoff(
                        st.created_at,
                        "rule",
                        f"rule {d['rule']} -> {d['target']}: statement {st.id} submitted",
                    )
                )
            if st.started_at and self._once("started", st.id):
                steps = len(st.query_strings or ()) or 1
                what = f"a batch of {steps} statements" if st.is_batch else "one statement"
                out.append(
                    Handoff(
                        st.started_at,
                        "statement",
                        f"{st.statement_name} {st.id} STARTED on warehouse "
                        f"{st.warehouse or 'default'} ({what}, one transaction)",
                    )
                )
            if st.is_terminal and self._once("ended", st.id):
                seconds = (st.duration_ns or 0) / 1e9
                detail = (
                    f"{st.result_rows:,} rows" if st.result_rows is not None else "no row count"
                )
                if st.error:
                    detail = f"{st.error.get('code')}: {st.error.get('message')}"
                out.append(
                    Handoff(
                        st.ended_at or st.updated_at,
                        "statement",
                        f"{st.statement_name} {st.status} in {seconds:.2f}s: {detail}",
                        failed=st.status != "FINISHED",
                    )
                )
        return out

    def _note_deliveries(self, deliveries: Iterable[dict[str, Any]]) -> None:
        for d in deliveries:
            created = parse_time(d.get("created_at"))
            if created is not None and created >= self.since:
                self.deliveries[d["id"]] = d

    def _from_deliveries(self, deliveries: Iterable[dict[str, Any]]) -> list[Handoff]:
        out = []
        submitted = {st.client_token for st in self.statements.values()}
        for d in deliveries:
            if d["id"] not in self.deliveries:
                continue  # from before this run
            created = parse_time(d["created_at"])
            assert created is not None
            where = f"rule {d['rule']} -> {d['target']}"
            if d["id"] in submitted:
                pass  # told with its statement
            elif d["status"] == "DELIVERED" and self._once("delivered", d["id"]):
                at = parse_time(d.get("delivered_at")) or created
                out.append(Handoff(at, _kind(d), f"{where}: {self._delivered(d)}"))
            elif d["status"] == "DEAD" and self._once("dead", d["id"]):
                at = parse_time(d.get("updated_at")) or created
                error = d.get("last_error") or {}
                text = f"{where}: dead letter after {d['attempts']} attempts: {error}"
                out.append(Handoff(at, "dead", text, failed=True))
            elif (
                d["status"] == "PENDING"
                and d.get("last_error")
                and self._once("retry", d["id"], str(d["attempts"]))
            ):
                at = parse_time(d.get("updated_at")) or created
                text = f"{where}: attempt {d['attempts']} failed, will retry: {d['last_error']}"
                out.append(Handoff(at, "retry", text, failed=True))
        return out

    def _delivered(self, d: dict[str, Any]) -> str:
        target = d["target"]
        payload = d.get("payload")
        if target.count("/") == 2:  # a topic's delivery to one subscription
            return "e-mail handed to the SMTP server"
        if isinstance(payload, dict) and "subject" in payload:
            return f"message published: {payload['subject']!r}"
        return "delivered"


def _kind(d: dict[str, Any]) -> str:
    return "topic" if d["target"].count("/") == 2 else "rule"
