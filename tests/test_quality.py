"""GX suites on a real warehouse: every blocking expectation passes on the clean build and fails with
the right unexpected count on a corrupted copy; GX computes real values (the GX patch); the Dagster checks block
and record their results. Real DuckDB files, real GX, real dbt, no mocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, AssetSelection, AssetSpec, Definitions, define_asset_job
from dagster_duckdb import DuckDBResource
from quality_fixtures import build_warehouse, corrupted_copy, query

from orchestration.ingest.sources import ORDER_STATUSES
from orchestration.quality.checks import build_quality_checks
from orchestration.quality.config import ThresholdLimits
from orchestration.quality.launcher import prewarm, validate_in_subprocess
from orchestration.quality.resource import GxValidator
from orchestration.quality.results import RESULTS_DDL, ExpectationOutcome, all_passed_since
from orchestration.quality.runner import ALL_ROWS, NEW_FILES, NEW_LOADS, raw_scope, validate
from orchestration.quality.suites import ExpectationSpec, load_specs

SPECS = load_specs()
BY_NAME = {spec.name: spec for spec in SPECS}
BLOCKING = {spec.name for spec in SPECS if spec.blocking}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("quality"))


def run(
    warehouse: Path,
    names: Sequence[str],
    limits: ThresholdLimits | None = None,
    loaded_after: datetime | None = None,
    extra_specs: Sequence[ExpectationSpec] = (),
) -> dict[str, ExpectationOutcome]:
    limits = limits or ThresholdLimits.load()
    known = {spec.name for spec in extra_specs}
    report = validate(
        warehouse,
        [*load_specs(only=[name for name in names if name not in known]), *extra_specs],
        suite_parameters=limits.suite_parameters(),
        sql_parameters=limits.sql_parameters(),
        run_id="test",
        stage="test",
        loaded_after=loaded_after,
    )
    return report.by_name()


def assert_computed(outcome: ExpectationOutcome) -> None:
    """Not N/A: GX computed the metrics (no exception) and reports a real observed value."""
    assert outcome.exception is None, f"{outcome.expectation}: {outcome.exception}"
    assert outcome.observed_value is not None, outcome.expectation
    if isinstance(outcome.observed_value, dict):
        assert isinstance(outcome.observed_value["element_count"], int), outcome
    if outcome.severity == "ERROR":
        assert isinstance(outcome.unexpected_count, int), outcome


def assert_fails(outcomes: dict[str, ExpectationOutcome], expected: dict[str, int]) -> None:
    for name, count in expected.items():
        outcome = outcomes[name]
        assert_computed(outcome)
        assert (outcome.success, outcome.unexpected_count) == (count == 0, count), (
            f"{name}: expected {count} unexpected, got {outcome.unexpected_count} "
            f"(sample {outcome.unexpected_sample})"
        )
        if count:
            assert 0 < len(outcome.unexpected_sample) <= min(count, 10)


# ------------------------------------------------------------------ the patch and the clean warehouse


def test_gx_computes_real_values_on_the_warehouse(clean: Path) -> None:
    """With `gx_patch` (GX issue 11579; tests/test_workarounds.py shows it is still needed) GX reads
    the rows: real counts, no N/A."""
    names = [
        "raw_orders_status_accepted",
        "raw_orders_line_unique_per_file",
        "fact_has_every_current_order_once",
    ]
    patched = run(clean, names, extra_specs=[STATUS_ACCEPTED])
    raw_orders = query_raw_orders(clean)
    assert patched["raw_orders_status_accepted"].observed_value["element_count"] == raw_orders
    for outcome in patched.values():
        assert_computed(outcome)
        assert outcome.success


def query_raw_orders(warehouse: Path) -> int:
    # A fresh copy: this process already holds `warehouse` open read-only through GX.
    copy = corrupted_copy(warehouse, warehouse.with_name("count.duckdb"), [])
    return int(query(copy, "select count(*) from raw.orders")[0][0])  # type: ignore[call-overload]


def test_every_expectation_passes_on_the_clean_warehouse(clean: Path) -> None:
    outcomes = run(clean, [spec.name for spec in SPECS])
    assert len(outcomes) == len(SPECS) > 20
    for outcome in outcomes.values():
        assert_computed(outcome)
        assert outcome.success, (
            f"{outcome.expectation}: {outcome.unexpected_sample or outcome.observed_value}"
        )
    assert 0 < outcomes["exception_share_under_limit"].observed_value < 1


# ------------------------------------------------------------------ column-level expectations, generically


def _specs_of(expectation_type: str) -> list[ExpectationSpec]:
    return [s for s in SPECS if s.type == expectation_type and s.blocking]


# Each landing line in raw once: SQL checks (`raw_structure.yml`), one per raw table.
LINE_UNIQUENESS = [s for s in SPECS if s.name.startswith("raw_") and "_unique_per_" in s.name]


def _table(spec: ExpectationSpec) -> str:
    assert spec.batch.table is not None
    return spec.batch.table


def test_uniqueness_expectations_count_both_duplicated_rows(clean: Path, tmp_path: Path) -> None:
    specs = _specs_of("expect_column_values_to_be_unique") + LINE_UNIQUENESS
    assert len(LINE_UNIQUENESS) == 6
    tables = sorted({_table(s) for s in specs})
    # One whole row duplicated per table duplicates every key of that table once.
    statements = [
        f"insert into {t} select * from {t} where rowid = (select min(rowid) from {t})" for t in tables
    ]
    copy = corrupted_copy(clean, tmp_path / "duplicates.duckdb", statements)
    assert_fails(run(copy, [s.name for s in specs]), {s.name: 2 for s in specs})


# ------------------------------------------------------------------ row-level SQL expectations, by scenario

# A succeeded capture in its order's currency, delivered once, attributed to a clean order.
ATTRIBUTED_CAPTURE = """
    select p.payment_id from raw.payments as p
    inner join main.fact_order_audit as f on f.order_id = trim(p.order_id) and f.currency = p.currency
    where p.status = 'succeeded' and p.event_type = 'capture' and cast(p.amount as decimal(18, 6)) > 0
      and (select count(*) from raw.payments as q where q.payment_id = p.payment_id) = 1
    order by p.payment_id limit 1
