"""Digests per route after a successful publish: what is new, reopened or newly past its SLA, sent once.

`notify.outbox` in the warehouse is the record of what was to be sent and what was: one row per change
(a history row that opened or reopened an exception; an open period of an exception that went past its
due time), queued set-based from the published tables. Each run sends one digest per route of its pending
rows, to the route's destination (routing.yml `notifications`), and marks them sent; a route whose delivery
fails keeps its rows pending with the error, and the next run retries them. More than `max_lines_per_route`
pending rows on one route are sent as one systemic alert with the counts instead of a line each. A run is
never failed by a notification: the errors are in the asset's metadata and the run summary.

Delivery happens with no connection to the warehouse open (a webhook may take seconds to answer): the
outbox is read, the connection closed, the digests sent, then the results written in one transaction.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from dashboard.money import format_amount
from orchestration.routing import Destination, Notifications

WEBHOOK_TIMEOUT_SECONDS = 10

OUTBOX_DDL = """
create schema if not exists notify;
create table if not exists notify.outbox (
    notification_key varchar primary key,
    route varchar not null,
    exception_id varchar not null,
    kind varchar not null,
    priority varchar,
    exception_code varchar not null,
    entity_id varchar not null,
    amount_at_risk decimal(38, 6),
    amount_at_risk_currency varchar,
    due_at timestamp,
    detail varchar,
    queued_at timestamp not null,
    queued_by_run varchar not null,
    status varchar not null,
    attempts integer not null,
    last_error varchar,
    sent_at timestamp,
    sent_by_run varchar,
    digest_id varchar
);
"""

# A change to tell a route about: each opened/reopened history row, and each open period that went past due.
QUEUE_SQL = """
insert into notify.outbox
with changes as (
    select
        h.history_id as notification_key,
        case h.change_type when 'opened' then 'new' else 'reopened' end as kind,
        e.*
    from main.order_audit_exception_history as h
    join main.order_audit_exceptions as e using (exception_id)
    where h.change_type in ('opened', 'reopened')
    union all
    select 'sla:' || e.exception_id || ':' || cast(e.opened_at as varchar), 'past_sla', e.*
    from main.order_audit_exceptions as e
    where e.sla_breached and e.workflow_state <> 'resolved'
)
select
    c.notification_key, c.route, c.exception_id, c.kind, c.priority, c.exception_code, c.entity_id,
    c.amount_at_risk, c.amount_at_risk_currency, c.due_at, c.detail,
    cast(now() as timestamp), ?, 'pending', 0, null, null, null, null
from changes as c
where c.route is not null
  and not exists (select 1 from notify.outbox as o where o.notification_key = c.notification_key)
