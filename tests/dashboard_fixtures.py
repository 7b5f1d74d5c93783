"""A hand-made serving file for the dashboard tests: a small warehouse with the mart's exact table
shapes and edge-case amounts (3-decimal and zero-decimal currencies, data-quality history), published by
the real `orchestration.publish.serving.publish`. The pipeline-built serving file comes from the
session's `sample_pipeline` fixture (tests/conftest.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from orchestration.publish.serving import publish
from orchestration.rules import round_to_minor_units_sql, rule_catalog


@dataclass(frozen=True)
class BuiltMart:
    warehouse: Path
    serving_db: Path
    source: str  # "pipeline" or "handmade"
    note: str


# --- the hand-made mart ------------------------------------------------------------------------------

AS_OF = datetime(2026, 11, 10, 23, 59)
SEVERITY = {rule.code: (rule.severity, rule.owner_team) for rule in rule_catalog()}

DDL = """
create schema if not exists raw;
create schema if not exists quality;
create table main.fact_order_audit (
    order_id varchar, customer_id varchar, customer_email_sha256 varchar, currency varchar, channel varchar,
    order_status varchar, order_created_at timestamp, order_updated_at timestamp, order_version_count integer,
    line_count integer, units_ordered bigint, order_total_amount decimal(18,6), computed_total_amount decimal(18,6),
    order_refunded_amount decimal(18,6), authorized_amount decimal(18,6), captured_amount decimal(18,6),
    psp_refunded_amount decimal(18,6), chargeback_amount decimal(18,6), net_paid_amount decimal(18,6),
    expected_net_amount decimal(18,6), payment_balance_amount decimal(18,6), first_captured_at timestamp,
    units_shipped bigint, units_returned bigint, first_shipped_at timestamp, exception_codes varchar,
    exception_count integer, audit_status varchar, audited_as_of timestamp
);
create table main.order_audit_exceptions (
    exception_id varchar, entity_type varchar, entity_id varchar, order_id varchar, exception_code varchar,
    severity varchar, owner_team varchar, detail varchar, first_detected_at timestamp, last_detected_at timestamp,
    status varchar, resolved_at timestamp, source_system varchar, trigger varchar, amount_at_risk decimal(38,6),
    amount_at_risk_currency varchar, channel varchar, warehouse_id varchar, routing_rule varchar, route varchar,
    priority varchar, resolve_within_hours integer, expected_outcome varchar, opened_at timestamp, due_at timestamp,
    age_days integer, age_bucket varchar, sla_breached boolean, workflow_state varchar, assignee varchar,
    snoozed_until timestamp, resolution_reason varchar, resolution_note varchar, resolved_by varchar,
    workflow_resolved_at timestamp
);
create table main.order_audit_exception_history (
    history_id varchar, exception_id varchar, change_sequence integer, change_type varchar, from_state varchar,
    to_state varchar, changed_at timestamp, changed_by varchar, decided_at timestamp, decision_id varchar,
    reason varchar, note varchar, assignee varchar, snoozed_until timestamp, resolution_reason varchar,
    resolution_note varchar, resolved_by varchar, resolved_as_of timestamp, evidence varchar, owner_team varchar,
    routing_rule varchar, route varchar, priority varchar, detail varchar, run_id varchar
);
create table main.fct_order_audit_events (
    event_id varchar, order_id varchar, event_at timestamp, event_sequence integer, source_system varchar,
    source_id varchar, event_type varchar, status varchar, amount decimal(18,6), currency varchar, sku varchar,
    quantity bigint, from_status varchar, to_status varchar, source_file varchar, load_id varchar
);
create table main.dim_customers (
    customer_id varchar, customer_email_sha256 varchar, orders bigint, first_order_at timestamp,
    last_order_at timestamp, orders_with_exceptions bigint
);
create table main.dim_products (
    sku varchar, title varchar, in_catalog boolean, catalog_currencies integer, catalog_price_rows integer,
    orders bigint, units_ordered bigint
);
create table main.quarantined_rows (
    source varchar, source_file varchar, extract_date date, line_number bigint, raw_text varchar,
    reason_code varchar, reason varchar, load_id varchar, quarantined_at timestamp
);
create table raw.quarantine (
    load_id varchar, source varchar, source_file varchar, extract_date date, line_number bigint,
    raw_text varchar, reason_code varchar, reason varchar, quarantined_at timestamp
);
create table raw.load_manifest (
    load_id varchar, source varchar, file_name varchar, file_path varchar, file_format varchar, file_size bigint,
    sha256 varchar, extract_date date, part varchar, loaded_at timestamp, rows_read bigint, rows_loaded bigint,
    rows_quarantined bigint, status varchar, error varchar
);
create table quality.validation_results (
    run_id varchar not null, stage varchar not null, suite varchar not null, expectation varchar not null,
    expectation_type varchar not null, asset varchar not null, severity varchar not null, success boolean not null,
    observed_value varchar, unexpected_count bigint, unexpected_sample varchar, exception varchar,
    validated_at timestamp not null
);
"""

# (order_id, currency, status, created day, total, computed total, refunded, captured, psp refunded,
#  open exception codes, resolved exception codes)
ORDERS: list[tuple[str, str, str, int, str, str, str, str, str, list[str], list[str]]] = [
    ("ORD-H001", "USD", "paid", 1, "100.00", "100.00", "0", "90.00", "0", ["UNDERPAID"], []),
    (
        "ORD-H002",
        "USD",
        "fulfilled",
        1,
        "257.085",
        "257.08",
        "0",
        "257.09",
        "0",
        ["ORDER_TOTAL_MISMATCH", "OVERPAID"],
        ["PAYMENT_MISSING"],
    ),
    ("ORD-H003", "JPY", "fulfilled", 2, "12345", "12345", "0", "12345", "0", [], ["PAYMENT_MISSING"]),
    ("ORD-H004", "JPY", "cancelled", 2, "5000", "5000", "0", "5000", "0", ["CANCELLED_NOT_REFUNDED"], []),
    ("ORD-H005", "KWD", "paid", 3, "12.345", "12.345", "0", "12.345", "0", ["FULFILLMENT_DELAYED"], []),
    (
        "ORD-H006",
        "EUR",
        "fulfilled",
        3,
        "80.10",
        "80.10",
        "0",
        "80.10",
        "0",
        ["CHARGEBACK", "PRICE_MISMATCH"],
        [],
    ),
    ("ORD-H007", "EUR", "pending", 3, "19.99", "19.99", "0", "0", "0", [], []),
    (
        "ORD-H008",
        "USD",
        "partially_refunded",
        3,
        "50.00",
        "50.00",
        "20.00",
        "50.00",
        "20.005",
        ["OVERPAID"],
        [],
    ),
]


def _exception_id(entity_type: str, entity_id: str, code: str) -> str:
    return hashlib.md5(f"{entity_type}|{entity_id}|{code}".encode()).hexdigest()


def _order_rows() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    facts: list[tuple[Any, ...]] = []
    exceptions: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    for i, (
        oid,
        cur,
        status,
        day,
        total,
        computed,
        refunded,
        captured,
        psp_ref,
        codes,
        resolved,
    ) in enumerate(ORDERS):
        created = datetime(2026, 11, day, 8 + i, 15, 30)
        captured_d, psp_d = Decimal(captured), Decimal(psp_ref)
        net_paid = captured_d - psp_d
        expected = Decimal(0) if status in ("pending", "cancelled") else Decimal(total) - Decimal(refunded)
        balance = expected - net_paid
        codes = sorted(codes)
        severities = {SEVERITY[c][0] for c in codes}
        audit = "exception" if "error" in severities else ("warning" if codes else "ok")
        first_capture = created + timedelta(minutes=2) if captured_d else None
        facts.append(
            (
                oid,
                f"CUS-{i % 3}",
                None,
                cur,
                "web",
                status,
                created,
                created + timedelta(hours=3),
                2,
                1,
                1,
                Decimal(total),
                Decimal(computed),
                Decimal(refunded),
                captured_d,
                captured_d,
                psp_d,
                Decimal("80.10") if "CHARGEBACK" in codes else Decimal(0),
                net_paid,
                expected,
                balance,
                first_capture,
                0,
                0,
                None,
                ",".join(codes),
                len(codes),
                audit,
                AS_OF,
            )
        )
        for code in codes + resolved:
            severity, owner = SEVERITY[code]
            is_open = code in codes
            exceptions.append(
                (
                    _exception_id("order", oid, code),
                    "order",
                    oid,
                    oid,
                    code,
                    severity,
                    owner,
                    f"{code} on {oid}: balance {balance} {cur}.",
                    AS_OF - timedelta(days=1),
                    AS_OF if is_open else AS_OF - timedelta(days=1),
                    "open" if is_open else "resolved",
                    None if is_open else AS_OF,
                )
            )
        trail: list[tuple[str, str, str | None, Decimal | None, str | None, str | None]] = [
            ("storefront", "order_created", None, Decimal(total), None, "pending"),
        ]
        if captured_d:
            trail += [
                ("psp", "payment_authorization", "succeeded", captured_d, None, None),
                ("psp", "payment_capture", "succeeded", captured_d, None, None),
            ]
        trail.append(("storefront", "order_status_changed", None, Decimal(total), "pending", status))
        if psp_d:
            trail.append(("psp", "payment_refund", "succeeded", psp_d, None, None))
        if status in ("fulfilled", "partially_refunded"):
            trail.append(("wms", "inventory_shipment", None, None, None, None))
        for seq, (system, event_type, ev_status, amount, from_status, to_status) in enumerate(trail, start=1):
            is_wms = system == "wms"
            events.append(
                (
                    _exception_id(system, f"{oid}-{seq}", event_type),
                    oid,
                    created + timedelta(minutes=seq),
                    seq,
                    system,
                    f"{oid}-{seq}",
                    event_type,
                    ev_status,
                    amount,
                    None if is_wms else cur,
                    "SKU-1" if is_wms else None,
                    1 if is_wms else None,
                    from_status,
                    to_status,
                    f"{system}_2026-11-0{day}.csv",
                    "load-handmade",
                )
            )
    stock = ("stock_position", "SKU-1|WH-1|2026-11-02", None, "STOCK_LEVEL_MISMATCH")
    severity, owner = SEVERITY[stock[3]]
    exceptions.append(
        (
            _exception_id(stock[0], stock[1], stock[3]),
            stock[0],
            stock[1],
            stock[2],
            stock[3],
            severity,
            owner,
            "WMS reports on_hand 3 but movements give 4.",
            AS_OF,
            AS_OF,
            "open",
            None,
        )
    )
    events.reverse()  # stored out of order on purpose: the dashboard must sort by event_sequence
    return facts, exceptions, events


AGG_SQL = f"""
create table main.agg_reconciliation_daily as
with exceptions_per_order as (
    select order_id,
        sum(case when severity = 'error' then 1 else 0 end) as error_exceptions,
        sum(case when severity = 'warning' then 1 else 0 end) as warning_exceptions
    from main.order_audit_exceptions
    where status = 'open' and entity_type = 'order'
    group by order_id
)
select
    cast(o.order_created_at as date) as order_date,
    cast(o.currency as varchar) as currency,
    cast(count(*) as bigint) as orders,
    cast(sum(o.order_total_amount) as decimal(38, 6)) as order_value_amount,
    cast(sum(o.captured_amount) as decimal(38, 6)) as captured_amount,
    cast(sum(o.psp_refunded_amount) as decimal(38, 6)) as refunded_amount,
    cast(sum(o.net_paid_amount) as decimal(38, 6)) as net_paid_amount,
    cast(sum(abs({round_to_minor_units_sql("o.payment_balance_amount", "o.currency")})) as decimal(38, 6))
        as money_at_risk_amount,
    cast(sum(case when o.audit_status <> 'ok' then 1 else 0 end) as bigint) as orders_with_exceptions,
    cast(sum(case when o.audit_status = 'exception' then 1 else 0 end) as bigint) as orders_in_exception,
    cast(sum(case when o.audit_status = 'warning' then 1 else 0 end) as bigint) as orders_in_warning,
    cast(coalesce(sum(e.error_exceptions), 0) as bigint) as error_exceptions,
    cast(coalesce(sum(e.warning_exceptions), 0) as bigint) as warning_exceptions