"""
SHIPMENT_OF_CLEAN_ORDER = """
    select m.movement_id from raw.inventory_movements as m
    inner join main.fact_order_audit as f on f.order_id = trim(m.order_id)
    where m.movement_type = 'shipment'
      and (select count(*) from raw.inventory_movements as q where q.movement_id = m.movement_id) = 1
    order by m.movement_id limit 1
"""
# An order with one version, a capture, no refund, a shipment and no return.
PLAIN_ORDER = """
    select f.order_id from main.fact_order_audit as f
    where f.captured_amount > 0 and f.psp_refunded_amount = 0
      and f.units_shipped > 0 and f.units_returned = 0 and f.exception_codes = ''
    order by f.order_id limit 1
"""
# An order delivered in one raw row (one version, delivered once).
ONE_ROW_ORDER = """
    select trim(order_id) from raw.orders group by trim(order_id) having count(*) = 1 order by 1 limit 1
"""
FIRST_PAYMENTS_FILE = "(select min(file_name) from raw.load_manifest where source = 'payments')"

# Expected counts that depend on the generated data: how many (currency, type) and (currency, day,
# type) keys the succeeded orphan payments fall in, and how many movement types the orphan movements have.
ORPHAN_PAYMENT_KEYS = """
    select count(distinct (p.currency, p.event_type)) from staging.stg_psp__payments as p
    inner join main.order_audit_exceptions as x on x.entity_id = p.payment_id and x.exception_code = 'ORPHAN_PAYMENT'
    where p.payment_status = 'succeeded' and p.event_type in ('capture', 'refund') and p.amount > 0
