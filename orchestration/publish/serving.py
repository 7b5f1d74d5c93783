"""Write-audit-publish: copy the audited mart into a separate serving DuckDB file, swapped in atomically.

Analysts and BI tools only ever open the serving file, read-only. The pipeline writes a complete new
file next to it and renames it over the old one, so a reader sees the previous mart or the new one,
never half of one, and a reader holding the old file open never blocks the pipeline. A publish that
fails (no space left, ...) removes its staging files itself; one that is killed leaves them behind,
and the next one removes them, under a lock (a `.<name>.lock` file beside the serving file) that one
publish at a time holds, so it never removes those of a publish still running. The file is written
with storage version v1.4.0 so DuckDB 1.4 readers (bundled by many BI tools) can open it; the same
tables are exported as Parquet for tools that cannot open DuckDB at all.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from orchestration.duck import scalar, sql_identifier, sql_string
from orchestration.settings import DBT_PROJECT_DIR

# Every model of dbt_project/models/marts is a mart table, published as it is.
MART_TABLES = tuple(sorted(model.stem for model in (DBT_PROJECT_DIR / "models" / "marts").glob("*.sql")))
# Operational tables analysts query beside the mart: (schema.table in the warehouse, name when served).
SUPPORT_TABLES = (
    ("raw.load_manifest", "load_manifest"),
    ("quality.validation_results", "validation_results"),
)
SERVING_STORAGE_VERSION = "v1.4.0"


@dataclass(frozen=True)
class PublishResult:
    serving_db: Path
    parquet_dir: Path
    row_counts: dict[str, int]
    published_at: datetime
    open_exceptions: dict[str, int]


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables where table_catalog = 'warehouse'"
    ).fetchall()
    return {row[0] for row in rows}


def _column_definitions(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The warehouse table's columns as DDL, with their types and NOT NULL constraints (`create table as`
    would drop the constraints, and BI tools read nullability from the served schema)."""
    schema, name = table.split(".")
    columns = con.execute(
        """
        select column_name, data_type, is_nullable from duckdb_columns()
        where database_name = 'warehouse' and schema_name = ? and table_name = ?
        order by column_index
        """,
        [schema, name],
    ).fetchall()
    return ", ".join(
        f"{sql_identifier(column)} {data_type}{'' if nullable else ' not null'}"
        for column, data_type, nullable in columns
    )


