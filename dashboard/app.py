"""Order audit dashboard: `streamlit run dashboard/app.py` (or `dashboard.launch.main()`).

Reads the published serving DuckDB file read-only, through a fresh short-lived reader per cache miss
(never a connection kept across reruns), so it never blocks the pipeline's publish and always shows
one whole published mart.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `streamlit run dashboard/app.py` puts dashboard/, not the repo, on sys.path
    _root = str(Path(__file__).resolve().parent.parent)
    if _root not in sys.path:
        sys.path.insert(0, _root)

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from dashboard import loaders  # noqa: E402
from dashboard.data import (  # noqa: E402
    SORT_COLUMNS,
    SUMMARY_AMOUNTS,
    IncompleteMartError,
    MartSnapshot,
    OrderTrail,
    rank_worst_orders,
)
from dashboard.source import file_signature, serving_db_path  # noqa: E402

STATUS_COLORS: list[Any] = ["#2e7d32", "#f9a825", "#c62828"]  # ok, warning, exception
PASS_FAIL_COLORS: list[Any] = ["#2e7d32", "#c62828"]
WORST_ORDERS_SHOWN = 25
ALL_CURRENCIES = "All currencies"
RANK_OPTIONS = {"codes": "Errors first, then most exception codes", "balance": "Largest payment balance"}


def utc(value: datetime | None) -> str:
    return "unknown" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"


def count(value: int) -> str:
    return f"{value:,}"


def show_header(snapshot: MartSnapshot, path: Path) -> None:
    pub = snapshot.publication
    st.caption(
        f"Audited as of **{utc(pub.audited_as_of)}** · published **{utc(pub.published_at)}**"
        f" · run `{pub.run_id or 'unknown'}` · `{path}`"
    )
    by_status = snapshot.orders_by_status
    cols = st.columns(5)
    cols[0].metric("Orders", count(snapshot.order_count))
    cols[1].metric("OK", count(by_status["ok"]))
    cols[2].metric("Warning", count(by_status["warning"]))
    cols[3].metric("Exception", count(by_status["exception"]))
    cols[4].metric("Open exceptions", count(snapshot.open_exception_count))


def show_money_at_risk(snapshot: MartSnapshot) -> None:
    st.subheader("Money at risk")
    st.caption(
        "Sum of |payment balance| (expected net − net paid) per currency, each rounded to the currency's"
        " minor unit as the rules compare amounts (a balance of 0.4 JPY is none): exact, not converted."
    )
    risks = snapshot.money_at_risk
    if not risks:
        st.info("No orders.")
        return
    cols = st.columns(min(len(risks), 6))
    for i, risk in enumerate(risks):
        cols[i % len(cols)].metric(f"{risk.currency} at risk", risk.display, help=f"{risk.orders:,} orders")
    st.dataframe(
        pd.DataFrame(
            {
                "currency": [r.currency for r in risks],
                "money_at_risk": [r.display for r in risks],
                "orders": [r.orders for r in risks],
            }
        ),
        hide_index=True,
        key="money_at_risk",
    )


def show_reconciliation(snapshot: MartSnapshot) -> None:
    st.subheader("Reconciliation status over time")
    st.caption("Orders per order-created day (UTC) by audit status, all currencies.")
    daily = snapshot.daily_status
    if daily.empty:
        st.info("No orders.")
        return
    chart = daily.assign(order_date=daily["order_date"].astype(str)).set_index("order_date")
    st.bar_chart(chart[["ok", "warning", "exception"]], color=STATUS_COLORS, stack=True, y_label="orders")
    with st.expander("Daily figures"):
        st.dataframe(daily, hide_index=True, key="daily_status")


def show_open_exceptions(snapshot: MartSnapshot) -> None:
    st.subheader("Open exceptions")
    open_exc = snapshot.open_exceptions
    if open_exc.empty:
        st.success("No open exceptions.")
        return
    left, right = st.columns([3, 2])
    with left:
        st.caption("By code and owner team")
        st.dataframe(open_exc, hide_index=True, key="open_exceptions")
    with right:
        st.caption("By owner team")
        by_owner = (
            open_exc.groupby(["owner_team", "severity"], as_index=False)["open_exceptions"]
            .sum()
            .pivot(index="owner_team", columns="severity", values="open_exceptions")
            .fillna(0)
            .astype("int64")
        )
        st.bar_chart(by_owner, stack=True, y_label="open exceptions")


def show_quality(snapshot: MartSnapshot) -> None:
    st.subheader("Data quality")
    quality = snapshot.quality
    if quality is None:
        st.info("This serving file has no data-quality results (validation_results): it predates them.")
        return
    if quality.runs.empty:
        st.info("No validation runs recorded yet.")
        return
    runs = quality.runs
    st.caption("Great Expectations results per validation run")
    st.bar_chart(
        runs.assign(validated_at=runs["validated_at"].astype(str)).set_index("validated_at")[
            ["passed", "failed"]
        ],
        color=PASS_FAIL_COLORS,
        stack=True,
        y_label="expectations",
    )
    st.dataframe(runs, hide_index=True, key="quality_runs")
    if quality.latest_failures.empty:
        st.success("Every expectation of the latest run passed.")
    else:
        st.caption(f"Failed expectations of the latest run ({len(quality.latest_failures)})")
        st.dataframe(quality.latest_failures, hide_index=True, key="quality_failures")


def show_worst_orders(snapshot: MartSnapshot) -> list[str]:
    st.subheader("Worst orders")
    candidates = snapshot.worst_orders
    left, right = st.columns(2)
    rank_by = left.radio(
        "Rank by", list(RANK_OPTIONS), format_func=RANK_OPTIONS.__getitem__, horizontal=True, key="rank_by"
    )
    currencies = [ALL_CURRENCIES, *sorted(candidates["currency"].unique().tolist())]
    currency = right.selectbox("Currency", currencies, key="worst_currency")
    ranked = rank_worst_orders(
        candidates,
        rank_by=str(rank_by),
        currency=None if currency == ALL_CURRENCIES else currency,
        top=WORST_ORDERS_SHOWN,
    )
    if ranked.empty:
        st.success("No order has an exception or a payment balance.")
        return []
    if rank_by == "balance" and currency == ALL_CURRENCIES:
        st.caption("Balances are in each order's own currency, not converted.")
    st.dataframe(ranked.drop(columns=list(SORT_COLUMNS)), hide_index=True, key="worst_orders")
    return [str(order_id) for order_id in ranked["order_id"]]


def show_order(trail: OrderTrail) -> None:
    if not trail.found:
        st.warning(f"No order `{trail.order_id}` in this mart.")
    else:
        summary = trail.summary
        st.markdown(
            f"**{summary['order_id']}** · customer `{summary['customer_id']}` · {summary['channel']}"
            f" · status **{summary['order_status']}** · audit **{summary['audit_status']}**"
            f" · {summary['exception_codes'] or 'no open exception'}"
        )
        cols = st.columns(len(SUMMARY_AMOUNTS))
        for col, name in zip(cols, SUMMARY_AMOUNTS, strict=True):
            col.metric(f"{name.replace('_', ' ')} ({summary['currency']})", summary[name])
    st.caption(f"Audit trail ({len(trail.events)} events, in sequence)")
    st.dataframe(trail.events, hide_index=True, key="order_events")
    st.caption(f"Exceptions ({len(trail.exceptions)})")
    if trail.exceptions.empty:
        st.write("None.")
    else:
        st.dataframe(trail.exceptions, hide_index=True, key="order_exceptions")


ALL = "All"


def show_triage(path: Path, key: loaders.SignatureKey) -> None:
    st.subheader("Triage")
    st.caption(
        "Exceptions people still work (workflow state not resolved), most urgent first. Ages and SLAs run"
        " on the audit's clock (the as-of time above, the latest clean event unless a run set it), not on"
        " today's date, so rerunning the same files changes nothing. The dashboard is read-only: act with"
        " the CLI command shown under the queue."
    )
    left, right = st.columns(2)
    everyone = loaders.load_triage(str(path), key, None, None)
    if not everyone.available:
        st.info(
            "This serving file has no routing or triage columns yet: run `order-audit run` to publish them."
        )
        return
    owner = left.selectbox("Owner team", [ALL, *everyone.owners], key="triage_owner")
    owner_filter = None if owner == ALL else str(owner)
    routes = loaders.load_triage(str(path), key, owner_filter, None).routes
    route = right.selectbox("Route", [ALL, *routes], key="triage_route")
    view = loaders.load_triage(str(path), key, owner_filter, None if route == ALL else str(route))
    cols = st.columns(3)
    cols[0].metric("In the queue", count(view.active))
    cols[1].metric("Past SLA", count(view.past_sla))
    cols[2].metric(
        "P1 in the queue", count(int(view.by_priority_and_age.query("priority == 'p1'")["active"].sum()))
    )
    by_age, money = st.columns([3, 2])
    with by_age:
        st.caption("By priority and age (days since it opened)")
        st.dataframe(view.by_priority_and_age, hide_index=True, key="triage_by_priority")
    with money:
        st.caption(
            "Money the queue's exceptions put in doubt (their amount_at_risk), per currency: an order with"
            " several exceptions counts once for each, unlike the money at risk above (exact, not converted)"
        )
        st.dataframe(view.money_at_risk, hide_index=True, key="triage_money")
    st.dataframe(view.queue, hide_index=True, key="triage_queue")
    if view.queue.empty:
        return
    picked = st.selectbox(
        "History of an exception of the queue",
        list(view.queue["exception_id"]),
        format_func=lambda eid: f"{eid[:12]}",
        key="triage_exception",
    )
    st.dataframe(
        loaders.load_exception_history(str(path), key, str(picked)), hide_index=True, key="triage_history"
    )
    st.code(
        f"order-audit exceptions show {picked[:12]}\n"
        f"order-audit exceptions ack {picked[:12]} --by <you>\n"
        f"order-audit exceptions assign {picked[:12]} --by <you> --to <who>\n"
        f"order-audit exceptions resolve {picked[:12]} --by <you> --reason fixed|accepted|false_positive --note '...'",
        language="bash",
    )


def main() -> None:
    st.set_page_config(page_title="Order audit", layout="wide")
    st.title("Order audit")
    path = serving_db_path()
    signature = file_signature(path)
    if signature is None:
        st.info(
            f"No published mart yet: there is no serving file at `{path}`.\n\n"
            "Run `order-audit run` to build and publish one (or point ORDER_AUDIT_SERVING_DB at one)."
        )
        st.stop()
        return
    key = loaders.signature_key(signature)
    try:
        snapshot = loaders.load_snapshot(str(path), key)
    except IncompleteMartError as error:
        st.error(f"`{path}` is not a complete published mart: {error}.")
        st.stop()
        return
    except (duckdb.Error, FileNotFoundError) as error:
        st.error(f"Could not read `{path}`: {error}")
        st.stop()
        return

    show_header(snapshot, path)
    show_money_at_risk(snapshot)
    show_reconciliation(snapshot)
    show_open_exceptions(snapshot)
    show_triage(path, key)
    show_quality(snapshot)
    order_ids = show_worst_orders(snapshot)

    st.subheader("Order drill-down")
    pick, lookup = st.columns([2, 1])
    picked = pick.selectbox("Order (one of the worst above)", order_ids, key="order")
    typed = lookup.text_input("…or any order id", key="order_lookup", placeholder="ORD-...") or ""
    typed = typed.strip()
    order_id = typed or picked
    if not order_id:
        return
    trail = loaders.load_order_trail(str(path), key, str(order_id))
    if trail.publication.key != snapshot.publication.key:
        # A publish landed between the two reads: start over so every panel shows the same mart.
        retries = int(st.session_state.get("_republished_retries", 0))
        if retries < 3:
            st.session_state["_republished_retries"] = retries + 1
            loaders.clear()
            st.rerun()
        st.warning("The mart is being republished: reload the page to see the latest one.")
    st.session_state["_republished_retries"] = 0
    show_order(trail)


main()