"""

PENDING_COLUMNS = (
    "notification_key",
    "route",
    "exception_id",
    "kind",
    "priority",
    "exception_code",
    "entity_id",
    "amount_at_risk",
    "amount_at_risk_currency",
    "due_at",
    "detail",
)
PENDING_SQL = f"""
select {", ".join(PENDING_COLUMNS)}
from notify.outbox
where status = 'pending'
order by route, priority nulls last, kind, due_at nulls last, exception_code, entity_id
"""
KIND_LABELS = {"new": "NEW", "reopened": "REOPENED", "past_sla": "PAST SLA"}


@dataclass
class RouteDelivery:
    route: str
    destination: str
    items: int
    systemic: bool
    digest_id: str
    error: str | None = None


@dataclass
class NotifyResult:
    queued: int = 0
    deliveries: list[RouteDelivery] = field(default_factory=list)

    @property
    def failed(self) -> list[RouteDelivery]:
        return [d for d in self.deliveries if d.error]

    def as_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "queued": self.queued,
            "digests_sent": sum(1 for d in self.deliveries if not d.error),
            "lines_sent": sum(d.items for d in self.deliveries if not d.error),
            "digests_failed": len(self.failed),
        }
        for delivery in self.failed:
            metadata[f"failed_{delivery.route}"] = delivery.error
        return metadata


def _money(amount: Decimal | None, currency: str | None) -> str:
    return f" · {format_amount(amount, currency)} {currency} at risk" if amount else ""


def _line(item: dict[str, Any]) -> str:
    due = f" · due {item['due_at']:%Y-%m-%d %H:%M} UTC" if item["due_at"] else ""
    return (
        f"• [{item['priority'] or '-'}] {KIND_LABELS[item['kind']]} {item['exception_code']} {item['entity_id']}"
        f"{_money(item['amount_at_risk'], item['amount_at_risk_currency'])}{due} — {item['detail']}"
        f" (`order-audit exceptions show {item['exception_id'][:12]}`)"
    )


def digest_text(route: str, items: list[dict[str, Any]], limit: int) -> tuple[str, bool]:
    """The message for one route (Slack mrkdwn-compatible) and whether it is a systemic alert."""
    kinds = Counter(item["kind"] for item in items)
    counts = ", ".join(f"{kinds[kind]} {KIND_LABELS[kind].lower()}" for kind in KIND_LABELS if kinds[kind])
    if len(items) > limit:
        priorities = Counter(item["priority"] or "-" for item in items)
        by_priority = ", ".join(f"{p}: {n}" for p, n in sorted(priorities.items()))
        return (
            f"*order-audit · {route} · SYSTEMIC ALERT*: {len(items):,} changes in one run ({counts}; {by_priority})"
            f", more than the {limit} this route takes line by line. Something upstream may be broken: see"
            f" `order-audit exceptions list --route {route}`.",
            True,
        )
    return f"*order-audit · {route}*: {counts}\n" + "\n".join(_line(item) for item in items), False


def _deliver(destination: Destination, warehouse_dir: Path, payload: dict[str, Any]) -> None:
    if destination.webhook_env:
        # Not a setting of orchestration/settings.py: routing.yml names the variable (README "Settings").
        url = os.environ.get(destination.webhook_env, "").strip()
        if not url:
            raise RuntimeError(
                f"the environment variable {destination.webhook_env} (the webhook URL) is not set"
            )
        request = urllib.request.Request(
            url,
            data=json.dumps({"text": payload["text"]}).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                response.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"the webhook answered HTTP {error.code}") from error
        except (urllib.error.URLError, OSError) as error:
            raise RuntimeError(f"the webhook could not be reached: {error}") from error
        return
    assert destination.folder is not None
    folder = destination.folder if destination.folder.is_absolute() else warehouse_dir / destination.folder
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{payload['route']}.jsonl").open("a", encoding="utf-8") as sink:
        sink.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")


def queue_changes(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    con.execute(OUTBOX_DDL)
    before = con.execute("select count(*) from notify.outbox").fetchall()[0][0]
    con.execute(QUEUE_SQL, [run_id])
    return int(con.execute("select count(*) from notify.outbox").fetchall()[0][0]) - int(before)


def pending_by_route(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in con.execute(PENDING_SQL).fetchall():
        item = dict(zip(PENDING_COLUMNS, row, strict=True))
        grouped.setdefault(str(item["route"]), []).append(item)
    return grouped


def send_digests(
    pending: dict[str, list[dict[str, Any]]], notifications: Notifications, warehouse_dir: Path
) -> list[RouteDelivery]:
    """Send one digest per route of its pending rows (no warehouse connection needed)."""
    deliveries = []
    for route, items in sorted(pending.items()):
        destination = notifications.destination_of(route)
        text, systemic = digest_text(route, items, notifications.max_lines_per_route)
        delivery = RouteDelivery(
            route,
            destination.description if destination else "none",
            len(items),
            systemic,
            f"DIG-{uuid.uuid4().hex[:12]}",
        )
        payload = {
            "digest_id": delivery.digest_id,
            "route": route,
            "sent_at": datetime.now(UTC).isoformat(),
            "systemic": systemic,
            "text": text,
            "counts": dict(Counter(item["kind"] for item in items)),
            "items": [] if systemic else [{k: v for k, v in item.items() if k != "route"} for item in items],
        }
        try:
            if destination is None:
                raise RuntimeError(
                    "no destination for this route in routing.yml `notifications` (add one or `*`)"
                )
            _deliver(destination, warehouse_dir, payload)
        except Exception as error:  # a notification never fails the run: recorded and retried
            delivery.error = str(error)
        deliveries.append(delivery)
    return deliveries


def record_deliveries(con: duckdb.DuckDBPyConnection, deliveries: list[RouteDelivery], run_id: str) -> None:
    """Mark each route's pending rows (those its digest carried: this step is the outbox's only writer)."""
    con.execute("begin transaction")
    try:
        for delivery in deliveries:
            if delivery.error:
                con.execute(
                    "update notify.outbox set attempts = attempts + 1, last_error = ?"
                    " where route = ? and status = 'pending'",
                    [delivery.error, delivery.route],
                )
            else:
                con.execute(
                    "update notify.outbox set status = ?, attempts = attempts + 1, last_error = null,"
                    " sent_at = cast(now() as timestamp), sent_by_run = ?, digest_id = ?"
                    " where route = ? and status = 'pending'",
                    [
                        "summarized" if delivery.systemic else "sent",
                        run_id,
                        delivery.digest_id,
                        delivery.route,
                    ],
                )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
