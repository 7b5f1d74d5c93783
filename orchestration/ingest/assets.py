"""One Dagster asset per landing source, loading its files into the raw schema, partitioned by extract date.

A run over a range of partitions (a backfill, or `order-audit run` over every landing date) loads the
range in one step (single-run backfill policy), so runs stay few and writers never overlap.
"""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    multi_asset,
)
from dagster_duckdb import DuckDBResource

from orchestration.duck import scalar
from orchestration.ingest.loader import load_source
from orchestration.ingest.partitions import extract_date_partitions, partition_dates
from orchestration.ingest.sources import SOURCES, SourceSpec
from orchestration.settings import Settings


def raw_tables(spec: SourceSpec) -> tuple[str, ...]:
    return ("orders", "order_lines") if spec.name == "orders" else (spec.name,)


def _description(spec: SourceSpec, table: str) -> str:
    need = "Required" if spec.required_source else "Optional"
    return (
        f"raw.{table}: rows of the `{spec.name}/` landing files that pass the extract contract, as text with "
        f"their source file, line number and load id. Bad rows go to raw.quarantine, every file to "
        f"raw.load_manifest. {need} source; partitioned by extract date."
    )


def build_raw_asset(spec: SourceSpec) -> AssetsDefinition:
    tables = raw_tables(spec)

    @multi_asset(
        name=f"load_raw_{spec.name}",
        specs=[
            AssetSpec(
                AssetKey(["raw", table]),
                group_name="raw",
                kinds={"duckdb"},
                description=_description(spec, table),
                partitions_def=extract_date_partitions,
            )
            for table in tables
        ],
        partitions_def=extract_date_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        # The loaders, dbt and the validation all use one DuckDB file: one writer at a time.
        pool="warehouse_writer",
    )
    def load(context: AssetExecutionContext, warehouse: DuckDBResource) -> Iterator[MaterializeResult]:
        settings = Settings.from_env()
        key_range = context.partition_key_range
        dates = partition_dates(key_range.start, key_range.end)
        settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
        with warehouse.get_connection() as con:
            result = load_source(con, spec, settings.extracts_dir, load_id=context.run.run_id, dates=dates)
            table_rows = {table: int(scalar(con, f"select count(*) from raw.{table}")) for table in tables}
        if result.rejected:
            context.log.warning(
                f"Rejected {spec.name} files: {', '.join(result.rejected)} (see raw.load_manifest)"
            )
        if spec.required_source and result.files_seen == 0:
            raise Failure(
                f"No landing files for the required source '{spec.name}' between {dates[0]} and {dates[1]} "
                f"in {settings.extracts_dir / spec.name}"
            )
        for table in tables:
            yield MaterializeResult(
                asset_key=AssetKey(["raw", table]),
                metadata={
                    **result.as_metadata(),
                    "rejected_files": ", ".join(result.rejected),
                    "dagster/row_count": table_rows[table],
                },
            )

    return load


raw_assets = [build_raw_asset(spec) for spec in SOURCES.values()]

# Two tables every raw loader writes in the same transaction as its source's rows. No asset of their own
# can materialize them (five loaders write them), so they are declared here for the graph: in the raw
# group, downstream of the loaders, with what they hold (else Dagster shows them as bare keys of the
# dbt sources in the default group). Their rows change whenever a raw/<source> asset materializes.
shared_raw_tables = [
    AssetSpec(
        AssetKey(["raw", table]),
        group_name="raw",
        kinds={"duckdb"},
        description=f"raw.{table}: {what} Written by every raw loader (raw/<source>) in the transaction"
        " that loads the file; not materialized on its own.",
        deps=[key for loader in raw_assets for key in loader.keys],
    )
    for table, what in (
        (
            "load_manifest",
            "one row per landing file a load saw (loaded, replaced, skipped_duplicate, rejected).",
        ),
        (
            "quarantine",
            "every landing row that broke the extract contract, with its file, line, raw text and reason.",
        ),
    )
]
