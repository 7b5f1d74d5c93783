"""A small static landing page over the GX Data Docs sites, one site per stage (`raw/`, `mart/`).

Each stage's GX site is rebuilt from scratch by its run; this page keeps the latest summary of
every stage (from `<stage>/order_audit_summary.json`) and links to the sites. No network needed.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from orchestration.quality.results import ValidationReport

SUMMARY_FILE = "order_audit_summary.json"


def _summary(report: ValidationReport) -> dict[str, object]:
    failed = [o for o in report.outcomes if not o.success]
    return {
        "stage": report.stage,
        "run_id": report.run_id,
        "finished_at": report.finished_at,
        "expectations": len(report.outcomes),
        "failed_errors": sorted(o.expectation for o in failed if o.severity == "ERROR"),
        "failed_warnings": sorted(o.expectation for o in failed if o.severity == "WARN"),
    }


def write_docs_index(root: Path, report: ValidationReport) -> Path:
    stage_dir = root / report.stage
    stage_dir.mkdir(parents=True, exist_ok=True)
    (stage_dir / SUMMARY_FILE).write_text(json.dumps(_summary(report), indent=2), encoding="utf-8")
    rows = []
    for path in sorted(root.glob(f"*/{SUMMARY_FILE}")):
        summary = json.loads(path.read_text(encoding="utf-8"))
        errors, warnings = summary["failed_errors"], summary["failed_warnings"]
        status = "FAILED" if errors else ("WARN" if warnings else "PASSED")
        rows.append(
            "<tr>"
            f'<td><a href="{html.escape(path.parent.name)}/index.html">{html.escape(summary["stage"])}</a></td>'
            f"<td>{status}</td><td>{summary['expectations']}</td>"
            f"<td>{html.escape(', '.join(errors + warnings)) or '-'}</td>"
            f"<td>{html.escape(summary['run_id'])}</td><td>{html.escape(summary['finished_at'])}</td>"
            "</tr>"
        )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>order-audit data quality</title></head>'
        "<body><h1>order-audit data quality</h1>"
        "<p>Latest Great Expectations validation per stage; each link opens that stage's Data Docs.</p>"
        '<table border="1" cellpadding="4"><tr><th>stage</th><th>status</th><th>expectations</th>'
        "<th>failed</th><th>run id</th><th>finished (UTC)</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    index = root / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
