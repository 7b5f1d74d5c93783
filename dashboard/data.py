"""Every query the dashboard runs, each over one open reader (see `source.open_reader`).

Results are plain Python values and pandas DataFrames built from `fetchall()` rows, never from
DuckDB's `.df()`: that would turn DECIMAL amounts into floats. Amounts leave this module as exact
`Decimal`s or as strings made by `money.format_amount`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd

from dashboard.money import format_amount
from dashboard.source import SERVING_ALIAS
from orchestration.rules import round_to_minor_units_sql

# The mart tables the dashboard reads (the serving file has all of orchestration.publish.serving's).
TABLES_READ = (
    "fact_order_audit",
    "order_audit_exceptions",
    "fct_order_audit_events",
    "agg_reconciliation_daily",
)
AUDIT_STATUSES = ("ok", "warning", "exception")
WORST_ORDERS_LIMIT = 200
SORT_COLUMNS = ("abs_balance", "is_exception")  # in `worst_orders` frames, to sort on, not to show


class IncompleteMartError(RuntimeError):
    """The file has no audit mart (not a serving file, or one from an unexpected version)."""


# The money of one order's summary, in the order the drill-down shows it.
SUMMARY_AMOUNTS = (
    "order_total",
    "computed_total",
    "captured",
    "psp_refunded",
    "net_paid",
    "expected_net",
    "payment_balance",
)


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
    """A query's rows as a DataFrame, DECIMAL values kept as `Decimal` objects."""
    cursor = con.execute(sql, list(params or []))
    columns = [column[0] for column in cursor.description or []]
    rows = cursor.fetchall()
    return pd.DataFrame.from_records(rows, columns=columns)


def _rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params or [])).fetchall()


