"""Dagster asset checks backed by the GX suites: one multi-asset check (one child process) per stage.

- `gx_raw_quality`: every expectation whose guarded asset is a raw table (raw structure and the
  per-source row conservation). It runs right after the raw loaders; being blocking, it stops dbt
  when an ERROR expectation fails.
- `gx_mart_quality`: every other expectation (mart integrity, reconciliation and conservation,
  thresholds), after dbt; its blocking checks gate whatever is downstream of the marts (publish).

One Dagster check per expectation, named `gx_<expectation name>`, on the asset it guards:
`critical` expectations are blocking checks of severity ERROR, `warning` ones non-blocking WARN.
Each result carries the expectation, its unexpected count, up to 10 unexpected rows and the observed
value as metadata. After the child process ends, every result is appended to
`quality.validation_results` through the `warehouse` resource (the in-process executor runs one step
at a time, so nothing else writes then).
"""

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)
from dagster_duckdb import DuckDBResource

from orchestration.quality.launcher import validate_in_subprocess
from orchestration.quality.resource import GxValidator
from orchestration.quality.results import ExpectationOutcome, all_passed_since, append_results
from orchestration.quality.suites import ExpectationSpec, load_specs
from orchestration.transform.prewarm import start_prewarm
from orchestration.transform.project import dbt_executable

STAGE_DESCRIPTIONS = {
    "raw": "Great Expectations suites on the raw landing tables (structure, row conservation per file).",
    "mart": "Great Expectations suites on the audit mart (integrity, reconciliation, conservation, thresholds).",
}


def check_spec(spec: ExpectationSpec) -> AssetCheckSpec:
    return AssetCheckSpec(
        name=spec.check_name,
        asset=AssetKey(list(spec.asset)),
        description=f"{spec.description} Protects: {spec.protects}",
        blocking=spec.blocking,
        metadata={"suite": spec.suite, "expectation_type": spec.type, "batch": spec.batch.name},
    )


def observed_metadata(value: Any) -> MetadataValue:
    """Numbers as numbers (plottable in the UI), structures as JSON, anything else as text."""
    if isinstance(value, bool) or value is None:
        return MetadataValue.text(json.dumps(value))
    if isinstance(value, int):
        return MetadataValue.int(value)
    if isinstance(value, float):
        return MetadataValue.float(value)
    if isinstance(value, (dict, list)):
        return MetadataValue.json(value)
    return MetadataValue.text(str(value))


def result_metadata(outcome: ExpectationOutcome, data_docs: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "expectation": f"{outcome.suite}.{outcome.expectation}",
        "expectation_type": outcome.expectation_type,
        "observed_value": observed_metadata(outcome.observed_value),
        "unexpected_sample": MetadataValue.json(outcome.unexpected_sample),
    }
    if outcome.unexpected_count is not None:
        metadata["unexpected_count"] = outcome.unexpected_count
    if outcome.exception:
        metadata["exception"] = MetadataValue.text(outcome.exception)
    if data_docs:
        metadata["data_docs"] = MetadataValue.path(data_docs)
    return metadata


def check_result(outcome: ExpectationOutcome, data_docs: str | None) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=AssetKey(outcome.asset),
        check_name=outcome.check_name,
        passed=outcome.success,
        severity=AssetCheckSeverity.ERROR if outcome.severity == "ERROR" else AssetCheckSeverity.WARN,
        metadata=result_metadata(outcome, data_docs),
        description=outcome.description or None,
    )


def build_stage_checks(stage: str, specs: Sequence[ExpectationSpec]) -> AssetChecksDefinition:
    by_check = {spec.check_name: spec for spec in specs}

    @multi_asset_check(
        name=f"gx_{stage}_quality",
        specs=[check_spec(spec) for spec in specs],
        description=STAGE_DESCRIPTIONS[stage],
        can_subset=True,
        compute_kind="great_expectations",
        pool="warehouse_writer",
    )
    def _checks(
        context: AssetCheckExecutionContext, warehouse: DuckDBResource, gx: GxValidator
    ) -> Iterator[AssetCheckResult]:
        selected = [by_check[key.name] for key in context.selected_asset_check_keys if key.name in by_check]
        selected.sort(key=lambda spec: list(by_check).index(spec.check_name))
        loaded_after = None
        if stage == "raw" and gx.raw_new_loads_only:
            with warehouse.get_connection() as con:
                loaded_after = all_passed_since(con, [spec.name for spec in selected])
        scope = "every row" if loaded_after is None else f"raw rows loaded after {loaded_after.isoformat()}"
        if stage == "raw":
            # This process only waits for the GX child: in-process dbt warms up meanwhile for the build.
            start_prewarm(dbt_executable())
        launch = validate_in_subprocess(
            Path(warehouse.database),
            selected,
            run_id=context.run.run_id,
            stage=stage,
            build_docs=gx.build_docs,
            loaded_after=loaded_after,
            timeout_seconds=gx.timeout_seconds,
        )
        context.log.info(
            f"GX {stage} validation of {scope}: {launch.seconds:.1f} s, exit code {launch.returncode}"
        )
        if launch.stdout.strip():
            context.log.info(launch.stdout.strip()[-4000:])
        if launch.returncode not in (0, 1):
            context.log.error(launch.stderr.strip()[-4000:])
        with warehouse.get_connection() as con:
            written = append_results(con, [launch.report])
        context.log.info(f"Appended {written} rows to quality.validation_results")
        for outcome in launch.report.outcomes:
            yield check_result(outcome, launch.report.data_docs)

    return _checks


def build_quality_checks(specs: Sequence[ExpectationSpec] | None = None) -> list[AssetChecksDefinition]:
    specs = list(load_specs() if specs is None else specs)
    return [
        build_stage_checks(stage, [spec for spec in specs if spec.stage == stage])
        for stage in ("raw", "mart")
        if any(spec.stage == stage for spec in specs)
    ]


quality_checks = build_quality_checks()
