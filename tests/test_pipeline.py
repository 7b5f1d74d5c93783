"""End to end through Dagster: the mart against the generator's ground truth, reruns, and new files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from orchestration.cli import main
from orchestration.publish.serving import MART_TABLES as PUBLISHED_TABLES
from tests.conftest import PipelineEnv, use_env

MART_TABLES = (
    "fact_order_audit",
    "order_audit_exceptions",
    "fct_order_audit_events",
    "agg_reconciliation_daily",
)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _mart_snapshot(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every mart table, the exception history (but the build id of its rows) and the notification outbox."""
    tables = {table: f"select * from {table}" for table in MART_TABLES}
    tables["order_audit_exception_history"] = "select * exclude (run_id) from order_audit_exception_history"
    tables["notify.outbox"] = "select * from notify.outbox"
    return {table: sorted(_query(path, sql), key=repr) for table, sql in tables.items()}


def test_every_exception_matches_the_ground_truth(sample_pipeline: PipelineEnv) -> None:
    truth = {
        (row["entity_type"], row["entity_id"], row["exception_code"])
        for row in _read_csv(sample_pipeline.extracts / "_ground_truth" / "expected_exceptions.csv")
    }
    found = set(
        _query(
            sample_pipeline.warehouse,
            "select entity_type, entity_id, exception_code from order_audit_exceptions where status = 'open'",
        )
    )
    assert {code for _, _, code in truth} >= {
        "PAYMENT_MISSING",
        "OVERSOLD",
        "STOCK_LEVEL_MISMATCH",
        "ORPHAN_PAYMENT",
    }
    assert sorted(truth - found) == [], "missed exceptions (recall < 1)"
    assert sorted(found - truth) == [], "extra exceptions (precision < 1)"


def test_fact_exception_codes_match_the_ground_truth_per_order(sample_pipeline: PipelineEnv) -> None:
    expected: dict[str, set[str]] = {}
    for row in _read_csv(sample_pipeline.extracts / "_ground_truth" / "expected_exceptions.csv"):
        if row["entity_type"] == "order":
            expected.setdefault(row["entity_id"], set()).add(row["exception_code"])
    rows = _query(
        sample_pipeline.warehouse, "select order_id, exception_codes, audit_status from fact_order_audit"
    )
    assert len(rows) >= 600
    for order_id, codes, status in rows:
        want = expected.get(order_id, set())
        assert codes == ",".join(sorted(want)), order_id
        assert (status == "ok") == (not want), order_id


def test_every_bad_row_is_quarantined_with_its_reason(sample_pipeline: PipelineEnv) -> None:
    truth_dir = sample_pipeline.extracts / "_ground_truth"
    bad_rows = {
        (row["source"], row["file_name"], int(row["line_number"]), row["reason_code"])
        for row in _read_csv(truth_dir / "bad_rows.csv")
    }
    quarantined = set(
        _query(
            sample_pipeline.warehouse,
            "select source, source_file, line_number, reason_code from raw.quarantine",
        )
    )
    assert {reason for *_, reason in bad_rows} >= {"unparseable", "invalid_money", "duplicate_line_id"}
    assert quarantined == bad_rows
    rejected = {
        (row["source"], row["file_name"], row["reason_code"])
        for row in _read_csv(truth_dir / "rejected_files.csv")
    }
    recorded = {
        (source, name, error.split(":")[0])
        for source, name, error in _query(
            sample_pipeline.warehouse,
            "select source, file_name, error from raw.load_manifest where status = 'rejected'",
        )
    }
    assert recorded == rejected


def test_every_file_conserves_its_rows(sample_pipeline: PipelineEnv) -> None:
    broken = _query(
        sample_pipeline.warehouse,
        "select file_name from raw.load_manifest where rows_read <> rows_loaded + rows_quarantined",
    )
    assert broken == []