from main.fact_order_audit o
left join exceptions_per_order e on o.order_id = e.order_id
group by cast(o.order_created_at as date), o.currency
"""


def _validation_rows() -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for n, (run_id, failing) in enumerate((("run-a", {"payments_amount_positive"}), ("run-b", set()))):
        validated = AS_OF - timedelta(days=1 - n)
        for suite, expectation, asset in (
            ("raw", "orders_have_ids", "raw/orders"),
            ("raw", "payments_amount_positive", "raw/payments"),
            ("reconciliation", "fact_orders_unique", "fact_order_audit"),
        ):
            ok = expectation not in failing
            rows.append(
                (
                    run_id,
                    "raw" if suite == "raw" else "mart",
                    suite,
                    expectation,
                    "expect_column_values_to_not_be_null",
                    asset,
                    "ERROR",
                    ok,
                    '{"element_count": 8}',
                    0 if ok else 2,
                    None if ok else '["-1.00", "-2.50"]',
                    None,
                    validated,
                )
            )
    return rows


def build_handmade_mart(root: Path, note: str = "", with_quality: bool = True) -> BuiltMart:
    """A small mart (8 orders, 4 currencies) with the real tables' shapes, published by `publish`.

    Without `with_quality` there is no validation_results table, like serving files from before it.
    """
    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / "warehouse.duckdb"
    serving = root / "serving" / "order_audit.duckdb"
    facts, exceptions, events = _order_rows()
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(DDL)
        con.executemany(f"insert into main.fact_order_audit values ({', '.join(['?'] * 29)})", facts)
        con.executemany(
            "insert into main.order_audit_exceptions (exception_id, entity_type, entity_id, order_id, exception_code,"
            " severity, owner_team, detail, first_detected_at, last_detected_at, status, resolved_at)"
            f" values ({', '.join(['?'] * 12)})",
            exceptions,
        )
        con.execute(
            "update main.order_audit_exceptions set route = owner_team || '-queue', priority = 'p2',"
            " routing_rule = owner_team, opened_at = first_detected_at, age_days = 0, age_bucket = '0-1',"
            " sla_breached = false, workflow_state = case when status = 'open' then 'open' else 'resolved' end"
        )
        con.execute(
            "insert into main.order_audit_exception_history (history_id, exception_id, change_sequence, change_type,"
            " to_state, changed_at, changed_by, note, owner_team, routing_rule, route, priority, detail, run_id)"
            " select exception_id || '-1', exception_id, 1, 'opened', 'open', first_detected_at, 'pipeline', detail,"
            " owner_team, routing_rule, route, priority, detail, 'handmade-run' from main.order_audit_exceptions"
        )
        con.executemany(f"insert into main.fct_order_audit_events values ({', '.join(['?'] * 16)})", events)
        con.execute(AGG_SQL)
        con.execute(
            "insert into main.dim_customers select customer_id, null, count(*), min(order_created_at),"
            " max(order_created_at), count(*) filter (where audit_status <> 'ok')"
            " from main.fact_order_audit group by customer_id"
        )
        con.execute("insert into main.dim_products values ('SKU-1', 'Handmade Mug', true, 1, 1, 8, 8)")
        if with_quality:
            con.executemany(
                f"insert into quality.validation_results values ({', '.join(['?'] * 13)})", _validation_rows()
            )
        else:
            con.execute("drop table quality.validation_results")
    finally:
        con.close()
    publish(warehouse, serving, "handmade-run")
    return BuiltMart(warehouse, serving, "handmade", note)
