"""What `order-audit` prints: the run summary and query results, always over read-only connections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from orchestration.duck import connect
from orchestration.settings import Settings


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def print_run_summary(settings: Settings, result: Any) -> None:
    status = "succeeded" if result.success else "FAILED"
    print(f"\nDagster run {result.run_id} {status}.")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure and event.event_specific_data is not None:
                error = getattr(event.event_specific_data, "error", None)
                if error is not None:
                    print(f"  {event.step_key}: {error.message.strip().splitlines()[0]}")
    _print_publish(result, settings)
    if not settings.warehouse.exists():
        return
    con = connect(settings.warehouse, read_only=True)
    try:
        loaded = _rows(
            con,
            "select source, sum(rows_loaded), sum(rows_quarantined), count(*) filter (where status = 'rejected'),"
            " count(*) filter (where status = 'skipped_duplicate')"
            " from raw.load_manifest where load_id = '" + result.run_id + "' group by source order by source",
        )
        print("\nRaw loading (this run):")
        print(
            f"  {'source':<22}{'loaded':>10}{'quarantined':>13}{'rejected files':>16}{'unchanged files':>17}"
        )
        for source, rows_loaded, rows_quarantined, rejected, unchanged in loaded:
            print(f"  {source:<22}{rows_loaded:>10}{rows_quarantined:>13}{rejected:>16}{unchanged:>17}")
        tables = {row[0] for row in _rows(con, "select table_name from information_schema.tables")}
        if "fact_order_audit" in tables:
            audited = _rows(con, "select audit_status, count(*) from fact_order_audit group by 1 order by 1")
            total = sum(count for _, count in audited)
            print(f"\nOrders audited: {total} (" + ", ".join(f"{s}: {c}" for s, c in audited) + ")")
        _print_quality(con, result.run_id, tables)
        if "order_audit_exceptions" in tables:
            by_code = _rows(
                con,
                "select exception_code, severity, count(*) from order_audit_exceptions where status = 'open'"
                " group by 1, 2 order by 3 desc, 1",
            )
            print("Open exceptions by code:")
            for code, severity, count in by_code:
                print(f"  {code:<26}{severity:<9}{count:>8}")
    finally:
        con.close()


def _print_quality(con: duckdb.DuckDBPyConnection, run_id: str, tables: set[str]) -> None:
    if "validation_results" not in tables:
        return
    suites = _rows(
        con,
        "select suite, count(*) filter (where success), count(*) filter (where not success)"
        f" from quality.validation_results where run_id = '{run_id}' group by 1 order by 1",
    )
    if not suites:
        return
    print("Great Expectations suites (this run):")
    for suite, passed, failed in suites:
        verdict = "passed" if failed == 0 else "FAILED"
        print(f"  {suite:<22}{verdict:<8}{passed:>5} passed{failed:>5} failed")
    failures = _rows(
        con,
        "select suite, expectation, severity, unexpected_count from quality.validation_results"
        f" where run_id = '{run_id}' and not success order by severity, suite, expectation",
    )
    for suite, expectation, severity, unexpected in failures:
        count = "" if unexpected is None else f", {unexpected} unexpected"
        print(f"  failed: {suite}.{expectation} ({severity}{count})")


def _print_publish(result: Any, settings: Settings) -> None:
    published = any(
        event.is_step_success and event.step_key and event.step_key.startswith("published")
        for event in result.all_events
    )
    if published:
        print(f"\nPublished the audit mart to {settings.serving_db}")
    else:
        print(
            f"\nNothing was published: a blocking check or step failed; {settings.serving_db} is unchanged."
        )


def run_query(query: str, database: Path | None = None) -> int:
    settings = Settings.from_env()
    path = database or (settings.serving_db if settings.serving_db.exists() else settings.warehouse)
    if not path.exists():
        print(f"No warehouse at {path}: run `order-audit run` first.")
        return 2
    con = connect(path, read_only=True)
    try:
        relation = con.sql(query)
        if relation is None:
            return 0
        relation.show(max_width=100000, max_rows=1000)
    except duckdb.Error as error:
        print(f"Query failed: {error}")
        return 1
    finally:
        con.close()
    return 0