@contextmanager
def _publish_lock(serving_db: Path) -> Iterator[None]:
    """One publish at a time per serving file (the lock goes with the process, killed or not)."""
    with open(serving_db.with_name(f".{serving_db.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _remove_unfinished_publishes(serving_db: Path) -> None:
    """The staging files and folders of earlier publishes that never finished (their run was killed)."""
    folder = serving_db.parent
    for pattern in (
        f".{serving_db.name}.*.tmp",
        f".{serving_db.name}.*.tmp.wal",
        ".parquet.*.tmp",
        ".parquet.*.old",
        ".spill.*.tmp",
    ):
        for leftover in folder.glob(pattern):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def publish(
    warehouse: Path,
    serving_db: Path,
    run_id: str,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> PublishResult:
    """Copy the mart into a new serving file and Parquet files, then swap them in.

    `memory_limit` / `threads`: DuckDB limits of the copying connection (default: DuckDB's own).
    """
    serving_db.parent.mkdir(parents=True, exist_ok=True)
    with _publish_lock(serving_db):
        _remove_unfinished_publishes(serving_db)
        return _publish(warehouse, serving_db, run_id, memory_limit=memory_limit, threads=threads)


def _publish(
    warehouse: Path, serving_db: Path, run_id: str, *, memory_limit: str | None, threads: int | None
) -> PublishResult:
    staging_file = serving_db.with_name(f".{serving_db.name}.{run_id}.tmp")
    staging_parquet = serving_db.parent / f".parquet.{run_id}.tmp"
    spill_dir = serving_db.parent / f".spill.{run_id}.tmp"
    parquet_dir = serving_db.parent / "parquet"
    staging_parquet.mkdir(parents=True)

    published_at = datetime.now(UTC).replace(tzinfo=None)
    row_counts: dict[str, int] = {}
    # SQL tables have no row order; not keeping the warehouse's lets DuckDB copy and export in
    # parallel without re-sequencing (about 10% faster on the 8.6M-row event trail).
    # An in-memory connection spills to ./.tmp of the working directory: keep it beside the staging file.
    config: dict[str, str | int | bool] = {
        "preserve_insertion_order": False,
        "temp_directory": str(spill_dir),
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    try:
        con.execute(f"attach {sql_string(warehouse)} as warehouse (read_only)")
        con.execute(
            f"attach {sql_string(staging_file)} as serving (storage_version '{SERVING_STORAGE_VERSION}')"
        )
        available = _existing_tables(con)
        missing = [t for t in MART_TABLES if f"main.{t}" not in available]
        if missing:
            raise RuntimeError(f"the warehouse has no {', '.join(missing)}: build the mart before publishing")
        sources = [(f"main.{t}", t) for t in MART_TABLES] + [s for s in SUPPORT_TABLES if s[0] in available]
        for source, served in sources:
            con.execute(f"create table serving.main.{served} ({_column_definitions(con, source)})")
            con.execute(f"insert into serving.main.{served} select * from warehouse.{source}")
            row_counts[served] = int(scalar(con, f"select count(*) from serving.main.{served}"))
            con.execute(
                f"copy serving.main.{served} to {sql_string(staging_parquet / f'{served}.parquet')} (format parquet)"
            )
        as_of = scalar(con, "select max(audited_as_of) from serving.main.fact_order_audit")
        open_exceptions = {
            f"{kind}_{name}".lower(): int(count)
            for kind, name, count in con.execute(
                """
                select 'open_exceptions_code', exception_code, count(*) from serving.main.order_audit_exceptions
                where status = 'open' group by all
                union all
                select 'open_exceptions_owner', owner_team, count(*) from serving.main.order_audit_exceptions
                where status = 'open' group by all
                union all
                select 'open_exceptions_route', route || '_' || priority, count(*)
                from serving.main.order_audit_exceptions
                where status = 'open' and route is not null group by all
                union all
                select 'sla_breached_route', route, count(*) from serving.main.order_audit_exceptions
                where status = 'open' and sla_breached and route is not null group by all
                union all
                select 'orders', audit_status, count(*) from serving.main.fact_order_audit group by all
                """
            ).fetchall()
        }
        con.execute(
            "create table serving.main.publish_log as select ? as run_id, cast(? as timestamp) as published_at,"
            " cast(? as timestamp) as audited_as_of",
            [run_id, published_at, as_of],
        )
        con.execute(
            f"copy serving.main.publish_log to {sql_string(staging_parquet / 'publish_log.parquet')} (format parquet)"
        )
        con.execute("detach serving")
        con.execute("detach warehouse")
    except BaseException:
        # A copy that failed (no space left on the device, ...) frees its space at once, not at the next
        # publish: the warehouse may share the disk, and the next run writes it first.
        for staging in (staging_file, Path(f"{staging_file}.wal")):
            staging.unlink(missing_ok=True)
        shutil.rmtree(staging_parquet, ignore_errors=True)
        raise
    finally:
        con.close()
        shutil.rmtree(spill_dir, ignore_errors=True)

    os.replace(staging_file, serving_db)
    previous_parquet = serving_db.parent / f".parquet.{run_id}.old"
    if parquet_dir.exists():
        parquet_dir.rename(previous_parquet)
    staging_parquet.rename(parquet_dir)
    shutil.rmtree(previous_parquet, ignore_errors=True)
    return PublishResult(serving_db, parquet_dir, row_counts, published_at, open_exceptions)