"""
ORPHAN_PAYMENT_DAY_KEYS = ORPHAN_PAYMENT_KEYS.replace(
    "(p.currency, p.event_type)", "(p.currency, cast(p.processed_at as date), p.event_type)"
)
ORPHAN_MOVEMENT_TYPES = """
    select count(distinct m.movement_type) from staging.stg_wms__inventory_movements as m
    inner join main.order_audit_exceptions as x on x.entity_id = m.movement_id and x.exception_code = 'ORPHAN_MOVEMENT'
    where m.movement_type in ('shipment', 'return') and m.quantity > 0
"""

SCENARIOS: list[tuple[str, list[str], dict[str, int | str]]] = [
    (
        "dropped_raw_payment",
        [f"delete from raw.payments where payment_id = ({ATTRIBUTED_CAPTURE})"],
        {
            "raw_payments_rows_conserved": 1,
            "money_conserved_per_currency": 1,
            "money_conserved_per_currency_day": 1,
        },
    ),
    (
        "decision_loaded_but_never_applied",
        [
            "insert into raw.decisions (load_id, source_file, extract_date, line_number, decision_id, exception_id,"
            " action, decided_by, decided_at) values ('l', 'decisions_2026-12-01_x.jsonl', date '2026-12-01', 1,"
            " 'DEC-LOST', 'x', 'ack', 'ana', '2026-12-01T10:00:00Z')"
        ],
        {"decisions_recorded_once": 1},
    ),
    (
        "dropped_raw_shipment",
        [f"delete from raw.inventory_movements where movement_id = ({SHIPMENT_OF_CLEAN_ORDER})"],
        {"raw_inventory_movements_rows_conserved": 1, "units_conserved": 1},
    ),
    (
        "dropped_raw_order_version",
        [
            f"create temp table gone as select o.source_file, o.line_number from raw.orders as o "
            f"where trim(o.order_id) = ({ONE_ROW_ORDER})",
            "delete from raw.order_lines as l using gone "
            "where l.source_file = gone.source_file and l.line_number = gone.line_number",
            "delete from raw.orders as o using gone "
            "where o.source_file = gone.source_file and o.line_number = gone.line_number",
        ],
        {"raw_orders_rows_conserved": 1, "fact_has_every_current_order_once": 1},
    ),
    (
        "order_without_lines_and_lines_without_order",
        [
            "create temp table lined as select source_file, line_number, row_number() over (order by source_file, line_number) as k "
            "from (select source_file, line_number from raw.order_lines group by all having count(*) = 2 "
            "order by all limit 2)",
            "delete from raw.order_lines as l using lined where lined.k = 1 "
            "and l.source_file = lined.source_file and l.line_number = lined.line_number",
            "delete from raw.orders as o using lined where lined.k = 2 "
            "and o.source_file = lined.source_file and o.line_number = lined.line_number",
        ],
        {"raw_orders_have_lines": 1, "raw_order_lines_belong_to_an_order": 2},
    ),
    (
        "manifest_miscounts",
        [
            "insert into raw.inventory_levels select * replace ('inventory_levels_2099-01-01.csv' as source_file) "
            "from raw.inventory_levels where rowid = (select min(rowid) from raw.inventory_levels)",
            "update raw.load_manifest set rows_read = rows_read + 1 where file_name = "
            "(select min(file_name) from raw.load_manifest where source = 'inventory_levels')",
            # one file: rows_read no longer adds up, and the quarantine has fewer rows than recorded
            "update raw.load_manifest set rows_quarantined = rows_quarantined + 1 where file_name = "
            "(select min(file_name) from raw.load_manifest where source = 'products')",
        ],
        {"raw_inventory_levels_rows_conserved": 2, "raw_products_rows_conserved": 2},
    ),
    (
        "manifest_history_only_latest_loaded_delivery_counts",
        [
            # an older delivery, and later rejected / duplicate deliveries, of the same file: all ignored
            f"insert into raw.load_manifest select * replace (loaded_at - interval 1 day as loaded_at, 999 as rows_read, "
            f"999 as rows_loaded, 0 as rows_quarantined) from raw.load_manifest where file_name = {FIRST_PAYMENTS_FILE}",
            f"insert into raw.load_manifest select * replace (loaded_at + interval 1 day as loaded_at, 'rejected' as status, "
            f"0 as rows_read, 0 as rows_loaded, 0 as rows_quarantined) from raw.load_manifest where file_name = {FIRST_PAYMENTS_FILE} "
            "and rows_loaded <> 999",
        ],
        {"raw_payments_rows_conserved": 0},
    ),
    (
        "manifest_replacement_with_wrong_count",
        [
            f"insert into raw.load_manifest select * replace (loaded_at + interval 1 day as loaded_at, 'replaced' as status, "
            f"rows_read - 1 as rows_read, rows_loaded - 1 as rows_loaded) from raw.load_manifest "
            f"where file_name = {FIRST_PAYMENTS_FILE}",
        ],
        {"raw_payments_rows_conserved": 1},
    ),
    (
        "changed_fact_amount",
        [
            f"update main.fact_order_audit set captured_amount = captured_amount + 0.01 where order_id = ({PLAIN_ORDER})"
        ],
        {"fact_amounts_consistent": 1, "money_conserved_per_currency": 1, "units_conserved": 0},
    ),
    (
        "duplicated_fact_row",
        [
            f"insert into main.fact_order_audit select * from main.fact_order_audit where order_id = ({PLAIN_ORDER})"
        ],
        {
            "fact_has_every_current_order_once": 1,
            "money_conserved_per_currency": 1,
            "units_conserved": 1,
            "fact_exception_codes_match_register": 0,
        },
    ),
    (
        "wrong_exception_codes",
        [
            # codes out of byte order on an order with several codes; codes dropped on another order
            "update main.fact_order_audit set exception_codes = array_to_string(list_reverse("
            "string_split(exception_codes, ',')), ',') where order_id = "
            "(select min(order_id) from main.fact_order_audit where exception_count >= 2)",
            "update main.fact_order_audit set exception_codes = '' where order_id = "
            "(select min(order_id) from main.fact_order_audit where exception_count = 1)",
        ],
        {"fact_exception_codes_match_register": 2, "fact_audit_status_matches_severities": 0},
    ),
    (
        "wrong_audit_status",
        [
            "update main.fact_order_audit set audit_status = 'ok' where order_id = "
            "(select min(order_id) from main.fact_order_audit where audit_status = 'exception')",
            "update main.fact_order_audit set audit_status = 'warning' where order_id = "
            "(select min(order_id) from main.fact_order_audit where audit_status = 'ok')",
        ],
        {"fact_audit_status_matches_severities": 2, "fact_exception_codes_match_register": 0},
    ),
    (
        "register_rows_off_catalog_and_lifecycle",
        [
            "update main.order_audit_exceptions set severity = 'warning' where exception_id = "
            "(select min(exception_id) from main.order_audit_exceptions where severity = 'error')",
            # rows of warning codes, so never the row changed above: a code off the catalog, a wrong source
            "update main.order_audit_exceptions set exception_code = 'NOT_A_RULE' where exception_id = "
            "(select min(exception_id) from main.order_audit_exceptions where exception_code = 'FULFILLMENT_DELAYED')",
            "update main.order_audit_exceptions set source_system = 'psp' where exception_id = "
            "(select min(exception_id) from main.order_audit_exceptions where exception_code = 'PRICE_MISMATCH')",
            "update main.order_audit_exceptions set resolved_at = last_detected_at where exception_id = "
            "(select max(exception_id) from main.order_audit_exceptions where status = 'open')",
        ],
        {"exceptions_match_code_catalog": 3, "exceptions_lifecycle_consistent": 1},
    ),
    (
        "dropped_payment_event_from_trail",
        [
            "delete from main.fct_order_audit_events where event_id = (select min(e.event_id) "
            "from main.fct_order_audit_events as e inner join main.fact_order_audit as f using (order_id) "
            "where e.event_type = 'payment_capture' and e.status = 'succeeded' and e.currency = f.currency "
            "and e.amount > 0 and e.event_sequence < (select max(event_sequence) from main.fct_order_audit_events "
            "as n where n.order_id = e.order_id))",
        ],
        {"money_conserved_per_currency_day": 1, "events_belong_to_audited_orders": 1},
    ),
    (
        "orphan_payments_no_longer_registered",
        [
            "update main.order_audit_exceptions set status = 'resolved', resolved_at = last_detected_at "
            "where exception_code = 'ORPHAN_PAYMENT' and entity_id in (select payment_id from "
            "staging.stg_psp__payments where payment_status = 'succeeded' and event_type in ('capture', 'refund'))",
        ],
        {
            "money_conserved_per_currency": ORPHAN_PAYMENT_KEYS,
            "money_conserved_per_currency_day": ORPHAN_PAYMENT_DAY_KEYS,
        },
    ),
    (
        "orphan_movements_no_longer_registered",
        [
            "delete from main.order_audit_exceptions where exception_code = 'ORPHAN_MOVEMENT' and entity_id in "
            "(select movement_id from staging.stg_wms__inventory_movements where movement_type in ('shipment', 'return'))",
        ],
        {"units_conserved": ORPHAN_MOVEMENT_TYPES},
    ),
]


@pytest.mark.parametrize(
    ("statements", "expected"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS]
)
def test_sql_expectation_fails_with_the_right_count(
    clean: Path, tmp_path: Path, statements: list[str], expected: dict[str, int | str]
) -> None:
    counts = {name: count for name, count in expected.items() if isinstance(count, int)}
    if len(counts) < len(expected):  # counts that depend on the data, read from an untouched copy
        reference = corrupted_copy(clean, tmp_path / "reference.duckdb", [])
        for name, count in expected.items():
            if isinstance(count, str):
                counts[name] = int(query(reference, count)[0][0])  # type: ignore[call-overload]
    assert all(counts[name] > 0 for name, count in expected.items() if isinstance(count, str)), counts
    copy = corrupted_copy(clean, tmp_path / "corrupted.duckdb", statements)
    assert_fails(run(copy, list(counts)), counts)


def test_every_blocking_expectation_is_shown_to_fail() -> None:
    generic = {s.name for s in [*_specs_of("expect_column_values_to_be_unique"), *LINE_UNIQUENESS]}
    by_scenario = {name for _, _, expected in SCENARIOS for name, count in expected.items() if count != 0}
    assert BLOCKING - generic - by_scenario == set()
    assert {s.severity for s in SPECS if s.suite == "thresholds"} == {"warning"}


def test_no_expectation_restates_a_loader_rule_or_a_dbt_contract() -> None:
    """Required fields and enums are the loader's row rules (raw) and the marts' enforced contracts and
    dbt tests: GX keeps what they cannot state, and says what in `meta.protects`."""
    column_checks = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set"}
    assert [s.name for s in SPECS if s.type in column_checks] == []
    assert all(s.protects.strip() for s in SPECS)
    uniqueness = [s for s in SPECS if s.type.endswith("_to_be_unique")] + LINE_UNIQUENESS
    assert {s.batch.table.split(".")[0] for s in uniqueness if s.batch.table} == {"raw"}


# ------------------------------------------------------------------ thresholds (WARN)


def test_thresholds_warn_with_the_observed_values(clean: Path) -> None:
    limits = ThresholdLimits(max_exception_share=0.01, max_abs_balance_default=Decimal("1"))
    outcomes = run(clean, ["exception_share_under_limit", "abs_balance_per_currency_under_limit"], limits)
    share = outcomes["exception_share_under_limit"]
    assert_computed(share)
    assert not share.success and share.severity == "WARN" and share.observed_value > 0.01
    balance = outcomes["abs_balance_per_currency_under_limit"]
    assert_computed(balance)
    assert not balance.success and balance.severity == "WARN" and balance.unexpected_count
    for row in balance.unexpected_sample:
        assert Decimal(row["abs_balance_amount"]) > Decimal(row["max_abs_balance_amount"]) == 1


def test_threshold_limits_from_file_and_environment(tmp_path: Path) -> None:
    defaults = ThresholdLimits.load(env={})
    assert 0 < defaults.max_exception_share < 1 and defaults.max_abs_balance_by_currency["JPY"] > 0
    env = {
        "ORDER_AUDIT_MAX_EXCEPTION_SHARE": "0.5",
        "ORDER_AUDIT_MAX_ABS_BALANCE": "12.5",
        "ORDER_AUDIT_MAX_ABS_BALANCE_EUR": "7",
    }
    limits = ThresholdLimits.load(env=env)
    assert limits.max_exception_share == 0.5
    assert limits.max_abs_balance_default == Decimal("12.5")
    assert limits.max_abs_balance_by_currency["EUR"] == Decimal("7")
    assert "('EUR', cast('7' as decimal(38, 6)))" in limits.sql_parameters()["abs_balance_limits"]
    with pytest.raises(ValueError):
        ThresholdLimits.load(env={"ORDER_AUDIT_MAX_EXCEPTION_SHARE": "2"})


# ------------------------------------------------------------------ raw validation scoped to new loads


# A row-local raw expectation, as the scoping reads it (the suites keep none: the loader's row rules
# already guarantee required fields and enums).
STATUS_ACCEPTED = replace(
    BY_NAME["raw_orders_have_lines"],
    name="raw_orders_status_accepted",
    type="expect_column_values_to_be_in_set",
    kwargs={"column": "status", "value_set": list(ORDER_STATUSES)},
)


def test_raw_validation_can_read_only_the_newest_loads(clean: Path, tmp_path: Path) -> None:
    """Orders loaded in two loads (the last extract date a day after the others), a bad status and an
    order without lines in each, and an old row copied into the newer load: everything is found when
    every raw row is read; reading after the older load, the newer load's bad status and order without
    lines are found, the older ones are not, and the duplicate across loads still is (the whole file
    of the copied row is read)."""
    last_day = "(select max(extract_date) from raw.orders)"
    older = "extract_date < " + last_day
    first_older_file = "(select min(source_file) from raw.orders where load_id = 'older')"
    last_older_file = "(select max(source_file) from raw.orders where load_id = 'older')"
    copy = corrupted_copy(
        clean,
        tmp_path / "scoped.duckdb",
        [
            f"update raw.load_manifest set load_id = 'older', loaded_at = loaded_at - interval 1 day"
            f" where source = 'orders' and {older}",
            f"update raw.orders set load_id = 'older' where {older}",
            f"update raw.order_lines set load_id = 'older' where {older}",
            # in each load: a bad status and an order version whose lines are gone (the older one in
            # a file the newer load does not touch)
            "update raw.orders set status = 'lost' where rowid in"
            f" (select min(rowid) from raw.orders where load_id <> 'older' or source_file = {first_older_file}"
            "  group by load_id = 'older')",
            "delete from raw.order_lines where (source_file, line_number) in"
            " (select (source_file, max(line_number)) from raw.orders"
            f"  where load_id <> 'older' or source_file = {first_older_file}"
            "  group by load_id = 'older', source_file"
            f"  having source_file = {first_older_file} or source_file = (select max(source_file) from raw.orders))",
            # an old row copied into the newer load: a duplicate (file, line) that spans two loads
            "insert into raw.orders select * replace ((select max(load_id) from raw.orders where load_id <> 'older') as load_id)"
            f" from raw.orders where rowid = (select max(rowid) from raw.orders where source_file = {last_older_file})",
        ],
    )
    older_loaded_at, raw_rows, newer_rows, untouched_file, two_older_files = query(
        copy,
        "select (select max(loaded_at) from raw.load_manifest where load_id = 'older'),"
        " (select count(*) from raw.orders), (select count(*) from raw.orders where load_id <> 'older'),"
        f" {first_older_file}, {first_older_file} < {last_older_file}",
    )[0]
    assert two_older_files
    names = ["raw_orders_status_accepted", "raw_orders_line_unique_per_file", "raw_orders_have_lines"]
    everything = run(copy, names, extra_specs=[STATUS_ACCEPTED])
    assert_fails(
        everything,
        {"raw_orders_status_accepted": 2, "raw_orders_line_unique_per_file": 2, "raw_orders_have_lines": 2},
    )
    assert everything["raw_orders_status_accepted"].observed_value["element_count"] == raw_rows
    scoped = run(copy, names, loaded_after=older_loaded_at, extra_specs=[STATUS_ACCEPTED])
    # Row-local checks read the newer load; per-file checks read the files it wrote to, all of them:
    # the duplicate's first copy is a row of the older load, in a file the newer load wrote to.
    assert_fails(
        scoped,
        {"raw_orders_status_accepted": 1, "raw_orders_line_unique_per_file": 2, "raw_orders_have_lines": 1},
    )
    assert scoped["raw_orders_status_accepted"].observed_value["element_count"] == newer_rows < raw_rows
    duplicated = scoped["raw_orders_line_unique_per_file"].unexpected_sample
    assert len(duplicated) == 2 and duplicated[0] == duplicated[1]
    (missing_lines,) = scoped["raw_orders_have_lines"].unexpected_sample
    assert missing_lines["source_file"] != untouched_file


def test_raw_scope_of_every_expectation() -> None:
    """Row-local raw checks read new loads, per-file ones the files new loads wrote, the rest all rows."""
    scopes = {spec.name: raw_scope(spec) for spec in [*load_specs(), STATUS_ACCEPTED]}
    assert scopes["raw_orders_status_accepted"] == NEW_LOADS
    assert (
        scopes["raw_orders_line_unique_per_file"] == scopes["raw_order_lines_belong_to_an_order"] == NEW_FILES
    )
    assert scopes["raw_payments_rows_conserved"] == scopes["fact_amounts_consistent"] == ALL_ROWS
    assert {scope for name, scope in scopes.items() if not name.startswith("raw_")} == {ALL_ROWS}
    (per_file,) = load_specs(only=["raw_orders_have_lines"])
    assert raw_scope(replace(per_file, meta={**per_file.meta, "raw_scope": "all_rows"})) == ALL_ROWS


def test_all_passed_since_is_the_oldest_last_pass() -> None:
    con = duckdb.connect()
    con.execute("create schema quality")
    assert all_passed_since(con, ["a"]) is None  # no results table yet
    con.execute(RESULTS_DDL)
    rows = [
        ("a", True, "2026-11-01 10:00"),
        ("a", False, "2026-11-02 10:00"),
        ("b", True, "2026-11-03 10:00"),
    ]
    for expectation, success, at in rows:
        con.execute(
            "insert into quality.validation_results values ('r', 'raw', 's', ?, 't', 'raw/orders', 'ERROR', ?,"
            " null, null, null, null, ?)",
            [expectation, success, at],
        )
    assert all_passed_since(con, ["a", "b"]) == datetime(2026, 11, 1, 10)  # a's failure keeps its loads in
    assert all_passed_since(con, ["b"]) == datetime(2026, 11, 3, 10)
    assert all_passed_since(con, ["a", "never_ran"]) is None  # one never passed: read everything


# ------------------------------------------------------------------ the child process


def test_validation_child_gets_the_callers_environment_and_can_time_out(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prewarm()  # the fork server starts with the environment as it is now...
    monkeypatch.setenv("ORDER_AUDIT_MAX_EXCEPTION_SHARE", "0")  # ...and the child must see this
    specs = load_specs(only=["exception_share_under_limit"])
    launch = validate_in_subprocess(clean, specs, run_id="t", stage="mart", build_docs=False)
    assert launch.returncode == 0, launch.stderr  # a WARN expectation failing does not fail the stage
    assert launch.report.parameters["suite_parameters"]["max_exception_share"] == 0.0
    (outcome,) = launch.report.outcomes
    assert not outcome.success and outcome.observed_value > 0

    late = validate_in_subprocess(
        clean, specs, run_id="t", stage="mart", build_docs=False, timeout_seconds=0.001
    )
    assert late.returncode is None
    assert not late.report.outcomes[0].success and "timed out" in (late.report.outcomes[0].exception or "")


# ------------------------------------------------------------------ Dagster: blocking checks and the results table


def test_dagster_checks_block_record_and_build_docs(
    clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "gx_docs"
    monkeypatch.setenv("ORDER_AUDIT_GX_DOCS_DIR", str(docs))
    copy = corrupted_copy(
        clean,
        tmp_path / "dagster.duckdb",
        [
            "insert into raw.orders select * from raw.orders where rowid = (select min(rowid) from raw.orders)",
            f"insert into main.fact_order_audit select * from main.fact_order_audit where order_id = ({PLAIN_ORDER})",
        ],
    )
    assets = sorted({spec.asset for spec in SPECS})
    defs = Definitions(
        assets=[AssetSpec(AssetKey(list(asset))) for asset in assets],
        asset_checks=build_quality_checks(),
        jobs=[define_asset_job("quality_only", selection=AssetSelection.all_asset_checks())],
        resources={"warehouse": DuckDBResource(database=str(copy)), "gx": GxValidator()},
    )
    result = defs.resolve_job_def("quality_only").execute_in_process(raise_on_error=False)
    assert not result.success  # blocking ERROR checks failed: the steps fail

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {spec.check_name for spec in SPECS}
    failed = {name for name, e in evaluations.items() if not e.passed}
    # The duplicated raw line breaks the file's line uniqueness and its row count; the duplicated fact
    # row breaks conservation, and doubles the order's events where the trail is joined to the fact.
    raw_failed = {"gx_raw_orders_line_unique_per_file", "gx_raw_orders_rows_conserved"}
    assert failed == raw_failed | {
        "gx_fact_has_every_current_order_once",
        "gx_money_conserved_per_currency",
        "gx_units_conserved",
        "gx_events_belong_to_audited_orders",
        "gx_money_conserved_per_currency_day",
    }
    unique = evaluations["gx_raw_orders_line_unique_per_file"]
    assert unique.blocking and unique.severity.value == "ERROR"
    assert unique.asset_key == AssetKey(["raw", "orders"])
    assert unique.metadata["unexpected_count"].value == 2
    sample = unique.metadata["unexpected_sample"].value  # the SQL check's own rows: both copies
    assert len(sample) == 2 and sample[0] == sample[1]
    assert unique.metadata["expectation"].value == "raw_structure.raw_orders_line_unique_per_file"
    money = evaluations["gx_money_conserved_per_currency"].metadata
    assert len(money["unexpected_sample"].value) == 1
    share = evaluations["gx_exception_share_under_limit"]
    assert not share.blocking and share.metadata["observed_value"].value > 0

    rows = query(
        copy,
        "select stage, count(*), count(*) filter (where not success), count(distinct run_id) "
        "from quality.validation_results group by stage order by stage",
    )
    raw_count = sum(1 for spec in SPECS if spec.stage == "raw")
    mart_failed = len(failed) - len(raw_failed)
    assert rows == [("mart", len(SPECS) - raw_count, mart_failed, 1), ("raw", raw_count, len(raw_failed), 1)]
    assert (docs / "index.html").exists()
    assert (docs / "raw" / "index.html").exists() and (docs / "mart" / "index.html").exists()
    # only a failing column check runs again for its sample, on a page of its own; SQL checks (every
    # failing one here) bring their rows with them, so there is none
    sample_pages = {
        f"{stage}:" + str(path.relative_to(docs / stage / "validations")).split("/__none__/")[0]
        for stage in ("raw", "mart")
        for path in (docs / stage / "validations").rglob("*.html")
        if "samples" in path.parts
    }
    assert sample_pages == set(), sample_pages
