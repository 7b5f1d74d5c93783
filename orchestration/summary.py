"""What `order-audit` prints: the run summary and query results, always over read-only connections.

The run summary is collected once (`collect_run_summary`) and rendered as text for people or as JSON
for schedulers (`order-audit run --json`). Its `outcome` is `succeeded`, `blocked` (a blocking check
failed, so nothing was published) or `failed` (a step raised); `EXIT_CODES` maps it to the exit code.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import duckdb

from orchestration.duck import connect
from orchestration.settings import GROUND_TRUTH_DIR, Settings

SAMPLE_LINES = 3
EXIT_CODES = {"succeeded": 0, "failed": 1, "blocked": 4}


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return con.execute(sql, params or []).fetchall()


_DBT_EXIT_CODE = re.compile(r"failed with exit code `(-?\d+)`")


def _first_line(error: Any) -> str:
    """The error's first line, without the class path Python's traceback puts before the message
    (`dagster._core.definitions.events.Failure: No landing files ...`); for dagster-dbt's error, whose
    first line is "The dbt CLI process with command", dbt's exit code and the first error dbt logged."""
    message = error.message.strip()
    if error.cls_name == "DagsterDbtCliRuntimeError":
        exit_code = _DBT_EXIT_CODE.search(message)
        _, _, logged = message.partition("Errors parsed from dbt logs:")
        first_logged = next((line.strip() for line in logged.splitlines() if line.strip()), None)
        return f"dbt failed (exit code {exit_code.group(1) if exit_code else 'unknown'}): " + (
            first_logged or "see the full log"
        )
    if error.cls_name:
        message = re.sub(rf"^(?:\w+\.)*{re.escape(error.cls_name)}: ", "", message)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return error.cls_name or "error"
    if lines[0].endswith(":") and len(lines) > 1:  # a heading whose list follows: "... ERROR severity:"
        listed = "; ".join(lines[1:4]) + ("; ..." if len(lines) > 4 else "")
        return f"{lines[0]} {listed}"
    return lines[0]


