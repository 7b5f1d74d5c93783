"""One Dagster asset per landing source, loading its files into the raw schema."""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    multi_asset,
)
from dagster_duckdb import DuckDBResource

from orchestration.ingest.loader import load_source
from orchestration.ingest.sources import SOURCES, SourceSpec
from orchestration.settings import Settings


def _description(spec: SourceSpec, table: str) -> str:
    need = "Required" if spec.required_source else "Optional"
    return (
        f"raw.{table}: rows of the `{spec.name}/` landing files that pass the extract contract, as text with "
        f"their source file, line number and load id. Bad rows go to raw.quarantine, every file to "
        f"raw.load_manifest. {need} source."
    )


def build_raw_asset(spec: SourceSpec) -> AssetsDefinition:
    tables = ("orders", "order_lines") if spec.name == "orders" else (spec.name,)

    @multi_asset(
        name=f"load_raw_{spec.name}",
        specs=[
            AssetSpec(
                AssetKey(["raw", table]),
                group_name="raw",
                kinds={"duckdb"},
                description=_description(spec, table),
            )
            for table in tables
        ],
        # The loaders and dbt all write one DuckDB file: one writer at a time.
        pool="warehouse_writer",
    )
    def load(context: AssetExecutionContext, warehouse: DuckDBResource) -> Iterator[MaterializeResult]:
        settings = Settings.from_env()
        with warehouse.get_connection() as con:
            result = load_source(con, spec, settings.extracts_dir, load_id=context.run_id)
            table_rows = {
                table: con.execute(f"select count(*) from raw.{table}").fetchall()[0][0] for table in tables
            }
        if spec.required_source and result.files_seen == 0:
            raise Failure(
                f"No landing files for the required source '{spec.name}' in {settings.extracts_dir / spec.name}"
            )
        if result.rejected:
            context.log.warning(
                f"Rejected {spec.name} files: {', '.join(result.rejected)} (see raw.load_manifest)"
            )
        for table in tables:
            yield MaterializeResult(
                asset_key=AssetKey(["raw", table]),
                metadata={
                    **result.as_metadata(),
                    "rejected_files": ", ".join(result.rejected),
                    "dagster/row_count": int(table_rows[table]),
                },
            )

    return load


raw_assets = [build_raw_asset(spec) for spec in SOURCES.values()]
