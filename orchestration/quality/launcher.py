"""Run `python -m orchestration.quality.run` as a short-lived child process and read its report.

The child opens the warehouse read-only and exits, which releases GX's hold on the DuckDB file, so
dbt and the publish step can write it afterwards. A child that crashes or times out yields a report
in which every requested expectation failed with the reason, never a silent pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestration.quality.results import ValidationReport, failed
from orchestration.quality.suites import ExpectationSpec
from orchestration.settings import PROJECT_ROOT

DEFAULT_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class LaunchResult:
    report: ValidationReport
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


def _timeout() -> float:
    return float(os.environ.get("ORDER_AUDIT_QUALITY_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def _all_failed(
    specs: Sequence[ExpectationSpec], run_id: str, stage: str, warehouse: Path, why: str
) -> ValidationReport:
    now = datetime.now(UTC).isoformat()
    return ValidationReport(
        run_id=run_id,
        stage=stage,
        warehouse=str(warehouse),
        started_at=now,
        finished_at=now,
        parameters={},
        data_docs=None,
        outcomes=[failed(spec, why) for spec in specs],
    )


def validate_in_subprocess(
    warehouse: Path,
    specs: Sequence[ExpectationSpec],
    *,
    run_id: str,
    stage: str,
    docs_dir: Path | None = None,
    build_docs: bool = True,
) -> LaunchResult:
    """Validate `specs` (all of one stage) on `warehouse` in a child process."""
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="order-audit-gx-") as tmp:
        out = Path(tmp) / "report.json"
        command = [
            sys.executable,
            "-m",
            "orchestration.quality.run",
            "--warehouse",
            str(warehouse),
            "--out",
            str(out),
            "--stage",
            stage,
            "--run-id",
            run_id,
            "--only",
            ",".join(spec.name for spec in specs),
        ]
        if not build_docs:
            command.append("--no-docs")
        elif docs_dir is not None:
            command += ["--docs-dir", str(docs_dir)]
        env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
        try:
            done = subprocess.run(
                command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=_timeout()
            )
        except subprocess.TimeoutExpired as timeout:
            seconds = (datetime.now(UTC) - started).total_seconds()
            why = f"validation process timed out after {timeout.timeout:.0f} s"
            report = _all_failed(specs, run_id, stage, warehouse, why)
            return LaunchResult(report, None, str(timeout.stdout or ""), str(timeout.stderr or ""), seconds)
        seconds = (datetime.now(UTC) - started).total_seconds()
        if done.returncode in (0, 1) and out.exists():
            report = ValidationReport.read(out)
        else:
            tail = "\n".join(done.stderr.strip().splitlines()[-20:])
            why = f"validation process exited with {done.returncode}: {tail}"
            report = _all_failed(specs, run_id, stage, warehouse, why)
        return LaunchResult(report, done.returncode, done.stdout, done.stderr, seconds)
