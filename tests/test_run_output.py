"""What `order-audit run` prints: a short progress report, the full logs in a file, JSON on request."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from tests.conftest import pipeline_env

STAGES = ("raw loading", "raw-stage checks (GX)", "dbt build", "mart checks (GX)", "publish")


def _order_audit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_run_reads_like_a_progress_report_and_json_serves_schedulers(tmp_path: Path) -> None:
    env = pipeline_env(tmp_path)
    environ = os.environ | env.as_environ()
    generated = _order_audit(
        environ, "generate", "--orders", "300", "--days", "3", "--out", str(env.extracts)
    )
    assert generated.returncode == 0, generated.stderr

    run = _order_audit(environ, "run")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert len(lines) < 60, run.stdout
    assert not run.stderr.strip(), f"nothing but the report on the terminal: {run.stderr[-2000:]}"
    for stage in STAGES:
        assert any(line.strip().startswith(stage) and " done " in line for line in lines), (stage, run.stdout)
    assert " - DEBUG - " not in run.stdout and "START sql" not in run.stdout
    log_line = next(line for line in lines if line.startswith("Full log"))
    log_file = Path(log_line.split(": ", 1)[1])
    log_text = log_file.read_text()
    assert "STEP_START" in log_text, "Dagster's events are in the log file"
    assert "RUN_SUCCESS" in log_text, "the log file is complete when the process has exited"
    assert not Path(f"{env.warehouse}.wal").exists(), "the run closed the warehouse before it exited"
    assert "START sql" in log_text, "dbt's node log is in the log file"

    required_sources = ("inventory_movements", "orders", "payments")
    newest_extract = max(
        date.fromisoformat(re.search(r"\d{4}-\d{2}-\d{2}", path.name).group())  # type: ignore[union-attr]
        for source in required_sources
        for path in (env.extracts / source).iterdir()
    )
    age_days = (datetime.now(UTC).date() - newest_extract).days
    stale_lines = [line for line in lines if "stale extracts" in line]
    assert "_extract_is_fresh" not in run.stdout, "a freshness check is not a dbt test"
    if age_days > 2:
        assert stale_lines == [
            "  warning: stale extracts, newest landing file older than 2 days (ORDER_AUDIT_FRESHNESS_MAX_DAYS): "
            + ", ".join(f"{source} {newest_extract} ({age_days} days old)" for source in required_sources)
            + "; these are the generated sample's own dates (`order-audit generate --start-date` dates it anew)"
        ], run.stdout
    else:
        assert stale_lines == [], run.stdout

    as_json = _order_audit(environ, "run", "--json")
    assert as_json.returncode == 0, as_json.stderr[-3000:]
    summary = json.loads(as_json.stdout)
    assert summary["outcome"] == "succeeded" and summary["exit_code"] == 0 and summary["published"] is True
    assert sum(summary["orders_audited"].values()) == 300
    assert {suite["suite"] for suite in summary["gx_suites"]} >= {"raw_structure", "mart_integrity"}
    assert any(line.strip().startswith("dbt build") for line in as_json.stderr.splitlines())
    assert [source["source"] for source in summary["stale_sources"]] == (
        list(required_sources) if age_days > 2 else []
    )
    assert all(source["age_days"] == age_days for source in summary["stale_sources"])
    refused = _order_audit(environ, "run", "--json", "--from", "2999-01-01")
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert json.loads(refused.stdout) == {"outcome": "not_started", "exit_code": 2}, (
        "a scheduler reads stdout"
    )
    assert "--from 2999-01-01 is after today" in refused.stderr

    raw_line = next(line for line in lines if line.strip().startswith("raw loading") and " done " in line)
    table = lines[lines.index("Raw loading (this run):") + 2 :]
    source_rows = table[: next(i for i, line in enumerate(table) if not line.strip())]
    rows_read = sum(int(line.split()[1]) + int(line.split()[2]) for line in source_rows)
    landing_files = sum(
        1 for path in env.extracts.rglob("*") if path.is_file() and not path.parent.name.startswith("_")
    )
    assert raw_line.endswith(f" s  {landing_files} files, {rows_read:,} rows read"), (
        "each file and row counted once, whatever the number of extract dates and raw tables of a loader",
        raw_line,
        source_rows,
    )