def table_names(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    rows = _rows(
        con,
        "select table_name from information_schema.tables where table_catalog = ? and table_schema = 'main'",
        [SERVING_ALIAS],
    )
    return frozenset(row[0] for row in rows)


def column_names(con: duckdb.DuckDBPyConnection, table: str) -> frozenset[str]:
    rows = _rows(
        con,
        "select column_name from information_schema.columns"
        " where table_catalog = ? and table_schema = 'main' and table_name = ?",
        [SERVING_ALIAS, table],
    )
    return frozenset(row[0] for row in rows)


@dataclass(frozen=True)
class Publication:
    """Which publish of the mart a reader saw."""

    run_id: str | None
    published_at: datetime | None
    audited_as_of: datetime | None

    @property
    def key(self) -> tuple[str | None, datetime | None]:
        return (self.run_id, self.published_at)


def publication(con: duckdb.DuckDBPyConnection, tables: frozenset[str]) -> Publication:
    if "publish_log" in tables:
        row = _rows(
            con,
            "select run_id, published_at, audited_as_of from publish_log order by published_at desc limit 1",
        )
        if row:
            return Publication(*row[0])
    as_of = _rows(con, "select max(audited_as_of) from fact_order_audit")[0][0]
    return Publication(None, None, as_of)


@dataclass(frozen=True)
class CurrencyRisk:
    currency: str
    amount: Decimal
    orders: int

    @property
    def display(self) -> str:
        return format_amount(self.amount, self.currency)


def money_at_risk(con: duckdb.DuckDBPyConnection) -> tuple[CurrencyRisk, ...]:
    """Per currency, the payment balances out of balance as the rules see them: |balance| rounded half
    away from zero to the currency's minor unit (a balance of 0.4 JPY is none), summed exactly, and the
    orders they come from."""
    at_risk = round_to_minor_units_sql("abs(payment_balance_amount)", "currency")
    rows = _rows(
        con,
        "select currency, sum(at_risk), count(*) filter (where at_risk > 0)"
        f" from (select currency, {at_risk} as at_risk from fact_order_audit) group by currency order by currency",
    )
    return tuple(CurrencyRisk(currency, Decimal(amount), int(orders)) for currency, amount, orders in rows)


def orders_by_status(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts = dict.fromkeys(AUDIT_STATUSES, 0)
    for status, count in _rows(
        con, "select audit_status, count(*) from fact_order_audit group by audit_status"
    ):
        counts[str(status)] = int(count)
    return counts


def daily_status(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Orders per order-created day by audit status, all currencies together."""
    return frame(
        con,
        """
        select
            order_date,
            cast(sum(orders) - sum(orders_with_exceptions) as bigint) as ok,
            cast(sum(orders_in_warning) as bigint) as warning,
            cast(sum(orders_in_exception) as bigint) as exception,
            cast(sum(orders) as bigint) as orders
        from agg_reconciliation_daily
        group by order_date
        order by order_date
        """,
    )


def open_exceptions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Open exceptions per code and owner team."""
    return frame(
        con,
        """
        select
            exception_code,
            owner_team,
            severity,
            count(*) as open_exceptions,
            count(distinct order_id) as orders
        from order_audit_exceptions
        where status = 'open'
        group by exception_code, owner_team, severity
        order by open_exceptions desc, exception_code, owner_team
        """,
    )


def worst_orders(con: duckdb.DuckDBPyConnection, limit: int = WORST_ORDERS_LIMIT) -> pd.DataFrame:
    """Candidates for the worst-orders table: the `limit` worst orders by their exceptions (orders with
    an error first, then the most exception codes, then the largest absolute balance) and, in every
    currency, the `limit` orders with the largest absolute payment balance.

    `payment_balance` is the exact display string; `abs_balance` (a Decimal) and `is_exception` are there
    to sort on (`SORT_COLUMNS`).
    """
    df = frame(
        con,
        """
        with ranked as (
            select
                *,
                row_number() over (
                    order by audit_status = 'exception' desc, exception_count desc, abs(payment_balance_amount) desc,
                        order_id
                ) as by_codes,
                row_number() over (
                    partition by currency
                    order by abs(payment_balance_amount) desc, exception_count desc, audit_status = 'exception' desc,
                        order_id
                ) as by_balance
            from fact_order_audit
        )
        select
            order_id,
            currency,
            order_status,
            audit_status,
            exception_count,
            exception_codes,
            payment_balance_amount,
            abs(payment_balance_amount) as abs_balance,
            cast(audit_status = 'exception' as integer) as is_exception,
            order_total_amount,
            net_paid_amount,
            order_created_at
        from ranked
        where (by_codes <= ? and exception_count > 0) or (by_balance <= ? and payment_balance_amount <> 0)
        order by is_exception desc, exception_count desc, abs_balance desc, order_id
        """,
        [limit, limit],
    )
    for column in ("payment_balance_amount", "order_total_amount", "net_paid_amount"):
        df[column] = [format_amount(v, c) for v, c in zip(df[column], df["currency"], strict=True)]
    return df.rename(
        columns={
            "payment_balance_amount": "payment_balance",
            "order_total_amount": "order_total",
            "net_paid_amount": "net_paid",
        }
    )


def rank_worst_orders(candidates: pd.DataFrame, rank_by: str, currency: str | None, top: int) -> pd.DataFrame:
    """Order the candidates by `rank_by` ("codes" or "balance"), optionally in one currency."""
    df = candidates if currency is None else candidates[candidates["currency"] == currency]
    if rank_by == "balance":
        keys = ["abs_balance", "exception_count", "is_exception"]
    else:
        keys = ["is_exception", "exception_count", "abs_balance"]
    ranked = df.sort_values(by=[*keys, "order_id"], ascending=[False, False, False, True], kind="mergesort")
    return ranked.head(top).reset_index(drop=True)


@dataclass(frozen=True)
class QualityResults:
    runs: pd.DataFrame  # one row per validation run: run_id, validated_at, expectations, passed, failed
    latest_failures: pd.DataFrame  # failed expectations of the latest run


QUALITY_COLUMNS = ("run_id", "suite", "expectation", "asset", "success", "validated_at")


def quality_results(con: duckdb.DuckDBPyConnection, tables: frozenset[str]) -> QualityResults | None:
    """Great Expectations results over time; None when the file predates them."""
    if "validation_results" not in tables:
        return None
    columns = column_names(con, "validation_results")
    if not set(QUALITY_COLUMNS) <= columns:
        return None
    runs = frame(
        con,
        """
        select
            run_id,
            max(validated_at) as validated_at,
            count(*) as expectations,
            count(*) filter (where success) as passed,
            count(*) filter (where not success) as failed
        from validation_results
        group by run_id
        order by validated_at, run_id
        """,
    )
    observed = "cast(observed_value as varchar)" if "observed_value" in columns else "null"
    unexpected = "unexpected_count" if "unexpected_count" in columns else "cast(null as bigint)"
    latest_failures = frame(
        con,
        f"""
        with latest as (select run_id from validation_results order by validated_at desc, run_id desc limit 1)
        select suite, expectation, asset, {observed} as observed_value, {unexpected} as unexpected_count,
            validated_at
        from validation_results
        where run_id = (select run_id from latest) and not success
        order by suite, expectation, asset
        """,
    )
    return QualityResults(runs, latest_failures)


@dataclass(frozen=True)
class MartSnapshot:
    """Everything the overview shows, read through one connection: one whole published mart."""

    publication: Publication
    tables: frozenset[str]
    order_count: int
    orders_by_status: dict[str, int]
    open_exception_count: int
    daily_status: pd.DataFrame
    open_exceptions: pd.DataFrame
    money_at_risk: tuple[CurrencyRisk, ...]
    quality: QualityResults | None
    worst_orders: pd.DataFrame


def read_snapshot(con: duckdb.DuckDBPyConnection) -> MartSnapshot:
    tables = table_names(con)
    missing = [t for t in TABLES_READ if t not in tables]
    if missing:
        raise IncompleteMartError(f"the file has no {', '.join(missing)}")
    open_by_code = open_exceptions(con)
    return MartSnapshot(
        publication=publication(con, tables),
        tables=tables,
        order_count=int(_rows(con, "select count(*) from fact_order_audit")[0][0]),
        orders_by_status=orders_by_status(con),
        open_exception_count=int(open_by_code["open_exceptions"].sum()) if len(open_by_code) else 0,
        daily_status=daily_status(con),
        open_exceptions=open_by_code,
        money_at_risk=money_at_risk(con),
        quality=quality_results(con, tables),
        worst_orders=worst_orders(con),
    )


@dataclass(frozen=True)
class OrderTrail:
    """One order's drill-down: its current state, audit trail and exceptions."""

    publication: Publication
    order_id: str
    found: bool
    summary: dict[str, str]
    events: pd.DataFrame
    exceptions: pd.DataFrame


def read_order_trail(con: duckdb.DuckDBPyConnection, order_id: str) -> OrderTrail:
    tables = table_names(con)
    header = _rows(
        con,
        """
        select order_id, customer_id, currency, channel, order_status, audit_status, exception_codes,
            order_created_at, order_updated_at, order_total_amount, computed_total_amount,
            captured_amount, psp_refunded_amount, net_paid_amount, expected_net_amount, payment_balance_amount
        from fact_order_audit where order_id = ?
        """,
        [order_id],
    )
    summary: dict[str, str] = {}
    if header:
        (oid, customer, currency, channel, status, audit_status, codes, created, updated, *amounts) = header[
            0
        ]
        summary = {
            "order_id": oid,
            "customer_id": customer,
            "currency": currency,
            "channel": channel or "",
            "order_status": status,
            "audit_status": audit_status,
            "exception_codes": codes,
            "order_created_at": str(created),
            "order_updated_at": str(updated),
        }
        summary.update(
            {
                name: format_amount(value, currency)
                for name, value in zip(SUMMARY_AMOUNTS, amounts, strict=True)
            }
        )
    events = frame(
        con,
        """
        select event_sequence, event_at, source_system, event_type, status, amount, currency, sku, quantity,
            from_status, to_status, source_file, load_id, event_id
        from fct_order_audit_events
        where order_id = ?
        order by event_sequence
        """,
        [order_id],
    )
    events["amount"] = [
        format_amount(v, c) for v, c in zip(events["amount"], events["currency"], strict=True)
    ]
    exceptions = frame(
        con,
        """
        select exception_code, severity, owner_team, status, entity_type, entity_id, detail,
            first_detected_at, last_detected_at, resolved_at, exception_id
        from order_audit_exceptions
        where order_id = ?
        order by status = 'open' desc, exception_code, entity_type, entity_id
        """,
        [order_id],
    )
    return OrderTrail(publication(con, tables), order_id, bool(header), summary, events, exceptions)


# --- triage: the exception queue per owner team and route ------------------------------------------------

TRIAGE_COLUMNS = frozenset(
    {"route", "priority", "age_bucket", "sla_breached", "workflow_state", "amount_at_risk"}
)
AGE_BUCKETS = ("0-1", "2-7", "8-30", ">30")
QUEUE_LIMIT = 500


@dataclass(frozen=True)
class TriageView:
    """The queue of exceptions people still work (workflow state not resolved) of one owner team and route."""

    publication: Publication
    available: bool  # False: a serving file from before routing and triage
    owners: tuple[str, ...]
    routes: tuple[str, ...]
    active: int
    past_sla: int
    by_priority_and_age: pd.DataFrame
    money_at_risk: pd.DataFrame
    queue: pd.DataFrame


def _triage_filter(owner: str | None, route: str | None) -> tuple[str, list[Any]]:
    clauses, params = ["workflow_state <> 'resolved'"], []
    for column, value in (("owner_team", owner), ("route", route)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " and ".join(clauses), params


def read_triage(con: duckdb.DuckDBPyConnection, owner: str | None, route: str | None) -> TriageView:
    tables = table_names(con)
    pub = publication(con, tables)
    empty = pd.DataFrame()
    if not TRIAGE_COLUMNS <= column_names(con, "order_audit_exceptions"):
        return TriageView(pub, False, (), (), 0, 0, empty, empty, empty)
    where, params = _triage_filter(owner, route)
    owners = tuple(
        r[0] for r in _rows(con, "select distinct owner_team from order_audit_exceptions order by 1")
    )
    routes = tuple(
        r[0]
        for r in _rows(
            con,
            "select distinct route from order_audit_exceptions where route is not null"
            + (" and owner_team = ?" if owner else "")
            + " order by 1",
            [owner] if owner else [],
        )
    )
    active, past_sla = _rows(
        con,
        f"select count(*), count(*) filter (where sla_breached) from order_audit_exceptions where {where}",
        params,
    )[0]
    buckets = ", ".join(
        f"count(*) filter (where age_bucket = '{bucket}') as \"{bucket} days\"" for bucket in AGE_BUCKETS
    )
    by_priority = frame(
        con,
        f"""
        select coalesce(priority, '-') as priority, {buckets},
            count(*) filter (where sla_breached) as past_sla, count(*) as active
        from order_audit_exceptions where {where}
        group by 1 order by 1
        """,
        params,
    )
    money = frame(
        con,
        f"""
        select amount_at_risk_currency as currency, sum(amount_at_risk) as amount, count(*) as exceptions
        from order_audit_exceptions where {where} and amount_at_risk > 0
        group by 1 order by 1
        """,
        params,
    )
    money["amount_at_risk"] = [
        format_amount(v, c) for v, c in zip(money["amount"], money["currency"], strict=True)
    ]
    money = money[["currency", "amount_at_risk", "exceptions"]]
    queue = frame(
        con,
        f"""
        select priority, exception_code, entity_id, amount_at_risk, amount_at_risk_currency, age_bucket, due_at,
            sla_breached, workflow_state, coalesce(assignee, '') as assignee, route, owner_team, trigger,
            expected_outcome, exception_id
        from order_audit_exceptions where {where}
        order by priority nulls last, due_at nulls last, exception_code, entity_id
        limit {QUEUE_LIMIT}
        """,
        params,
    )
    # One column mixes currencies: each amount says its own (83,056 JPY beside 540.58 EUR).
    queue["amount_at_risk"] = [
        f"{format_amount(v, c)} {c}" if v else ""
        for v, c in zip(queue["amount_at_risk"], queue["amount_at_risk_currency"], strict=True)
    ]
    queue = queue.drop(columns=["amount_at_risk_currency"])
    return TriageView(pub, True, owners, routes, int(active), int(past_sla), by_priority, money, queue)


def read_exception_history(con: duckdb.DuckDBPyConnection, exception_id: str) -> pd.DataFrame:
    return frame(
        con,
        """
        select change_sequence, changed_at, change_type, from_state, to_state, changed_by, decided_at, reason,
            assignee, snoozed_until, route, priority, note
        from order_audit_exception_history where exception_id = ? order by change_sequence
        """,
        [exception_id],
    )
