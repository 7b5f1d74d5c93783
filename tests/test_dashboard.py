"""The BI dashboard against a real published serving file (no mocks).

The serving file is the one the session's `order-audit run` published from generated sample data, plus a
small hand-made mart with edge-case amounts published with the real `publish` (`dashboard_fixtures`). The
tests check that the figures the Streamlit app shows are exactly what SQL over that file gives, that
a real browser renders it, that an open dashboard reader neither blocks nor sees half of a new publish,
and that a DuckDB 1.4 reader can open the file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import launch
from dashboard.data import read_snapshot
from dashboard.money import format_amount, minor_unit, parse_amount
from dashboard.source import file_signature, open_reader
from orchestration.publish.serving import publish
from orchestration.settings import PROJECT_ROOT
from tests.conftest import PipelineEnv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboard_fixtures import BuiltMart, build_handmade_mart  # noqa: E402

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = PROJECT_ROOT / "test-artifacts" / "dashboard.png"
DUCKDB_14 = "duckdb==1.4.2"


@pytest.fixture(scope="module")
def mart(sample_pipeline: PipelineEnv) -> BuiltMart:
    """The serving file that `order-audit run` published from the session's sample data."""
    return BuiltMart(sample_pipeline.warehouse, sample_pipeline.serving_db, "pipeline", "order-audit run")


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> BuiltMart:
    """A small hand-made mart with data-quality results and edge-case amounts, published by `publish`."""
    return build_handmade_mart(tmp_path_factory.mktemp("dashboard_handmade"))


@pytest.fixture(params=["mart", "handmade"])
def any_mart(request: pytest.FixtureRequest) -> BuiltMart:
    return request.getfixturevalue(request.param)


