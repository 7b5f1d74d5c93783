"""`python -m orchestration.quality.run`: validate a warehouse file with the GX suites, then exit.

Opens the warehouse read-only, runs the selected expectations (a stage and/or names), builds the
Data Docs into `<docs-dir>/<stage>/` and writes the JSON report. Run it as a short-lived process:
GX's SQL connection holds the DuckDB file until the process ends.

Exit code: 0 when every ERROR-severity expectation passed, 1 when one failed (the report is written
either way), 2 on a usage or setup error.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from orchestration.quality.config import ThresholdLimits
from orchestration.quality.docs import write_docs_index
from orchestration.quality.suites import load_specs
from orchestration.settings import Settings, SettingsError

STAGES = ("raw", "mart", "all")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchestration.quality.run", description=__doc__)
    parser.add_argument("--warehouse", required=True, type=Path, help="DuckDB file, opened read-only")
    parser.add_argument("--out", required=True, type=Path, help="JSON report to write")
    parser.add_argument("--stage", choices=STAGES, default="all", help="raw (before dbt), mart or all")
    parser.add_argument(
        "--only", default="", help="comma-separated expectation names (default: all of the stage)"
    )
    parser.add_argument("--run-id", default="manual", help="id recorded with the results")
    parser.add_argument(
        "--docs-dir", type=Path, help="Data Docs root (default: ORDER_AUDIT_GX_DOCS_DIR or data/gx_docs)"
    )
    parser.add_argument("--no-docs", action="store_true", help="skip building Data Docs")
    parser.add_argument(
        "--loaded-after",
        type=datetime.fromisoformat,
        help="UTC time: validate only the raw rows of loads after it (default: every raw row)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()  # the launcher passes every setting (`Settings.environ()`)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    if not args.warehouse.exists():
        print(f"warehouse {args.warehouse} does not exist", file=sys.stderr)
        return 2
    only = [name for name in args.only.split(",") if name.strip()] or None
    specs = load_specs(only=only)
    if args.stage != "all":
        specs = [spec for spec in specs if spec.stage == args.stage]
    limits = ThresholdLimits.from_settings(settings)
    root = None if args.no_docs else (args.docs_dir or settings.gx_docs_dir)

    from orchestration.quality.runner import validate  # imports GX: slow, so only once arguments are fine

    report = validate(
        args.warehouse,
        specs,
        suite_parameters=limits.suite_parameters(),
        sql_parameters=limits.sql_parameters(),
        run_id=args.run_id,
        stage=args.stage,
        docs_dir=None if root is None else root / args.stage,
        loaded_after=args.loaded_after,
    )
    report.write(args.out)
    if root is not None:
        write_docs_index(root, report)
    failed = [o for o in report.outcomes if not o.success]
    for outcome in failed:
        detail = (
            outcome.exception or f"observed {outcome.observed_value}, unexpected {outcome.unexpected_count}"
        )
        print(f"{outcome.severity} {outcome.suite}.{outcome.expectation}: {detail}", file=sys.stderr)
    print(
        f"{len(report.outcomes) - len(failed)} passed, {len(failed)} failed ({args.stage}); report: {args.out}"
    )
    return 0 if report.success else 1


if __name__ == "__main__":
    sys.exit(main())
