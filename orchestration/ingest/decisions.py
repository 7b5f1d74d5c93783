"""People's triage actions, as the table `raw.decisions`: the decision files that `order-audit exceptions
ack|assign|snooze|resolve|reopen` appends to `<landing folder>/decisions/`, loaded like every extract
(load manifest, sha256, quarantine with a reason). Only files new or changed since their last load are read.
Unpartitioned: a decision belongs to no extract date, and every run applies all that are not applied yet.
"""

from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, multi_asset
from dagster_duckdb import DuckDBResource

from orchestration.duck import scalar
from orchestration.ingest.loader import load_source
from orchestration.ingest.sources import DECISIONS
from orchestration.settings import Settings


@multi_asset(
    name="load_raw_decisions",
    specs=[
        AssetSpec(
            AssetKey(["raw", "decisions"]),
            group_name="raw",
            kinds={"duckdb"},
            description=(
                "raw.decisions: triage actions on exceptions (ack, assign, snooze, resolve, reopen) from the "
                "decision files in `<landing folder>/decisions/`, one action per JSON line, never rewritten. "
                "Bad lines go to raw.quarantine, every file to raw.load_manifest; dbt applies them."
            ),
        )
    ],
    # The loaders, dbt and the validation all use one DuckDB file: one writer at a time.
    pool="warehouse_writer",
)
def decisions(context: AssetExecutionContext, warehouse: DuckDBResource) -> MaterializeResult:
    settings = Settings.from_env()
    with warehouse.get_connection() as con:
        result = load_source(
            con, DECISIONS, settings.extracts_dir, load_id=context.run.run_id, unsettled_only=True
        )
        rows = int(scalar(con, "select count(*) from raw.decisions"))
    if result.rejected:
        context.log.warning(f"Rejected decision files: {', '.join(result.rejected)} (see raw.load_manifest)")
    return MaterializeResult(
        metadata={
            **result.as_metadata(),
            "rejected_files": ", ".join(result.rejected),
            "dagster/row_count": rows,
        }
    )