def sql(path: Path, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """A query over the serving file through a plain read-only DuckDB connection (not the app's code)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def has_table(path: Path, table: str) -> bool:
    return bool(sql(path, "select 1 from information_schema.tables where table_name = ?", [table]))


def run_app(monkeypatch: pytest.MonkeyPatch, serving_db: Path) -> AppTest:
    monkeypatch.setenv("ORDER_AUDIT_SERVING_DB", str(serving_db))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The one dataframe on the page that has exactly these leading columns."""
    found = [d.value for d in at.dataframe if list(d.value.columns[: len(columns)]) == list(columns)]
    assert len(found) == 1, f"expected one table starting with {columns}, found {len(found)}"
    return found[0]


def utc(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


# --- what the app shows is what SQL says -------------------------------------------------------------


def test_overview_figures_equal_sql(any_mart: BuiltMart, monkeypatch: pytest.MonkeyPatch) -> None:
    db = any_mart.serving_db
    at = run_app(monkeypatch, db)
    shown = metrics(at)

    (orders,) = sql(db, "select count(*) from fact_order_audit")[0]
    assert orders > 0
    assert shown["Orders"] == f"{orders:,}"
    by_status = dict(sql(db, "select audit_status, count(*) from fact_order_audit group by 1"))
    for status, label in (("ok", "OK"), ("warning", "Warning"), ("exception", "Exception")):
        assert shown[label] == f"{by_status.get(status, 0):,}"
    (open_total,) = sql(db, "select count(*) from order_audit_exceptions where status = 'open'")[0]
    assert shown["Open exceptions"] == f"{open_total:,}"

    # Money at risk: per currency, |balance| rounded half away from zero to the minor unit, summed
    # exactly (computed here in Python, independently of the dashboard's SQL), shown as strings.
    totals: dict[str, Decimal] = {}
    for currency, balance in sql(db, "select currency, payment_balance_amount from fact_order_audit"):
        unit = Decimal(1).scaleb(-minor_unit(currency))
        totals[currency] = totals.get(currency, Decimal(0)) + abs(balance).quantize(unit, ROUND_HALF_UP)
    risk = sorted(totals.items())
    assert risk and any(amount > 0 for _, amount in risk)
    for currency, amount in risk:
        assert isinstance(amount, Decimal)
        text = shown[f"{currency} at risk"]
        assert parse_amount(text) == amount, (currency, text, amount)
        decimals = len(text.split(".")[1]) if "." in text else 0
        assert decimals >= minor_unit(currency) and "e" not in text.lower()
    risk_table = table_with(at, "currency", "money_at_risk")
    assert [
        (c, parse_amount(a)) for c, a in zip(risk_table["currency"], risk_table["money_at_risk"], strict=True)
    ] == [(c, a) for c, a in risk]

    # Open exceptions per code and owner.
    expected_open = sql(
        db,
        "select exception_code, owner_team, severity, count(*) from order_audit_exceptions where status = 'open'"
        " group by all order by 1, 2",
    )
    open_table = table_with(at, "exception_code", "owner_team", "severity", "open_exceptions")
    got_open = sorted(
        zip(
            open_table["exception_code"],
            open_table["owner_team"],
            open_table["severity"],
            open_table["open_exceptions"].astype(int),
            strict=True,
        )
    )
    assert got_open == [tuple(row) for row in expected_open]

    # Reconciliation status per day.
    daily = table_with(at, "order_date", "ok", "warning", "exception", "orders")
    expected_daily = sql(
        db,
        "select order_date, sum(orders) - sum(orders_with_exceptions), sum(orders_in_warning),"
        " sum(orders_in_exception), sum(orders) from agg_reconciliation_daily group by 1 order by 1",
    )
    got_daily = [
        (pd.Timestamp(d).date(), int(ok), int(w), int(e), int(n))
        for d, ok, w, e, n in daily.itertuples(index=False, name=None)
    ]
    assert got_daily == [tuple(int(v) if i else v for i, v in enumerate(row)) for row in expected_daily]
    assert sum(row[4] for row in got_daily) == orders

    # The audited as-of time and the publish time.
    run_id, published_at, as_of = sql(db, "select run_id, published_at, audited_as_of from publish_log")[0]
    header = " ".join(c.value for c in at.caption)
    assert utc(as_of) in header and utc(published_at) in header and run_id in header

    # Data quality over time, when the file has it.
    if has_table(db, "validation_results"):
        expected_runs = sql(
            db,
            "select run_id, count(*), count(*) filter (where success), count(*) filter (where not success)"
            " from validation_results group by run_id order by max(validated_at), run_id",
        )
        runs = table_with(at, "run_id", "validated_at", "expectations", "passed", "failed")
        assert [
            (r, int(n), int(p), int(f))
            for r, n, p, f in runs[["run_id", "expectations", "passed", "failed"]].values
        ] == [tuple(row) for row in expected_runs]
    else:
        assert any("no data-quality results" in i.value for i in at.info)


def test_worst_orders_ranking_equals_sql(any_mart: BuiltMart, monkeypatch: pytest.MonkeyPatch) -> None:
    db = any_mart.serving_db
    at = run_app(monkeypatch, db)
    shown = table_with(at, "order_id", "currency", "order_status", "audit_status", "exception_count")
    expected = sql(
        db,
        "select order_id, exception_count, payment_balance_amount, currency from fact_order_audit"
        " where exception_count > 0 or payment_balance_amount <> 0"
        " order by audit_status = 'exception' desc, exception_count desc, abs(payment_balance_amount) desc,"
        " order_id limit 25",
    )
    assert list(shown["order_id"]) == [row[0] for row in expected]
    assert list(shown["payment_balance"]) == [format_amount(row[2], row[3]) for row in expected]
    assert list(shown["exception_count"].astype(int)) == [row[1] for row in expected]

    currency = sql(db, "select currency from fact_order_audit group by 1 order by count(*) desc, 1 limit 1")[
        0
    ][0]
    at.radio(key="rank_by").set_value("balance").run()
    at.selectbox(key="worst_currency").set_value(currency).run()
    assert not at.exception
    by_balance = table_with(at, "order_id", "currency", "order_status", "audit_status", "exception_count")
    expected_balance = sql(
        db,
        "select order_id from fact_order_audit where currency = ? and (exception_count > 0 or payment_balance_amount <> 0)"
        " order by abs(payment_balance_amount) desc, exception_count desc, audit_status = 'exception' desc,"
        " order_id limit 25",
        [currency],
    )
    assert list(by_balance["order_id"]) == [row[0] for row in expected_balance]
    assert set(by_balance["currency"]) == {currency}


def test_drill_down_shows_the_orders_trail_in_sequence(
    any_mart: BuiltMart, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = any_mart.serving_db
    at = run_app(monkeypatch, db)
    picker = at.selectbox(key="order")
    options = list(picker.options)
    assert options and picker.value == options[0]
    # The listed order (other than the default) with the longest trail.
    order_id = sql(
        db,
        "select order_id from fct_order_audit_events where order_id in (select unnest(?))"
        " group by order_id order by count(*) desc, order_id limit 1",
        [options[1:] or options],
    )[0][0]
    picker.set_value(order_id).run()
    assert not at.exception

    events = table_with(at, "event_sequence", "event_at", "source_system", "event_type")
    expected = sql(
        db,
        "select event_sequence, event_id, event_type, amount, currency from fct_order_audit_events"
        " where order_id = ? order by event_sequence",
        [order_id],
    )
    assert len(expected) >= 3
    assert list(events["event_sequence"].astype(int)) == list(range(1, len(expected) + 1))
    assert list(events["event_id"]) == [row[1] for row in expected]
    assert list(events["event_type"]) == [row[2] for row in expected]
    assert list(events["amount"]) == [format_amount(row[3], row[4]) for row in expected]

    expected_exc = sql(
        db,
        "select exception_id, exception_code, status from order_audit_exceptions where order_id = ? order by 1",
        [order_id],
    )
    if expected_exc:
        exc = table_with(at, "exception_code", "severity", "owner_team", "status")
        assert (
            sorted(zip(exc["exception_id"], exc["exception_code"], exc["status"], strict=True))
            == expected_exc
        )
        assert list(exc["status"]) == sorted(exc["status"], key=lambda s: s != "open"), "open ones first"

    balance, currency = sql(
        db, "select payment_balance_amount, currency from fact_order_audit where order_id = ?", [order_id]
    )[0]
    assert metrics(at)[f"payment balance ({currency})"] == format_amount(balance, currency)
    assert any(order_id in md.value for md in at.markdown)

    # Any order can be looked up by id, also one that is not among the worst.
    other, n_events = sql(
        db,
        "select order_id, count(*) from fct_order_audit_events where order_id not in (select unnest(?))"
        " group by 1 order by 2 desc, 1 limit 1",
        [options],
    )[0]
    at.text_input(key="order_lookup").input(other).run()
    assert not at.exception
    events = table_with(at, "event_sequence", "event_at", "source_system", "event_type")
    assert list(events["event_id"]) == [
        row[0]
        for row in sql(
            db,
            "select event_id from fct_order_audit_events where order_id = ? order by event_sequence",
            [other],
        )
    ]
    assert len(events) == n_events
    at.text_input(key="order_lookup").input("NO-SUCH-ORDER").run()
    assert any("NO-SUCH-ORDER" in w.value for w in at.warning)


def test_triage_queue_per_owner_and_route_equals_sql(
    any_mart: BuiltMart, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = any_mart.serving_db
    at = run_app(monkeypatch, db)
    (owner, route) = sql(
        db,
        "select owner_team, route from order_audit_exceptions where workflow_state <> 'resolved'"
        " group by all order by count(*) desc, 1, 2 limit 1",
    )[0]
    for chosen_owner, chosen_route in ((None, None), (owner, None), (owner, route)):
        if chosen_owner:
            at.selectbox(key="triage_owner").set_value(chosen_owner).run()
        if chosen_route:
            at.selectbox(key="triage_route").set_value(chosen_route).run()
        assert not at.exception, [e.value for e in at.exception]
        where = "workflow_state <> 'resolved'" + "".join(
            f" and {column} = '{value}'"
            for column, value in (("owner_team", chosen_owner), ("route", chosen_route))
            if value
        )
        (active, past_sla, p1) = sql(
            db,
            "select count(*), count(*) filter (where sla_breached), count(*) filter (where priority = 'p1')"
            f" from order_audit_exceptions where {where}",
        )[0]
        shown = metrics(at)
        assert (shown["In the queue"], shown["Past SLA"], shown["P1 in the queue"]) == (
            f"{active:,}",
            f"{past_sla:,}",
            f"{p1:,}",
        )
        queue = table_with(at, "priority", "exception_code", "entity_id", "amount_at_risk")
        assert all(re.fullmatch(r"[0-9,.]+ [A-Z]{3}", amount) for amount in queue["amount_at_risk"] if amount)
        expected = sql(
            db,
            f"select exception_id from order_audit_exceptions where {where}"
            " order by priority nulls last, due_at nulls last, exception_code, entity_id limit 500",
        )
        assert list(queue["exception_id"]) == [row[0] for row in expected]
        ages = table_with(at, "priority", "0-1 days")
        assert int(ages["active"].sum()) == active
        money = table_with(at, "currency", "amount_at_risk", "exceptions")
        expected_money = sql(
            db,
            "select amount_at_risk_currency, sum(amount_at_risk) from order_audit_exceptions"
            f" where {where} and amount_at_risk > 0 group by 1 order by 1",
        )
        assert [
            (c, parse_amount(a)) for c, a in zip(money["currency"], money["amount_at_risk"], strict=True)
        ] == [(c, a) for c, a in expected_money]
    picked = at.selectbox(key="triage_exception").value
    history = table_with(at, "change_sequence", "changed_at", "change_type")
    assert list(history["change_type"]) == [
        row[0]
        for row in sql(
            db,
            "select change_type from order_audit_exception_history where exception_id = ? order by change_sequence",
            [picked],
        )
    ]
    assert any(f"order-audit exceptions ack {picked[:12]}" in code.value for code in at.code)


def test_quality_results_over_time(handmade: BuiltMart, monkeypatch: pytest.MonkeyPatch) -> None:
    db = handmade.serving_db
    at = run_app(monkeypatch, db)
    runs = table_with(at, "run_id", "validated_at", "expectations", "passed", "failed")
    assert [(r, int(f)) for r, f in runs[["run_id", "failed"]].values] == sql(
        db, "select run_id, count(*) filter (where not success) from validation_results group by 1 order by 1"
    )
    latest = sql(db, "select run_id from validation_results order by validated_at desc limit 1")[0][0]
    expected = sql(
        db,
        "select suite, expectation, asset, unexpected_count from validation_results"
        " where run_id = ? and not success order by 1, 2, 3",
        [latest],
    )
    if expected:
        failures = table_with(at, "suite", "expectation", "asset", "observed_value", "unexpected_count")
        got = [
            (a, b, c, int(d))
            for a, b, c, d in failures[["suite", "expectation", "asset", "unexpected_count"]].values
        ]
        assert got == expected
    else:
        assert any("Every expectation of the latest run passed" in s.value for s in at.success)


def test_serving_file_without_quality_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    older = build_handmade_mart(tmp_path, with_quality=False)
    assert not has_table(older.serving_db, "validation_results")
    at = run_app(monkeypatch, older.serving_db)
    assert any("no data-quality results" in i.value for i in at.info)
    (orders,) = sql(older.serving_db, "select count(*) from fact_order_audit")[0]
    assert metrics(at)["Orders"] == f"{orders:,}"


def test_no_serving_file_yet_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "serving" / "order_audit.duckdb"
    at = run_app(monkeypatch, missing)
    assert any("No published mart yet" in i.value and str(missing) in i.value for i in at.info)
    assert not at.metric and not at.dataframe


def test_a_file_that_is_not_a_published_mart_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_mart = tmp_path / "empty.duckdb"
    duckdb.connect(str(not_a_mart)).close()
    at = run_app(monkeypatch, not_a_mart)
    assert any("not a complete published mart" in e.value and "fact_order_audit" in e.value for e in at.error)
    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(b"this is not a database" * 512)
    at = run_app(monkeypatch, garbage)
    assert any("Could not read" in e.value for e in at.error)
    assert not at.metric


def test_amounts_are_formatted_exactly() -> None:
    assert format_amount(Decimal("8415.362000"), "USD") == "8,415.362"
    assert format_amount(Decimal("712516.800000"), "JPY") == "712,516.8"
    assert format_amount(Decimal("712516.000000"), "JPY") == "712,516"
    assert format_amount(Decimal("724.246000"), "KWD") == "724.246"
    assert format_amount(Decimal("-0.005000"), "EUR") == "-0.005"
    assert format_amount(Decimal("-0.000000"), "EUR") == "0.00"
    value = Decimal("1234567890123.123456")
    assert parse_amount(format_amount(value, "USD")) == value


# --- a real browser ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_dashboard(serving_db: Path, log_path: Path) -> Iterator[str]:
    """`streamlit run` the dashboard (as `dashboard.launch` does) on a free loopback port; its URL."""
    port = free_port()
    env = launch.environment()
    env["ORDER_AUDIT_SERVING_DB"] = str(serving_db)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            launch.command(port),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited {process.returncode}: {log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not become healthy in 60s: {log_path.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing: .ci/run must install Debian's chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")


def test_real_browser_renders_the_mart(mart: BuiltMart, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    (orders,) = sql(mart.serving_db, "select count(*) from fact_order_audit")[0]
    currency, at_risk = sql(
        mart.serving_db,
        "select currency, sum(abs(payment_balance_amount)) from fact_order_audit group by 1 order by 1 limit 1",
    )[0]
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    with serve_dashboard(mart.serving_db, tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            orders_metric = page.get_by_test_id("stMetric").filter(
                has=page.get_by_test_id("stMetricLabel").get_by_text("Orders", exact=True)
            )
            expect(orders_metric.get_by_test_id("stMetricValue")).to_have_text(f"{orders:,}", timeout=60_000)
            risk_metric = page.get_by_test_id("stMetric").filter(
                has=page.get_by_test_id("stMetricLabel").get_by_text(f"{currency} at risk", exact=True)
            )
            expect(risk_metric.get_by_test_id("stMetricValue")).to_have_text(
                format_amount(at_risk, currency), timeout=30_000
            )
            expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=30_000)
            expect(page.get_by_test_id("stException")).to_have_count(0)
            # Streamlit scrolls inside its main block, not the document: grow the viewport to show it all.
            height = page.get_by_test_id("stMain").evaluate("main => main.scrollHeight")
            page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height) + 50, 12_000))})
            page.wait_for_timeout(1500)  # let the charts finish drawing before the picture
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000


# --- publishing while the dashboard reads -----------------------------------------------------------


def mart_state(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    tables = (
        "fact_order_audit",
        "order_audit_exceptions",
        "fct_order_audit_events",
        "agg_reconciliation_daily",
    )
    state: dict[str, Any] = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in tables}
    state["run_id"] = con.execute("select run_id from publish_log").fetchall()[0][0]
    state["money_at_risk"] = con.execute(
        "select currency, sum(abs(payment_balance_amount)) from fact_order_audit group by 1 order by 1"
    ).fetchall()
    state["agg_orders"] = con.execute("select sum(orders) from agg_reconciliation_daily").fetchall()[0][0]
    return state


def test_open_reader_neither_blocks_nor_sees_a_new_publish(mart: BuiltMart, tmp_path: Path) -> None:
    serving = tmp_path / "serving" / "order_audit.duckdb"
    serving.parent.mkdir()
    shutil.copy2(mart.serving_db, serving)
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy2(mart.warehouse, warehouse)
    # The next publish differs from the one on disk: the order with the largest balance is gone.
    con = duckdb.connect(str(warehouse))
    try:
        gone, day, currency = con.execute(
            "select order_id, cast(order_created_at as date), currency from main.fact_order_audit"
            " order by abs(payment_balance_amount) desc, order_id limit 1"
        ).fetchall()[0]
        con.execute(
            "update main.agg_reconciliation_daily set orders = orders - 1 where order_date = ? and currency = ?",
            [day, currency],
        )
        for table in ("fact_order_audit", "fct_order_audit_events", "order_audit_exceptions"):
            con.execute(f"delete from main.{table} where order_id = ?", [gone])
    finally:
        con.close()

    before = file_signature(serving)
    with open_reader(serving) as old_reader:
        old = mart_state(old_reader)
        old_snapshot = read_snapshot(old_reader)
        result = publish(warehouse, serving, "dashboard-test-republish")  # must not wait for the reader
        assert (
            result.serving_db == serving
            and result.row_counts["fact_order_audit"] == old["fact_order_audit"] - 1
        )
        assert file_signature(serving) != before
        # The open reader still reads the old mart, whole and unchanged.
        assert mart_state(old_reader) == old
        assert read_snapshot(old_reader).order_count == old_snapshot.order_count == old["agg_orders"]
        # A new reader, opened while the old one is still open, sees the new mart.
        with open_reader(serving) as new_reader:
            new = mart_state(new_reader)
            new_snapshot = read_snapshot(new_reader)
    assert new["run_id"] == "dashboard-test-republish" != old["run_id"]
    assert new["fact_order_audit"] == old["fact_order_audit"] - 1 == new["agg_orders"]
    assert new_snapshot.order_count == new["fact_order_audit"]
    assert gone not in set(new_snapshot.worst_orders["order_id"])
    assert new["money_at_risk"] != old["money_at_risk"]
    # And after the old reader is gone, a reader still sees the new one.
    with open_reader(serving) as reader:
        assert mart_state(reader) == new


# --- DuckDB 1.4 readers --------------------------------------------------------------------------------

READ_WITH_14 = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
out = {
    "version": duckdb.__version__,
    "orders": con.execute("select count(*) from fact_order_audit").fetchall()[0][0],
    "events": con.execute("select count(*) from fct_order_audit_events").fetchall()[0][0],
    "money_at_risk": [
        [c, str(a)] for c, a in con.execute(
            "select currency, sum(abs(payment_balance_amount)) from fact_order_audit group by 1 order by 1"
        ).fetchall()
    ],
    "run_id": con.execute("select run_id from publish_log").fetchall()[0][0],
}
con.close()
print(json.dumps(out))
"""


def uv_command() -> list[str]:
    """`python3 -m uv` (as CI installs it), else this interpreter's uv, else a `uv` on PATH."""
    candidates = [[p, "-m", "uv"] for p in (shutil.which("python3"), sys.executable) if p]
    if shutil.which("uv"):
        candidates.append([str(shutil.which("uv"))])
    for candidate in candidates:
        probe = subprocess.run([*candidate, "--version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return candidate
    pytest.fail("uv is not available (tried `python3 -m uv`, `python -m uv`, `uv`): pip install uv")


def test_duckdb_14_reader_opens_the_serving_file(mart: BuiltMart, tmp_path: Path) -> None:
    uv = uv_command()
    venv = tmp_path / "duckdb14"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    steps = [
        [*uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [*uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), DUCKDB_14],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, env=env, timeout=240, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"setting up a {DUCKDB_14} venv timed out: {' '.join(step)}")
        if done.returncode != 0:
            pytest.fail(
                f"could not set up a {DUCKDB_14} venv (is PyPI reachable?): {' '.join(step)} exited"
                f" {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
    read = subprocess.run(
        [str(venv / "bin" / "python"), "-c", READ_WITH_14, str(mart.serving_db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert read.returncode == 0, f"DuckDB 1.4 could not read {mart.serving_db}:\n{read.stderr}"
    got = json.loads(read.stdout)
    assert got["version"].startswith("1.4.")
    con = duckdb.connect(str(mart.serving_db), read_only=True)
    try:
        assert got["orders"] == con.execute("select count(*) from fact_order_audit").fetchall()[0][0] > 0
        assert got["events"] == con.execute("select count(*) from fct_order_audit_events").fetchall()[0][0]
        money = con.execute(
            "select currency, sum(abs(payment_balance_amount)) from fact_order_audit group by 1 order by 1"
        ).fetchall()
        assert [(c, Decimal(a)) for c, a in got["money_at_risk"]] == money
        assert got["run_id"] == con.execute("select run_id from publish_log").fetchall()[0][0]
    finally:
        con.close()