def _one_line(error: Any, limit: int = 600) -> str:
    """A whole error message on one line (DuckDB puts the original cause, e.g. a full disk, on its last)."""
    text = " ".join(line.strip() for line in error.message.strip().splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _root_cause(error: Any) -> Any:
    """The innermost error a Dagster step error was raised from (its `cause`, else its `context`)."""
    while (inner := error.cause or error.context) is not None:
        error = inner
    return error


def _step_failures(result: Any) -> list[dict[str, str]]:
    """Each failed step with its own error and the error it comes from (a full disk, a DuckDB error)."""
    failures = []
    for event in result.all_events:
        if event.is_step_failure and event.event_specific_data is not None:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                failure = {"step": event.step_key, "error": _first_line(error)}
                cause = _root_cause(error)
                if cause is not error:
                    failure["cause"] = _one_line(cause)
                failures.append(failure)
    return failures


def _is_freshness_check(evaluation: Any) -> bool:
    """The landing folder's freshness checks (orchestration/ingest/freshness.py; not imported here, so
    `order-audit sql` does not load Dagster) are the checks that report their newest extract date."""
    return "newest_extract_date" in evaluation.metadata


def _dbt_checks(result: Any) -> list[dict[str, Any]]:
    """dbt tests that did not pass (the asset checks other than GX's, which come with samples from GX,
    and the landing folder's freshness checks)."""
    checks = []
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed or evaluation.check_name.startswith("gx_") or _is_freshness_check(evaluation):
            continue
        failed_rows = evaluation.metadata.get("dagster_dbt/failed_row_count")
        checks.append(
            {
                "test": evaluation.check_name,
                "asset": "/".join(evaluation.asset_key.path),
                "severity": evaluation.severity.value,
                "failing_rows": None if failed_rows is None else int(failed_rows.value),
            }
        )
    return checks


def _stale_sources(result: Any) -> list[dict[str, Any]]:
    """Required sources whose newest landing file is older than ORDER_AUDIT_FRESHNESS_MAX_DAYS (or absent)."""
    stale = []
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed or not _is_freshness_check(evaluation):
            continue
        metadata = {key: value.value for key, value in evaluation.metadata.items()}
        newest = metadata.get("newest_extract_date")
        stale.append(
            {
                "source": evaluation.asset_key.path[-1],
                "newest_extract_date": None if newest in (None, "none") else newest,
                "age_days": metadata.get("age_days"),
                "max_age_days": metadata.get("max_age_days"),
            }
        )
    return sorted(stale, key=lambda source: source["source"])


def _stale_line(stale: list[dict[str, Any]], *, sample_extracts: bool) -> str:
    sources = ", ".join(
        f"{source['source']} no dated file"
        if source["newest_extract_date"] is None
        else f"{source['source']} {source['newest_extract_date']} ({source['age_days']} days old)"
        for source in stale
    )
    limit = stale[0]["max_age_days"]
    sample = (
        "; these are the generated sample's own dates (`order-audit generate --start-date` dates it anew)"
        if sample_extracts
        else ""
    )
    return (
        f"  warning: stale extracts, newest landing file older than {limit} days "
        f"(ORDER_AUDIT_FRESHNESS_MAX_DAYS): {sources}{sample}"
    )


def _holds_generated_sample(extracts_dir: Path) -> bool:
    """Whether the landing folder is `order-audit generate`'s output (its ground truth beside the extracts)."""
    return (extracts_dir / GROUND_TRUTH_DIR / "manifest.json").is_file()


MART_FACT_ASSET = "fact_order_audit"


def _mart_built(result: Any) -> bool:
    """Whether this run materialized the mart's fact table (else the warehouse's mart is an earlier run's)."""
    return any(
        event.is_step_materialization
        and event.asset_key is not None
        and event.asset_key.path == [MART_FACT_ASSET]
        for event in result.all_events
    )


def _destinations(settings: Settings, routes: list[str]) -> dict[str, str]:
    """Where each route's digests went, as routing.yml `notifications` says: `webhook $VARIABLE`, or
    `<folder>/<route>.jsonl` (a relative folder resolved: it is beside the warehouse file)."""
    from orchestration.routing import RoutingError, load_routing

    try:
        notifications = load_routing(settings.routing_file).notifications
    except RoutingError:
        return {}
    where = {}
    for route in routes:
        destination = notifications.destination_of(route)
        if destination is None:
            continue
        if destination.webhook_env:
            where[route] = f"webhook ${destination.webhook_env}"
        elif destination.folder is not None:
            folder = destination.folder
            where[route] = str(
                (folder if folder.is_absolute() else settings.warehouse.parent / folder) / "<route>.jsonl"
            )
    return where


def _published(result: Any) -> bool:
    return any(
        event.is_step_success and event.step_key and event.step_key.startswith("published")
        for event in result.all_events
    )


def _outcome(result: Any, dbt_checks: list[dict[str, Any]], gx_failures: list[dict[str, Any]]) -> str:
    if result.success:
        return "succeeded"
    blocking_failed = any(check["severity"] == "ERROR" for check in dbt_checks) or any(
        failure["severity"] == "ERROR" for failure in gx_failures
    )
    return "blocked" if blocking_failed else "failed"


def collect_run_summary(settings: Settings, result: Any, *, log_file: Path | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "run_id": result.run_id,
        "published": _published(result),
        "mart_built": _mart_built(result),
        "serving_db": str(settings.serving_db),
        "log_file": None if log_file is None else str(log_file),
        "step_failures": [] if result.success else _step_failures(result),
        "dbt_tests_not_passed": _dbt_checks(result),
        "stale_sources": _stale_sources(result),
        "sample_extracts": _holds_generated_sample(settings.extracts_dir),
        "loading": [],
        "rejected_files": [],
        "orders_audited": {},
        "gx_suites": [],
        "gx_failures": [],
        "open_exceptions": [],
        "open_exceptions_by_workflow_state": {},
        "notifications": [],
    }
    if settings.warehouse.exists():
        con = connect(settings.warehouse, read_only=True)
        try:
            _collect_warehouse(con, result.run_id, summary)
        finally:
            con.close()
    if not summary["mart_built"]:  # the warehouse's mart is an earlier run's: this run audited nothing
        summary["orders_audited"], summary["open_exceptions"] = {}, []
        summary["open_exceptions_by_workflow_state"] = {}
    destinations = _destinations(settings, [row["route"] for row in summary["notifications"]])
    for row in summary["notifications"]:
        row["destination"] = destinations.get(row["route"])
    summary["outcome"] = _outcome(result, summary["dbt_tests_not_passed"], summary["gx_failures"])
    summary["exit_code"] = EXIT_CODES[summary["outcome"]]
    return summary


def _collect_warehouse(con: duckdb.DuckDBPyConnection, run_id: str, summary: dict[str, Any]) -> None:
    tables = {row[0] for row in _rows(con, "select table_name from information_schema.tables")}
    if "load_manifest" in tables:
        summary["loading"] = [
            dict(
                zip(
                    (
                        "source",
                        "loaded",
                        "quarantined",
                        "corrected_files",
                        "rejected_files",
                        "unchanged_files",
                    ),
                    row,
                    strict=True,
                )
            )
            for row in _rows(
                con,
                "select source, sum(rows_loaded)::bigint, sum(rows_quarantined)::bigint,"
                " count(*) filter (where status = 'replaced'), count(*) filter (where status = 'rejected'),"
                " count(*) filter (where status = 'skipped_duplicate')"
                " from raw.load_manifest where load_id = ? group by source order by source",
                [run_id],
            )
        ]
        summary["rejected_files"] = [
            {"source": source, "file": file_name, "reason": error}
            for source, file_name, error in _rows(
                con,
                "select source, file_name, error from raw.load_manifest"
                " where load_id = ? and status = 'rejected' order by source, file_name",
                [run_id],
            )
        ]
    if "fact_order_audit" in tables:
        summary["orders_audited"] = dict(
            _rows(con, "select audit_status, count(*) from fact_order_audit group by 1 order by 1")
        )
    if "validation_results" in tables:
        summary["gx_suites"] = [
            dict(zip(("suite", "passed", "failed"), row, strict=True))
            for row in _rows(
                con,
                "select suite, count(*) filter (where success), count(*) filter (where not success)"
                " from quality.validation_results where run_id = ? group by 1 order by 1",
                [run_id],
            )
        ]
        summary["gx_failures"] = [
            {
                "suite": suite,
                "expectation": expectation,
                "severity": severity,
                "unexpected": unexpected,
                "sample": json.loads(sample or "[]")[:SAMPLE_LINES],
            }
            for suite, expectation, severity, unexpected, sample in _rows(
                con,
                "select suite, expectation, severity, unexpected_count, unexpected_sample"
                " from quality.validation_results where run_id = ? and not success"
                " order by severity, suite, expectation",
                [run_id],
            )
        ]
    if "outbox" in tables:
        summary["notifications"] = [
            dict(
                zip(
                    ("route", "digests_sent", "changes_sent", "systemic", "pending", "error"),
                    row,
                    strict=True,
                )
            )
            for row in _rows(
                con,
                "select route, count(distinct digest_id) filter (where sent_by_run = ?),"
                " count(*) filter (where sent_by_run = ?), bool_or(sent_by_run = ? and status = 'summarized'),"
                " count(*) filter (where status = 'pending'), max(last_error) filter (where status = 'pending')"
                " from notify.outbox group by route"
                " having count(*) filter (where sent_by_run = ? or status = 'pending') > 0 order by route",
                [run_id, run_id, run_id, run_id],
            )
        ]
    if "order_audit_exceptions" in tables:
        summary["open_exceptions"] = [
            dict(zip(("code", "severity", "count"), row, strict=True))
            for row in _rows(
                con,
                "select exception_code, severity, count(*) from order_audit_exceptions where status = 'open'"
                " group by 1, 2 order by 3 desc, 1",
            )
        ]
        # `status` is what the data shows; people's triage of those exceptions is `workflow_state`.
        summary["open_exceptions_by_workflow_state"] = dict(
            _rows(
                con,
                "select workflow_state, count(*) from order_audit_exceptions where status = 'open'"
                " group by 1 order by 2 desc, 1",
            )
        )


def _compact(row: Any) -> str:
    """One unexpected row or value on one line: `source_file=a.csv line_number=8 payment_id=P1`."""
    if isinstance(row, dict):
        return " ".join(f"{key}={value}" for key, value in row.items())
    return json.dumps(row)


def render_text(summary: dict[str, Any]) -> str:
    headline = {"succeeded": "succeeded", "blocked": "BLOCKED by a failed check", "failed": "FAILED"}
    lines = [f"\nDagster run {summary['run_id']} {headline[summary['outcome']]}."]
    for failure in summary["step_failures"]:
        lines.append(f"  {failure['step']}: {failure['error']}")
        if "cause" in failure:
            lines.append(f"    caused by: {failure['cause']}")
    for check in summary["dbt_tests_not_passed"]:
        verdict = "failed" if check["severity"] == "ERROR" else "warning"
        rows = "" if check["failing_rows"] is None else f", {check['failing_rows']} failing rows"
        lines.append(f"  {verdict}: dbt test {check['test']} on {check['asset']} ({check['severity']}{rows})")
    if summary["stale_sources"]:
        lines.append(_stale_line(summary["stale_sources"], sample_extracts=summary["sample_extracts"]))
    if summary["published"]:
        lines.append(f"\nPublished the audit mart to {summary['serving_db']}")
    else:
        lines.append(
            f"\nNothing was published: a blocking check or step failed; {summary['serving_db']} is unchanged."
        )
    if summary["loading"]:
        lines.append("\nRaw loading (this run):")
        lines.append(
            f"  {'source':<22}{'loaded':>10}{'quarantined':>13}{'corrected files':>17}{'rejected files':>16}"
            f"{'unchanged files':>17}"
        )
        for row in summary["loading"]:
            lines.append(
                f"  {row['source']:<22}{row['loaded']:>10}{row['quarantined']:>13}{row['corrected_files']:>17}"
                f"{row['rejected_files']:>16}{row['unchanged_files']:>17}"
            )
        if any(row["corrected_files"] for row in summary["loading"]):
            lines.append(
                "  corrected: a file delivered again with other content; its earlier rows are in raw.<table>_superseded"
            )
        for rejected in summary["rejected_files"]:
            lines.append(f"  rejected: {rejected['file']}: {rejected['reason']}")
    unpublished = "" if summary["published"] else " (this run's mart, not published)"
    audited = summary["orders_audited"]
    if audited:
        counts = ", ".join(f"{status}: {count}" for status, count in audited.items())
        lines.append(f"\nOrders audited{unpublished}: {sum(audited.values())} ({counts})")
    if summary["gx_suites"]:
        lines.append("Great Expectations suites (this run):")
        for suite in summary["gx_suites"]:
            verdict = "passed" if suite["failed"] == 0 else "FAILED"
            lines.append(
                f"  {suite['suite']:<22}{verdict:<8}{suite['passed']:>5} passed{suite['failed']:>5} failed"
            )
        for failure in summary["gx_failures"]:
            count = "" if failure["unexpected"] is None else f", {failure['unexpected']} unexpected"
            lines.append(
                f"  failed: {failure['suite']}.{failure['expectation']} ({failure['severity']}{count})"
            )
            lines.extend(f"    e.g. {_compact(row)}" for row in failure["sample"])
    if summary["open_exceptions"]:
        rows = summary["open_exceptions"]
        triage = summary["open_exceptions_by_workflow_state"]
        # "open" is the data's word (still detected); a workflow_state of open means nobody triaged it yet
        states = ", ".join(
            f"{count} {'untriaged' if state == 'open' else state}" for state, count in triage.items()
        )
        workflow = f"; people's triage: {states}" if set(triage) - {"open"} else ""
        lines.append(
            f"Open exceptions by code{unpublished}"
            f" ({sum(row['count'] for row in rows)} still detected{workflow}):"
        )
        cells = [f"{row['code']:<24}{row['severity']:<8}{row['count']:>6}" for row in rows]
        for left in range(0, len(cells), 2):  # two codes a line
            lines.append("  " + "    ".join(cells[left : left + 2]))
    if summary["notifications"]:
        sent = [row for row in summary["notifications"] if row["digests_sent"]]
        if sent:
            changes = sum(row["changes_sent"] for row in sent)
            systemic = [row["route"] for row in sent if row["systemic"]]
            note = f"; systemic alert for {', '.join(systemic)}" if systemic else ""
            places = sorted({row["destination"] for row in sent if row["destination"]})
            where = f" ({', '.join(places)})" if places else ""
            lines.append(
                f"Notifications: digests sent to {len(sent)} route(s) for {changes} change(s){where}{note}"
            )
        for row in summary["notifications"]:
            if row["pending"]:
                lines.append(
                    f"  NOT SENT to {row['route']}: {row['pending']} change(s) pending: {row['error']}"
                    " (retried next run)"
                )
    if summary["log_file"]:
        lines.append(f"\nFull log (Dagster, dbt, GX): {summary['log_file']}")
    return "\n".join(lines)


def run_query(query: str, database: Path | None = None, settings: Settings | None = None) -> int:
    settings = Settings.from_env() if settings is None else settings
    # Never the warehouse unless asked (`--database`): it may hold a mart that failed its checks, and a
    # reader's connection would stop the next run from writing it.
    path = database or settings.serving_db
    if not path.exists():
        what = "no DuckDB file" if database else "no published mart"
        print(f"order-audit: {what} at {path}: run `order-audit run` first", file=sys.stderr)
        return 2
    con = connect(path, read_only=True)
    try:
        relation = con.sql(query)
        if relation is None:
            return 0
        relation.show(max_width=100000, max_rows=1000)
    except duckdb.Error as error:
        print(f"Query failed: {error}", file=sys.stderr)
        return 1
    finally:
        con.close()
    return 0
