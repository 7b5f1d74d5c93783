"""Export the raw landing tables to Parquet, for engines that do not read the DuckDB warehouse.

dbt's `spark` target reads `<out_dir>/<table>.parquet` for every raw table (set
ORDER_AUDIT_RAW_PARQUET_DIR to `out_dir`; dbt_project/macros/raw_sources.sql). Types are kept: text
columns stay text, extract_date a DATE, line_number a BIGINT, timestamps UTC instants.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.ingest.schema import create_raw_schema
from orchestration.ingest.sources import SOURCES

RAW_TABLES: tuple[str, ...] = (
    *SOURCES.keys(),
    "order_lines",
    "quarantine",
    "load_manifest",
    "routing_rules",
    "decisions",
)


def export_raw_parquet(warehouse: Path, out_dir: Path) -> dict[str, int]:
    """Write every raw table of `warehouse` to `out_dir/<table>.parquet`; returns the rows per table.

    Tables a load has not created yet (an empty warehouse) are created empty first, so every file exists.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("set timezone = 'UTC'")
        create_raw_schema(con)
        for table in RAW_TABLES:
            target = out_dir / f"{table}.parquet"
            target.unlink(missing_ok=True)
            literal = str(target).replace("'", "''")
            con.execute(f"copy (select * from raw.{table}) to '{literal}' (format parquet)")
            count = con.execute(f"select count(*) from raw.{table}").fetchone()
            rows[table] = int(count[0]) if count else 0
    finally:
        con.close()
    return rows