def test_sql_command_answers_from_the_published_mart(
    sample_pipeline: PipelineEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(sample_pipeline)
    assert sample_pipeline.serving_db.exists()
    assert (
        main(["sql", "select audit_status, count(*) as orders from fact_order_audit group by 1 order by 1"])
        == 0
    )
    printed = capsys.readouterr().out
    expected = _query(
        sample_pipeline.serving_db, "select audit_status, count(*) from fact_order_audit group by 1"
    )
    for status, count in expected:
        assert status in printed and str(count) in printed


def test_the_served_tables_keep_the_marts_types_and_not_null_constraints(
    sample_pipeline: PipelineEnv,
) -> None:
    columns = """
        select table_name, column_name, data_type, is_nullable from duckdb_columns()
        where schema_name = 'main' and table_name in ({tables}) order by all
    """
    tables = ", ".join(f"'{table}'" for table in PUBLISHED_TABLES)
    served = _query(sample_pipeline.serving_db, columns.format(tables=tables))
    built = _query(sample_pipeline.warehouse, columns.format(tables=tables))
    assert served == built
    assert ("fact_order_audit", "captured_amount", "DECIMAL(38,6)", False) in served


def test_rerun_on_the_same_files_changes_nothing_and_new_files_resolve_exceptions(
    sample_pipeline: PipelineEnv,
) -> None:
    use_env(sample_pipeline)
    before = _mart_snapshot(sample_pipeline.warehouse)
    assert main(["run"]) == 0
    assert _mart_snapshot(sample_pipeline.warehouse) == before, (
        "a rerun on the same files must change nothing"
    )

    # A late capture pays one PAYMENT_MISSING order in full, at the current as-of time.
    as_of = json.loads((sample_pipeline.extracts / "_ground_truth" / "manifest.json").read_text())["as_of"]
    order_id, currency, expected_net, last_date = _query(
        sample_pipeline.warehouse,
        """
        select f.order_id, f.currency, cast(f.expected_net_amount as varchar), max(m.extract_date)
        from fact_order_audit f cross join raw.load_manifest m
        where f.exception_codes = 'PAYMENT_MISSING'
        group by all order by f.order_id limit 1
        """,
    )[0]
    late_file = sample_pipeline.extracts / "payments" / f"payments_{last_date}_late.csv"
    late_file.write_text(
        "payment_id,order_id,event_type,amount,currency,status,processed_at,psp_reference,method\n"
        f"PAY-LATE-1,{order_id},capture,{expected_net},{currency},succeeded,{as_of},LATE-1,card\n"
    )
    assert main(["run"]) == 0
    ((status, resolved_at, first_detected_at),) = _query(
        sample_pipeline.warehouse,
        "select status, resolved_at, first_detected_at from order_audit_exceptions"
        f" where entity_id = '{order_id}' and exception_code = 'PAYMENT_MISSING'",
    )
    assert status == "resolved"
    assert resolved_at is not None and first_detected_at <= resolved_at
    assert _query(
        sample_pipeline.warehouse,
        "select h.change_type, h.from_state, h.to_state, h.changed_by, h.reason, e.workflow_state,"
        " e.resolution_reason from order_audit_exception_history as h join order_audit_exceptions as e"
        f" using (exception_id) where e.entity_id = '{order_id}' and e.exception_code = 'PAYMENT_MISSING'"
        " order by h.change_sequence desc limit 1",
    ) == [("resolved", "open", "resolved", "pipeline", "auto", "resolved", "auto")]
    assert _query(
        sample_pipeline.warehouse,
        f"select exception_codes from fact_order_audit where order_id = '{order_id}'",
    ) == [("",)]
    open_before = {row[0] for row in before["order_audit_exceptions"] if row[10] == "open"}
    still_there = {
        row[0] for row in _query(sample_pipeline.warehouse, "select exception_id from order_audit_exceptions")
    }
    assert open_before <= still_there, "no exception is ever deleted"
